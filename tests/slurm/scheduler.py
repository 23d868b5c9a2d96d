"""What the Slurm tests read back: jobs in sacct/squeue by working directory, run states, logs.

Every run a test submits gets its own working directory, so its jobs (task arrays and
dispatcher turns alike, all started with ``--chdir`` there) are told apart from everyone
else's on the shared cluster by sacct's and squeue's ``WorkDir``. The real Slurm commands
are called by absolute path, so a wrapper directory a test puts on ``PATH`` never sees them.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import sqlite3
import subprocess
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from reflow.running.rundir.layout import STORE_NAME, RunLayout
from reflow.running.store.sqlite import SqliteStore

TOOLS = ("sbatch", "sacct", "squeue", "scontrol", "scancel", "sacctmgr")
REAL = {tool: shutil.which(tool) or tool for tool in (*TOOLS, "sinfo")}
CLUSTER_SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "slurm-cluster"
POLL_S = 0.2
_UNFINISHED = {"PENDING", "RUNNING", "COMPLETING", "CONFIGURING", "REQUEUED", "SUSPENDED"}


@dataclass(frozen=True, slots=True)
class Job:
    """One sacct row (``-X``): an array element or a plain job."""

    job_id: str
    name: str
    state: str
    submit: str
    end: str

    @property
    def parent(self) -> str:
        """The job id sbatch returned (the array job id for an element)."""
        return self.job_id.partition("_")[0]


def slurm(*argv: str, timeout_s: float = 60.0) -> str:
    """Run a real Slurm command and return its stdout; fail the test if it fails."""
    result = subprocess.run(
        [REAL[argv[0]], *argv[1:]], capture_output=True, text=True, timeout=timeout_s, check=False
    )
    assert result.returncode == 0, f"{argv} failed: {result.stderr}"
    return result.stdout


def sacct_jobs(workdir: Path, since: float) -> list[Job]:
    """Every job started from ``workdir`` since ``since`` (epoch seconds), elements expanded."""
    start = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(since - 2))
    text = slurm(
        "sacct",
        "-X",
        "-n",
        "-P",
        "-S",
        start,
        "--format=JobID,JobName%100,WorkDir%400,State,Submit,End",
    )
    jobs = []
    for line in text.splitlines():
        fields = line.split("|")
        if len(fields) == 6 and fields[2] == str(workdir):
            jobs.append(Job(fields[0], fields[1], fields[3], fields[4], fields[5]))
    return jobs


def accounted_jobs(
    run_dir: Path, run_id: str, workdir: Path, since: float, *, timeout_s: float = 30.0
) -> list[Job]:
    """The run's jobs in sacct, once sacct lists every job the run recorded, all ended.

    slurmctld reports to the accounting database asynchronously, so the last jobs of a run
    may show up a moment after the run has ended. The run records its task jobs in the
    ``attempts`` table, and each later turn writes a log named by the job it ran in: a
    dispatcher job, or the array task that ended its batch last (``<job>_<index>``).
    """
    wanted = {job for _task, _batch, ids in batches(run_dir, run_id) for job in ids}
    turn_jobs_started = len(turn_places(run_dir, run_id)["job"])
    deadline = time.monotonic() + timeout_s
    while True:
        jobs = sacct_jobs(workdir, since)
        tasks = {job.parent for job in jobs if not job.name.startswith("dispatch.")}
        turn_jobs = {job.parent for job in jobs if job.name.startswith("dispatch.")}
        ended = all(job.state not in _UNFINISHED for job in jobs)
        if wanted <= tasks and len(turn_jobs) >= turn_jobs_started and ended:
            return jobs
        if time.monotonic() > deadline:
            pytest.fail(f"sacct does not list the jobs of {run_id} after {timeout_s:g} s: {jobs}")
        time.sleep(POLL_S)


def turn_places(run_dir: Path, run_id: str) -> dict[str, list[str]]:
    """The jobs the run's later turns ran in, from their logs: ``array task`` and ``job``."""
    names = sorted(RunLayout(run_dir, run_id).jobs_that_ran_turns())
    return {
        "array task": [name for name in names if "_" in name],
        "job": [name for name in names if "_" not in name],
    }


def dispatcher_record(run_dir: Path, run_id: str) -> dict[str, Any]:
    """The run's ``dispatcher`` column: kind, pending jobs, turns, submit budget, ..."""
    ((text,),) = query(run_dir, "SELECT dispatcher FROM runs WHERE run_id = ?", run_id)
    record: dict[str, Any] = json.loads(text)
    return record


def arrays_by_name(jobs: Iterable[Job]) -> Counter[str]:
    """How many sbatch submissions (distinct job ids) each job name had."""
    return Counter(name for name, _parent in {(job.name, job.parent) for job in jobs})


def squeue_jobs(workdir: Path) -> list[str]:
    """The job ids squeue lists (pending, running, completing) with ``workdir``."""
    text = slurm("squeue", "-h", "-r", "-o", "%i|%Z|%T")
    return [
        fields[0]
        for fields in (line.split("|") for line in text.splitlines())
        if len(fields) == 3 and fields[1] == str(workdir)
    ]


def wait_until_no_jobs(workdir: Path, timeout_s: float = 60.0) -> None:
    """Wait until squeue lists no job started from ``workdir``."""
    deadline = time.monotonic() + timeout_s
    while left := squeue_jobs(workdir):
        if time.monotonic() > deadline:
            pytest.fail(f"jobs of {workdir} still queued after {timeout_s:g} s: {left}")
        time.sleep(POLL_S)


