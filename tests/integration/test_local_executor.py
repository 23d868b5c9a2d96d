"""The local executor with real processes: chunking, slots, states, failures and cancel."""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from reflow.definition.errors import SubmissionError
from reflow.definition.resources import Resources
from reflow.running.executors.base import BatchRequest, FailureReason, JobState, JobStatus
from reflow.running.executors.local import LocalExecutor
from reflow.running.rundir.layout import RunLayout
from reflow.running.rundir.results import ResultRecord, read_result
from tests.integration.test_worker import RUN_ID, RunFixture

# Behaves like the worker as far as the executor can tell: honours --elements, writes each
# element's log as it starts it, and records when the process ran. Its settings come as one
# JSON argument before --elements.
FAKE_WORKER = """
import json, os, signal, sys, time
from pathlib import Path

settings = json.loads(sys.argv[1])
elements = []  # the range spec, read without importing reflow so the process starts fast
for part in sys.argv[sys.argv.index("--elements") + 1].split(","):
    low, _, high = part.partition("-")
    elements += range(int(low), int(high or low) + 1)
log_dir, record = Path(settings["FAKE_LOG_DIR"]), Path(settings["FAKE_RECORD_DIR"])
sleep_s = float(settings.get("FAKE_SLEEP", "0"))
began = time.time()
for element in elements:
    (log_dir / f"{element}.log").write_text("started\\n")
    if element == int(settings.get("FAKE_EXIT_AT", "-1")):
        os._exit(3)
    if element == int(settings.get("FAKE_KILL_AT", "-1")):
        os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(sleep_s)
    (record / f"{element}.done").write_text("")
(record / f"{os.getpid()}.span").write_text(json.dumps([began, time.time()]))
"""


class Setup:
    def __init__(self, root: Path) -> None:
        self.layout = RunLayout(root / "rundir", "run-1")
        self.log_dir = self.layout.logs_dir("t")
        self.log_dir.mkdir(parents=True)
        self.record = root / "record"
        self.record.mkdir()
        self.script = root / "fake_worker.py"
        self.script.write_text(FAKE_WORKER)
        self.root = root

    def request(
        self,
        elements: Sequence[int],
        *,
        batch: str = "b1",
        cpus: int | None = None,
        **settings: str,
    ) -> BatchRequest:
        settings = {
            "FAKE_LOG_DIR": str(self.log_dir),
            "FAKE_RECORD_DIR": str(self.record),
            **settings,
        }
        return BatchRequest(
            run_id="run-1",
            workflow="w",
            task="t",
            batch_id=batch,
            elements=tuple(elements),
            resources=Resources(cpus=cpus),
            command=(sys.executable, str(self.script), json.dumps(settings)),
            workdir=self.root,
            log_dir=self.log_dir,
            script_path=self.root / "unused.sh",
        )

    def spans(self) -> list[tuple[float, float]]:
        return [tuple(json.loads(p.read_text())) for p in self.record.glob("*.span")]


@pytest.fixture
def setup(tmp_path: Path) -> Setup:
    return Setup(tmp_path)


def wait_until_idle(executor: LocalExecutor, deadline_s: float = 60.0) -> None:
    end = time.monotonic() + deadline_s
    while not executor.is_idle:
        assert time.monotonic() < end, "the executor did not finish before the deadline"
        executor.wait_for_progress(0.5)


def wait_for(condition: object, deadline_s: float = 30.0) -> None:
    end = time.monotonic() + deadline_s
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < end, "condition not met before the deadline"
        time.sleep(0.02)


def states_of(executor: LocalExecutor, job_ids: Sequence[str]) -> list[JobState]:
    found = executor.states(job_ids)
    return [found[job_id].state for job_id in job_ids]


def test_job_ids_name_batch_chunk_and_element_in_request_order(setup: Setup) -> None:
    executor = LocalExecutor(slots=1)
    submission = executor.submit(setup.request([5, 1, 9, 3, 7, 2, 8, 0, 4]))
    assert submission.job_ids == (
        "b1.0.5",
        "b1.0.1",
        "b1.0.9",
        "b1.1.3",
        "b1.1.7",
        "b1.1.2",
        "b1.2.8",
        "b1.2.0",
        "b1.2.4",
    )
    assert submission.scheduler_ids == ("b1.0", "b1.1", "b1.2")
    assert executor.submit(setup.request([], batch="b2")).job_ids == ()


