"""SlurmExecutor against the real test cluster: arrays, failures, cancel, chunking, quoting.

Each test submits tiny ``/bin/sh`` or Python commands and polls ``states`` with a deadline.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from reflow.definition.resources import Resources
from reflow.running.executors.base import BatchRequest, FailureReason, JobState, JobStatus
from reflow.running.executors.slurm import SlurmExecutor
from reflow.running.executors.slurm_query import parse_max_array_size
from reflow.running.executors.slurm_script import output_path
from reflow.running.process import run_command

pytestmark = [pytest.mark.slurm, pytest.mark.usefixtures("slurm_cluster")]

ENDED = (JobState.DONE, JobState.FAILED)


def make_request(
    run_dir: Path,
    command: Sequence[str],
    elements: Sequence[int],
    *,
    task: str = "step",
    resources: Resources | None = None,
) -> BatchRequest:
    run_dir.mkdir(parents=True, exist_ok=True)
    return BatchRequest(
        run_id="r1",
        workflow="slurmtest",
        task=task,
        batch_id="b1",
        elements=tuple(elements),
        resources=resources or Resources(cpus=1, mem_mb=100, time_s=300),
        command=tuple(command),
        workdir=run_dir,
        log_dir=run_dir / "logs",
        script_path=run_dir / "scripts" / f"{task}.sbatch",
    )


def wait_for(
    executor: SlurmExecutor,
    job_ids: Sequence[str],
    done: Callable[[JobStatus], bool],
    *,
    timeout_s: float = 60.0,
) -> dict[str, JobStatus]:
    deadline = time.monotonic() + timeout_s
    while True:
        states = executor.states(job_ids)
        if all(done(status) for status in states.values()):
            return states
        if time.monotonic() > deadline:
            pytest.fail(f"jobs did not reach the expected state in {timeout_s} s: {states}")
        time.sleep(0.2)


def ended(status: JobStatus) -> bool:
    return status.state in ENDED


def sacct_states(job_ids: Sequence[str]) -> dict[str, str]:
    parents = ",".join(dict.fromkeys(job_id.partition("_")[0] for job_id in job_ids))
    result = run_command(
        ["sacct", "-X", "-n", "-P", "--format=JobID,State,ExitCode", "-j", parents], timeout_s=30
    )
    assert result.ok, result.stderr
    rows = dict(line.split("|", 1) for line in result.stdout.splitlines() if line)
    return {job_id: rows.get(job_id, "") for job_id in job_ids}


# Writes "<element from SLURM_ARRAY_TASK_ID>" into done.<element>; element 3 exits 3.
ELEMENT_COMMAND = (
    "/bin/sh",
    "-c",
    (
        'echo "$SLURM_ARRAY_TASK_ID" > "done.$SLURM_ARRAY_TASK_ID"; '
        'echo "out $SLURM_ARRAY_TASK_ID"; echo "err $SLURM_ARRAY_TASK_ID" >&2; '
        '[ "$SLURM_ARRAY_TASK_ID" != 3 ] || exit 3'
    ),
)


def test_array_elements_complete_and_a_failing_element_reports_exit_code(tmp_path):
    executor = SlurmExecutor()
    elements = (0, 2, 3, 5, 6)
    submission = executor.submit(make_request(tmp_path, ELEMENT_COMMAND, elements))
    assert len(submission.scheduler_ids) == 1
    parent = submission.scheduler_ids[0]
    assert submission.job_ids == tuple(f"{parent}_{element}" for element in elements)

    states = wait_for(executor, submission.job_ids, ended)

    failed = f"{parent}_3"
    assert states[failed].state is JobState.FAILED
    assert states[failed].reason is FailureReason.EXIT_CODE
    assert states[failed].exit_code == 3
    for element in (0, 2, 5, 6):
        status = states[f"{parent}_{element}"]
        assert (status.state, status.reason, status.exit_code) == (JobState.DONE, None, 0)
        assert (tmp_path / f"done.{element}").read_text() == f"{element}\n"
    expected = {f"{parent}_{e}": "COMPLETED|0:0" for e in (0, 2, 5, 6)}
    expected[failed] = "FAILED|3:0"
    assert wait_for_sacct(submission.job_ids, expected) == expected
    # One scheduler output file per array task, stderr joined into it.
    assert output_path(tmp_path / "logs", "step", f"{parent}_0").read_text() == "out 0\nerr 0\n"
    assert sorted(path.name for path in (tmp_path / "logs").iterdir()) == sorted(
        f"step.{parent}_{element}.out" for element in elements
    )
    assert executor.calls["sbatch"] == 1


def wait_for_sacct(
    job_ids: Sequence[str], expected: dict[str, str], timeout_s: float = 30.0
) -> dict[str, str]:
    """What sacct says of ``job_ids``, once it says ``expected`` or the time is up.

    slurmdbd records a job's end a moment after slurmctld knows it, and under load a failed
    job's exit code can show as ``0:0`` for a while before its own code arrives.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        rows = sacct_states(job_ids)
        if rows == expected or time.monotonic() > deadline:
            return rows
        time.sleep(0.2)


def test_states_uses_at_most_one_sacct_and_one_squeue_call(tmp_path):
    executor = SlurmExecutor(max_array_size=4)
    submission = executor.submit(make_request(tmp_path, ("/bin/true",), range(10)))
    before = dict(executor.calls)
    executor.states(submission.job_ids)
    assert executor.calls.get("sacct", 0) - before.get("sacct", 0) == 1
    assert executor.calls.get("squeue", 0) - before.get("squeue", 0) <= 1
    wait_for(executor, submission.job_ids, ended)


