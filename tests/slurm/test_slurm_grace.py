"""A result file that appears seconds after its job ended, as on NFS or Lustre: no failure.

The worker writes its result files below a held folder (the test-only switch
``REFLOW_TEST_HOLD_RESULTS``); the test moves those of ``prepare`` and ``total`` into place at
once, and those of ``work`` only after a dispatcher turn has run since the array ended and
found no result. Within ``[executor] result_grace`` that turn waits instead of failing or
resubmitting the elements; a later turn ingests the results. ``work`` appends to
``work.calls``, so the file counts executions.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from pathlib import Path

import pytest

from reflow.running.rundir.results import HOLD_RESULTS_ENV
from reflow.running.store.states import RunState
from tests.flows import slow_steps
from tests.slurm.scheduler import dispatcher_record, query, run_state, status
from tests.slurm.test_slurm_runs import Workdirs

pytestmark = [pytest.mark.slurm, pytest.mark.usefixtures("slurm_cluster")]

DEADLINE_S = 120.0


def held_files(held: Path) -> list[Path]:
    return [path for path in held.rglob("*.json") if path.is_file()]


def release(path: Path, held: Path) -> None:
    target = Path("/") / path.relative_to(held)
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(path, target)


def test_a_result_that_appears_late_is_waited_for_not_failed_or_rerun(
    tmp_path: Path, workdirs: Workdirs, monkeypatch: pytest.MonkeyPatch
) -> None:
    held = tmp_path / "held"
    monkeypatch.setenv(HOLD_RESULTS_ENV, str(held))
    monkeypatch.delenv("REFLOW_RESULT_GRACE")  # the default grace
    run_dir = tmp_path / "runs"
    count = 3
    run_id = workdirs.submit(slow_steps.wf, run_dir, "late", count=count, seconds=0.2)

    work_held_since: float | None = None
    turns_when_held = 0
    late_released = 0
    deadline = time.monotonic() + DEADLINE_S
    while run_state(run_dir, run_id) == RunState.RUNNING.value:
        assert time.monotonic() < deadline, status(run_dir, run_id)
        turns = int(dispatcher_record(run_dir, run_id).get("turns") or 0)
        work = [path for path in held_files(held) if "/results/work/" in str(path)]
        for path in held_files(held):
            if path not in work:
                release(path, held)
        if len(work) == count and work_held_since is None:
            work_held_since, turns_when_held = time.monotonic(), turns
        if work and turns > turns_when_held:
            # A turn ran after every element had ended, and found none of their results.
            late_released += len(work)
            for path in work:
                release(path, held)
        time.sleep(0.2)

    assert run_state(run_dir, run_id) == RunState.SUCCEEDED.value, status(run_dir, run_id)[
        "failures"
    ]
    assert late_released == count
    assert Counter((run_dir / "work.calls").read_text().split()) == Counter(
        str(item) for item in range(count)
    )
    rows = query(
        run_dir,
        "SELECT state, attempts, reason FROM instances WHERE run_id = ? AND task = 'work'",
        run_id,
    )
    assert rows == [("done", 1, None)] * count