def test_states_go_from_pending_through_running_to_done(setup: Setup) -> None:
    executor = LocalExecutor(slots=1)
    ids = executor.submit(setup.request([0, 1], FAKE_SLEEP="0.5")).job_ids
    assert states_of(executor, ids) == [JobState.PENDING, JobState.PENDING]
    executor.poll()
    assert states_of(executor, ids) == [JobState.RUNNING, JobState.PENDING]
    assert sorted(executor.active_job_ids()) == sorted(ids)
    wait_until_idle(executor)
    assert states_of(executor, ids) == [JobState.DONE, JobState.DONE]
    assert sorted(p.name for p in setup.record.glob("*.done")) == ["0.done", "1.done"]
    assert (setup.log_dir / "chunk-b1.0.pid").exists()
    assert (setup.log_dir / "chunk-b1.1.log").exists()
    assert executor.active_job_ids() == []


def test_chunk_exiting_non_zero_fails_started_elements_and_loses_the_rest(setup: Setup) -> None:
    executor = LocalExecutor(slots=1)
    # An earlier attempt's log must not make element 3 look started in this chunk.
    (setup.log_dir / "3.log").write_text("older attempt\n")
    os.utime(setup.log_dir / "3.log", (time.time() - 3600, time.time() - 3600))
    ids = executor.submit(setup.request(range(8), FAKE_EXIT_AT="2")).job_ids
    assert ids[2:4] == ("b1.1.2", "b1.1.3")
    wait_until_idle(executor)
    found = executor.states(ids)
    assert found["b1.1.2"] == JobStatus(
        state=JobState.FAILED,
        reason=FailureReason.EXIT_CODE,
        exit_code=3,
        detail="chunk b1.1 exited with status 3",
    )
    assert found["b1.1.3"].state is JobState.FAILED
    assert found["b1.1.3"].reason is FailureReason.LOST
    assert [found[i].state for i in ids if not i.startswith("b1.1.")] == [JobState.DONE] * 6


def test_chunk_killed_by_sigkill_reports_the_element_lost_with_the_signal(
    setup: Setup,
) -> None:
    executor = LocalExecutor(slots=1)
    ids = executor.submit(setup.request([0], FAKE_KILL_AT="0")).job_ids
    wait_until_idle(executor)
    status = executor.states(ids)[ids[0]]
    assert (status.state, status.reason, status.exit_code) == (
        JobState.FAILED,
        FailureReason.LOST,
        -9,
    )
    assert "killed by SIGKILL" in status.detail


@pytest.mark.parametrize(("slots", "cpus", "expected"), [(2, None, 2), (3, 2, 1), (2, 5, 1)])
def test_never_more_than_slots_processes_at_once(
    setup: Setup, slots: int, cpus: int | None, expected: int
) -> None:
    executor = LocalExecutor(slots=slots)
    count = 3 * slots * 4
    executor.submit(setup.request(range(count), cpus=cpus, FAKE_SLEEP="0.02"))
    wait_until_idle(executor)
    spans = setup.spans()
    assert len(list(setup.record.glob("*.done"))) == count
    assert len(spans) == slots * 4
    most = max(sum(1 for s, e in spans if s <= start < e) for start, _ in spans)
    assert most == expected


def test_chunks_are_at_most_a_thousand_elements(setup: Setup) -> None:
    executor = LocalExecutor(slots=1)
    submission = executor.submit(setup.request(range(4500)))
    assert len(submission.scheduler_ids) == 5
    assert submission.job_ids[999] == "b1.0.999"
    assert submission.job_ids[1000] == "b1.1.1000"


def test_cancel_from_another_instance_stops_the_process_through_its_pid_file(
    setup: Setup,
) -> None:
    owner = LocalExecutor(slots=2)
    ids = owner.submit(setup.request([0, 1], FAKE_SLEEP="60")).job_ids
    owner.poll()
    wait_for(lambda: (setup.log_dir / "0.log").exists() and (setup.log_dir / "1.log").exists())
    other = LocalExecutor(run_root=setup.layout.run, cancel_grace_s=5)
    assert states_of(other, ids[:1]) == [JobState.RUNNING]
    began = time.monotonic()
    other.cancel(ids)
    assert time.monotonic() - began < 4, "SIGTERM should have been enough"
    owner.poll()
    wait_until_idle(owner, deadline_s=10)
    status = owner.states(ids[:1])[ids[0]]
    assert (status.state, status.reason, status.exit_code) == (
        JobState.FAILED,
        FailureReason.EXIT_CODE,
        -15,
    )
    assert states_of(other, ids[:1]) == [JobState.UNKNOWN]
    assert not list(setup.record.glob("*.done"))


