"""Whole runs through the Slurm executor and the dispatcher chain on the real cluster.

Runs are submitted in-process with ``REFLOW_MODE=slurm``: the first turn runs in the test,
every later one as a dispatcher job. Each run starts from its own working directory, which
is how its jobs are found in sacct and squeue (see ``scheduler.py``); the store is read
directly, so waiting for a run costs the scheduler nothing.
"""

from __future__ import annotations

import getpass
import json
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from reflow.run import Run
from reflow.running.commands.status import render_status
from reflow.running.commands.usage import underused_line
from reflow.running.ranges import expand
from reflow.running.rundir.layout import RunLayout
from reflow.workflow import Workflow
from tests.flows import slurm_demo, slurm_faults, slurm_refused
from tests.slurm.scheduler import (
    accounted_jobs,
    array_specs,
    arrays_by_name,
    batches,
    dispatcher_record,
    flaky_sbatch,
    logged_calls,
    logging_wrappers,
    query,
    run_state,
    sacct_jobs,
    set_max_array_size,
    slurm,
    squeue_jobs,
    status,
    turn_places,
    wait_for_run,
    wait_until_no_jobs,
)

pytestmark = [pytest.mark.slurm, pytest.mark.usefixtures("slurm_cluster")]

DEMO = {"start": "2025-01-01", "end": "2025-01-31", "bucket": "b"}
FANOUT = 50
DEADLINE_S = 120.0
REQUIRE_ENV = "REFLOW_REQUIRE_SLURM"


TEST_RESULT_GRACE_S = 3
"""``[executor] result_grace`` of the Slurm tests (the default, 60 s, is for a shared FS)."""


def clean_env(monkeypatch: pytest.MonkeyPatch, config_home: Path) -> None:
    """Slurm mode, no user config, and none of the developer's ``REFLOW_*`` settings."""
    for key in list(os.environ):
        if key.startswith("REFLOW_") and key != REQUIRE_ENV:
            monkeypatch.delenv(key)
    monkeypatch.setenv("REFLOW_MODE", "slurm")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(config_home))
    # The run directories are on this machine's own disk, where a result is visible the
    # moment its job ends: a short grace keeps failure tests short. The tests of the grace
    # itself set their own.
    monkeypatch.setenv("REFLOW_RESULT_GRACE", str(TEST_RESULT_GRACE_S))


