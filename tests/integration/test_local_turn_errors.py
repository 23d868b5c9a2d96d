"""A local dispatcher whose turn fails (a locked or full store) tries again, then fails the run.

First as a user meets it: a flow whose first task leaves a file where the run directory needs
a folder, so that every later turn fails to write there; the run, submitted with ``--wait``
from the command line, ends failed after five turns with the error, in ``status`` and in
``dispatcher.log``. Then ``tests/flows/demo_steps.py`` with the launch of its detached
dispatcher replaced, driven in this process, with ``Dispatcher.turn`` failing as a locked
store would: a few times, then no more (the run completes, each element once), or every time.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from reflow.definition.errors import StoreError
from reflow.running.dispatch import drive
from reflow.running.dispatch.dispatcher import MAX_TURN_ERRORS, Dispatcher
from reflow.running.rundir.layout import RunLayout
from reflow.running.store.sqlite import SqliteStore
from reflow.running.store.states import RunState
from tests.flows.demo_steps import wf
from tests.integration.flowfiles import cli, submit_and_wait

FLOW = Path(__file__).resolve().parents[1] / "flows" / "demo_steps.py"
BLOCKING_FLOW = """
from pathlib import Path
from typing import Annotated

from reflow import Result, RunDir, Workflow

wf = Workflow("blocked")


@wf.job()
def prepare(run_dir: RunDir = RunDir()) -> list[int]:
    for run in Path(run_dir, "runs").iterdir():  # a file where convert's log folder goes
        (run / "logs" / "convert").write_text("in the way")
    return [1, 2]


@wf.array_job()
def convert(item: Annotated[int, Result(step="prepare")]) -> int:
    return item


if __name__ == "__main__":
    raise SystemExit(wf.cli())
"""


def test_a_run_whose_turns_cannot_write_in_the_run_directory_fails_with_the_error(
    tmp_path: Path,
) -> None:
    flow = tmp_path / "flow.py"
    flow.write_text(BLOCKING_FLOW)
    run_dir = tmp_path / "runs"
    run_id, status = submit_and_wait(flow, run_dir)
    assert status["state"] == "failed"
    assert status["message"].startswith("5 dispatcher turns failed: cannot write in the run")
    log = (run_dir / "runs" / run_id / "dispatcher.log").read_text()
    assert [f"({n} in a row)" in log for n in range(1, 6)] == [True] * 5
    shown = cli(flow, "status", run_id, "--run-dir", str(run_dir), cwd=tmp_path)
    assert "5 dispatcher turns failed" in shown.stdout + shown.stderr


def failing_turns(failures: int) -> tuple[Callable[[Dispatcher], RunState], list[int]]:
    """A ``Dispatcher.turn`` whose first ``failures`` calls raise as a locked store does."""
    real = Dispatcher.turn
    calls = [0]

    def turn(self: Dispatcher) -> RunState:
        calls[0] += 1
        if calls[0] <= failures:
            raise StoreError("cannot use the store: database is locked")
        return real(self)

    return turn, calls


@pytest.fixture
def in_process(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    monkeypatch.setattr(drive, "launch", lambda layout, mode: None)  # driven below
    monkeypatch.setattr(drive, "_ERROR_WAIT_S", 0.01)
    return monkeypatch


def test_turns_that_fail_a_few_times_are_tried_again_and_the_run_completes(
    in_process: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    turn, calls = failing_turns(3)
    in_process.setattr(Dispatcher, "turn", turn)
    run = wf.submit(run_dir=tmp_path / "runs", count=3)
    assert drive.drive_locally(RunLayout(run.run_dir, run.run_id)) is RunState.SUCCEEDED
    assert calls[0] > 3
    err = capsys.readouterr().err
    assert "reflow: turn failed (3 in a row): cannot use the store: database is locked" in err
    assert "(4 in a row)" not in err
    assert (run.run_dir / "prepare.calls").read_text().count("x") == 1
    ran = sorted((run.run_dir / "convert.calls").read_text().split())
    assert ran == ["f0.nc", "f1.nc", "f2.nc"]  # each element once


def test_a_run_whose_turns_keep_failing_ends_failed_with_the_error(
    in_process: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    turn, calls = failing_turns(1000)
    in_process.setattr(Dispatcher, "turn", turn)
    run = wf.submit(run_dir=tmp_path / "runs", count=3)
    layout = RunLayout(run.run_dir, run.run_id)
    assert drive.drive_locally(layout) is RunState.FAILED
    assert calls[0] == MAX_TURN_ERRORS
    with SqliteStore.open(layout.root) as store:
        message = store.run(run.run_id).message
    assert message == "5 dispatcher turns failed: cannot use the store: database is locked"
    done = subprocess.run(
        [sys.executable, str(FLOW), "status", run.run_id, "--run-dir", str(run.run_dir)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert "failed" in done.stdout
    assert "5 dispatcher turns failed: cannot use the store" in done.stdout + done.stderr
