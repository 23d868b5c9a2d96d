"""Several compute nodes: where elements and dispatcher turns run, and nodes that crash.

The test cluster's default layout has several nodes (``scripts/slurm-cluster nodes``), each
a ``slurmd`` in its own network and UTS namespace with its own host name, on the one shared
file system. A run's elements spread over them, and so do its dispatcher turns after the first
(each a Slurm job). ``scripts/slurm-cluster kill-node`` crashes a node: its ``slurmd``, the
jobs' ``slurmstepd`` and the jobs die at once, and slurmctld ends the node's jobs NODE_FAIL
once it misses the node (``SlurmdTimeout``, about 30 s here), then requeues them (they start
again about 11 s later, ``cred_expire + 1``, on a node that is up).

A crashed node's elements: usually the run's next turn waits for the whole array, which the
requeued element holds back, and ingests the requeued run's result; a turn that looks while
sacct shows NODE_FAIL fails the element with reason ``node_fail``, and ``retry`` completes the
run (or reflow retries it by itself). The test accepts either, and each element is ingested
once. A dispatcher turn lost with its node is kept from being requeued, as on clusters that do
not requeue: ``status`` then reports the chain dead and ``retry`` resumes the run. The crashed
node stays down until the test ends, so whatever ran again ran elsewhere; the fixture brings
every node back afterwards.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from reflow.run import Run
from reflow.running.commands.status import render_status
from reflow.running.rundir.layout import RunLayout
from tests.flows import slow_steps
from tests.slurm.scheduler import (
    CLUSTER_SCRIPT,
    REAL,
    dispatcher_record,
    query,
    slurm,
    status,
    turn_places,
    wait_for_run,
    wait_until_no_jobs,
)
from tests.slurm.test_slurm_faults import assert_ingested_once, calls
from tests.slurm.test_slurm_runs import Workdirs, clean_env, wait_until

pytestmark = [pytest.mark.slurm, pytest.mark.usefixtures("slurm_cluster")]

REQUIRE_ENV = "REFLOW_REQUIRE_SLURM"
RUN_DEADLINE_S = 120.0

# An sbatch that, called from a dispatcher turn (a Slurm job) the first time, writes the
# turn's host name into a file and then hangs, so that the test can crash that node while the
# turn is in the middle of its work.
_HANGING_SBATCH = """#!/bin/bash
if [ -n "${{SLURM_JOB_ID:-}}" ] && mkdir {claim} 2>/dev/null; then
    hostname > {marker}.tmp && mv {marker}.tmp {marker}
    sleep 600
fi
exec {real} "$@"
"""


def cluster(*argv: str, timeout_s: float = 120.0) -> str:
    """Run ``scripts/slurm-cluster ARGV`` and return its output; fail the test if it fails."""
    result = subprocess.run(
        [str(CLUSTER_SCRIPT), *argv], capture_output=True, text=True, timeout=timeout_s, check=False
    )
    assert result.returncode == 0, f"slurm-cluster {argv} failed: {result.stdout}{result.stderr}"
    return result.stdout


@pytest.fixture
def nodes() -> list[str]:
    """The cluster's compute nodes; these tests need two or more."""
    names = cluster("nodes").split()
    if len(names) < 2:
        message = f"the Slurm cluster has one node ({names}); start the several-node layout"
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return names


@pytest.fixture
def workdirs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, nodes: list[str]
) -> Iterator[Workdirs]:
    clean_env(monkeypatch, tmp_path / "config")
    dirs = Workdirs(tmp_path, monkeypatch)
    yield dirs
    dirs.cancel_leftovers()


@pytest.fixture
def crashes(nodes: list[str]) -> Iterator[list[str]]:
    """The nodes, for a test that crashes some of them (which needs root); all up again after."""
    if os.geteuid() != 0:
        pytest.skip("crashing and starting nodes needs root")
    yield nodes
    for node in nodes:
        cluster("start-node", node)


def element_nodes(workdir: Path, since: float, name: str) -> dict[str, str]:
    """``job id -> node`` of the jobs named ``name`` started from ``workdir``, as sacct has them.

    With ``-D`` every requeued run of a job is a row of its own; the last one counts.
    """
    start = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(since - 2))
    text = slurm(
        "sacct",
        "-X",
        "-D",
        "-n",
        "-P",
        "-S",
        start,
        "--format=JobID,JobName%100,WorkDir%400,NodeList,State",
    )
    found = {}
    for fields in (line.split("|") for line in text.splitlines()):
        if len(fields) == 5 and fields[1] == name and fields[2] == str(workdir):
            found[fields[0]] = fields[3]
    return found


def node_fail_jobs(workdir: Path, since: float, name: str) -> list[str]:
    """The jobs named ``name`` from ``workdir`` that sacct records as ended NODE_FAIL."""
    start = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(since - 2))
    text = slurm(
        "sacct", "-X", "-D", "-n", "-P", "-S", start, "--format=JobID,JobName%100,WorkDir%400,State"
    )
    return sorted(
        fields[0]
        for fields in (line.split("|") for line in text.splitlines())
        if len(fields) == 4 and fields[1:] == [name, str(workdir), "NODE_FAIL"]
    )


