"""The right-sizing report of a local run: figures from the workers, advice the decorators take.

One run of ``tests/flows/sized_steps.py`` (a task holding 300 MB, one sleeping with a 4G
request, one keeping a core busy) is followed with ``--wait`` and reported on through the
flow file and the ``reflow`` console script, as subprocesses. A run of
``tests/flows/packed_usage.py`` has its elements run packed, as Slurm array tasks run them,
so their results are lines of bundles. How a Slurm report splits a packed array task's
accounting between its elements is checked on made-up ``sacct`` figures.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from benchmarks.rundirs import finish_prepare, new_run
from reflow import Workflow
from reflow.definition.resources import parse_mem, parse_time
from reflow.running.commands.report import element_usages, group_by_job
from reflow.running.commands.sizing import HEADROOM, ElementUsage
from reflow.running.dispatch.dispatcher import make_dispatcher
from reflow.running.executors.slurm_usage import JobUsage
from reflow.running.store.records import InstanceRow
from reflow.running.store.sqlite import SqliteStore
from reflow.running.store.states import InstanceState
from tests.flows import packed_usage, sized_steps
from tests.integration.flowfiles import cli
from tests.integration.test_status_arrivals import RecordingExecutor, start_array_task

FLOW = Path(__file__).resolve().parents[1] / "flows" / "sized_steps.py"


@dataclass(frozen=True)
class SizedRun:
    base: Path
    run_dir: Path
    run_id: str
    waited: str


@pytest.fixture(scope="module")
def sized_run(tmp_path_factory: pytest.TempPathFactory) -> SizedRun:
    base = tmp_path_factory.mktemp("sized")
    run_dir = base / "runs"
    done = cli(FLOW, "submit", "--run-dir", str(run_dir), "--wait", cwd=base)
    assert done.returncode == 0, done.stdout + done.stderr
    run_id = done.stdout.split("submitted run ", 1)[1].split()[0]
    return SizedRun(base, run_dir, run_id, done.stdout)


def report(run: SizedRun, *args: str) -> dict[str, Any]:
    done = cli(FLOW, "report", *args, "--run-dir", str(run.run_dir), "--json", cwd=run.base)
    assert done.returncode == 0, done.stderr
    data: dict[str, Any] = json.loads(done.stdout)
    return data


def tasks(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {task["task"]: task for task in data["tasks"]}


def test_the_worker_measures_peak_memory_and_cpu_time(sized_run: SizedRun) -> None:
    data = report(sized_run, sized_run.run_id)
    assert (data["run_id"], data["source"], data["from_cache"]) == (sized_run.run_id, "worker", 0)
    found = tasks(data)
    hog, nap, spin = found["hog"], found["nap"], found["spin"]
    assert 300 <= hog["used"]["peak_rss_mb"]["max"] <= 400
    assert hog["requested"] == {"cpus": None, "mem_mb": 512, "time_s": None}
    assert hog["mem_efficiency"]["max"] == pytest.approx(hog["used"]["peak_rss_mb"]["max"] / 512)
    assert nap["used"]["peak_rss_mb"]["max"] < 100
    assert nap["used"]["elapsed_s"]["p50"] >= 1.0
    assert nap["cpu_efficiency"]["max"] < 0.2
    assert spin["used"]["cpu_s"]["p50"] >= 1.0
    assert spin["cpu_efficiency"]["p50"] > nap["cpu_efficiency"]["p50"]
    assert nap["core_hours"]["limit"] == pytest.approx(600 / 3600)
    assert hog["core_hours"]["limit"] is None
    assert nap["core_hours"]["allocated"] == pytest.approx(nap["used"]["elapsed_s"]["max"] / 3600)


def test_json_has_every_figure_of_every_task(sized_run: SizedRun) -> None:
    data = report(sized_run)  # the latest run
    assert set(data) == {"run_id", "run_dir", "executor", "source", "note", "from_cache", "tasks"}
    assert data["note"] is None
    for task in data["tasks"]:
        assert set(task) == {
            "task", "elements", "from_cache", "requested", "used", "cpu_efficiency",
            "mem_efficiency", "core_hours", "suggestion", "underused",
        }  # fmt: skip
        assert task["elements"] == 1
        assert set(task["used"]) == {"peak_rss_mb", "elapsed_s", "cpu_s"}
        for figure in task["used"].values():
            assert set(figure) == {"p50", "p95", "max"}
        assert set(task["core_hours"]) == {"allocated", "limit", "used"}
    assert tasks(data)["spin"]["mem_efficiency"] is None


def test_each_suggestion_is_valid_for_the_decorator_and_keeps_headroom(
    sized_run: SizedRun,
) -> None:
    wf = Workflow("advised")
    for name, task in tasks(report(sized_run)).items():
        advice = task["suggestion"]
        assert set(advice) == {"cpus", "mem", "time"}
        wf.job(name=name, **advice)(_noop)
        assert parse_mem(advice["mem"]) >= task["used"]["peak_rss_mb"]["p95"] * HEADROOM
        assert parse_time(advice["time"]) >= task["used"]["elapsed_s"]["p95"] * HEADROOM
    assert parse_mem(tasks(report(sized_run))["hog"]["suggestion"]["mem"]) < 512


def _noop() -> None:
    return None


def test_wait_ends_with_one_line_pointing_to_the_report_for_the_task_that_asked_too_much(
    sized_run: SizedRun,
) -> None:
    pointers = [line for line in sized_run.waited.splitlines() if "under a third" in line]
    assert len(pointers) == 1, sized_run.waited
    (line,) = pointers
    assert "nap (mem and time)" in line
    assert "hog" not in line
    assert "spin" not in line
    assert f"reflow report {sized_run.run_id} --run-dir {sized_run.run_dir}" in line


def test_the_console_script_gives_the_same_report_as_a_table(sized_run: SizedRun) -> None:
    env = {**os.environ, "XDG_CONFIG_HOME": str(sized_run.base / "config")}
    console = [sys.executable, "-m", "reflow.running.commands.console"]
    done = subprocess.run(
        [*console, "report", "--run-dir", str(sized_run.run_dir)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == f"run {sized_run.run_id}: figures from the workers"
    assert lines[1].split()[:3] == ["task", "n", "cpus"]
    rows = {line.split()[0]: line for line in lines[2:]}
    assert set(rows) == {"hog", "nap", "spin"}
    assert "mem='448M'" in rows["hog"] or "mem='384M'" in rows["hog"]


def test_a_resubmitted_run_leaves_its_cached_elements_out_and_says_how_many(
    sized_run: SizedRun, tmp_path: Path
) -> None:
    copy = SizedRun(tmp_path, tmp_path / "runs", sized_run.run_id, "")
    shutil.copytree(sized_run.run_dir, copy.run_dir)
    done = cli(FLOW, "submit", "--run-dir", str(copy.run_dir), "--wait", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "under a third" not in done.stdout
    data = report(copy)
    assert data["run_id"] != sized_run.run_id
    assert data["from_cache"] == 3
    assert all(task["elements"] == 0 for task in data["tasks"])
    table = cli(FLOW, "report", "--run-dir", str(copy.run_dir), cwd=tmp_path)
    assert "3 cached element(s) left out" in table.stdout
    assert "no element of this run has finished; cached elements ran in an earlier run" in (
        table.stdout
    )


def test_an_unknown_run_is_one_line_and_exit_2(sized_run: SizedRun) -> None:
    done = cli(FLOW, "report", "nope", "--run-dir", str(sized_run.run_dir), cwd=sized_run.base)
    assert done.returncode == 2
    (line,) = done.stderr.splitlines()
    assert "nope" in line


def test_run_wait_with_progress_ends_with_the_same_pointer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REFLOW_MODE", "local")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.chdir(tmp_path)
    run = sized_steps.wf.submit(
        run_dir=tmp_path / "runs", megabytes=200, hold=0.1, seconds=0.2, busy=0.1
    )
    printed = io.StringIO()
    assert run.wait(timeout=120, progress=True, file=printed) == "succeeded"
    last = printed.getvalue().splitlines()[-1]
    assert last.startswith("  asked too much: nap (mem and time)")
    assert last.endswith(f"see reflow report {run.run_id} --run-dir {tmp_path / 'runs'}")


def test_elements_of_packed_array_tasks_each_get_their_own_figures(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    layout = new_run(tmp_path, 4, flow=packed_usage)
    finish_prepare(layout, 4, flow=packed_usage)
    executor = RecordingExecutor()
    with SqliteStore.open(tmp_path) as store:
        make_dispatcher(layout, store, executor).turn()  # burn goes out, two per array task
    (request,) = executor.requests
    assert (request.task, request.pack) == ("burn", 2)
    workers = [start_array_task(request, array_task) for array_task in (0, 1)]
    assert [worker.wait(timeout=60) for worker in workers] == [0, 0]
    bundles = sorted(p.name for p in layout.results_dir("burn").iterdir())
    assert bundles == [f"{request.batch_id}.0.jsonl", f"{request.batch_id}.1.jsonl"]
    with SqliteStore.open(tmp_path) as store:
        make_dispatcher(layout, store, executor).ingest()
        assert store.state_counts(layout.run_id)["burn"] == {"done": 4}
    console = Path(sys.executable).with_name("reflow")
    done = subprocess.run(
        [str(console), "report", layout.run_id, "--run-dir", str(tmp_path), "--json"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    burn = tasks(json.loads(done.stdout))["burn"]
    assert burn["elements"] == 4
    assert burn["requested"]["time_s"] == 60  # per element, not the array task's 2 minutes
    # Items 0..3 burn 0.1, 0.4, 0.7 and 1.0 s of CPU, two to an array task: each element's
    # own figure, not its array task's (0.5 s and 1.7 s).
    cpu = burn["used"]["cpu_s"]
    assert cpu is not None, "the elements' CPU time in the bundles was not read"
    assert 0.3 <= cpu["p50"] < 0.6
    assert 0.9 <= cpu["max"] < 1.5
    elapsed = burn["used"]["elapsed_s"]  # wall time: only bounded below, a busy host slows it
    assert elapsed["max"] >= 0.9
    assert elapsed["p50"] < elapsed["max"]
    assert burn["core_hours"]["used"] == pytest.approx(2.2 / 3600, rel=0.3)


def _row(element: int, job_id: str, batch: str = "b1", task: str = "work") -> InstanceRow:
    return InstanceRow(
        task=task, element=element, identity=f"id{element}", state=InstanceState.DONE,
        attempts=1, batch=batch, job_id=job_id, submitted=0.0, started=1.0, ended=2.0,
        reason=None, error=None, host="node", peak_rss_mb=None,
    )  # fmt: skip


def _worker(element: int, seconds: float) -> ElementUsage:
    return ElementUsage(
        element=element, elapsed_s=seconds, cpu_s=seconds / 2, peak_rss_mb=100.0 + element
    )


def test_packed_elements_take_their_workers_figures_and_the_request_per_element() -> None:
    # Batch b1 packs 3 per array task: 7_0 ran elements 0-2, 7_1 element 3 alone (the last
    # array task still asked for three times the element's minute); 8 ran element 4 unpacked.
    rows = [_row(0, "7_0"), _row(1, "7_0"), _row(2, "7_0"), _row(3, "7_1"), _row(4, "8", "b2")]
    packed = JobUsage(
        state="COMPLETED", elapsed_s=90.0, cpu_s=80.0, peak_rss_mb=500.0, mem_mb=1024.0,
        cpus=2, time_s=180.0,
    )  # fmt: skip
    alone = JobUsage(
        state="COMPLETED", elapsed_s=40.0, cpu_s=30.0, peak_rss_mb=300.0, mem_mb=1024.0,
        cpus=2, time_s=180.0,
    )  # fmt: skip
    own = JobUsage(
        state="COMPLETED", elapsed_s=20.0, cpu_s=10.0, peak_rss_mb=200.0, mem_mb=512.0,
        cpus=1, time_s=60.0,
    )  # fmt: skip
    workers = {("work", e): _worker(e, 10.0 * (e + 1)) for e in range(5)}
    jobs = group_by_job(rows)
    assert {job: [row.element for row in found] for job, found in jobs.items()} == {
        "7_0": [0, 1, 2], "7_1": [3], "8": [4],
    }  # fmt: skip
    usages = element_usages(
        jobs, {"7_0": packed, "7_1": alone, "8": own}, workers=workers, packs={"b1": 3, "b2": 1}
    )
    found = {usage.element: usage for usage in usages["work"]}
    assert sorted(found) == [0, 1, 2, 3, 4]
    for element in (0, 1, 2):
        assert found[element] == ElementUsage(
            element=element, elapsed_s=10.0 * (element + 1), cpu_s=5.0 * (element + 1),
            peak_rss_mb=100.0 + element, cpus=2, mem_mb=1024.0, time_s=60.0,
        )  # fmt: skip
    # A job of one element keeps accounting's figures, as an unpacked one does; its time
    # request is still per element.
    assert found[3] == ElementUsage(
        element=3, elapsed_s=40.0, cpu_s=30.0, peak_rss_mb=300.0, cpus=2, mem_mb=1024.0,
        time_s=60.0,
    )  # fmt: skip
    assert found[4] == ElementUsage(
        element=4, elapsed_s=20.0, cpu_s=10.0, peak_rss_mb=200.0, cpus=1, mem_mb=512.0,
        time_s=60.0,
    )  # fmt: skip


def test_the_element_of_an_array_task_that_ran_a_turn_takes_its_workers_figures() -> None:
    # 8_0 ended its batch last and ran the next dispatcher turn in its job: accounting counts
    # the turn's memory and time in, so the element's own figures come from its worker.
    rows = [_row(0, "8_0"), _row(1, "8_1")]
    job = JobUsage(
        state="COMPLETED", elapsed_s=30.0, cpu_s=20.0, peak_rss_mb=900.0, mem_mb=1024.0,
        cpus=1, time_s=60.0,
    )  # fmt: skip
    workers = {("work", e): _worker(e, 2.0) for e in range(2)}
    usages = element_usages(
        group_by_job(rows), {"8_0": job, "8_1": job}, workers=workers, packs={}, turned={"8_0"}
    )
    found = {usage.element: usage for usage in usages["work"]}
    assert (found[0].peak_rss_mb, found[0].elapsed_s, found[0].mem_mb) == (100.0, 2.0, 1024.0)
    assert (found[1].peak_rss_mb, found[1].elapsed_s) == (900.0, 30.0)


def test_a_packed_job_unknown_to_accounting_or_a_batch_file_is_handled() -> None:
    rows = [_row(0, "7_0"), _row(1, "7_0"), _row(2, "9_0"), _row(3, "9_0")]
    job = JobUsage(state="COMPLETED", elapsed_s=90.0, cpus=1, mem_mb=256.0, time_s=120.0)
    workers = {("work", e): _worker(e, 1.0) for e in range(4)}
    usages = element_usages(group_by_job(rows), {"7_0": job}, workers=workers, packs={})
    # 9_0 is not in accounting: left out; without b1's pack, the job's two elements divide it.
    assert [(u.element, u.time_s, u.elapsed_s) for u in usages["work"]] == [
        (0, 60.0, 1.0), (1, 60.0, 1.0),
    ]  # fmt: skip


def test_the_request_is_what_the_run_was_submitted_with_not_todays_config(
    sized_run: SizedRun, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REFLOW_CPUS", "3")  # a default set after the run was submitted
    monkeypatch.setenv("REFLOW_TIME", "02:00:00")
    hog = tasks(report(sized_run))["hog"]
    assert hog["requested"] == {"cpus": None, "mem_mb": 512, "time_s": None}
