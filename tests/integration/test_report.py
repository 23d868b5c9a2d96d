"""The right-sizing report of a local run: figures from the workers, advice the decorators take.

One run of ``tests/flows/sized_steps.py`` (a task holding 300 MB, one sleeping with a 4G
request, one keeping a core busy) is followed with ``--wait`` and reported on through the
flow file and the ``reflow`` console script, as subprocesses.
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

from reflow import Workflow
from reflow.definition.resources import parse_mem, parse_time
from reflow.running.commands.sizing import HEADROOM
from tests.flows import sized_steps
from tests.integration.flowfiles import cli

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