def test_scancel_ends_running_elements_as_cancelled(tmp_path):
    executor = SlurmExecutor()
    # The executor appends the worker's own arguments: sh takes them as positional ones.
    sleeper = ("/bin/sh", "-c", "sleep 120", "sh")
    submission = executor.submit(make_request(tmp_path, sleeper, (0, 1)))
    wait_for(executor, submission.job_ids, lambda status: status.state is JobState.RUNNING)

    executor.cancel(submission.job_ids)

    states = wait_for(executor, submission.job_ids, ended)
    assert all(status.reason is FailureReason.CANCELLED for status in states.values())
    assert executor.calls["scancel"] == 1
    executor.cancel(submission.job_ids)  # already ended: ignored


def test_elements_beyond_max_array_size_are_mapped_onto_chunks(tmp_path):
    # The worker gets "--array-offset N"; element = elements[N + SLURM_ARRAY_TASK_ID].
    command = (
        sys.executable,
        "-c",
        (
            "import os, sys; elements = list(range(100, 110)); "
            "position = int(sys.argv[2]) + int(os.environ['SLURM_ARRAY_TASK_ID']); "
            "open(f'element.{elements[position]}', 'w').write(os.environ['SLURM_ARRAY_JOB_ID'])"
        ),
    )
    executor = SlurmExecutor(max_array_size=4)
    request = make_request(tmp_path, command, range(100, 110))
    submission = executor.submit(request)

    assert executor.calls["sbatch"] == 3
    assert len(submission.scheduler_ids) == 3
    states = wait_for(executor, submission.job_ids, ended)
    assert all(status.state is JobState.DONE for status in states.values())
    written = {p.name: p.read_text() for p in tmp_path.glob("element.*")}
    assert sorted(written) == [f"element.{element}" for element in range(100, 110)]
    for element, job_id in zip(range(100, 110), submission.job_ids, strict=True):
        assert written[f"element.{element}"] == job_id.partition("_")[0]
    assert sorted(p.name for p in (tmp_path / "scripts").iterdir()) == [
        "step.0.sbatch",
        "step.1.sbatch",
        "step.2.sbatch",
    ]


def test_max_array_size_is_read_from_the_cluster():
    config = run_command(["scontrol", "show", "config"], timeout_s=30)
    executor = SlurmExecutor()
    assert executor.max_array_size() == parse_max_array_size(config.stdout)
    assert executor.max_array_size() >= 1
    assert executor.calls == {"scontrol": 1}


def test_awkward_paths_and_arguments_reach_the_job_exactly(tmp_path):
    run_dir = tmp_path / "run dir 'single' \"double\" #hash $(id) `id` 100% ü"
    awkward = "a 'b' \"c\" $(id) `id` \\ \n new line \r\n crlf ; & | #"
    args = ("--name", "-x; rm -rf /", "$(id)", "", "ü\ttab", "line\nbreak", awkward)
    command = (
        sys.executable,
        "-c",
        "import json, os, sys; json.dump({'cwd': os.getcwd(), 'argv': sys.argv[1:]}, "
        "open('seen.json', 'w'))",
        *args,
    )
    executor = SlurmExecutor()
    submission = executor.submit(make_request(run_dir, command, (1,)))
    states = wait_for(executor, submission.job_ids, ended)
    assert states[submission.job_ids[0]].state is JobState.DONE, states
    seen = json.loads((run_dir / "seen.json").read_text())
    # ... then the worker's own argument: the last of the batch's 1 array task runs a turn
    assert seen == {"cwd": str(run_dir), "argv": [*args, "--turn-after", "1"]}
    assert output_path(run_dir / "logs", "step", submission.job_ids[0]).exists()


def test_throttle_limits_running_elements(tmp_path):
    executor = SlurmExecutor()
    request = make_request(
        tmp_path,
        ("/bin/sh", "-c", "sleep 1"),
        range(3),
        resources=Resources(cpus=1, mem_mb=100, time_s=300, array_limit=1),
    )
    submission = executor.submit(request)
    most_running = 0
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        states = executor.states(submission.job_ids)
        running = sum(status.state is JobState.RUNNING for status in states.values())
        most_running = max(most_running, running)
        if all(ended(status) for status in states.values()):
            break
        time.sleep(0.2)
    assert all(status.state is JobState.DONE for status in states.values()), states
    assert most_running == 1


def test_spec_longer_than_slurmctld_accepts_is_submitted_as_one_mapped_array(tmp_path):
    elements = range(0, 3000, 2)  # below MaxArraySize, but "0,2,4,..." has 6,000+ characters
    held = Resources(cpus=1, mem_mb=100, time_s=300, extra=("--hold",))
    executor = SlurmExecutor(max_array_size=10001)
    submission = executor.submit(make_request(tmp_path, ("/bin/true",), elements, resources=held))
    try:
        assert executor.calls["sbatch"] == 1
        assert submission.job_ids[-1] == f"{submission.scheduler_ids[0]}_1499"
        states = executor.states(submission.job_ids)
        assert all(status.state is JobState.PENDING for status in states.values())
    finally:
        executor.cancel(submission.scheduler_ids)


def test_partition_limits_are_the_nodes_memory_and_the_max_time_from_one_sinfo_call() -> None:
    node = run_command(["scontrol", "show", "node", "-o"], timeout_s=30).stdout
    real_mb = min(
        int(word.split("=", 1)[1]) for word in node.split() if word.startswith("RealMemory=")
    )
    partition = run_command(["scontrol", "show", "partition", "-o"], timeout_s=30).stdout
    executor = SlurmExecutor()
    limits = executor.partition_limits(None)
    assert limits.mem_mb == real_mb
    assert (limits.time_s is None) == ("MaxTime=UNLIMITED" in partition)
    assert executor.partition_limits("debug") == limits
    assert executor.partition_limits("no_such_partition").mem_mb is None
    assert executor.calls["sinfo"] == 1