def test_own_cancel_drops_queued_elements_and_stops_running_chunks(setup: Setup) -> None:
    executor = LocalExecutor(slots=1, cancel_grace_s=5)
    ids = executor.submit(setup.request(range(8), FAKE_SLEEP="60")).job_ids
    executor.poll()
    wait_for(lambda: (setup.log_dir / "0.log").exists())
    executor.cancel([ids[0], ids[5]])
    found = executor.states(ids)
    assert found[ids[0]].reason is FailureReason.CANCELLED
    assert found[ids[0]].exit_code == -15
    assert found[ids[1]].reason is FailureReason.CANCELLED
    assert found[ids[5]].reason is FailureReason.CANCELLED
    assert found[ids[4]].state is JobState.PENDING
    executor.cancel(executor.active_job_ids())
    assert executor.is_idle
    assert not (setup.log_dir / "4.log").exists()


def test_ids_of_other_instances_without_a_pid_file_are_unknown(setup: Setup) -> None:
    executor = LocalExecutor(run_root=setup.layout.run)
    found = executor.states(["b9.0.1", "not-a-local-id", "x.y.z"])
    assert {status.state for status in found.values()} == {JobState.UNKNOWN}
    executor.cancel(["b9.0.1", "not-a-local-id"])


def test_submit_refuses_a_missing_working_directory(setup: Setup, tmp_path: Path) -> None:
    request = setup.request([0])
    missing = dataclasses.replace(request, workdir=tmp_path / "nowhere")
    with pytest.raises(SubmissionError, match="does not exist"):
        LocalExecutor().submit(missing)


def test_wait_for_progress_returns_when_a_process_ends(setup: Setup) -> None:
    executor = LocalExecutor(slots=1)
    executor.submit(setup.request([0], FAKE_SLEEP="0.2"))
    executor.poll()
    began = time.monotonic()
    executor.wait_for_progress(20)
    assert time.monotonic() - began < 10
    assert executor.is_idle


def test_runs_the_real_worker(tmp_path: Path) -> None:
    saved_path, modules = list(sys.path), set(sys.modules)
    try:
        run = RunFixture(tmp_path)
    finally:
        sys.path[:] = saved_path
        for name in set(sys.modules) - modules:
            del sys.modules[name]
    executor = LocalExecutor(slots=2)
    command = (
        sys.executable,
        "-m",
        "reflow.running.worker",
        "--run-dir",
        str(run.layout.root),
        "--run-id",
        RUN_ID,
        "--task",
        "convert",
        "--batch",
        "b1",
        "--plan",
        "p1",
    )
    request = BatchRequest(
        run_id=RUN_ID,
        workflow="wtest",
        task="convert",
        batch_id="b1",
        elements=(0, 1, 2, 3),
        resources=Resources(),
        command=command,
        workdir=tmp_path,
        log_dir=run.layout.logs_dir("convert"),
        script_path=tmp_path / "unused.sh",
    )
    submission = executor.submit(request)
    ids = submission.job_ids
    assert len(submission.scheduler_ids) == 4
    wait_until_idle(executor)
    found = executor.states(ids)
    assert [found[i].state for i in ids] == [JobState.DONE] * 2 + [JobState.FAILED, JobState.DONE]
    assert (found[ids[2]].reason, found[ids[2]].exit_code) == (FailureReason.EXIT_CODE, 1)
    outputs = []
    for element in range(4):
        path = run.layout.result("convert", element, "b1")
        record = read_result(path, run_id=RUN_ID, task="convert", element=element, batch="b1")
        assert isinstance(record, ResultRecord)
        outputs.append(record.output)
    assert outputs == ["item0.zarr-v2", "item1.zarr-v2", None, "item3.zarr-v2"]
