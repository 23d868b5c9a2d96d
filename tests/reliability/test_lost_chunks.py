"""Chunks a dead dispatcher left behind, as a resumed dispatcher's local executor sees them.

A chunk queued but never started is lost without costing an attempt; a chunk started just
before its dispatcher died, before the pid file was written, is found by its command line
and reported running; an element that a gone chunk had started is lost and counted.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from reflow.running.executors.base import FailureReason, JobState
from reflow.running.executors.local import LocalExecutor
from reflow.running.rundir.layout import RunLayout
from tests.reliability.processes import wait_until

RUN_ID = "demo-20260101-000000-abcdef"
BATCH = "120000beef01"


@pytest.fixture
def layout(tmp_path: Path) -> RunLayout:
    layout = RunLayout(tmp_path, RUN_ID)
    layout.logs_dir("work").mkdir(parents=True)
    return layout


def test_a_chunk_that_never_started_is_lost_for_free(layout: RunLayout) -> None:
    found = LocalExecutor(run_root=layout.run).states([f"{BATCH}.0.3"])[f"{BATCH}.0.3"]
    assert (found.state, found.reason) == (JobState.UNKNOWN, FailureReason.LOST)
    assert "never started" in found.detail


def test_a_chunk_without_pid_file_is_found_by_its_command_line(layout: RunLayout) -> None:
    logs = layout.logs_dir("work")
    (logs / f"chunk-{BATCH}.1.log").touch()  # opened just before the process started
    argv = ["reflow.running.worker", "--run-id", RUN_ID, "--batch", BATCH, "--elements", "4-7"]
    # Like a chunk: its own process group, the worker's flags on its command line.
    code = "import time; time.sleep(60)"
    worker = subprocess.Popen([sys.executable, "-c", code, *argv], start_new_session=True)
    try:
        wait_until(lambda: Path(f"/proc/{worker.pid}/cmdline").read_bytes(), "the worker")
        executor = LocalExecutor(run_root=layout.run, cancel_grace_s=5)
        assert executor.states([f"{BATCH}.1.5"])[f"{BATCH}.1.5"].state is JobState.RUNNING
        assert (logs / f"chunk-{BATCH}.1.pid").exists()  # adopted: cancel can now stop it
        executor.cancel([f"{BATCH}.1.5"])
        assert worker.wait(timeout=10) != 0
    finally:
        worker.kill()
        worker.wait()


def test_an_element_a_gone_chunk_started_is_lost_and_counted(layout: RunLayout) -> None:
    logs = layout.logs_dir("work")
    (logs / f"chunk-{BATCH}.2.log").touch()
    (logs / "8.log").write_text(f"==> reflow: work[8] batch {BATCH} on host at now\n")
    states = LocalExecutor(run_root=layout.run).states([f"{BATCH}.2.8", f"{BATCH}.2.9"])
    started, unstarted = states[f"{BATCH}.2.8"], states[f"{BATCH}.2.9"]
    assert (started.state, started.reason) == (JobState.UNKNOWN, None)
    assert (unstarted.state, unstarted.reason) == (JobState.UNKNOWN, FailureReason.LOST)
