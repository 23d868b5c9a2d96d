"""The right-sizing report of a Slurm run, and the scheduler's own words in a failure.

A run of ``tests/flows/sized_steps.py`` (a task holding 300 MB, one sleeping with a 4G
request, one keeping a core busy) is reported on from accounting with one ``sacct`` call. A
run whose interpreter cannot start on the node fails with the shell's ``not found`` line,
quoted from the job's Slurm output file.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from reflow.definition.resources import parse_mem, parse_time
from reflow.running.commands.report import load_report
from reflow.running.executors.slurm import SlurmExecutor
from tests.flows import sized_steps, slurm_faults
from tests.slurm.scheduler import status, wait_for_run

pytestmark = [pytest.mark.slurm, pytest.mark.usefixtures("slurm_cluster")]


def test_report_of_a_slurm_run_comes_from_one_sacct_call(tmp_path: Path, slurm_env: Path) -> None:
    run_dir = tmp_path / "runs"
    run_id = sized_steps.wf.submit(run_dir=run_dir).run_id
    assert wait_for_run(run_dir, run_id) == "succeeded", status(run_dir, run_id)

    deadline = time.monotonic() + 30
    # slurmdbd may record the last job's figures a moment after it ended (and the run ends
    # while that job still runs: its last array task runs the turn that ends the run).
    while True:
        executor = SlurmExecutor()
        data = load_report(run_dir, run_id, executor=executor)
        assert executor.calls == Counter({"sacct": 1})  # one query per report, whatever
        tasks = {task["task"]: task for task in data["tasks"]}
        if all(task["elements"] == 1 and task["used"]["peak_rss_mb"] for task in tasks.values()):
            break
        assert time.monotonic() < deadline, tasks
        time.sleep(1)
    assert (data["source"], data["executor"], data["from_cache"]) == ("sacct", "slurm", 0)
    hog, nap, spin = tasks["hog"], tasks["nap"], tasks["spin"]
    assert 300 <= hog["used"]["peak_rss_mb"]["max"] <= 400
    assert hog["requested"]["mem_mb"] == 512
    assert nap["requested"] == {"cpus": 1, "mem_mb": 4096, "time_s": 600}
    assert nap["used"]["elapsed_s"]["max"] >= 1
    assert nap["cpu_efficiency"]["max"] < 0.5
    assert spin["used"]["cpu_s"]["max"] >= 1.0
    for task in tasks.values():
        advice = task["suggestion"]
        assert parse_mem(advice["mem"]) >= task["used"]["peak_rss_mb"]["p95"]
        assert parse_time(advice["time"]) >= task["used"]["elapsed_s"]["p95"]
    assert nap["underused"] == ["mem", "time"]

    console = [sys.executable, "-m", "reflow.running.commands.console"]
    done = subprocess.run(
        [*console, "report", run_id, "--run-dir", str(run_dir), "--json"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["tasks"][0]["used"] == hog["used"]

    # A cluster without accounting: the workers' own figures, and a note saying why.
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "sacct").write_text(
        "#!/bin/sh\necho 'sacct: error: Slurm accounting storage is disabled' >&2\nexit 1\n"
    )
    (fake / "sacct").chmod(0o755)
    blind = SlurmExecutor(env={**os.environ, "PATH": f"{fake}{os.pathsep}{os.environ['PATH']}"})
    fallback = load_report(run_dir, run_id, executor=blind)
    assert blind.calls == Counter({"sacct": 1})
    assert fallback["source"] == "worker"
    assert "accounting storage is disabled" in fallback["note"]
    (worker_hog,) = (task for task in fallback["tasks"] if task["task"] == "hog")
    assert 300 <= worker_hog["used"]["peak_rss_mb"]["max"] <= 400


def test_a_worker_that_cannot_start_fails_with_the_shells_not_found_line(
    tmp_path: Path, slurm_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Dispatcher turns start; the worker's interpreter is missing on the node.
    python = tmp_path / "python3"
    python.write_text(
        "#!/bin/sh\n"
        'case "$2" in reflow.running.worker*) exec /no/such/python3 "$@" ;; esac\n'
        f'exec {sys.executable} "$@"\n'
    )
    python.chmod(0o755)
    monkeypatch.setenv("REFLOW_PYTHON", str(python))
    run_dir = tmp_path / "runs"
    run_id = slurm_faults.wf.submit(run_dir=run_dir, count=1).run_id
    assert wait_for_run(run_dir, run_id) == "failed"
    (group,) = status(run_dir, run_id)["failures"]
    (example,) = group["examples"]
    assert (group["task"], group["reason"]) == ("items", "exit_code")
    assert "/no/such/python3: not found)" in example["error"], example["error"]
