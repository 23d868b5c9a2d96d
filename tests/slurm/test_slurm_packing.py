"""Packed array tasks on the real cluster: ``pack=5`` runs five elements per array task.

The flow (``tests/flows/slurm_packed.py``) is run as the user runs it: its command line in a
subprocess, from its own working directory, with ``REFLOW_MODE=slurm``. Each element appends
its number to ``ran`` in the run directory, which counts how often it ran.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from reflow.running.commands.logs import FOLLOW_POLL_S
from tests.flows import slurm_packed
from tests.slurm.scheduler import (
    accounted_jobs,
    array_specs,
    query,
    slurm,
    squeue_jobs,
    status,
    wait_for_run,
)
from tests.slurm.test_slurm_runs import TEST_RESULT_GRACE_S

pytestmark = [pytest.mark.slurm, pytest.mark.usefixtures("slurm_cluster")]

FLOW = Path(slurm_packed.__file__)
COUNT = 23
PACK = 5
DEADLINE_S = 120.0


class Packed:
    """One run of the packed flow: its working directory, run directory and environment."""

    def __init__(self, base: Path, **settings: str) -> None:
        self.workdir = base / "work"
        self.workdir.mkdir()
        self.run_dir = base / "runs"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("REFLOW_")}
        self.env.update(REFLOW_MODE="slurm", XDG_CONFIG_HOME=str(base / "config"))
        self.env.update(REFLOW_RESULT_GRACE=str(TEST_RESULT_GRACE_S), **settings)
        self.run_id = ""

    def cli(self, *args: str) -> str:
        result = subprocess.run(
            [sys.executable, str(FLOW), *args, "--run-dir", str(self.run_dir)],
            cwd=self.workdir,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    def submit(self, *args: str) -> None:
        out = self.cli("submit", *args)
        found = re.search(r"submitted run (\S+)", out)
        assert found, out
        self.run_id = found.group(1)

    def ran(self) -> Counter[int]:
        path = self.run_dir / "ran"
        return Counter(int(line) for line in path.read_text().split())

    def work(self) -> dict[int, tuple[str, str, int, str | None]]:
        """``element -> (state, job id, attempts, reason)`` of the run's ``work`` instances."""
        rows = query(
            self.run_dir,
            "SELECT element, state, job_id, attempts, reason FROM instances"
            " WHERE run_id = ? AND task = 'work'",
            self.run_id,
        )
        return {element: (state, job, tries, why) for element, state, job, tries, why in rows}

    def total(self) -> int:
        ((value,),) = query(
            self.run_dir,
            "SELECT o.value FROM instances i JOIN outputs o ON o.identity = i.identity"
            " WHERE i.run_id = ? AND i.task = 'total'",
            self.run_id,
        )
        return int(value)

    def cancel_leftovers(self) -> None:
        left = squeue_jobs(self.workdir)
        if left:
            slurm("scancel", *left)


@pytest.fixture
def packed(tmp_path: Path) -> Packed:
    return Packed(tmp_path)


def test_a_packed_run_isolates_a_raising_element_and_counts_array_tasks(tmp_path: Path) -> None:
    # MaxArraySize 2 and a budget of 5 jobs, one of them the job running the turn: the 5
    # array tasks of work go as 4 (in arrays of 2, 2) and then 1, however many elements each
    # holds.
    run = Packed(tmp_path, REFLOW_MAX_ARRAY_SIZE="2", REFLOW_SUBMIT_BUDGET="5")
    since = time.time()
    try:
        run.submit("--fault", "raise", "--bad", "7")
        assert wait_for_run(run.run_dir, run.run_id, timeout_s=DEADLINE_S) == "failed"
    finally:
        run.cancel_leftovers()
    work = run.work()
    assert sorted(e for e, row in work.items() if row[0] == "failed") == [7]
    assert sorted(e for e, row in work.items() if row[0] == "done") == sorted(set(work) - {7})
    jobs = {e: row[1] for e, row in work.items()}
    assert len(set(jobs.values())) == 5  # 23 elements in 5 array tasks
    assert {jobs[e] for e in range(5, 10)} == {jobs[7]}  # 7's neighbours shared its task
    assert run.ran() == Counter(range(COUNT))  # every element ran exactly once
    assert array_specs(run.run_dir, run.run_id, "work") == ["0-1", "0-1", "0-0"]
    # time="00:01:00" per element: an array task of 5 asks for 5 minutes; the 3 elements
    # the budget left for a later turn are one array task of 3.
    scripts = (run.run_dir / "runs" / run.run_id / "scripts").glob("work-*.sh")
    times = [line for path in scripts for line in path.read_text().splitlines() if "--time" in line]
    assert sorted(times) == ["#SBATCH --time=00:03:00"] + ["#SBATCH --time=00:05:00"] * 2
    sacct = accounted_jobs(run.run_dir, run.run_id, run.workdir, since)
    assert sum(job.name == "work.spack" for job in sacct) == 5
    assert {job.job_id for job in sacct if job.name == "work.spack"} == set(jobs.values())

    seventh = run.cli("logs", run.run_id, "work", "7")
    assert "RuntimeError: item 7 cannot be processed" in seventh
    eighth = run.cli("logs", run.run_id, "work", "8")
    assert "==> reflow: work[8] batch " in eighth
    assert "working on 8\n" in eighth
    assert "working on 7" not in eighth

    (run.run_dir / "fixed").write_text("")
    try:
        run.cli("retry", run.run_id)
        assert wait_for_run(run.run_dir, run.run_id, timeout_s=DEADLINE_S) == "succeeded"
    finally:
        run.cancel_leftovers()
    assert run.total() == sum(10 * i for i in range(COUNT))
    assert run.ran() == Counter(range(COUNT)) + Counter([7])
    assert {row[0] for row in run.work().values()} == {"done"}


