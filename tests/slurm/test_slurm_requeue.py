"""Elements that Slurm requeues (as on preemption, or ``scontrol requeue``) are ingested once.

``work`` of ``tests/flows/slow_steps.py`` appends its item to ``work.calls`` before it sleeps,
so the file counts executions, while the store counts ingestions. A running element is
requeued: its first incarnation dies without a result, the second runs under the same batch
and is ingested. A finished element of the succeeded run is requeued too: it runs again and
rewrites its result file, which nothing ingests a second time.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import pytest

from tests.flows import slow_steps
from tests.slurm.scheduler import query, slurm, status, wait_for_run, wait_until_no_jobs
from tests.slurm.test_slurm_faults import assert_ingested_once, calls, work_rows
from tests.slurm.test_slurm_runs import Workdirs, wait_until

pytestmark = [pytest.mark.slurm, pytest.mark.usefixtures("slurm_cluster")]


def job_ids(run_dir: Path, run_id: str) -> dict[int, str]:
    rows = query(
        run_dir, "SELECT element, job_id FROM instances WHERE run_id = ? AND task = 'work'", run_id
    )
    return {int(element): str(job) for element, job in rows}


def test_requeued_elements_run_again_and_are_ingested_once(
    tmp_path: Path, workdirs: Workdirs
) -> None:
    count = 3
    run_dir = tmp_path / "runs"
    run_id = workdirs.submit(slow_steps.wf, run_dir, "requeue", count=count, seconds=2.5)
    wait_until(lambda: len(calls(run_dir)) == count, "every element of work started")
    jobs = job_ids(run_dir, run_id)
    slurm("scontrol", "requeue", jobs[0])  # while it runs: it dies and runs again

    assert wait_for_run(run_dir, run_id, timeout_s=120) == "succeeded", status(run_dir, run_id)
    assert calls(run_dir) == Counter({0: 2, 1: 1, 2: 1})
    assert [attempts for _e, _s, _i, attempts, _b in work_rows(run_dir, run_id)] == [1] * count
    assert_ingested_once(run_dir, run_id, count)
    outputs = sorted(row[2] for row in work_rows(run_dir, run_id))

    slurm("scontrol", "requeue", jobs[1])  # after the run succeeded: it runs again
    wait_until(lambda: calls(run_dir)[1] == 2, "the finished element ran again", timeout_s=90)
    wait_until_no_jobs(workdirs.made[0], timeout_s=60)
    time.sleep(1)
    assert status(run_dir, run_id)["state"] == "succeeded"
    assert_ingested_once(run_dir, run_id, count)
    assert sorted(row[2] for row in work_rows(run_dir, run_id)) == outputs
