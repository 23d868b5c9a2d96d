"""Slurm daemons failing under a run on the real cluster: the run still ends correctly.

Two faults: slurmctld restarted while array elements run, and
slurmd killed together with the processes of the running job, on each node the job's elements
run on (a node crash, as far as Slurm can tell). Both tests restart daemons, so they need root;
whatever happens, they leave every daemon running and every node usable (``finally``), because
later tests share the cluster. Daemons are found through ``scontrol show config`` (their pid
files), so the tests hold on the one-node layout and on the several-node one alike.

The flow is ``tests/flows/slow_steps.py``: ``work`` appends its item to ``work.calls`` in the
run directory before it sleeps, so the file counts executions, while the store counts
ingestions (one ``done`` row per element, one ``outputs`` row per identity).

Slurm notices a lost batch job only when slurmd registers, and then only if the job started
more than ``BatchStartTimeout`` + ``MessageTimeout`` (20 s here) earlier: the node test keeps
slurmd away that long. Slurm then ends the elements NODE_FAIL and requeues them (they run
again about 11 s later, ``cred_expire + 1``). A turn that runs while sacct still shows
NODE_FAIL waits, since the job ended less than ``[executor] result_grace`` ago; the requeued
elements run again under the same batch, and a later turn ingests their results once.
"""

from __future__ import annotations

import contextlib
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

from reflow.running.rundir.layout import RunLayout
from reflow.running.rundir.results import ResultRecord, read_result
from reflow.running.store.sqlite import SqliteStore
from tests.flows import slow_steps
from tests.slurm.scheduler import (
    CLUSTER_SCRIPT,
    batches,
    query,
    run_state,
    sacct_jobs,
    slurm,
    status,
    wait_for_run,
    wait_until_no_jobs,
)
from tests.slurm.test_slurm_runs import Workdirs, clean_env, wait_until

pytestmark = [pytest.mark.slurm, pytest.mark.usefixtures("slurm_cluster")]

SINFO = shutil.which("sinfo") or "sinfo"
HEALTHY = {"idle", "mixed", "allocated"}
RUN_DEADLINE_S = 120.0  # a killed node may hold requeued elements back a while


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


def config_value(key: str) -> str:
    """A value of ``scontrol show config`` (``SlurmdPidFile``, ``BatchStartTimeout``, ...)."""
    for line in slurm("scontrol", "show", "config").splitlines():
        name, _, value = line.partition("=")
        if name.strip() == key:
            return value.strip()
    raise AssertionError(f"scontrol show config has no {key}")


def slurmd_pid_file(node: str) -> Path:
    """Where the slurmd of ``node`` keeps its pid (``%n`` in the path is the node's name)."""
    return Path(config_value("SlurmdPidFile").replace("%n", node))