def running_on(workdir: Path) -> dict[str, str]:
    """``job id -> node`` of the running jobs started from ``workdir`` (squeue)."""
    text = slurm("squeue", "-h", "-r", "-t", "RUNNING", "-o", "%i|%Z|%N")
    return {
        fields[0]: fields[2]
        for fields in (line.split("|") for line in text.splitlines())
        if len(fields) == 3 and fields[1] == str(workdir)
    }


def hosts(run_dir: Path, run_id: str, task: str) -> dict[int, str]:
    """``element -> host`` the store recorded for the task's instances."""
    rows = query(
        run_dir, "SELECT element, host FROM instances WHERE run_id = ? AND task = ?", run_id, task
    )
    return {int(element): str(host) for element, host in rows}


def finish(run_dir: Path, run_id: str) -> str:
    """Wait for the run's end; a run failed with ``node_fail`` is retried once. Returns how."""
    state = wait_for_run(run_dir, run_id, timeout_s=RUN_DEADLINE_S)
    if state == "succeeded":
        return "ran through"
    data = status(run_dir, run_id)
    assert state == "failed", data
    (group,) = data["failures"]
    assert (group["state"], group["reason"]) == ("failed", "node_fail"), data
    assert "NODE_FAIL" in group["examples"][0]["error"]
    assert f"{group['count']} failed (node_fail)" in render_status(data)
    assert Run(run_dir, run_id).retry() == group["count"]
    state = wait_for_run(run_dir, run_id, timeout_s=RUN_DEADLINE_S)
    assert state == "succeeded", status(run_dir, run_id)
    return "failed with node_fail, then retried"


def test_array_elements_and_dispatcher_turns_run_on_several_nodes(
    tmp_path: Path, workdirs: Workdirs, nodes: list[str]
) -> None:
    count = 8
    run_dir = tmp_path / "runs"
    since = time.time()
    run_id = workdirs.submit(slow_steps.wf, run_dir, "work", count=count, seconds=2.0)
    workdir = workdirs.made[0]
    assert wait_for_run(run_dir, run_id, timeout_s=RUN_DEADLINE_S) == "succeeded", status(
        run_dir, run_id
    )
    assert_ingested_once(run_dir, run_id, count)

    # Each element ran on a compute node, the one Slurm gave it, and they spread.
    where = hosts(run_dir, run_id, "work")
    assert sorted(where) == list(range(count))
    assert set(where.values()) <= set(nodes), where
    assert len(set(where.values())) >= 2, where
    wait_until_no_jobs(workdir)

    def placed() -> dict[int, str]:
        jobs = element_nodes(workdir, since, "work.slow")
        return {int(job.partition("_")[2]): node for job, node in jobs.items()}

    wait_until(lambda: placed() == where, f"sacct places the elements as {where}", timeout_s=30)

    # The first turn ran here, every later one on a compute node, in the job of the array
    # task that ended its batch last (no dispatcher job needed to start): each turn's log
    # names its node, and the last turn's host is a node.
    record = dispatcher_record(run_dir, run_id)
    assert record["turns"] >= 3, record
    assert record["host"] in nodes, record
    places = turn_places(run_dir, run_id)
    assert len(places["array task"]) + len(places["job"]) == record["turns"] - 1, places
    layout = RunLayout(run_dir, run_id)
    for job in places["array task"] + places["job"]:
        line = layout.slurm_turn_log(job).read_text().splitlines()[-1]
        assert line.split(" on ", 1)[1].split(":", 1)[0] in nodes, line


def test_a_node_crashing_under_running_elements_loses_no_element(
    tmp_path: Path, workdirs: Workdirs, crashes: list[str]
) -> None:
    count, seconds = 6, 8.0
    run_dir = tmp_path / "runs"
    since = time.time()
    begun = time.monotonic()
    run_id = workdirs.submit(slow_steps.wf, run_dir, "work", count=count, seconds=seconds)
    workdir = workdirs.made[0]

    wait_until(lambda: len(calls(run_dir)) == count, "every element of work started")
    placed = running_on(workdir)
    victim = sorted(placed.values())[0]
    lost = sorted(int(job.partition("_")[2]) for job, node in placed.items() if node == victim)
    assert lost, placed
    cluster("kill-node", victim)
    killed = time.monotonic()

    how = finish(run_dir, run_id)
    print(  # timings, shown with -s
        f"{how}: succeeded {time.monotonic() - killed:.1f} s after {victim} crashed,"
        f" {time.monotonic() - begun:.1f} s after submit"
    )
    assert_ingested_once(run_dir, run_id, count)
    ran = calls(run_dir)
    assert set(ran) == set(range(count))
    # What ran on the crashed node ran again, on another node (it stays down); the rest once.
    assert all(ran[element] >= 2 for element in lost), (ran, lost)
    assert all(ran[element] == 1 for element in set(range(count)) - set(lost)), (ran, lost)
    where = hosts(run_dir, run_id, "work")
    assert all(where[element] not in ("", victim) for element in lost), where
    assert set(where.values()) <= set(crashes)
    wait_until_no_jobs(workdir)
    assert len(node_fail_jobs(workdir, since, "work.slow")) == len(lost)