def test_a_packed_task_killed_midway_keeps_its_finished_elements(packed: Packed) -> None:
    started = packed.run_dir / "started.hang"
    try:
        packed.submit("--fault", "hang", "--bad", "6")  # the 2nd element of array task 1
        deadline = time.monotonic() + DEADLINE_S
        while not started.exists():
            assert time.monotonic() < deadline, status(packed.run_dir, packed.run_id)
            time.sleep(0.2)
        hung = packed.work()[6][1]
        running = packed.cli("logs", packed.run_id, "work", "6")  # from its task's shared output
        assert re.search(r"==> reflow: work\[6\] batch \S+ on node\d ", running), running
        assert "working on 6\n" in running
        assert not (packed.run_dir / "runs" / packed.run_id / "logs" / "work" / "6.log").exists()
        slurm("scancel", hung)
        state = wait_for_run(
            packed.run_dir, packed.run_id, ("failed", "succeeded"), timeout_s=DEADLINE_S
        )
    finally:
        packed.cancel_leftovers()
    work = packed.work()
    assert work[5][:2] == ("done", hung)  # finished before the kill: kept from the bundle
    if state == "failed":  # without automatic retries: the rest of the task waits for retry
        assert {e: work[e][0] for e in range(6, 10)} == dict.fromkeys(range(6, 10), "failed")
        assert {work[e][3] for e in range(6, 10)} == {"cancelled"}
        (packed.run_dir / "fixed").write_text("")
        packed.cli("retry", packed.run_id)
    else:
        (packed.run_dir / "fixed").write_text("")
    try:
        assert wait_for_run(packed.run_dir, packed.run_id, timeout_s=DEADLINE_S) == "succeeded"
    finally:
        packed.cancel_leftovers()
    assert packed.total() == sum(10 * i for i in range(COUNT))
    # Element 5 ran once; 6 was killed and ran again; 7-9 had not started when it was killed.
    assert packed.ran() == Counter(range(COUNT)) + Counter([6])
    assert packed.work()[5][:3] == ("done", hung, 1)
    # The killed attempt's output was kept in 6's log when its failure was recorded; the
    # next attempt appended to it.
    log = (packed.run_dir / "runs" / packed.run_id / "logs" / "work" / "6.log").read_text()
    killed, again = log.split("==> reflow: work[6] batch ")[1:]
    assert "working on 6\n" in killed
    assert "<== reflow: element" not in killed
    assert "working on 6\n<== reflow: element 6 of work ended: done in " in again


def test_logs_follows_a_running_packed_element_and_cancel_keeps_its_output(
    packed: Packed,
) -> None:
    started = packed.run_dir / "started.hang"
    try:
        packed.submit("--fault", "hang", "--bad", "6")
        deadline = time.monotonic() + DEADLINE_S
        while not started.exists():
            assert time.monotonic() < deadline, status(packed.run_dir, packed.run_id)
            time.sleep(0.2)
        follow = subprocess.Popen(
            [sys.executable, str(FLOW), "logs", packed.run_id, "work", "6", "--follow",
             "--run-dir", str(packed.run_dir)],
            cwd=packed.workdir, env=packed.env, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        time.sleep(2 * FOLLOW_POLL_S)  # it has read the running element's shared output
        packed.cli("cancel", packed.run_id)
        out, _ = follow.communicate(timeout=60)  # the element ended: --follow returns
    finally:
        packed.cancel_leftovers()
    assert follow.returncode == 0
    assert out.count("working on 6\n") == 1  # printed once, from the shared output
    stopped = "<== reflow: the element's process was stopped before it ended: cancelled"
    assert out.split("working on 6\n", 1)[1].startswith(stopped)
    # After the cancel the output is in 6's own log (the array task's file is left to its
    # worker, which may still be stopping).
    shown = packed.cli("logs", packed.run_id, "work", "6")
    assert shown.count("working on 6\n") == 1
    assert "working on 6\n" + stopped in shown
    logs = packed.run_dir / "runs" / packed.run_id / "logs" / "work"
    assert "working on 6\n" in (logs / "6.log").read_text()
