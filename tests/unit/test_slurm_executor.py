"""Tests of SlurmExecutor against fake sbatch/sacct/squeue/scancel/scontrol/sacctmgr on PATH.

The fakes are small Python scripts written into ``tmp_path``: each logs its argv and answers
from a queue of canned responses, so retries, refusals and chunking are tested without a
cluster and without patching ``subprocess``. The real cluster is in ``tests/slurm/``.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import pytest

from reflow.definition.errors import SubmissionError
from reflow.definition.resources import Resources
from reflow.running.executors.base import BatchRequest, Executor, FailureReason, JobState
from reflow.running.executors.slurm import SlurmExecutor
from reflow.running.executors.slurm_arrays import script_paths
from reflow.running.executors.slurm_query import SQUEUE_FORMAT
from reflow.running.ranges import compress

TOOLS = ("sbatch", "sacct", "squeue", "scancel", "scontrol", "sacctmgr")

_FAKE = """\
#!{python}
import json, pathlib, sys, time
here = pathlib.Path(__file__).resolve().parent
tool = {tool!r}
with open(here / "calls.jsonl", "a") as log:
    log.write(json.dumps([tool, *sys.argv[1:]]) + "\\n")
queue = here / (tool + ".responses.json")
responses = json.loads(queue.read_text()) if queue.exists() else []
if responses:
    response = responses.pop(0)
    queue.write_text(json.dumps(responses))
elif tool == "sbatch":
    counter = here / "next_job_id"
    job_id = int(counter.read_text()) if counter.exists() else 1000
    counter.write_text(str(job_id + 1))
    response = {{"stdout": str(job_id) + "\\n"}}
elif tool == "scontrol":
    response = {{"stdout": "MaxArraySize            = 10001\\n"}}
else:
    response = {{}}
time.sleep(response.get("sleep_s", 0))
if response.get("wait_for"):  # answer only once that program was called, else fail
    deadline = time.monotonic() + 20
    while not any(
        json.loads(line)[0] == response["wait_for"]
        for line in (here / "calls.jsonl").read_text().splitlines()
    ):
        if time.monotonic() > deadline:
            response = {{"rc": 1, "stderr": "fake: nobody called " + response["wait_for"]}}
            break
        time.sleep(0.05)
sys.stdout.write(response.get("stdout", ""))
sys.stderr.write(response.get("stderr", ""))
with open(here / "ends.jsonl", "a") as log:
    log.write(json.dumps([tool, *sys.argv[1:]]) + "\\n")
