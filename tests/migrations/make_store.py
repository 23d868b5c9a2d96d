"""Make the fixture store of the reflow installed now: ``python tests/migrations/make_store.py``.

Runs ``flow_v1.py`` twice on the local executor in a fresh run directory (one run that
succeeds with ``--count 4``, one that fails on ``f1.nc`` with ``--count 2``), then keeps the
store (checkpointed, without its WAL) and the runs' manifests under ``stores/v<N>/``, where N
is the store's schema version. Results, logs and scripts are left out: a migrated store must
not need them, and the manifests keep no path of the machine that made them. ``stores/v1``
was made by reflow 0.1 (schema version 1).

Run it with the code of a schema version before that version changes (see
``reflow/running/store/migrations.py``). It refuses to replace a fixture that exists: the
fixtures are the stores that earlier releases wrote, and must stay as they were.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _portable(text: str) -> str:
    """The manifest without the paths of the machine that made it."""
    manifest = json.loads(text)
    manifest["source"] = {**manifest["source"], "file": "flow_v1.py", "sys_path": []}
    manifest["python"] = "python3"
    manifest["cwd"] = "."
    return json.dumps(manifest, indent=1)


def main() -> int:
    """Make ``stores/v<N>`` from two real runs."""
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp) / "run"
        env = {**os.environ, "REFLOW_MODE": "local"}
        flow = str(HERE / "flow_v1.py")
        for extra in (["--count", "4"], ["--count", "2", "--fail-on", "f1.nc"]):
            argv = [sys.executable, flow, "submit", "--run-dir", str(run_dir), "--wait", *extra]
            subprocess.run(argv, env=env, check=False)
        db = sqlite3.connect(run_dir / "reflow.sqlite")
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        db.execute("PRAGMA journal_mode = delete")
        version = db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()[0]
        db.close()
        target = HERE / "stores" / f"v{version}"
        if target.exists():
            print(f"{target} exists; fixtures are never made again", file=sys.stderr)
            return 2
        target.mkdir(parents=True)
        shutil.copy(run_dir / "reflow.sqlite", target / "reflow.sqlite")
        for manifest in sorted(run_dir.glob("runs/*/manifest.json")):
            relative = manifest.relative_to(run_dir)
            (target / relative).parent.mkdir(parents=True)
            (target / relative).write_text(_portable(manifest.read_text()), encoding="utf-8")
        print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