def node_states() -> dict[str, str]:
    """``node -> state`` of every node, without sinfo's state suffixes."""
    result = subprocess.run(
        [SINFO, "-h", "-N", "-o", "%N %T"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    states = {}
    for line in result.stdout.splitlines():
        node, _, state = line.partition(" ")
        states[node] = state.strip().rstrip("*~#!%$@^-")
    return states


def restore_cluster() -> None:
    """Every daemon running and every node usable again, resumed if it is down or drained."""
    start_cluster()
    deadline = time.monotonic() + 60
    while bad := {n: s for n, s in node_states().items() if s not in HEALTHY}:
        for node, state in bad.items():
            if any(word in state for word in ("down", "drain", "fail")):
                slurm("scontrol", "update", f"nodename={node}", "state=resume")
        if time.monotonic() > deadline:
            pytest.fail(f"nodes {bad} are not idle 60 s after the test")
        time.sleep(0.5)


def nodes_running(workdir: Path) -> set[str]:
    """The nodes on which jobs started from ``workdir`` run."""
    text = slurm("squeue", "-h", "-r", "-t", "RUNNING", "-o", "%Z|%N")
    return {
        fields[1]
        for fields in (line.split("|") for line in text.splitlines())
        if len(fields) == 2 and fields[0] == str(workdir)
    }


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
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


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
        f"SELECT identity, value, hash FROM outputs WHERE identity IN ({marks})",
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
    pid_file = Path(config_value("SlurmctldPidFile"))
    old = daemon_pid(pid_file, "slurmctld")
    stop = time.monotonic()
    os.kill(old, signal.SIGTERM)
    wait_gone([old], "slurmctld")
    down = time.monotonic()
    restart_s = start_cluster()
    new = daemon_pid(pid_file, "slurmctld")
    assert new != old
    print(  # timings, shown with -s
        f"slurmctld: {down - stop:.1f} s to stop, {restart_s:.1f} s to start again;"
        f" {started_before} of {count} elements had started"
    )
    # The elements beyond the node's slots could only start after the restart.
    assert started_before < count
    assert run_state(run_dir, run_id) == "running"

    assert wait_for_run(run_dir, run_id, timeout_s=RUN_DEADLINE_S) == "succeeded", status(
        run_dir, run_id
    )
    print(f"run {run_id} succeeded {time.monotonic() - begun:.1f} s after submit")
    assert calls(run_dir) == Counter(range(count))
    assert_ingested_once(run_dir, run_id, count)
    assert [attempts for _e, _s, _i, attempts, _b in work_rows(run_dir, run_id)] == [1] * count
    assert [task for task, _b, _ids in batches(run_dir, run_id)] == ["prepare", "work", "total"]
    wait_until_no_jobs(workdir, timeout_s=30)
    work_jobs = [job for job in sacct_jobs(workdir, since) if job.name == "work.slow"]
    assert sorted(job.job_id.partition("_")[2] for job in work_jobs) == sorted(
        str(element) for element in range(count)
    )
    assert {job.state for job in work_jobs} == {"COMPLETED"}


def lost_job_grace_s() -> float:
    """How long after a batch job's start slurmctld waits before it calls the job lost.

    When slurmd registers, slurmctld ends a batch job it does not report (NODE_FAIL, and
    requeues it) only once the job started more than ``BatchStartTimeout`` plus
    ``MessageTimeout`` (at most 10 s of it) ago; a slurmd back sooner leaves the lost job
    RUNNING until its time limit, since slurmd registers again only when it restarts.
    """
    batch_start_s = int(config_value("BatchStartTimeout").split()[0])
    return batch_start_s + min(10, int(config_value("MessageTimeout").split()[0]))


def node_fail_records(workdir: Path, since: float) -> list[str]:
    """The array elements of ``work`` that sacct records as ended NODE_FAIL (requeued ones too)."""
    start = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(since - 2))
    text = slurm(
        "sacct", "-X", "-D", "-n", "-P", "-S", start, "--format=JobID,JobName,WorkDir%400,State"
    )
    return sorted(
        fields[0]
        for fields in (line.split("|") for line in text.splitlines())
        if len(fields) == 4 and fields[1:] == ["work.slow", str(workdir), "NODE_FAIL"]
    )


def test_slurmd_and_the_jobs_processes_killed_the_run_finishes_and_ingests_each_once(
    tmp_path: Path, workdirs: Workdirs
) -> None:
    count, seconds = 3, 3.0
    run_dir = tmp_path / "runs"
    since = time.time()
    begun = time.monotonic()
    grace_s = lost_job_grace_s() + 2
    workdirs.monkeypatch.delenv("REFLOW_RESULT_GRACE")  # the default: Slurm requeues within it
    run_id = workdirs.submit(slow_steps.wf, run_dir, "work", count=count, seconds=seconds)
    workdir = workdirs.made[0]

    wait_until(lambda: len(calls(run_dir)) == count, "every element of work started")
    started = time.monotonic()  # the jobs started before this
    workers, stepds = processes_of_run(run_id)
    assert len(workers) == count, workers
    assert len(stepds) >= count, stepds
    # The slurmd of each node the elements run on (one node, or several).
    slurmds = [daemon_pid(slurmd_pid_file(node), "slurmd") for node in nodes_running(workdir)]
    assert slurmds
    kill_all([*slurmds, *stepds, *workers], signal.SIGKILL)
    wait_gone([*slurmds, *stepds, *workers], "slurmd and the job's processes")
    # The node stays away long enough for slurmctld to tell the jobs are lost when it is back.
    time.sleep(max(0.0, started + grace_s - time.monotonic()))
    start_cluster()
    back = time.monotonic()

    state = wait_for_run(run_dir, run_id, timeout_s=RUN_DEADLINE_S)
    assert state == "succeeded", status(run_dir, run_id)
    # Requeued by Slurm, ingested once: no element failed, none was resubmitted by reflow.
    assert [a for _e, _s, _i, a, _b in work_rows(run_dir, run_id)] == [1] * count
    assert [task for task, _b, _ids in batches(run_dir, run_id)].count("work") == 1
    print(  # timings, shown with -s
        f"succeeded {time.monotonic() - back:.1f} s after slurmd came back"
        f" ({back - started:.1f} s after the elements started),"
        f" {time.monotonic() - begun:.1f} s after submit"
    )

    wait_until_no_jobs(workdir, timeout_s=30)
    # Slurm ended every killed element NODE_FAIL (and requeued it).
    assert len(node_fail_records(workdir, since)) == count
    ran = calls(run_dir)
    # Every element was killed once and ran again by Slurm's requeue; each is ingested once.
    assert set(ran) == set(range(count))
    assert all(times >= 2 for times in ran.values()), ran
    assert_ingested_once(run_dir, run_id, count)
