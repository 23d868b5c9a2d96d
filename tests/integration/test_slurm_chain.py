"""The Slurm dispatcher chain on fake scheduler commands, with a real run directory.

A real flow (``tests/flows/chaos_steps.py``: ``prepare`` fans out to ``work`` and ``check``,
which ``total`` gathers) is submitted with ``REFLOW_MODE=slurm`` while fake ``sbatch``,
``sacct``, ``squeue``, ``scontrol``, ``scancel`` and ``sacctmgr`` are first on ``PATH``. The
fakes log every call and answer from canned responses (``sbatch`` hands out ids from 1000
on), so a test knows exactly what each turn asked the scheduler. Nothing runs a job by
itself: a test runs an array element's rendered script with bash, as a compute node would,
and starts the next turn as Slurm would, with ``SLURM_JOB_ID`` set to the successor's id.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from reflow.running.commands.status import load_status
from reflow.running.dispatch.liveness import dispatcher_alive
from reflow.running.dispatch.locks import dispatcher_lock
from reflow.running.dispatch.slurm_chain import run_turn_and_chain
from reflow.running.executors.slurm import SlurmExecutor
from reflow.running.ranges import expand
from reflow.running.rundir.layout import RunLayout
from reflow.running.store.records import DispatcherRecord
from reflow.running.store.sqlite import SqliteStore
from tests.flows.chaos_steps import wf
from tests.flows.mixchain_steps import wf as mixchain_wf
from tests.unit.test_slurm_executor import REFUSED, TRANSIENT, FakeSlurm


def submit(root: Path, **params: Any) -> RunLayout:
    """Submit the flow; its first turn runs here and now, as ``submit`` does on Slurm."""
    run = wf.submit(run_dir=root, **params)
    return RunLayout(root, run.run_id)


def run_record(layout: RunLayout) -> tuple[str, str, dict[str, Any]]:
    """The run's state, message and dispatcher record, as the store has them."""
    with SqliteStore.open(layout.root) as store:
        run = store.run(layout.run_id)
    record = dataclasses.asdict(run.dispatcher)
    record["pending_jobs"] = list(run.dispatcher.pending_jobs)
    return run.state, run.message, record


def as_record(data: dict[str, Any]) -> DispatcherRecord:
    """A dispatcher record from the data ``run_record`` gives."""
    return DispatcherRecord.from_json(json.dumps(data))


def state_counts(layout: RunLayout) -> dict[str, dict[str, int]]:
    store = SqliteStore.open(layout.root)
    try:
        return store.state_counts(layout.run_id)
    finally:
        store.close()


def turn(
    fake: FakeSlurm, layout: RunLayout, monkeypatch: pytest.MonkeyPatch, job_id: str | None
) -> Counter[str]:
    """Run one turn as job ``job_id`` (None: by hand); return the scheduler calls it made."""
    if job_id is None:
        monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    else:
        monkeypatch.setenv("SLURM_JOB_ID", job_id)
    before = len(fake.tools())
    run_turn_and_chain(layout)
    return Counter(fake.tools()[before:])


def run_element(script: Path, job_id: str, index: int, *, last_out: bool = False) -> None:
    """Run one array element's batch script as a compute node would.

    Unless ``last_out``, without ``--turn-after``: the tests that start each turn themselves
    keep the last array task of a batch from starting one too.
    """
    env = {**os.environ, "SLURM_ARRAY_JOB_ID": job_id, "SLURM_ARRAY_TASK_ID": str(index)}
    env["SLURM_JOB_ID"] = f"{job_id}_{index}"
    text = script.read_text()
    if not last_out:
        text = re.sub(r" --turn-after \d+", "", text)
    subprocess.run(["bash", "-s"], input=text, text=True, env=env, check=True, timeout=120)


def sbatch_script(call: list[str]) -> Path:
    return Path(call[-1])


def task_of(call: list[str]) -> str:
    """The task of an array job's sbatch call (its script is ``<task>-<batch>.sh``)."""
    return sbatch_script(call).name.split("-")[0]


def array_size(call: list[str]) -> int:
    """How many elements the ``--array`` line of a submitted script holds."""
    lines = sbatch_script(call).read_text().splitlines()
    spec = next(line for line in lines if line.startswith("#SBATCH --array="))
    return len(expand(spec.removeprefix("#SBATCH --array=").split("%")[0]))