sys.exit(response.get("rc", 0))
"""

TRANSIENT = "sbatch: error: Batch job submission failed: Socket timed out on send/recv operation\n"
REFUSED = "sbatch: error: Batch job submission failed: Invalid partition name specified\n"


class FakeSlurm:
    """The fake Slurm commands in one folder, with their call log and response queues."""

    def __init__(self, bin_dir: Path) -> None:
        self.bin_dir = bin_dir
        bin_dir.mkdir()
        for tool in TOOLS:
            path = bin_dir / tool
            path.write_text(_FAKE.format(python=sys.executable, tool=tool))
            path.chmod(0o755)

    def respond(self, tool: str, *responses: dict[str, object]) -> None:
        (self.bin_dir / f"{tool}.responses.json").write_text(json.dumps(list(responses)))

    def calls(self, tool: str | None = None) -> list[list[str]]:
        log = self.bin_dir / "calls.jsonl"
        lines = log.read_text().splitlines() if log.exists() else []
        entries = [json.loads(line) for line in lines]
        return [entry[1:] for entry in entries if tool is None or entry[0] == tool]

    def tools(self, log_name: str = "calls.jsonl") -> list[str]:
        """The program of every call so far, in the order they started (or ``ends.jsonl``)."""
        log = self.bin_dir / log_name
        lines = log.read_text().splitlines() if log.exists() else []
        return [json.loads(line)[0] for line in lines]


@pytest.fixture
def fake(tmp_path, monkeypatch) -> FakeSlurm:
    slurm = FakeSlurm(tmp_path / "bin")
    monkeypatch.setenv("PATH", f"{slurm.bin_dir}:/usr/bin:/bin")
    return slurm


class Sleeps:
    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def make_request(tmp_path: Path, elements: tuple[int, ...] = (0, 3, 7, 8, 9)) -> BatchRequest:
    return BatchRequest(
        run_id="r1",
        workflow="demo",
        task="convert",
        batch_id="b1",
        elements=elements,
        resources=Resources(cpus=1),
        command=("/usr/bin/python3", "-m", "reflow.running.worker", "--batch", "b1"),
        workdir=tmp_path,
        log_dir=tmp_path / "r1" / "logs",
        script_path=tmp_path / "r1" / "scripts" / "convert.b1.sbatch",
    )


def array_of(script: Path) -> str:
    lines = [
        line for line in script.read_text().splitlines() if line.startswith("#SBATCH --array=")
    ]
    return lines[0].removeprefix("#SBATCH --array=")


def exec_line(script: Path) -> str:
    return script.read_text().splitlines()[-1]


def test_slurm_executor_satisfies_the_executor_protocol():
    executor: Executor = SlurmExecutor(max_array_size=10)
    assert executor.name == "slurm"


def test_submit_sends_one_array_whose_indices_are_the_elements(fake, tmp_path):
    executor = SlurmExecutor()
    request = make_request(tmp_path)
    submission = executor.submit(request)
    assert submission.job_ids == ("1000_0", "1000_3", "1000_7", "1000_8", "1000_9")
    assert submission.scheduler_ids == ("1000",)
    assert fake.calls("sbatch") == [["--parsable", str(request.script_path)]]
    assert array_of(request.script_path) == "0,3,7-9"
    assert "--array-offset" not in exec_line(request.script_path)
    assert exec_line(request.script_path).endswith("--turn-after 5")  # the last of 5 runs a turn
    assert request.log_dir.is_dir()
    assert executor.calls == {"scontrol": 1, "sbatch": 1}


def test_submit_keeps_job_ids_in_request_order(fake, tmp_path):
    submission = SlurmExecutor().submit(make_request(tmp_path, elements=(9, 2, 5)))
    assert submission.job_ids == ("1000_9", "1000_2", "1000_5")


def test_submit_reads_max_array_size_once_per_executor(fake, tmp_path):
    executor = SlurmExecutor()
    executor.submit(make_request(tmp_path))
    executor.submit(make_request(tmp_path))
    assert fake.calls("scontrol") == [["show", "config"]]
    assert executor.calls == {"scontrol": 1, "sbatch": 2}


def test_submit_with_given_max_array_size_never_asks_scontrol(fake, tmp_path):
    executor = SlurmExecutor(max_array_size=100)
    executor.submit(make_request(tmp_path))
    assert fake.calls("scontrol") == []


def test_submit_reads_job_id_with_cluster_suffix(fake, tmp_path):
    fake.respond("sbatch", {"stdout": "4242;test\n"})
    submission = SlurmExecutor(max_array_size=100).submit(make_request(tmp_path, elements=(1,)))
    assert submission.job_ids == ("4242_1",)


def test_submit_retries_transient_failures_with_exponential_backoff(fake, tmp_path):
    fake.respond("sbatch", {"rc": 1, "stderr": TRANSIENT}, {"rc": 1, "stderr": TRANSIENT})
    sleeps = Sleeps()
    executor = SlurmExecutor(max_array_size=100, sleep=sleeps, backoff_s=0.5)
    submission = executor.submit(make_request(tmp_path))
    assert submission.scheduler_ids == ("1000",)
    assert len(fake.calls("sbatch")) == 3
    assert sleeps.waits == [0.5, 1.0]
    assert executor.calls == {"sbatch": 3}


def test_submit_backoff_is_capped(fake, tmp_path):
    fake.respond("sbatch", *[{"rc": 1, "stderr": TRANSIENT}] * 4)
    sleeps = Sleeps()
    executor = SlurmExecutor(max_array_size=100, sleep=sleeps, backoff_s=1, max_backoff_s=3)
    executor.submit(make_request(tmp_path))
    assert sleeps.waits == [1, 2, 3, 3]


def test_submit_gives_up_after_max_attempts(fake, tmp_path):
    fake.respond("sbatch", *[{"rc": 1, "stderr": TRANSIENT}] * 5)
    sleeps = Sleeps()
    executor = SlurmExecutor(max_array_size=100, sleep=sleeps, max_attempts=3)
    with pytest.raises(SubmissionError, match="Socket timed out"):
        executor.submit(make_request(tmp_path))
    assert len(fake.calls("sbatch")) == 3
    assert len(sleeps.waits) == 2


def test_submit_raises_sbatch_message_on_permanent_refusal_without_retry(fake, tmp_path):
    fake.respond("sbatch", {"rc": 1, "stderr": REFUSED})
    sleeps = Sleeps()
    executor = SlurmExecutor(max_array_size=100, sleep=sleeps)
    with pytest.raises(SubmissionError) as info:
        executor.submit(make_request(tmp_path))
    assert "Invalid partition name specified" in str(info.value)
    assert info.value.task == "convert"
    assert len(fake.calls("sbatch")) == 1
    assert sleeps.waits == []


def test_submit_without_sbatch_on_path_raises_submission_error(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(SubmissionError, match="not found"):
        SlurmExecutor(max_array_size=100, sleep=Sleeps()).submit(make_request(tmp_path))


def test_submit_refuses_output_without_job_id(fake, tmp_path):
    fake.respond("sbatch", {"stdout": "Submitted batch job 5\n"})
    with pytest.raises(SubmissionError, match="no job id"):
        SlurmExecutor(max_array_size=100).submit(make_request(tmp_path))


def test_submit_maps_elements_beyond_max_array_size_onto_chunks(fake, tmp_path):
    request = make_request(tmp_path, elements=tuple(range(100, 110)))
    executor = SlurmExecutor(max_array_size=4)
    submission = executor.submit(request)
    paths = script_paths(request.script_path, 3)
    assert [path.name for path in paths] == [f"convert.b1.{i}.sbatch" for i in range(3)]
    assert fake.calls("sbatch") == [["--parsable", str(path)] for path in paths]
    assert [array_of(path) for path in paths] == ["0-3", "0-3", "0-1"]
    assert [exec_line(path).split()[-4:] for path in paths] == [
        ["--array-offset", "0", "--turn-after", "10"],
        ["--array-offset", "4", "--turn-after", "10"],
        ["--array-offset", "8", "--turn-after", "10"],
    ]
    assert submission.scheduler_ids == ("1000", "1001", "1002")
    assert submission.job_ids == (
        *(f"1000_{i}" for i in range(4)),
        *(f"1001_{i}" for i in range(4)),
        *(f"1002_{i}" for i in range(2)),
    )
    assert executor.calls == {"sbatch": 3}


def test_submit_maps_single_chunk_into_the_given_script_path(fake, tmp_path):
    request = make_request(tmp_path, elements=(5000, 5001))
    submission = SlurmExecutor(max_array_size=1001).submit(request)
    assert submission.job_ids == ("1000_0", "1000_1")
    assert array_of(request.script_path) == "0-1"
    assert exec_line(request.script_path).endswith("--array-offset 0 --turn-after 2")


def test_submit_maps_elements_whose_spec_is_too_long_for_slurmctld(fake, tmp_path):
    elements = tuple(range(0, 3000, 2))  # below MaxArraySize, but a 6,000-character spec
    request = make_request(tmp_path, elements=elements)
    submission = SlurmExecutor(max_array_size=10001).submit(request)
    assert array_of(request.script_path) == "0-1499"
    assert exec_line(request.script_path).endswith("--array-offset 0 --turn-after 1500")
    assert submission.job_ids == tuple(f"1000_{i}" for i in range(1500))


def test_submit_counts_the_throttle_in_the_spec_length(fake, tmp_path):
    elements = tuple(range(0, 1859, 2))  # compresses to exactly 4,094 characters
    base = make_request(tmp_path, elements=elements)
    for limit, array in [(9, compress(elements) + "%9"), (10, "0-929%10")]:
        request = dataclasses.replace(base, resources=Resources(array_limit=limit))
        SlurmExecutor(max_array_size=10001).submit(request)
        assert array_of(request.script_path) == array
    assert len(compress(elements) + "%9") == 4096


def test_submit_cancels_earlier_chunks_when_a_later_one_is_refused(fake, tmp_path):
    fake.respond("sbatch", {"stdout": "1000\n"}, {"rc": 1, "stderr": REFUSED})
    request = make_request(tmp_path, elements=tuple(range(10)))
    with pytest.raises(SubmissionError, match="Invalid partition"):
        SlurmExecutor(max_array_size=4).submit(request)
    assert fake.calls("scancel") == [["1000"]]


def test_submit_with_no_elements_calls_nothing(fake, tmp_path):
    submission = SlurmExecutor().submit(make_request(tmp_path, elements=()))
    assert submission.job_ids == ()
    assert fake.calls() == []


def test_submit_refuses_bad_value_before_any_sbatch(fake, tmp_path):
    request = make_request(tmp_path)
    bad = dataclasses.replace(request, workdir=tmp_path / "a\nb")
    with pytest.raises(SubmissionError):
        SlurmExecutor(max_array_size=100).submit(bad)
    assert fake.calls("sbatch") == []


@pytest.mark.parametrize("elements", [(1, 1), (-1, 2)])
def test_submit_rejects_repeated_or_negative_elements_as_a_bug(fake, tmp_path, elements):
    with pytest.raises(ValueError, match="elements"):
        SlurmExecutor(max_array_size=100).submit(make_request(tmp_path, elements=elements))


def test_cancel_issues_one_scancel_grouping_array_elements(fake):
    executor = SlurmExecutor(max_array_size=100)
    executor.cancel(["1000_0", "1000_3", "1000_7", "1000_8", "1000_9", "1001_2", "55", "1000_0"])
    assert fake.calls("scancel") == [["55", "1000_[0,3,7-9]", "1001_2"]]
    assert executor.calls == {"scancel": 1}


def test_cancel_of_nothing_calls_nothing(fake):
    SlurmExecutor(max_array_size=100).cancel([])
    assert fake.calls() == []


def test_cancel_ignores_jobs_that_already_ended(fake):
    fake.respond(
        "scancel",
        {
            "rc": 1,
            "stderr": "scancel: error: Kill job error on job id 5: "
            "Job/step already completing or completed\n",
        },
    )
    SlurmExecutor(max_array_size=100).cancel(["5"])


def test_cancel_raises_on_failure_without_message(fake):
    fake.respond("scancel", {"rc": 1})
    with pytest.raises(SubmissionError, match="exit status 1"):
        SlurmExecutor(max_array_size=100).cancel(["5"])


def test_cancel_raises_on_other_failures(fake):
    fake.respond("scancel", {"rc": 1, "stderr": "scancel: error: Access/permission denied\n"})
    with pytest.raises(SubmissionError, match="permission denied"):
        SlurmExecutor(max_array_size=100).cancel(["5"])


def test_states_reads_one_sacct_call_for_all_ids(fake):
    fake.respond(
        "sacct", {"stdout": "1000_0|COMPLETED|0:0\n1000_3|FAILED|3:0\n1001_[0-2]|PENDING|0:0\n"}
    )
    executor = SlurmExecutor(max_array_size=100)
    found = executor.states(["1000_0", "1000_3", "1001_2"])
    assert fake.calls("sacct") == [
        ["-X", "-n", "-P", "--format=JobID,State,ExitCode,End", "-j", "1000,1001"]
    ]
    assert found["1000_0"].state is JobState.DONE
    assert (found["1000_3"].reason, found["1000_3"].exit_code) == (FailureReason.EXIT_CODE, 3)
    assert found["1001_2"].state is JobState.PENDING
    assert executor.calls == {"sacct": 1}


def test_states_asks_squeue_once_for_ids_sacct_does_not_list(fake):
    fake.respond("sacct", {"stdout": "1000_0|COMPLETED|0:0\n"})
    fake.respond("squeue", {"stdout": "1001_1|RUNNING|None|0\n"})
    executor = SlurmExecutor(max_array_size=100)
    found = executor.states(["1000_0", "1001_1", "1001_5"])
    assert fake.calls("squeue") == [
        [
            "-h",
            "-r",
            "-t",
            "all",
            f"--Format={SQUEUE_FORMAT}",
            "-j",
            "1001",
        ]
    ]
    assert found["1001_1"].state is JobState.RUNNING
    assert found["1001_5"].state is JobState.UNKNOWN
    assert executor.calls == {"sacct": 1, "squeue": 1}


def test_states_falls_back_to_squeue_when_accounting_is_disabled(fake):
    disabled = {"rc": 1, "stderr": "sacct: error: Slurm accounting storage is disabled\n"}
    fake.respond("sacct", disabled)
    fake.respond("squeue", {"stdout": "7_0|FAILED|NonZeroExitCode|512\n"}, {"stdout": ""})
    executor = SlurmExecutor(max_array_size=100)
    first = executor.states(["7_0"])
    second = executor.states(["7_0"])
    assert (first["7_0"].state, first["7_0"].exit_code) == (JobState.FAILED, 2)
    assert second["7_0"].state is JobState.UNKNOWN
    assert executor.calls == {"sacct": 1, "squeue": 2}


def test_states_treats_squeue_invalid_job_id_as_unknown(fake):
    fake.respond("sacct", {"stdout": ""})
    fake.respond("squeue", {"rc": 1, "stderr": "slurm_load_jobs error: Invalid job id specified\n"})
    found = SlurmExecutor(max_array_size=100).states(["99_1"])
    assert found["99_1"].state is JobState.UNKNOWN


def test_states_retries_transient_sacct_failure(fake):
    fake.respond(
        "sacct",
        {"rc": 1, "stderr": "sacct: error: Problem talking to the database: Connection refused\n"},
        {"stdout": "5|RUNNING|0:0\n"},
    )
    executor = SlurmExecutor(max_array_size=100, sleep=Sleeps())
    assert executor.states(["5"])["5"].state is JobState.RUNNING
    assert executor.calls == {"sacct": 2}


def test_states_raises_on_permanent_sacct_failure(fake):
    fake.respond("sacct", {"rc": 1, "stderr": "sacct: error: Unknown arguments\n"})
    with pytest.raises(SubmissionError, match="sacct"):
        SlurmExecutor(max_array_size=100).states(["5"])


def test_states_of_nothing_calls_nothing(fake):
    assert SlurmExecutor(max_array_size=100).states([]) == {}
    assert fake.calls() == []


def test_queued_names_the_ids_squeue_lists_as_pending_or_running(fake):
    fake.respond(
        "squeue",
        {"stdout": "41|PENDING|Dependency|0\n42|RUNNING|None|0\n43|COMPLETED|None|0\n"},
    )
    executor = SlurmExecutor(max_array_size=100)
    assert executor.queued(["41", "42", "43", "44"]) == {"41", "42"}
    assert fake.calls("squeue") == [
        [
            *(
                "-h",
                "-r",
                "-t",
                "all",
                f"--Format={SQUEUE_FORMAT}",
            ),
            *("-j", "41,42,43,44"),
        ]
    ]
    assert executor.calls == {"squeue": 1}


def test_queued_is_empty_when_squeue_no_longer_knows_the_ids(fake):
    fake.respond("squeue", {"rc": 1, "stderr": "slurm_load_jobs error: Invalid job id specified\n"})
    assert SlurmExecutor(max_array_size=100).queued(["9"]) == set()


def test_queued_is_none_after_one_failed_squeue_call_without_retrying(fake):
    fake.respond("squeue", {"rc": 1, "stderr": "squeue: error: Socket timed out on send/recv\n"})
    sleeps = Sleeps()
    executor = SlurmExecutor(max_array_size=100, sleep=sleeps)
    assert executor.queued(["9"]) is None
    assert executor.calls == {"squeue": 1}
    assert sleeps.waits == []


def test_queued_of_no_ids_asks_nothing(fake):
    executor = SlurmExecutor(max_array_size=100)
    assert executor.queued([]) == set()
    assert executor.calls == {}
