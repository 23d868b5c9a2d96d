"""Slurm daemons failing under a run on the real cluster: the run still ends correctly.

Two faults of issue 5 ("Slurm faults"): slurmctld restarted while array elements run, and
slurmd killed together with the processes of the running job (a node crash, as far as Slurm
can tell). Both tests restart daemons, so they need root; whatever happens, they leave every
daemon running and the node usable (``finally``), because later tests share the cluster.

The flow is ``tests/flows/slow_steps.py``: ``work`` appends its item to ``work.calls`` in the
run directory before it sleeps, so the file counts executions, while the store counts
ingestions (one ``done`` row per element, one ``outputs`` row per identity).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from reflow.run import Run
from reflow.running.layout import RunLayout
from reflow.running.results import ResultRecord, read_result
from reflow.running.status import render_status
from reflow.running.store import SqliteStore
from tests.flows import slow_steps
from tests.slurm.scheduler import (
    CLUSTER_SCRIPT,
    batches,
    query,
    run_state,
    sacct_jobs,
    slurm,
    squeue_jobs,
    status,
    wait_for_run,
    wait_until_no_jobs,
)
from tests.slurm.test_slurm_runs import Workdirs, clean_env, wait_until

pytestmark = [pytest.mark.slurm, pytest.mark.usefixtures("slurm_cluster")]

SLURMCTLD_PID = Path("/run/slurmctld.pid")
SLURMD_PID = Path("/run/slurmd.pid")
NODE = "localhost"
SINFO = shutil.which("sinfo") or "sinfo"
HEALTHY = {"idle", "mixed", "allocated"}
RUN_DEADLINE_S = 60.0


@pytest.fixture
def workdirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Workdirs]:
    if os.geteuid() != 0:
        pytest.skip("stopping and starting Slurm daemons needs root")
    clean_env(monkeypatch, tmp_path / "config")
    dirs = Workdirs(tmp_path, monkeypatch)
    try:
        yield dirs
    finally:
        try:
            dirs.cancel_leftovers()
        finally:
            restore_cluster()


# Daemons and processes.


def daemon_pid(pid_file: Path, name: str) -> int:
    """The pid in ``pid_file``, checked to be a live ``name`` process."""
    pid = int(pid_file.read_text().strip())
    assert Path(f"/proc/{pid}/comm").read_text().strip() == name, f"{pid_file} is stale"
    return pid


def wait_gone(pids: list[int], what: str, timeout_s: float = 30.0) -> None:
    """Wait until none of ``pids`` exists any more (reaped: a zombie still counts as there).

    ``scripts/slurm-cluster start`` takes a zombie with the daemon's name for the daemon, so
    a restart must wait for init to reap it.
    """
    wait_until(
        lambda: not any(Path(f"/proc/{pid}").exists() for pid in pids),
        f"{what} ({pids}) gone",
        timeout_s,
    )


def start_cluster() -> float:
    """``scripts/slurm-cluster start`` (restarts what is missing); return the seconds it took."""
    started = time.monotonic()
    result = subprocess.run(
        [str(CLUSTER_SCRIPT), "start"], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, f"slurm-cluster start failed: {result.stdout}{result.stderr}"
    return time.monotonic() - started


def node_state() -> str:
    result = subprocess.run(
        [SINFO, "-h", "-n", NODE, "-o", "%T"], capture_output=True, text=True, timeout=30
    )
    return result.stdout.strip().rstrip("*~#!%$@^-")


def restore_cluster() -> None:
    """Every daemon running and the node usable again, resumed if it is down or drained."""
    start_cluster()
    deadline = time.monotonic() + 60
    while (state := node_state()) not in HEALTHY:
        if any(word in state for word in ("down", "drain", "fail")):
            slurm("scontrol", "update", f"nodename={NODE}", "state=resume")
        if time.monotonic() > deadline:
            pytest.fail(f"node {NODE} is {state!r}, not idle, 60 s after the test")
        time.sleep(0.5)


def processes_of_run(run_id: str) -> tuple[list[int], list[int]]:
    """The run's worker processes, and the slurmstepd processes they run under."""
    found = subprocess.run(
        ["pgrep", "-f", f"reflow[.]running[.]worker.*{run_id}"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    workers = [int(pid) for pid in found.stdout.split()]
    stepds = subprocess.run(
        ["pgrep", "-x", "slurmstepd"], capture_output=True, text=True, timeout=30, check=False
    )
    # Only the stepds of this run: others on the shared cluster keep running.
    candidates = {int(pid) for pid in stepds.stdout.split()}
    return workers, sorted({pid for w in workers for pid in ancestors(w)} & candidates)


def ancestors(pid: int) -> list[int]:
    chain = []
    while pid > 1:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            break
        pid = int(stat.rpartition(")")[2].split()[1])
        chain.append(pid)
    return chain


def kill_all(pids: list[int], sig: signal.Signals) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


# What the run did.


def calls(run_dir: Path) -> Counter[int]:
    """How often each element of ``work`` started."""
    path = run_dir / "work.calls"
    return Counter(int(line) for line in path.read_text().split()) if path.exists() else Counter()


def work_rows(run_dir: Path, run_id: str) -> list[tuple[int, str, str, int, str]]:
    """``(element, state, identity, attempts, batch)`` of each ``work`` instance."""
    rows = query(
        run_dir,
        "SELECT element, state, identity, attempts, batch FROM instances"
        " WHERE run_id = ? AND task = 'work' ORDER BY element",
        run_id,
    )
    return [(int(e), str(s), str(i), int(a), str(b)) for e, s, i, a, b in rows]


def assert_ingested_once(run_dir: Path, run_id: str, count: int) -> None:
    """One done row per element, one output per identity, and it is the done batch's result."""
    rows = work_rows(run_dir, run_id)
    assert [(element, state) for element, state, *_ in rows] == [
        (element, "done") for element in range(count)
    ]
    identities = [identity for _e, _s, identity, _a, _b in rows]
    assert len(set(identities)) == count
    marks = ",".join("?" * count)
    stored = query(
        run_dir,
        f"SELECT identity, value, hash FROM outputs WHERE identity IN ({marks})",  # noqa: S608
        *identities,
    )
    assert sorted(identity for identity, _v, _h in stored) == sorted(identities)
    by_identity = {identity: (json.loads(value), digest) for identity, value, digest in stored}
    layout = RunLayout(run_dir, run_id)
    for element, _state, identity, _attempts, batch in rows:
        value, digest = by_identity[identity]
        assert value == element * 2
        record = read_result(
            layout.result("work", element, batch),
            run_id=run_id,
            task="work",
            element=element,
            batch=batch,
        )
        assert isinstance(record, ResultRecord), record
        assert record.output_hash == digest
    assert query(
        run_dir,
        "SELECT o.value FROM instances i JOIN outputs o ON o.identity = i.identity"
        " WHERE i.run_id = ? AND i.task = 'total'",
        run_id,
    ) == [(json.dumps(sum(2 * element for element in range(count))),)]
    store = SqliteStore.open(run_dir)
    try:
        assert store.integrity_problems() == []
    finally:
        store.close()


def test_slurmctld_restarted_while_elements_run_the_run_completes_each_element_once(
    tmp_path: Path, workdirs: Workdirs
) -> None:
    count, seconds = 12, 3.0
    run_dir = tmp_path / "runs"
    since = time.time()
    begun = time.monotonic()
    run_id = workdirs.submit(slow_steps.wf, run_dir, "work", count=count, seconds=seconds)
    workdir = workdirs.made[0]

    wait_until(lambda: bool(calls(run_dir)), "the first element of work started")
    started_before = sum(calls(run_dir).values())
    old = daemon_pid(SLURMCTLD_PID, "slurmctld")
    stop = time.monotonic()
    os.kill(old, signal.SIGTERM)
    wait_gone([old], "slurmctld")
    down = time.monotonic()
    restart_s = start_cluster()
    new = daemon_pid(SLURMCTLD_PID, "slurmctld")
    assert new != old
    print(  # noqa: T201 - timings, shown with -s
        f"slurmctld: {down - stop:.1f} s to stop, {restart_s:.1f} s to start again;"
        f" {started_before} of {count} elements had started"
    )
    # The elements beyond the node's slots could only start after the restart.
    assert started_before < count
    assert run_state(run_dir, run_id) == "running"

    assert wait_for_run(run_dir, run_id, timeout_s=RUN_DEADLINE_S) == "succeeded", status(
        run_dir, run_id
    )
    print(f"run {run_id} succeeded {time.monotonic() - begun:.1f} s after submit")  # noqa: T201
    assert calls(run_dir) == Counter(range(count))
    assert_ingested_once(run_dir, run_id, count)
    assert [attempts for _e, _s, _i, attempts, _b in work_rows(run_dir, run_id)] == [1] * count
    assert [task for task, _b, _ids in batches(run_dir, run_id)] == ["prepare", "work", "total"]
    wait_until_no_jobs(workdir, timeout_s=30)
    work_jobs = [job for job in sacct_jobs(workdir, since) if job.name == "slow.work"]
    assert sorted(job.job_id.partition("_")[2] for job in work_jobs) == sorted(
        str(element) for element in range(count)
    )
    assert {job.state for job in work_jobs} == {"COMPLETED"}


def test_slurmd_and_the_jobs_processes_killed_the_run_finishes_and_ingests_each_once(
    tmp_path: Path, workdirs: Workdirs
) -> None:
    count, seconds = 3, 4.0
    run_dir = tmp_path / "runs"
    begun = time.monotonic()
    run_id = workdirs.submit(slow_steps.wf, run_dir, "work", count=count, seconds=seconds)
    workdir = workdirs.made[0]

    wait_until(lambda: len(calls(run_dir)) == count, "every element of work started")
    workers, stepds = processes_of_run(run_id)
    assert len(workers) == count, workers
    assert len(stepds) >= count, stepds
    slurmd = daemon_pid(SLURMD_PID, "slurmd")
    kill_all([slurmd, *stepds, *workers], signal.SIGKILL)
    wait_gone([slurmd, *stepds, *workers], "slurmd and the job's processes")
    start_cluster()
    killed_at = time.monotonic()

    state = wait_for_run(run_dir, run_id, timeout_s=RUN_DEADLINE_S)
    if state == "failed":
        # A turn saw the elements end NODE_FAIL before Slurm requeued them: reflow failed them
        # with that reason, and retry runs them again.
        path = "node_fail, then retry"
        data = status(run_dir, run_id)
        (group,) = data["failures"]
        assert (group["task"], group["state"], group["reason"]) == ("work", "failed", "node_fail")
        assert 1 <= group["count"] <= count
        assert "NODE_FAIL" in group["examples"][0]["error"]
        assert "(node_fail)" in render_status(data)
        assert Run(run_dir, run_id).retry() == group["count"]
        state = wait_for_run(run_dir, run_id, timeout_s=RUN_DEADLINE_S)
    else:
        # Slurm requeued the elements and they ran again under the same batch: no turn saw
        # them fail, so reflow submitted each once and ingested the requeued run's result.
        path = "requeued by Slurm"
        assert [a for _e, _s, _i, a, _b in work_rows(run_dir, run_id)] == [1] * count
    assert state == "succeeded", status(run_dir, run_id)
    print(  # noqa: T201 - timings, shown with -s
        f"{path}: run {run_id} succeeded {time.monotonic() - killed_at:.1f} s after the kill,"
        f" {time.monotonic() - begun:.1f} s after submit"
    )

    wait_until_no_jobs(workdir, timeout_s=30)
    ran = calls(run_dir)
    # Every element was killed once and ran again at least once: by Slurm's requeue, by
    # retry, or both. Each is ingested once all the same.
    assert set(ran) == set(range(count))
    assert all(times >= 2 for times in ran.values()), ran
    assert_ingested_once(run_dir, run_id, count)
    assert squeue_jobs(workdir) == []