def run_state(run_dir: Path, run_id: str) -> str:
    """The run's state, read from its store (no scheduler call)."""
    store = SqliteStore.open(run_dir)
    try:
        return store.run(run_id).state
    finally:
        store.close()


def wait_for_run(
    run_dir: Path,
    run_id: str,
    states: Sequence[str] = ("succeeded", "failed", "cancelled"),
    *,
    timeout_s: float = 120.0,
) -> str:
    """Wait until the run reaches one of ``states``; fail with its status after the deadline."""
    deadline = time.monotonic() + timeout_s
    while (state := run_state(run_dir, run_id)) not in states:
        if time.monotonic() > deadline:
            pytest.fail(
                f"run {run_id} still {state} after {timeout_s:g} s: {status(run_dir, run_id)}"
            )
        time.sleep(POLL_S)
    return state


def status(run_dir: Path, run_id: str) -> dict[str, Any]:
    """The run's status as data (what ``status --json`` prints)."""
    from reflow.running.commands.status import load_status

    return load_status(run_dir, run_id)


def query(run_dir: Path, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    """Rows of one read-only query on the run directory's store."""
    connection = sqlite3.connect(run_dir / STORE_NAME)
    try:
        return list(connection.execute(sql, args))
    finally:
        connection.close()


def batches(run_dir: Path, run_id: str) -> list[tuple[str, str, list[str]]]:
    """``(task, batch, scheduler ids)`` of every batch the run submitted, oldest first.

    Read from the ``attempts`` table (a row per element and submission, with its job id
    ``<array job>_<array task>``): the scheduler ids of a batch are its array jobs.
    """
    rows = query(
        run_dir,
        "SELECT task, batch, job_id FROM attempts WHERE run_id = ?"
        " ORDER BY submitted, batch, element",
        run_id,
    )
    found: dict[tuple[str, str], list[str]] = {}
    for task, batch, job_id in rows:
        ids = found.setdefault((task, batch), [])
        parent = str(job_id).split("_", 1)[0]
        if parent not in ids:
            ids.append(parent)
    return [(task, batch, ids) for (task, batch), ids in found.items()]


def array_specs(run_dir: Path, run_id: str, task: str) -> list[str]:
    """The ``--array`` values of the task's kept batch scripts."""
    scripts = sorted((run_dir / "runs" / run_id / "scripts").glob(f"{task}-*.sh"))
    return [
        line.removeprefix("#SBATCH --array=")
        for script in scripts
        for line in script.read_text().splitlines()
        if line.startswith("#SBATCH --array=")
    ]


def set_max_array_size(size: int | None) -> None:
    """Restart the cluster with ``MaxArraySize=size`` (None: the default) and wait for it."""
    env = {key: value for key, value in os.environ.items() if key != "REFLOW_TEST_MAX_ARRAY_SIZE"}
    if size is not None:
        env["REFLOW_TEST_MAX_ARRAY_SIZE"] = str(size)
    result = subprocess.run(
        [str(CLUSTER_SCRIPT), "start"],
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
        check=False,
    )
    assert result.returncode == 0, f"slurm-cluster start failed: {result.stdout}{result.stderr}"


_LOGGING_WRAPPER = """#!/bin/bash
printf '%s\\t%s\\t%s\\n' "${{SLURM_JOB_ID:-login}}" {tool} "$*" >> {log}
exec {real} "$@"
"""

_FLAKY_SBATCH = """#!/bin/bash
count=$(( $(cat {counter} 2>/dev/null || echo 0) + 1 ))
echo "$count" > {counter}
if [ "$count" -le {failures} ]; then
    echo "sbatch: error: Batch job submission failed: Socket timed out on send/recv operation" >&2
    exit 1
fi
exec {real} "$@"
"""


def logging_wrappers(bin_dir: Path, log: Path) -> Path:
    """Write wrappers of the Slurm commands that log ``turn<TAB>tool<TAB>args`` to ``log``.

    The turn is ``$SLURM_JOB_ID`` (a dispatcher job) or ``login`` (the first turn).
    """
    bin_dir.mkdir(parents=True, exist_ok=True)
    for tool in TOOLS:
        path = bin_dir / tool
        path.write_text(
            _LOGGING_WRAPPER.format(tool=tool, log=shlex.quote(str(log)), real=REAL[tool])
        )
        path.chmod(0o755)
    return bin_dir


def flaky_sbatch(bin_dir: Path, counter: Path, failures: int) -> Path:
    """Write an ``sbatch`` that fails its first ``failures`` calls as a timed-out socket."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    path = bin_dir / "sbatch"
    path.write_text(
        _FLAKY_SBATCH.format(
            counter=shlex.quote(str(counter)), failures=failures, real=REAL["sbatch"]
        )
    )
    path.chmod(0o755)
    return bin_dir


def logged_calls(log: Path) -> dict[str, list[tuple[str, str]]]:
    """``turn -> [(tool, args)]`` from a log written by ``logging_wrappers``."""
    calls: dict[str, list[tuple[str, str]]] = {}
    for line in log.read_text().splitlines():
        turn, tool, args = line.split("\t", 2)
        calls.setdefault(turn, []).append((tool, args))
    return calls