def options_of(call: list[str]) -> dict[str, str]:
    """``--name=value`` options of one sbatch call."""
    return dict(arg[2:].split("=", 1) for arg in call if arg.startswith("--") and "=" in arg)


def start_with_prepare_done(
    fake: FakeSlurm, root: Path, monkeypatch: pytest.MonkeyPatch, **params: Any
) -> tuple[RunLayout, Counter[str]]:
    """Submit (prepare is job 1000, the successor 1001), run prepare, then turn as 1001.

    The turn finds prepare's result and so has nothing in flight to ask sacct about.
    """
    layout = submit(root, **params)
    run_element(sbatch_script(fake.calls("sbatch")[0]), "1000", 0)
    return layout, turn(fake, layout, monkeypatch, "1001")


def test_first_turn_submits_prepare_and_a_successor_that_waits_for_it(
    slurm: FakeSlurm, tmp_path: Path
) -> None:
    layout = submit(tmp_path / "runs", count=4)
    prepare, successor = slurm.calls("sbatch")
    assert sbatch_script(prepare).name.startswith("prepare-")
    options = options_of(successor)
    assert options["dependency"] == "afterany:1000"
    assert "begin" not in options
    assert options["job-name"] == "dispatch.chaos"
    assert options["comment"] == f"reflow:{layout.run_id}"
    assert options["output"] == str(layout.slurm_dispatcher_log)
    assert sbatch_script(successor) == layout.dispatcher_script
    exec_line = layout.dispatcher_script.read_text().splitlines()[-1]
    assert exec_line.endswith(
        f"-m reflow.running.dispatch --run-dir {layout.root} --run-id {layout.run_id} --slurm-turn"
    )
    state, _, record = run_record(layout)
    assert state == "running"
    assert record["pending_jobs"] == ["1001"]
    assert record["waits_for"] == 1
    assert record["submit_budget"] == 5000  # sacctmgr names no limit
    # One scontrol per executor, two sacctmgr for the budget, nothing to ask sacct about yet.
    assert Counter(slurm.tools()) == {"scontrol": 1, "sacctmgr": 2, "sbatch": 2}


