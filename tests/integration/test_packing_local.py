"""A packed task on the local executor, and the history ``pack="auto"`` reads from the store."""

from __future__ import annotations

import json
import math
import os
import statistics
import subprocess
import sys
from functools import partial
from pathlib import Path

from reflow.definition.resources import Resources
from reflow.running.dispatch.packing import pack_for
from reflow.running.store.sqlite import SqliteStore

FLOW = Path(__file__).resolve().parents[1] / "flows" / "slurm_packed.py"


def test_the_local_executor_ignores_pack_and_auto_packs_from_the_done_history(
    tmp_path: Path,
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REFLOW_")}
    env.update(REFLOW_MODE="local", XDG_CONFIG_HOME=str(tmp_path / "config"))
    run_dir = tmp_path / "runs"
    done = subprocess.run(
        [sys.executable, str(FLOW), "submit", "--count", "6", "--run-dir", str(run_dir), "--wait"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    (run,) = (run_dir / "runs").iterdir()
    results = sorted(p.name for p in (run / "results" / "work").iterdir())
    assert len(results) == 6
    assert all(name.endswith(".json") for name in results)  # one file each, no bundle
    packs = {json.loads(p.read_text())["pack"] for p in (run / "batches").iterdir()}
    assert packs == {1}

    with SqliteStore.open(run_dir) as store:
        elapsed = store.done_elapsed("work")
        assert len(elapsed) == 6
        assert all(seconds >= 0 for seconds in elapsed)
        assert store.done_elapsed("no_such_task") == []
        pack = pack_for(
            Resources(pack="auto"),
            count=10**9,
            history=partial(store.done_elapsed, "work"),
            max_time_s=None,
            min_task_s=600,
        )
    median = max(statistics.median(elapsed), 0.001)
    assert pack == math.ceil(600 / median)
