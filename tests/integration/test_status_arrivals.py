"""Status counts results that arrived before the dispatcher ingested them.

Result files, and the lines of the bundles that packed array tasks write.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.rundirs import NullExecutor, finish_prepare, new_run
from reflow.running.dispatch.dispatcher import make_dispatcher
from reflow.running.executors.base import BatchRequest, Submission
from reflow.running.rundir.results import ResultError, result_text, write_result
from reflow.running.store.sqlite import SqliteStore
from reflow.running.worker.command import array_offset_args
from reflow.running.worker.selection import ARRAY_TASK_ENV
from tests.flows import packed_arrivals


def status_task(root: Path, run_id: str, task: str = "prepare") -> dict[str, Any]:
    """The entry of ``task`` in ``reflow status RUN --json``."""
    tasks: list[dict[str, Any]] = status_json(root, run_id)["tasks"]
    return next(t for t in tasks if t["task"] == task)


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
    task = status_task(tmp_path, layout.run_id)
    assert task["counts"] == {"submitted": 1}
    assert "arrived" not in task
    error = ResultError(type="ValueError", message="bad input")
    text = result_text(
        run_id=layout.run_id, task="prepare", element=0, batch=str(row.batch), output=None,
        output_hash=None, error=error, started=1.0, ended=2.0, host="node", pid=1,
        peak_rss_mb=1.0,
    )  # fmt: skip
    write_result(layout.result("prepare", 0, str(row.batch)), text)
    task = status_task(tmp_path, layout.run_id)
    # Shown as failed at once, one directory read and one small file later, no scheduler call.
    assert task["counts"] == {"failed": 1}
    assert task["arrived"] == 1
    with_store = SqliteStore.open(tmp_path)
    try:
        assert with_store.state_counts(layout.run_id)["prepare"] == {"submitted": 1}
    finally:
        with_store.close()


class RecordingExecutor(NullExecutor):
    """Starts nothing, as its parent; keeps each request, for the test to start as Slurm would."""

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[BatchRequest] = []

    def submit(self, request: BatchRequest, /) -> Submission:
        self.requests.append(request)
        return super().submit(request)


def start_array_task(request: BatchRequest, array_task: int) -> subprocess.Popen[bytes]:
    """Run one array task of a packed batch as Slurm runs it: the worker and its array index."""
    env = {**os.environ, ARRAY_TASK_ENV: str(array_task)}
    argv = [*request.command, *array_offset_args(0)]
    return subprocess.Popen(argv, cwd=request.workdir, env=env)


def test_packed_results_show_as_their_array_tasks_write_them(tmp_path: Path) -> None:
    layout = new_run(tmp_path, 6, flow=packed_arrivals)
    finish_prepare(layout, 6, flow=packed_arrivals)
    executor = RecordingExecutor()
    with SqliteStore.open(tmp_path) as store:
        make_dispatcher(layout, store, executor).turn()  # convert goes out, packed
    (request,) = executor.requests
    assert (request.task, request.pack) == ("convert", 3)
    workers = [start_array_task(request, array_task) for array_task in (0, 1)]
    try:
        # array task 0 runs items 0 (done at once), 1 (fails at once), 2 (held);
        # array task 1 runs items 3 (done at once), 4 and 5 (held)
        deadline = time.monotonic() + 60
        while (task := status_task(tmp_path, layout.run_id, "convert"))["counts"] != {
            "done": 2, "submitted": 3, "failed": 1,
        }:  # fmt: skip
            assert time.monotonic() < deadline, task
            assert all(worker.poll() is None for worker in workers), "an array task ended"
            time.sleep(0.1)
        assert task["arrived"] == 3
        assert all(worker.poll() is None for worker in workers)  # both bundles still grow
        with SqliteStore.open(tmp_path) as store:  # nothing of it ingested yet
            assert store.state_counts(layout.run_id)["convert"] == {"submitted": 6}
        (tmp_path / "go").touch()
        assert [worker.wait(timeout=60) for worker in workers] == [1, 0]  # 0 failed item 1
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
    task = status_task(tmp_path, layout.run_id, "convert")
    assert task["counts"] == {"done": 5, "failed": 1}
    assert task["arrived"] == 6
    bundles = sorted(p.name for p in layout.results_dir("convert").iterdir())
    assert bundles == [f"{request.batch_id}.0.jsonl", f"{request.batch_id}.1.jsonl"]
