"""Running: ``REFLOW_MODE=dry-run``: plan a run and show what would be submitted.

The run is planned against a copy of the run directory's store in a temporary folder, so
cache hits are real; nothing runs, nothing is submitted, and nothing is written to the run
directory. The temporary folder is removed afterwards.
"""

from __future__ import annotations

import sqlite3
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

from reflow.running.layout import STORE_NAME, RunLayout
from reflow.running.store import SqliteStore


def dry_run(
    root: Path, manifest: Mapping[str, Any], options: Mapping[str, Any], *, out: IO[str]
) -> None:
    """Print the batches the first dispatcher turn would submit, and what waits."""
    from reflow.running.drive import make_dispatcher
    from reflow.running.executors.dry_run import DryRunExecutor
    from reflow.running.submission import write_manifest

    with tempfile.TemporaryDirectory(prefix="reflow-dry-run-") as scratch:
        copy = Path(scratch)
        if (root / STORE_NAME).exists():
            source = sqlite3.connect(root / STORE_NAME)
            target = sqlite3.connect(copy / STORE_NAME)
            try:
                source.backup(target)
            finally:
                source.close()
                target.close()
        layout = RunLayout(copy, str(manifest["run_id"]))
        store = SqliteStore.open(copy, create=True)
        try:
            write_manifest(layout, manifest)
            store.create_run(
                run_id=layout.run_id,
                workflow=str(manifest["workflow"]),
                executor="dry-run",
                options=options,
            )
            out.write(f"dry run of {manifest['workflow']}: nothing is submitted\n")
            dispatcher = make_dispatcher(layout, store, DryRunExecutor(out=out))
            dispatcher.turn()
            counts = store.state_counts(layout.run_id)
            for spec in dispatcher.graph.tasks:
                task_counts = counts.get(spec.name)
                if task_counts is None:
                    out.write(f"  {spec.name}: waits for {', '.join(spec.upstream)}\n")
                else:
                    shown = ", ".join(f"{n} {s}" for s, n in sorted(task_counts.items()))
                    out.write(f"  {spec.name}: {shown}\n")
        finally:
            store.close()