def test_a_turn_lost_with_its_node_is_taken_over_by_the_queued_turn_job(
    tmp_path: Path, workdirs: Workdirs, crashes: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    count = 4
    run_dir = tmp_path / "runs"
    marker = tmp_path / "hung-turn-host"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    sbatch = bin_dir / "sbatch"
    sbatch.write_text(
        _HANGING_SBATCH.format(claim=tmp_path / "hung-turn", marker=marker, real=REAL["sbatch"])
    )
    sbatch.chmod(0o755)
    # The jobs inherit this PATH (sbatch exports the environment).
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    run_id = workdirs.submit(slow_steps.wf, run_dir, "work", count=count, seconds=1.0)
    workdir = workdirs.made[0]

    # The first turn on a compute node runs in the job of prepare's array task, which ended
    # its batch last, and hangs there; the turn job queued behind prepare waits.
    wait_until(marker.exists, "a dispatcher turn hangs in sbatch", timeout_s=RUN_DEADLINE_S)
    victim = marker.read_text().strip()
    assert victim in crashes
    (queued,) = dispatcher_record(run_dir, run_id)["pending_jobs"]
    cluster("kill-node", victim)

    # Once Slurm ends (or requeues) the lost array task, the queued turn job starts, finds
    # prepare's result and goes on: the run completes without a retry, each element once.
    assert wait_for_run(run_dir, run_id, timeout_s=RUN_DEADLINE_S) == "succeeded", status(
        run_dir, run_id
    )
    assert_ingested_once(run_dir, run_id, count)
    assert calls(run_dir) == dict.fromkeys(range(count), 1)
    assert queued in turn_places(run_dir, run_id)["job"]
    assert dispatcher_record(run_dir, run_id)["host"] != victim
    wait_until_no_jobs(workdir)


def test_start_converts_a_running_one_node_cluster_and_stop_removes_the_nodes(
    tmp_path: Path,
) -> None:
    # A cluster of its own beside the shared one (other name, ports and subnet), so that
    # converting and stopping it disturbs no other test.
    if os.geteuid() != 0:
        pytest.skip("starting and stopping a Slurm cluster needs root")
    name = "rfconv"
    env = {
        **os.environ,
        "SLURM_CONF": f"/etc/slurm-{name}/slurm.conf",
        "REFLOW_TEST_PORT": "6837",
        "REFLOW_TEST_SUBNET": "10.77.2",
    }

    def run(*argv: str, nodes: int | None = None) -> str:
        extra = {} if nodes is None else {"REFLOW_TEST_NODES": str(nodes)}
        result = subprocess.run(
            list(argv),
            capture_output=True,
            text=True,
            timeout=120,
            env={**env, **extra},
            check=False,
        )
        assert result.returncode == 0, f"{argv} failed: {result.stdout}{result.stderr}"
        return result.stdout

    def hostname_of_a_job(node: str) -> str:
        out = tmp_path / f"{node}.out"
        run(
            REAL["sbatch"],
            "-w",
            node,
            f"--output={out}",
            f"--chdir={tmp_path}",
            "--wait",
            "--wrap",
            "hostname",
        )
        return out.read_text().strip()

    script = str(CLUSTER_SCRIPT)
    try:
        run(script, "start", nodes=1)
        assert run(script, "nodes").split() == ["localhost"]
        assert Path(f"/run/slurm-{name}/slurmd.pid").exists()

        started = time.monotonic()
        assert "restarted for the new configuration" in run(script, "start", nodes=2)
        converted_s = time.monotonic() - started
        assert run(script, "status").strip() == "ready"
        assert run(script, "nodes").split() == ["node1", "node2"]
        assert run(REAL["sinfo"], "-h", "-N", "-o", "%N %T").split() == [
            "node1",
            "idle",
            "node2",
            "idle",
        ]
        # The one-node layout's slurmd is gone; each node's slurmd runs under its host name.
        assert not Path(f"/run/slurm-{name}/slurmd.pid").exists()
        assert [hostname_of_a_job(node) for node in ("node1", "node2")] == ["node1", "node2"]
        started = time.monotonic()
        assert "already running" in run(script, "start", nodes=2)
        warm_s = time.monotonic() - started
        print(f"converted in {converted_s:.1f} s; start on the running cluster {warm_s:.1f} s")

        run(script, "stop")
        namespaces = subprocess.run(
            ["ip", "netns", "list"], capture_output=True, text=True, timeout=30, check=True
        ).stdout
        assert f"rf-{name}-" not in namespaces
        assert not Path(f"/sys/class/net/rf-{name}").exists()
        # The daemons the clusters share stay up for the one in /etc/slurm.
        assert (
            subprocess.run(["pgrep", "-x", "munged"], capture_output=True, check=False).returncode
            == 0
        )
    finally:
        subprocess.run([script, "stop"], capture_output=True, timeout=120, env=env, check=False)