class Workdirs:
    """Working directories of the runs of one test; their jobs are cancelled at the end."""

    def __init__(self, base: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.base = base
        self.monkeypatch = monkeypatch
        self.made: list[Path] = []

    def enter(self, name: str) -> Path:
        """Create ``name`` and make it the current directory (the runs' ``--chdir``)."""
        path = self.base / name
        path.mkdir(parents=True)
        self.made.append(path)
        self.monkeypatch.chdir(path)
        return path

    def submit(self, wf: Workflow, run_dir: Path, name: str, **params: Any) -> str:
        """Submit ``wf`` from the new working directory ``name``; return the run id."""
        self.enter(name)
        return wf.submit(run_dir=run_dir, **params).run_id

    def cancel_leftovers(self) -> None:
        left = [job for path in self.made for job in squeue_jobs(path)]
        if left:
            slurm("scancel", *left)


def wait_until(predicate: Callable[[], bool], what: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {timeout_s:g} s")
        time.sleep(0.2)


def wait_for_queued_turn(run_dir: Path, run_id: str, workdir: Path, *, started: Path) -> None:
    """Wait until ``started`` exists and the run's next dispatcher turn is in the queue."""

    def queued() -> bool:
        pending = dispatcher_record(run_dir, run_id).get("pending_jobs") or []
        return started.exists() and bool(set(pending) & set(squeue_jobs(workdir)))

    wait_until(queued, f"{started.name} written and the next turn of {run_id} queued")


def output(run_dir: Path, run_id: str, task: str) -> list[Any]:
    rows = query(
        run_dir,
        "SELECT o.value FROM instances i JOIN outputs o ON o.identity = i.identity"
        " WHERE i.run_id = ? AND i.task = ? ORDER BY i.element",
        run_id,
        task,
    )
    return [json.loads(value) for (value,) in rows]


def counts(run_dir: Path, run_id: str) -> dict[str, dict[str, int]]:
    return {t["task"]: t["counts"] for t in status(run_dir, run_id)["tasks"]}


def batch_sizes(run_dir: Path, run_id: str, task: str) -> list[int]:
    layout = RunLayout(run_dir, run_id)
    return [
        len(json.loads(layout.batch(batch).read_text())["elements"])
        for name, batch, _ids in batches(run_dir, run_id)
        if name == task
    ]


# A run whose element runs past its time limit: started with the module, because Slurm
# kills it only 70-90 s after it starts; the failure test at the end of the file reads it.


@dataclass(frozen=True)
class FaultRun:
    run_dir: Path
    run_id: str


@pytest.fixture(scope="module")
def timeout_run(
    slurm_cluster: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FaultRun]:
    base = tmp_path_factory.mktemp("timeout")
    with pytest.MonkeyPatch.context() as monkeypatch:
        clean_env(monkeypatch, base / "config")
        dirs = Workdirs(base, monkeypatch)
        run_id = dirs.submit(slurm_faults.wf, base / "runs", "work", fault="timeout")
    yield FaultRun(base / "runs", run_id)
    dirs.cancel_leftovers()


# The 50-element demo, submitted once for the tests that read it.


@dataclass(frozen=True)
class DemoRun:
    run_dir: Path
    run_id: str
    workdir: Path
    since: float
    calls_log: Path
    seconds: float


@pytest.fixture(scope="module")
def demo_run(
    slurm_cluster: None, tmp_path_factory: pytest.TempPathFactory, timeout_run: FaultRun
) -> DemoRun:
    # timeout_run: asked for here only so that its slow job starts with the first test.
    base = tmp_path_factory.mktemp("demo")
    log = base / "calls.log"
    with pytest.MonkeyPatch.context() as monkeypatch:
        clean_env(monkeypatch, base / "config")
        wrappers = logging_wrappers(base / "bin", log)
        monkeypatch.setenv("PATH", f"{wrappers}{os.pathsep}{os.environ['PATH']}")
        dirs = Workdirs(base, monkeypatch)
        since = time.time()
        started = time.monotonic()
        run_id = dirs.submit(slurm_demo.wf, base / "runs", "work", count=FANOUT, **DEMO)
        try:
            state = wait_for_run(base / "runs", run_id, timeout_s=DEADLINE_S)
            seconds = time.monotonic() - started
            assert state == "succeeded", status(base / "runs", run_id)
            wait_until_no_jobs(dirs.made[0])
        except BaseException:
            dirs.cancel_leftovers()
            raise
    return DemoRun(base / "runs", run_id, dirs.made[0], since, log, seconds)


def test_fifty_element_demo_submits_one_job_per_task_per_turn_and_none_per_element(
    demo_run: DemoRun,
) -> None:
    assert output(demo_run.run_dir, demo_run.run_id, "finalize") == [f"{FANOUT} files"]
    recorded = batches(demo_run.run_dir, demo_run.run_id)
    assert [(task, len(ids)) for task, _batch, ids in recorded] == [
        ("prepare", 1),
        ("convert", 1),
        ("finalize", 1),
    ]
    assert array_specs(demo_run.run_dir, demo_run.run_id, "convert") == [f"0-{FANOUT - 1}"]

    jobs = accounted_jobs(demo_run.run_dir, demo_run.run_id, demo_run.workdir, demo_run.since)
    # Turn 1 (in submit) submits prepare; the last array task of prepare, of convert and of
    # finalize each runs the next turn in its own job (turns 2 to 4: convert, finalize, the
    # end), and cancels the turn job queued behind its batch before Slurm starts it.
    assert arrays_by_name(jobs) == {"prepare.sdemo": 1, "convert.sdemo": 1, "finalize.sdemo": 1}
    task_jobs = {job.parent for job in jobs}
    assert task_jobs == {ids[0] for _task, _batch, ids in recorded}
    places = turn_places(demo_run.run_dir, demo_run.run_id)
    assert places["job"] == []
    assert sorted(name.partition("_")[0] for name in places["array task"]) == sorted(task_jobs)
    assert dispatcher_record(demo_run.run_dir, demo_run.run_id)["turns"] == 4
    assert sum(job.name == "convert.sdemo" for job in jobs) == FANOUT
    assert all(job.state == "COMPLETED" for job in jobs)
    calls = [c for turn in logged_calls(demo_run.calls_log).values() for c in turn]
    # 3 arrays and 3 turn jobs submitted; each turn job cancelled by the turn that replaced it
    assert Counter(tool for tool, _args in calls if tool in ("sbatch", "scancel")) == {
        "sbatch": 6,
        "scancel": 3,
    }


def stores_job_comments() -> bool:
    """Whether sacct shows ``--comment``: ``AccountingStoreFlags=job_comment`` is set."""
    flags = [
        line.partition("=")[2]
        for line in slurm("scontrol", "show", "config").splitlines()
        if line.split("=")[0].strip() == "AccountingStoreFlags"
    ]
    return any("job_comment" in value for value in flags)


def test_squeue_and_sacct_show_task_first_names_and_the_run_id_comment(
    tmp_path: Path, workdirs: Workdirs
) -> None:
    run_dir = tmp_path / "runs"
    since = time.time()
    run_id = workdirs.submit(slurm_demo.wf, run_dir, "work", count=3, **DEMO)
    workdir = workdirs.made[0]
    comment = f"reflow:{run_id}"
    seen: set[str] = set()

    def listed_with_comment() -> bool:
        text = slurm("squeue", "-h", "-r", "-o", "%j|%k|%Z")
        rows = [line.split("|") for line in text.splitlines()]
        seen.update(r[0] for r in rows if len(r) == 3 and r[1:] == [comment, str(workdir)])
        return bool(seen) or run_state(run_dir, run_id) != "running"

    wait_until(listed_with_comment, f"a job of {run_id} in squeue")
    assert seen, "the run ended before squeue listed one of its jobs"
    assert seen <= {"prepare.sdemo", "convert.sdemo", "finalize.sdemo", "dispatch.sdemo"}
    assert wait_for_run(run_dir, run_id, timeout_s=DEADLINE_S) == "succeeded"

    wanted = {job for _task, _batch, ids in batches(run_dir, run_id) for job in ids}
    start = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(since - 2))
    deadline = time.monotonic() + 30
    while True:
        fields = "--format=JobID,JobName%30,Comment%60,WorkDir%400"
        text = slurm("sacct", "-X", "-n", "-P", "-S", start, fields)
        rows = [line.split("|") for line in text.splitlines()]
        mine = [r for r in rows if len(r) == 4 and r[3] == str(workdir)]
        if wanted <= {r[0].partition("_")[0] for r in mine} or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    names = Counter(r[1] for r in mine)
    # No dispatcher job ran: each later turn ran in the last array task of a batch.
    assert set(names) == {"prepare.sdemo", "convert.sdemo", "finalize.sdemo"}
    assert names["convert.sdemo"] == 3
    if stores_job_comments():
        assert {r[2] for r in mine} == {comment}


def test_each_array_task_leaves_at_most_one_scheduler_file_and_no_empty_file(
    demo_run: DemoRun,
) -> None:
    layout = RunLayout(demo_run.run_dir, demo_run.run_id)
    logs = sorted(
        path.relative_to(layout.run) for path in layout.run.glob("logs/**/*") if path.is_file()
    )
    # convert prints only for files numbered ...3; every other element succeeded silently.
    printing = [e for e in range(FANOUT) if e % 10 == 3]
    assert [str(path) for path in logs if path.suffix != ".out"] == sorted(
        f"logs/convert/{e}.log" for e in printing
    )
    assert not [path for path in logs if path.suffix == ".out"]
    task_files = [
        path
        for folder in ("logs", "results", "scripts", "batches", "inputs")
        for path in (layout.run / folder).rglob("*")
        if path.is_file()
    ]
    assert [path for path in task_files if path.stat().st_size == 0] == []
    assert len(task_files) < 2 * (FANOUT + 2)


def reflow_logs(flow: Path, run_dir: Path, run_id: str, *args: str) -> str:
    """``logs RUN_ID ARGS`` through the flow file's CLI; its output."""
    result = subprocess.run(
        [sys.executable, str(flow), "logs", run_id, *args, "--run-dir", str(run_dir)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_logs_shows_an_elements_output_and_no_output_for_a_silent_one(
    demo_run: DemoRun,
) -> None:
    flow = Path(slurm_demo.__file__)
    third = reflow_logs(flow, demo_run.run_dir, demo_run.run_id, "convert", "3")
    assert "3.log (done)" in third
    assert "==> reflow: convert[3] batch " in third
    assert "converting era5-2025-01-01-2025-01-31-003.nc\n" in third
    assert "scheduler's output" not in third
    fourth = reflow_logs(flow, demo_run.run_dir, demo_run.run_id, "convert", "4")
    assert "4.log (done)\n(no output)\n" in fourth


def test_each_turn_asks_the_scheduler_at_most_once_per_kind_of_query(demo_run: DemoRun) -> None:
    calls = logged_calls(demo_run.calls_log)
    # The login turn, then the turns run by the last array task of prepare and of convert
    # (each logged under that task's own job id); the last turn only ingests, ends the run
    # and cancels the turn job queued behind finalize.
    assert "login" in calls
    assert len(calls) == 4
    for turn, turn_calls in calls.items():
        tools = Counter(tool for tool, _args in turn_calls)
        assert tools["sacct"] <= 1, (turn, turn_calls)
        assert tools["squeue"] <= 1, (turn, turn_calls)
        assert tools["scontrol"] <= 1, (turn, turn_calls)
        assert all(args == "show config" for tool, args in turn_calls if tool == "scontrol")
        assert tools["scancel"] == (0 if turn == "login" else 1), (turn, turn_calls)
        # sacctmgr (the submit budget's default) is asked once per run, in the first turn.
        assert tools["sacctmgr"] <= (2 if turn == "login" else 0), (turn, turn_calls)
        scripts = [args.split()[-1] for tool, args in turn_calls if tool == "sbatch"]
        successors = [s for s in scripts if s.endswith("/dispatcher.sh")]
        task_scripts = [Path(s).name.split("-")[0] for s in scripts if s not in successors]
        assert len(successors) <= 1, (turn, turn_calls)
        assert len(task_scripts) == len(set(task_scripts)) <= 1, (turn, turn_calls)
    assert "sacct" not in {tool for tool, _args in calls["login"]}


def test_resubmit_with_two_inputs_changed_submits_one_array_of_exactly_the_misses(
    demo_run: DemoRun, workdirs: Workdirs
) -> None:
    since = time.time()
    run_id = workdirs.submit(
        slurm_demo.wf, demo_run.run_dir, "again", count=FANOUT, revise="3,17", **DEMO
    )
    assert wait_for_run(demo_run.run_dir, run_id, timeout_s=DEADLINE_S) == "succeeded"

    assert counts(demo_run.run_dir, run_id)["convert"] == {"done": 2, "cached": FANOUT - 2}
    convert = [ids for task, _b, ids in batches(demo_run.run_dir, run_id) if task == "convert"]
    assert [len(ids) for ids in convert] == [1]
    assert array_specs(demo_run.run_dir, run_id, "convert") == ["3,17"]
    jobs = accounted_jobs(demo_run.run_dir, run_id, workdirs.made[0], since)
    assert arrays_by_name(jobs)["convert.sdemo"] == 1
    assert {j.job_id for j in jobs if j.name == "convert.sdemo"} == {
        f"{convert[0][0]}_3",
        f"{convert[0][0]}_17",
    }


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {
        str(path.relative_to(folder)): (path.stat().st_size, path.stat().st_mtime_ns)
        for path in folder.rglob("*")
    }


def dry_run(run_dir: Path, **params: object) -> str:
    """``submit`` with ``REFLOW_MODE=dry-run`` through the flow file's CLI; its output."""
    flags = [f"--{key}={value}" for key, value in params.items()]
    result = subprocess.run(
        [sys.executable, slurm_demo.__file__, "submit", "--run-dir", str(run_dir), *flags],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "REFLOW_MODE": "dry-run"},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_dry_run_prints_the_batch_scripts_and_submits_and_writes_nothing(
    demo_run: DemoRun, workdirs: Workdirs, tmp_path: Path
) -> None:
    before = snapshot(demo_run.run_dir)
    workdir = workdirs.enter("dry")
    since = time.time()

    text = dry_run(demo_run.run_dir, count=FANOUT, **{**DEMO, "bucket": "other"})
    # prepare is cached; convert (new bucket) would be one array of all 50 elements.
    assert "#SBATCH --job-name=convert.sdemo" in text
    assert f"#SBATCH --array=0-{FANOUT - 1}" in text
    assert f"--run-dir {demo_run.run_dir}" in text
    assert "#SBATCH --job-name=prepare.sdemo" not in text
    assert "--job-name=dispatch.sdemo" in text
    assert snapshot(demo_run.run_dir) == before

    fresh = tmp_path / "fresh"
    text = dry_run(fresh, count=FANOUT, **DEMO)
    assert "#SBATCH --job-name=prepare.sdemo" in text
    assert "#SBATCH --array=0\n" in text
    assert not fresh.exists()
    assert squeue_jobs(workdir) == []
    assert sacct_jobs(workdir, since) == []


def test_fan_out_beyond_max_array_size_is_split_into_arrays_within_the_limit(
    tmp_path: Path, workdirs: Workdirs
) -> None:
    if os.geteuid() != 0:
        pytest.skip("lowering MaxArraySize restarts the test cluster, which needs root")
    limit, count = 11, 40
    run_dir = tmp_path / "runs"
    since = time.time()
    set_max_array_size(limit)
    try:
        run_id = workdirs.submit(slurm_demo.wf, run_dir, "work", count=count, **DEMO)
        wait_until(
            lambda: (
                any(task == "convert" for task, _b, _i in batches(run_dir, run_id))
                or run_state(run_dir, run_id) != "running"
            ),
            "convert submitted",
        )
    finally:
        set_max_array_size(None)  # the cluster is shared: keep the window short
    assert wait_for_run(run_dir, run_id, timeout_s=DEADLINE_S) == "succeeded"

    specs = array_specs(run_dir, run_id, "convert")
    indices = [expand(spec) for spec in specs]
    assert len(specs) == 4
    assert max(max(each) for each in indices) < limit
    assert sum(len(each) for each in indices) == count
    jobs = accounted_jobs(run_dir, run_id, workdirs.made[0], since)
    assert arrays_by_name(jobs)["convert.sdemo"] == 4
    assert sum(job.name == "convert.sdemo" for job in jobs) == count
    assert output(run_dir, run_id, "finalize") == [f"{count} files"]


def test_submit_budget_caps_queued_instances_and_the_run_still_completes(
    tmp_path: Path, workdirs: Workdirs, monkeypatch: pytest.MonkeyPatch
) -> None:
    budget, count = 7, 20
    monkeypatch.setenv("REFLOW_SUBMIT_BUDGET", str(budget))
    run_dir = tmp_path / "runs"
    since = time.time()
    run_id = workdirs.submit(slurm_demo.wf, run_dir, "work", count=count, **DEMO)
    assert wait_for_run(run_dir, run_id, timeout_s=DEADLINE_S) == "succeeded"

    # Each turn runs in a job (prepare's or convert's last array task) that counts too.
    assert batch_sizes(run_dir, run_id, "convert") == [6, 6, 6, 2]
    assert dispatcher_record(run_dir, run_id)["submit_budget"] == budget
    jobs = [
        job
        for job in accounted_jobs(run_dir, run_id, workdirs.made[0], since)
        if not job.name.startswith("dispatch.")
    ]
    assert len(jobs) == count + 2
    # At equal seconds an end is counted before a submission (sacct has 1 s resolution).
    events = sorted([(j.submit, 1) for j in jobs] + [(j.end, -1) for j in jobs])
    queued = most = 0
    for _when, change in events:
        queued += change
        most = max(most, queued)
    assert most <= budget


def test_without_a_configured_budget_the_users_max_submit_jobs_sets_it(
    tmp_path: Path, workdirs: Workdirs, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("REFLOW_SUBMIT_BUDGET", raising=False)
    user = getpass.getuser()
    run_dir = tmp_path / "runs"
    slurm("sacctmgr", "-i", "modify", "user", user, "set", "MaxSubmitJobs=8")
    try:
        run_id = workdirs.submit(slurm_demo.wf, run_dir, "work", count=20, **DEMO)
        assert wait_for_run(run_dir, run_id, timeout_s=DEADLINE_S) == "succeeded"
    finally:
        slurm("sacctmgr", "-i", "modify", "user", user, "set", "MaxSubmitJobs=-1")
    # Asked by submit's first turn (while it queued prepare): 8, less one for the successor;
    # each later turn runs in a job that counts too, so convert goes out 6 at a time.
    assert dispatcher_record(run_dir, run_id)["submit_budget"] == 7
    assert batch_sizes(run_dir, run_id, "convert") == [6, 6, 6, 2]


def test_transient_sbatch_failures_are_retried_and_the_run_completes(
    tmp_path: Path, workdirs: Workdirs, monkeypatch: pytest.MonkeyPatch
) -> None:
    counter = tmp_path / "sbatch.calls"
    wrapper = flaky_sbatch(tmp_path / "bin", counter, failures=2)
    monkeypatch.setenv("PATH", f"{wrapper}{os.pathsep}{os.environ['PATH']}")
    run_dir = tmp_path / "runs"
    since = time.time()
    run_id = workdirs.submit(slurm_demo.wf, run_dir, "work", count=3, **DEMO)
    assert wait_for_run(run_dir, run_id, timeout_s=DEADLINE_S) == "succeeded"

    assert [task for task, _b, _ids in batches(run_dir, run_id)] == [
        "prepare",
        "convert",
        "finalize",
    ]
    jobs = accounted_jobs(run_dir, run_id, workdirs.made[0], since)
    assert arrays_by_name(jobs) == {"prepare.sdemo": 1, "convert.sdemo": 1, "finalize.sdemo": 1}
    # 2 refused, then 3 arrays and 3 turn jobs (each cancelled by the turn run in the array)
    assert int(counter.read_text()) == 2 + 6


def test_permanent_sbatch_refusal_fails_the_run_with_sbatchs_message(
    tmp_path: Path, workdirs: Workdirs, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_dir = tmp_path / "runs"
    # REFLOW_PARTITION: refused in the first turn, in submit itself.
    monkeypatch.setenv("REFLOW_PARTITION", "nosuchpartition")
    by_env = workdirs.submit(slurm_demo.wf, run_dir, "env", count=3, **DEMO)
    monkeypatch.delenv("REFLOW_PARTITION")
    # The decorator's partition: refused in a later turn, inside a dispatcher job.
    by_decorator = workdirs.submit(slurm_refused.wf, run_dir, "decorator", count=3)

    # The dispatcher's partition: the first turn cannot submit its successor.
    config = tmp_path / "dispatcher-config"
    (config / "reflow").mkdir(parents=True)
    (config / "reflow" / "config.toml").write_text(
        '[executor]\ndispatcher_partition = "nosuchpartition"\n'
    )
    monkeypatch.setenv("XDG_CONFIG_HOME", str(config))
    by_dispatcher = workdirs.submit(slurm_demo.wf, run_dir, "dispatcher", count=3, **DEMO)

    for run_id, task in ((by_env, "prepare"), (by_decorator, "work")):
        assert wait_for_run(run_dir, run_id, timeout_s=60) == "failed"
        data = status(run_dir, run_id)
        (group,) = data["failures"]
        assert (group["task"], group["reason"]) == (task, "submission")
        assert "Invalid partition name specified" in group["examples"][0]["error"]
        assert "Invalid partition name specified" in render_status(data)
    assert run_state(run_dir, by_dispatcher) == "failed"
    message = status(run_dir, by_dispatcher)["message"]
    assert "cannot submit the next dispatcher turn" in message
    assert "Invalid partition name specified" in message
    for workdir in workdirs.made:
        wait_until_no_jobs(workdir, timeout_s=30)


def settled_sacct_ids(workdir: Path, since: float) -> set[str]:
    """The job ids sacct lists, once two reads a second apart agree (sacct lags a little)."""
    deadline = time.monotonic() + 30
    previous = None
    while True:
        current = {job.job_id for job in sacct_jobs(workdir, since)}
        if current and current == previous:
            return current
        assert time.monotonic() < deadline, "sacct did not settle"
        previous = current
        time.sleep(1.0)


def test_cancel_leaves_no_job_queued_and_a_later_turn_does_not_revive_the_run(
    tmp_path: Path, workdirs: Workdirs
) -> None:
    run_dir = tmp_path / "runs"
    submitted = time.time()
    run_id = workdirs.submit(slurm_faults.wf, run_dir, "work", count=3, fault="hang")
    workdir = workdirs.made[0]

    wait_for_queued_turn(run_dir, run_id, workdir, started=run_dir / "started.hang")
    Run(run_dir, run_id).cancel()
    wait_until_no_jobs(workdir, timeout_s=30)
    assert run_state(run_dir, run_id) == "cancelled"
    recorded = batches(run_dir, run_id)
    jobs = settled_sacct_ids(workdir, submitted)

    subprocess.run(
        [
            sys.executable,
            "-m",
            "reflow.running.dispatch",
            "--run-dir",
            str(run_dir),
            "--run-id",
            run_id,
            "--slurm-turn",
        ],
        check=True,
        timeout=60,
    )
    assert run_state(run_dir, run_id) == "cancelled"
    assert batches(run_dir, run_id) == recorded
    assert squeue_jobs(workdir) == []
    assert {job.job_id for job in sacct_jobs(workdir, submitted)} == jobs
    # Elements that ended before the cancel but were not ingested yet are cancelled too.
    work = counts(run_dir, run_id)["work"]
    assert set(work) <= {"done", "cancelled"}
    assert work["cancelled"] >= 1


def test_a_dead_dispatcher_is_reported_by_status_and_retry_resumes_the_run(
    tmp_path: Path, workdirs: Workdirs
) -> None:
    run_dir = tmp_path / "runs"
    run_id = workdirs.submit(slurm_faults.wf, run_dir, "work", count=3, fault="wait")
    workdir = workdirs.made[0]

    wait_for_queued_turn(run_dir, run_id, workdir, started=run_dir / "started.wait")
    slurm("scancel", *dispatcher_record(run_dir, run_id)["pending_jobs"])
    run = Run(run_dir, run_id)
    assert run.wait(timeout=30) == "stalled"
    data = status(run_dir, run_id)
    assert (data["state"], data["dispatcher"]["alive"]) == ("running", False)
    assert f"retry {run_id}" in render_status(data)

    (run_dir / "fixed").touch()
    wait_until(lambda: squeue_jobs(workdir) == [], "the waiting element ended")
    assert run.retry() == 0
    assert wait_for_run(run_dir, run_id, timeout_s=DEADLINE_S) == "succeeded"
    assert output(run_dir, run_id, "total") == [30]


def cluster_has_cgroups() -> bool:
    return "proctrack/cgroup" in slurm("scontrol", "show", "config")


def test_each_way_an_element_dies_fails_the_run_with_its_reason_and_retry_completes_it(
    tmp_path: Path, workdirs: Workdirs, timeout_run: FaultRun
) -> None:
    # The TIMEOUT run was started with the module (its job must run 70-90 s); the others
    # go now, all at once.
    expected = {
        "oom": "out_of_memory" if cluster_has_cgroups() else "exit_code",
        "timeout": "timeout",
        "hang": "cancelled",
        "raise": "exception",
    }
    runs = {"timeout": (timeout_run.run_dir, timeout_run.run_id)}
    for fault in ("oom", "hang", "raise"):
        run_dir = tmp_path / fault
        runs[fault] = (run_dir, workdirs.submit(slurm_faults.wf, run_dir, fault, fault=fault))
    hang_dir, hang_id = runs["hang"]
    wait_until(lambda: (hang_dir / "started.hang").exists(), "the hanging element started")
    ((job_id,),) = query(
        hang_dir,
        "SELECT job_id FROM instances WHERE run_id = ? AND task = 'work' AND element = 1",
        hang_id,
    )
    slurm("scancel", job_id)

    for fault, (run_dir, run_id) in runs.items():
        assert wait_for_run(run_dir, run_id, timeout_s=180) == "failed"
        data = status(run_dir, run_id)
        assert data["state"] == "failed"
        (group,) = data["failures"]
        assert (group["task"], group["state"], group["count"]) == ("work", "failed", 1)
        assert group["reason"] == expected[fault], data
        (example,) = group["examples"]
        log = RunLayout(run_dir, run_id).log("work", 1)
        assert (example["element"], example["log"]) == (1, str(log))
        assert log.exists()
        text = render_status(data)
        label = f"{expected[fault]}: RuntimeError" if fault == "raise" else expected[fault]
        assert f"({label})" in text
        assert f"log: {log}" in text
        if fault == "raise":
            assert "RuntimeError: item 1 cannot be processed" in example["error"]
        elif fault != "oom" or expected["oom"] == "out_of_memory":
            assert {"timeout": "TIMEOUT", "hang": "CANCELLED", "oom": "OUT_OF_MEMORY"}[
                fault
            ] in example["error"]
            # The failure quotes the line of the job's Slurm output file that explains it.
            slurm_wrote = {"timeout": "DUE TO TIME LIMIT", "oom": "oom-kill event"}.get(fault)
            assert slurm_wrote is None or slurm_wrote in example["error"], example["error"]
        if fault == "oom" and expected["oom"] == "out_of_memory":
            # A task that ran out of memory is never told it asked for too much of it.
            line = underused_line(run_dir, run_id) or ""
            assert "work (time)" in line, line
            assert "work (mem" not in line, line
        shown = reflow_logs(Path(slurm_faults.__file__), run_dir, run_id, "work", "1")
        assert "==> reflow: work[1] batch " in shown
        slurm_says = {"timeout": "DUE TO TIME LIMIT", "hang": "CANCELLED AT"}.get(fault)
        if slurm_says is not None:
            assert "(the scheduler's output of job " in shown, shown
            assert slurm_says in shown.partition("(the scheduler's output of job ")[2], shown

    for run_dir, run_id in runs.values():
        (run_dir / "fixed").touch()
        assert Run(run_dir, run_id).retry() == 1
    for run_dir, run_id in runs.values():
        assert wait_for_run(run_dir, run_id, timeout_s=DEADLINE_S) == "succeeded"
        assert output(run_dir, run_id, "total") == [30]


def test_retry_of_a_live_run_replaces_its_queued_turn_instead_of_forking_the_chain(
    tmp_path: Path, workdirs: Workdirs
) -> None:
    run_dir = tmp_path / "runs"
    run_id = workdirs.submit(slurm_faults.wf, run_dir, "work", count=3, fault="wait")
    workdir = workdirs.made[0]

    wait_for_queued_turn(run_dir, run_id, workdir, started=run_dir / "started.wait")
    (old,) = dispatcher_record(run_dir, run_id)["pending_jobs"]
    assert Run(run_dir, run_id).retry() == 0
    (new,) = dispatcher_record(run_dir, run_id)["pending_jobs"]
    assert new != old
    queued = squeue_jobs(workdir)
    assert new in queued
    assert old not in queued

    (run_dir / "fixed").touch()
    assert wait_for_run(run_dir, run_id, timeout_s=DEADLINE_S) == "succeeded"