def test_budget_from_max_submit_jobs_holds_instances_back_and_waits_on_the_oldest_job(
    slurm: FakeSlurm, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    slurm.respond("sacctmgr", {"stdout": "6||normal\n"}, {"stdout": "normal||\n"})
    layout, calls = start_with_prepare_done(slurm, tmp_path / "runs", monkeypatch, count=4)
    _, _, record = run_record(layout)
    assert record["submit_budget"] == 5  # MaxSubmitJobs 6, one job left for the successor
    counts = state_counts(layout)
    submitted = sum(by_state.get("submitted", 0) for by_state in counts.values())
    ready = sum(by_state.get("ready", 0) for by_state in counts.values())
    assert (submitted, ready) == (4, 4)  # and the turn's own job 1001 makes 5
    arrays = slurm.calls("sbatch")[2:-1]
    assert len(arrays) == 1  # one task's array of 4: the other waits
    assert sum(array_size(call) for call in arrays) == 4
    assert options_of(slurm.calls("sbatch")[-1])["dependency"] == "afterany:1002"
    assert record["pending_jobs"] == ["1003"]
    # The budget was asked once per run: no sacctmgr in this turn.
    assert calls == {"scontrol": 1, "sbatch": 2}


def test_the_first_turn_queues_its_jobs_while_sacctmgr_is_still_answering(
    slurm: FakeSlurm, tmp_path: Path
) -> None:
    # sacctmgr answers only once sbatch was called: a turn that waited for it first would
    # get no answer (the fake gives up after 20 s) and the default budget.
    slurm.respond(
        "sacctmgr", {"wait_for": "sbatch", "stdout": "6||normal\n"}, {"stdout": "normal||\n"}
    )
    layout = submit(tmp_path / "runs", count=4)
    assert run_record(layout)[2]["submit_budget"] == 5  # the answer is kept for later turns
    assert Counter(slurm.tools()) == {"scontrol": 1, "sacctmgr": 2, "sbatch": 2}


def test_a_turn_that_would_queue_many_jobs_waits_for_the_clusters_limit(
    slurm: FakeSlurm, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    layout = submit(tmp_path / "runs", count=150)
    run_element(sbatch_script(slurm.calls("sbatch")[0]), "1000", 0)
    with SqliteStore.open(layout.root) as store:  # as if the first turn had not learned it
        store.set_dispatcher(
            layout.run_id, store.run(layout.run_id).dispatcher.replace(submit_budget=None)
        )
    slow = {"sleep_s": 1.0}
    slurm.respond("sacctmgr", {**slow, "stdout": "6||normal\n"}, {**slow, "stdout": "normal||\n"})
    calls = turn(slurm, layout, monkeypatch, "1001")
    assert calls == {"sacctmgr": 2, "scontrol": 1, "sbatch": 2}  # one array and the successor
    ended = slurm.tools("ends.jsonl")[-sum(calls.values()) :]
    # 150 jobs wanted: the array waited for sacctmgr's answer (1 s each call).
    assert ended.index("sbatch") > max(i for i, tool in enumerate(ended) if tool == "sacctmgr")
    counts = state_counts(layout)
    # MaxSubmitJobs 6: one job left for the successor, one is the job running the turn.
    assert sum(c.get("submitted", 0) for c in counts.values()) == 4
    assert run_record(layout)[2]["submit_budget"] == 5


def test_a_turns_timing_line_goes_to_its_jobs_log_not_to_the_terminal(
    slurm: FakeSlurm,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    layout = submit(tmp_path / "runs", count=2)  # the first turn runs in submit's process
    assert "reflow: turn" not in capfd.readouterr().err
    turn(slurm, layout, monkeypatch, "1001")  # a turn job: its stderr is its log
    assert "reflow: turn 2 on " in capfd.readouterr().err


def test_a_turn_in_a_job_counts_that_job_against_the_budget(
    slurm: FakeSlurm, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REFLOW_SUBMIT_BUDGET", "3")
    layout = submit(tmp_path / "runs", count=4)
    run_element(sbatch_script(slurm.calls("sbatch")[0]), "1000", 0, last_out=True)
    assert "reflow: turn 2 on " in layout.slurm_turn_log("1000_0").read_text()
    # prepare's array task, still running the turn, is one of the run's 3 jobs for Slurm.
    counts = state_counts(layout)
    assert sum(c.get("submitted", 0) for c in counts.values()) == 2
    assert sum(c.get("ready", 0) for c in counts.values()) == 6


def test_budget_from_config_asks_sacctmgr_nothing(
    slurm: FakeSlurm, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REFLOW_SUBMIT_BUDGET", "3")
    layout, calls = start_with_prepare_done(slurm, tmp_path / "runs", monkeypatch, count=4)
    assert "sacctmgr" not in slurm.tools()
    counts = state_counts(layout)
    # 3 jobs: the one running the turn (1001) and 2 array tasks.
    assert sum(c.get("submitted", 0) for c in counts.values()) == 2
    assert sum(c.get("ready", 0) for c in counts.values()) == 6
    assert run_record(layout)[2]["submit_budget"] == 3
    assert calls == {"scontrol": 1, "sbatch": 2}
    assert options_of(slurm.calls("sbatch")[-1])["dependency"] == "afterany:1002"


def test_successor_waits_only_for_jobs_still_queued(
    slurm: FakeSlurm, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    layout, calls = start_with_prepare_done(slurm, tmp_path / "runs", monkeypatch, count=2)
    assert calls == {"scontrol": 1, "sbatch": 3}  # work, check, the successor
    arrays = slurm.calls("sbatch")[2:4]
    ids = {task_of(call): str(1002 + number) for number, call in enumerate(arrays)}
    work_id, check_id = ids["work"], ids["check"]
    assert options_of(slurm.calls("sbatch")[4])["dependency"] == "afterany:1002:1003"
    check_script = next(sbatch_script(call) for call in arrays if task_of(call) == "check")
    for index in range(2):
        run_element(check_script, check_id, index)
    slurm.respond(
        "sacct",
        {"stdout": f"{check_id}_[0-1]|COMPLETED|0:0\n{work_id}_[0-1]|RUNNING|0:0\n"},
    )
    calls = turn(slurm, layout, monkeypatch, "1004")
    # total (the gather of check) is job 1005; work still runs; check has ended.
    assert options_of(slurm.calls("sbatch")[-1])["dependency"] == f"afterany:{work_id}:1005"
    assert calls == {"scontrol": 1, "sacct": 1, "sbatch": 2}
    assert run_record(layout)[2]["pending_jobs"] == ["1006"]


def test_without_queued_jobs_the_successor_starts_after_the_idle_delay(
    slurm: FakeSlurm, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    layout = submit(tmp_path / "runs", count=2)
    run_element(sbatch_script(slurm.calls("sbatch")[0]), "1000", 0)
    limit = "sbatch: error: Batch job submission failed: Job violates accounting/QOS policy"
    slurm.respond("sbatch", {"rc": 1, "stderr": limit}, {"rc": 1, "stderr": limit})
    calls = turn(slurm, layout, monkeypatch, "1001")
    successor = options_of(slurm.calls("sbatch")[-1])
    assert "dependency" not in successor
    assert successor["begin"] == "now+15"
    counts = state_counts(layout)
    assert counts["work"] == {"ready": 2}
    assert counts["check"] == {"ready": 2}
    assert run_record(layout)[2]["waits_for"] == 0
    assert calls == {"scontrol": 1, "sbatch": 3}


def test_the_last_array_task_of_a_batch_runs_the_next_turn_in_its_job(
    slurm: FakeSlurm, tmp_path: Path
) -> None:
    layout = submit(tmp_path / "runs", count=3, fail_every=0)  # prepare 1000, its turn 1001
    run_element(sbatch_script(slurm.calls("sbatch")[0]), "1000", 0, last_out=True)
    # prepare's one array task ran turn 2 itself: work and check went out, a new successor
    # waits for them, and the turn job queued behind prepare was cancelled before it started.
    assert sorted(task_of(call) for call in slurm.calls("sbatch")[2:4]) == ["check", "work"]
    assert options_of(slurm.calls("sbatch")[4])["dependency"] == "afterany:1002:1003"
    assert slurm.calls("scancel") == [["1001"]]
    _, _, record = run_record(layout)
    assert (record["turns"], record["pending_jobs"], record["job_id"]) == (2, ["1004"], "1000_0")
    assert "reflow: turn 2 on " in layout.slurm_turn_log("1000_0").read_text()
    arrays = {task_of(call): sbatch_script(call) for call in slurm.calls("sbatch")[2:4]}
    ids = {task_of(call): str(1002 + n) for n, call in enumerate(slurm.calls("sbatch")[2:4])}
    work_id, check_id = ids["work"], ids["check"]
    slurm.respond("sacct", {"stdout": f"{check_id}_[0-2]|RUNNING|0:0\n"})
    for index in range(2):  # two of work's three array tasks end: no turn yet
        run_element(arrays["work"], work_id, index, last_out=True)
    assert len(slurm.calls("sbatch")) == 5
    assert run_record(layout)[2]["turns"] == 2
    run_element(arrays["work"], work_id, 2, last_out=True)  # the last one: turn 3, here
    assert run_record(layout)[2]["turns"] == 3
    assert state_counts(layout)["work"] == {"done": 3}
    assert "reflow: turn 3 on " in layout.slurm_turn_log(f"{work_id}_2").read_text()
    # check still runs, so the new successor waits for it; the one queued before is cancelled.
    assert options_of(slurm.calls("sbatch")[-1])["dependency"] == f"afterany:{check_id}"
    assert slurm.calls("scancel")[-1] == ["1004"]


def waiting_turns(layout: RunLayout) -> list[int]:
    """Process ids of this run's workers running a turn that hold its lock file open."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
            if b"--turn-after" not in argv or layout.run_id.encode() not in argv:
                continue
            if any(fd.readlink() == layout.dispatcher_lock for fd in (proc / "fd").iterdir()):
                found.append(int(proc.name))
        except OSError:
            continue
    return found


def test_a_batch_that_ends_while_a_turn_is_in_progress_runs_its_turn_after_it(
    slurm: FakeSlurm, tmp_path: Path
) -> None:
    layout = submit(tmp_path / "runs", count=3, fail_every=0)  # prepare 1000, its turn 1001
    held, release = threading.Event(), threading.Event()
    seen_waiting: list[int] = []

    def busy_turn() -> None:  # a turn still submitting when prepare's array task ends
        with dispatcher_lock(layout) as mine:
            assert mine
            held.set()
            deadline = time.monotonic() + 60
            while not release.is_set() and time.monotonic() < deadline:
                if waiting_turns(layout):  # the array task's turn opened the lock file
                    time.sleep(0.5)
                    seen_waiting.extend(waiting_turns(layout))  # and is still waiting for it
                    return
                time.sleep(0.05)

    holder = threading.Thread(target=busy_turn)
    holder.start()
    assert held.wait(timeout=30)
    run_element(sbatch_script(slurm.calls("sbatch")[0]), "1000", 0, last_out=True)
    release.set()
    holder.join()
    # Still there half a second after it opened the held lock: it waited for it.
    assert seen_waiting
    # Then it ran turn 2 itself instead of leaving it to the queued turn job 1001.
    assert "reflow: turn 2 on " in layout.slurm_turn_log("1000_0").read_text()
    assert run_record(layout)[2]["turns"] == 2
    assert sorted(task_of(call) for call in slurm.calls("sbatch")[2:4]) == ["check", "work"]
    assert slurm.calls("scancel") == [["1001"]]


def test_a_timed_successor_refused_by_a_submit_limit_leaves_the_chain_to_the_first(
    slurm: FakeSlurm, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = mixchain_wf.submit(run_dir=tmp_path / "runs", count=4)  # prepare 1000, its turn 1001
    layout = RunLayout(run.run_dir, run.run_id)
    run_element(sbatch_script(slurm.calls("sbatch")[0]), "1000", 0)
    limit = "sbatch: error: Batch job submission failed: Job violates accounting/QOS policy"
    slurm.respond(
        "sbatch",
        {"stdout": "1002\n"},  # convert's array
        {"stdout": "1003\n"},  # merge's array (its items of prepare's list)
        {"stdout": "1004\n"},  # the successor waiting for them
        {"rc": 1, "stderr": f"sbatch: error: AssocMaxSubmitJobLimit\n{limit}\n"},  # timed one
    )
    turn(slurm, layout, monkeypatch, "1001")
    calls = slurm.calls("sbatch")
    assert len(calls) == 6
    assert options_of(calls[4])["dependency"] == "afterany:1002:1003"
    assert options_of(calls[5])["begin"] == "now+60"  # the refused timed successor
    state, _, record = run_record(layout)
    assert state == "running"
    assert record["pending_jobs"] == ["1004"]  # the chain goes on with the first


def test_successor_submission_is_retried_on_a_transient_failure(
    slurm: FakeSlurm, tmp_path: Path
) -> None:
    slurm.respond("sbatch", {"stdout": "500\n"}, {"rc": 1, "stderr": TRANSIENT})
    layout = submit(tmp_path / "runs", count=2)
    calls = slurm.calls("sbatch")
    assert len(calls) == 3
    assert calls[1] == calls[2]  # the same successor, asked again
    assert options_of(calls[2])["dependency"] == "afterany:500"
    state, _, record = run_record(layout)
    assert state == "running"
    assert record["pending_jobs"] == ["1000"]  # the id of the accepted attempt


def test_a_refused_successor_fails_the_run_with_sbatchs_message(
    slurm: FakeSlurm, tmp_path: Path
) -> None:
    slurm.respond("sbatch", {"stdout": "500\n"}, {"rc": 1, "stderr": REFUSED})
    layout = submit(tmp_path / "runs", count=2)
    assert len(slurm.calls("sbatch")) == 2  # a refusal is not retried
    state, message, record = run_record(layout)
    assert state == "failed"
    assert "cannot submit the next dispatcher turn" in message
    assert "Invalid partition name specified" in message
    assert record["pending_jobs"] == []


def test_a_turn_started_by_hand_cancels_the_pending_successor(
    slurm: FakeSlurm, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    layout = submit(tmp_path / "runs", count=2)
    assert run_record(layout)[2]["pending_jobs"] == ["1001"]
    slurm.respond("sacct", {"stdout": "1000_0|PENDING|0:0\n"})
    calls = turn(slurm, layout, monkeypatch, None)
    assert slurm.calls("scancel") == [["1001"]]
    assert options_of(slurm.calls("sbatch")[-1])["dependency"] == "afterany:1000"
    assert run_record(layout)[2]["pending_jobs"] == ["1002"]
    # Nothing new to submit, so no scontrol: only sacct, the successor and its scancel.
    assert calls == {"sacct": 1, "sbatch": 1, "scancel": 1}


def test_a_turn_run_as_the_pending_successor_cancels_nothing(
    slurm: FakeSlurm, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    layout = submit(tmp_path / "runs", count=2)
    slurm.respond("sacct", {"stdout": "1000_0|PENDING|0:0\n"})
    turn(slurm, layout, monkeypatch, "1001")
    assert slurm.calls("scancel") == []
    assert run_record(layout)[2]["pending_jobs"] == ["1002"]


def test_liveness_asks_squeue_through_the_executor(
    slurm: FakeSlurm, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    layout = submit(tmp_path / "runs", count=2)
    _, _, record = run_record(layout)
    invalid = {"rc": 1, "stderr": "slurm_load_jobs error: Invalid job id specified\n"}
    slurm.respond(
        "squeue",
        {"stdout": "1001|PENDING|Dependency|0\n"},
        invalid,
        {"rc": 1, "stderr": "squeue: error: Socket timed out on send/recv operation\n"},
        {"stdout": "1001|COMPLETED|None|0\n"},
    )
    answers = []
    for _ in range(3):
        executor = SlurmExecutor()
        answers.append(dispatcher_alive(layout, as_record(record), executor))
        assert executor.calls == {"squeue": 1}
    assert answers == [True, False, None]
    # An older record (a turn has recorded a new successor meanwhile) is not a stall.
    older = {**record, "pending_jobs": ["999"]}
    assert dispatcher_alive(layout, as_record(older), SlurmExecutor()) is True
    assert dispatcher_alive(layout, DispatcherRecord(), SlurmExecutor()) is None
    assert slurm.tools().count("squeue") == 4


def test_status_reports_the_successor_alive_from_one_squeue_call(
    slurm: FakeSlurm, tmp_path: Path
) -> None:
    layout = submit(tmp_path / "runs", count=2)
    slurm.respond("squeue", {"stdout": "1001|RUNNING|None|0\n"})
    before = len(slurm.tools())
    status = load_status(layout.root, layout.run_id)
    assert status["dispatcher"]["alive"] is True
    assert slurm.tools()[before:] == ["squeue"]
    assert (
        load_status(layout.root, layout.run_id, ask_scheduler=False)["dispatcher"]["alive"] is None
    )


def test_elements_retried_in_one_turn_go_out_as_one_array_per_resource_shape(
    slurm: FakeSlurm, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REFLOW_MEM", "256M")
    layout, _ = start_with_prepare_done(slurm, tmp_path / "runs", monkeypatch, count=4)
    arrays = slurm.calls("sbatch")[2:4]
    ids = {task_of(call): str(1002 + number) for number, call in enumerate(arrays)}
    work_id, check_id = ids["work"], ids["check"]
    first_mem = memory_of(next(c for c in arrays if task_of(c) == "work"))
    slurm.respond(
        "sacct",
        {
            "stdout": f"{work_id}_0|OUT_OF_MEMORY|0:125\n{work_id}_1|OUT_OF_MEMORY|0:125\n"
            f"{work_id}_2|NODE_FAIL|0:0\n{work_id}_3|RUNNING|0:0\n"
            f"{check_id}_[0-3]|RUNNING|0:0\n"
        },
    )
    before = len(slurm.calls("sbatch"))
    turn(slurm, layout, monkeypatch, "1005")
    retried = [call for call in slurm.calls("sbatch")[before:] if task_of(call) == "work"]
    # Two shapes: the elements out of memory with twice the memory, the lost one as it was.
    shapes = sorted((array_elements(call), memory_of(call)) for call in retried)
    assert shapes == [([0, 1], first_mem * 2), ([2], first_mem)]
    assert state_counts(layout)["work"] == {"submitted": 4}


def array_elements(call: list[str]) -> list[int]:
    """The elements of a submitted script's ``--array`` line."""
    lines = sbatch_script(call).read_text().splitlines()
    spec = next(line for line in lines if line.startswith("#SBATCH --array="))
    return sorted(expand(spec.removeprefix("#SBATCH --array=").split("%")[0]))


def memory_of(call: list[str]) -> int:
    """The ``--mem`` of a submitted script, in MB."""
    lines = sbatch_script(call).read_text().splitlines()
    value = next(line for line in lines if line.startswith("#SBATCH --mem="))
    return int(value.removeprefix("#SBATCH --mem=").removesuffix("M"))
