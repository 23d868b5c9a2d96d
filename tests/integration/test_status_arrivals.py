"""Status counts result files that arrived before the dispatcher ingested them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from benchmarks.rundirs import NullExecutor, new_run
from reflow.running.dispatch.dispatcher import make_dispatcher
from reflow.running.rundir.results import ResultError, result_text, write_result
from reflow.running.store.sqlite import SqliteStore


def prepare_status(root: Path, run_id: str) -> dict[str, Any]:
    """The ``prepare`` entry of ``reflow status RUN --json``."""
    tasks: list[dict[str, Any]] = status_json(root, run_id)["tasks"]
    return next(t for t in tasks if t["task"] == "prepare")


def status_json(root: Path, run_id: str) -> dict[str, Any]:
    console = Path(sys.executable).with_name("reflow")
    done = subprocess.run(
        [str(console), "status", run_id, "--run-dir", str(root), "--json"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    data: dict[str, Any] = json.loads(done.stdout)
    return data


def test_finished_results_show_before_they_are_ingested(tmp_path: Path) -> None:
    layout = new_run(tmp_path, 3)
    with_store = SqliteStore.open(tmp_path)
    try:
        make_dispatcher(layout, with_store, NullExecutor()).turn()  # prepare is submitted
        (row,) = with_store.instances(layout.run_id, "prepare")
    finally:
        with_store.close()
    task = prepare_status(tmp_path, layout.run_id)
    assert task["counts"] == {"submitted": 1}
    assert "arrived" not in task
    error = ResultError(type="ValueError", message="bad input")
    text = result_text(
        run_id=layout.run_id, task="prepare", element=0, batch=str(row.batch), output=None,
        output_hash=None, error=error, started=1.0, ended=2.0, host="node", pid=1,
        peak_rss_mb=1.0,
    )  # fmt: skip
    write_result(layout.result("prepare", 0, str(row.batch)), text)
    task = prepare_status(tmp_path, layout.run_id)
    # Shown as failed at once, one directory read and one small file later, no scheduler call.
    assert task["counts"] == {"failed": 1}
    assert task["arrived"] == 1
    with_store = SqliteStore.open(tmp_path)
    try:
        assert with_store.state_counts(layout.run_id)["prepare"] == {"submitted": 1}
    finally:
        with_store.close()
