"""A retry on the real cluster asks for what the user fixed: more memory, another interpreter.

An element that needs about 600 MB under ``mem="256M"`` ends OUT_OF_MEMORY (or killed, where
the cluster has no cgroups); raising ``mem=`` in the flow file, or ``--set convert.mem=1G``,
and running ``retry`` submits it again with ``--mem=1G`` and the run succeeds. A run whose
configured ``python`` does not exist stops with its first job (no dispatcher turn can start
either); one retry after the config is fixed completes it. The flow runs
as a file through its own CLI, as a user runs it; each run starts from its own working
directory, which is how its jobs are found in squeue.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from reflow.running.rundir.layout import RunLayout
from tests.slurm.scheduler import (
    batches,
    run_state,
    slurm,
    squeue_jobs,
    status,
    wait_for_run,
    wait_until_no_jobs,
)
from tests.slurm.test_slurm_runs import TEST_RESULT_GRACE_S

pytestmark = [pytest.mark.slurm, pytest.mark.usefixtures("slurm_cluster")]

DEADLINE_S = 180.0

FLOW = """
from typing import Annotated

from reflow import Param, Result, RunDir, Workflow

wf = Workflow("hungry")
_CHUNK = 16 * 1024 * 1024


@wf.job(mem="200M", time="00:05:00")
def items(count: Annotated[int, Param(help="items")] = 2) -> list[int]:
    return list(range(count))


@wf.array_job(mem="256M", time="00:05:00")
def convert(item: Annotated[int, Result(step="items")], run_dir: RunDir = RunDir()) -> int:
    with (run_dir / "convert.calls").open("a") as log:
        log.write(f"{item}\\n")
    if item == 1:
        hoard = [b"x" * _CHUNK for _ in range(38)]  # about 600 MB
        return len(hoard) * 0
    return item * 10


if __name__ == "__main__":
    raise SystemExit(wf.cli())
"""


def environment(folder: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REFLOW_")}
    require = os.environ.get("REFLOW_REQUIRE_SLURM")
    if require:
        env["REFLOW_REQUIRE_SLURM"] = require
    env.update(REFLOW_MODE="slurm", XDG_CONFIG_HOME=str(folder / "config"))
    env.update(REFLOW_RESULT_GRACE=str(TEST_RESULT_GRACE_S))
    env.update(REFLOW_RETRIES="0")  # the person's retry, not an automatic one, fixes the run
    return env


def flow_cli(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``python flow.py ARGS --run-dir runs`` in ``folder`` (the jobs' working directory)."""
    return subprocess.run(
        [sys.executable, str(folder / "hungry.py"), *args, "--run-dir", str(folder / "runs")],
        cwd=folder,
        env=environment(folder),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def submit(folder: Path) -> str:
    folder.mkdir(exist_ok=True)
    (folder / "hungry.py").write_text(FLOW)
    done = flow_cli(folder, "submit")
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout.split("submitted run ", 1)[1].split()[0]


def convert_scripts(folder: Path, run_id: str) -> list[str]:
    """The kept batch scripts of ``convert``, oldest first."""
    layout = RunLayout(folder / "runs", run_id)
    return [
        layout.script(task, batch).read_text()
        for task, batch, _ids in batches(folder / "runs", run_id)
        if task == "convert"
    ]


@pytest.fixture
def folders(tmp_path: Path) -> Iterator[list[Path]]:
    made = [tmp_path / "edited", tmp_path / "set", tmp_path / "python"]
    yield made
    left = [job for path in made if path.exists() for job in squeue_jobs(path)]
    if left:
        slurm("scancel", *left)


def write_config(folder: Path, python: Path) -> Path:
    config = folder / "config" / "reflow" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(f'[executor]\npython = "{python}"\n')
    return config


def test_out_of_memory_or_a_wrong_python_fixed_after_submit_is_what_one_retry_runs_with(
    folders: list[Path],
) -> None:
    edited, by_set, wrong = folders
    write_config(wrong, Path("/nowhere/bin/python3"))  # even the chain's next turn cannot start
    runs = {folder: submit(folder) for folder in folders}
    oom = "out_of_memory" if "proctrack/cgroup" in slurm("scontrol", "show", "config") else None
    for folder in (edited, by_set):
        assert wait_for_run(folder / "runs", runs[folder], timeout_s=DEADLINE_S) == "failed"
        (group,) = status(folder / "runs", runs[folder])["failures"]
        assert (group["task"], group["count"]) == ("convert", 1)
        assert oom is None or group["reason"] == oom, group
        (script,) = convert_scripts(folder, runs[folder])
        assert "#SBATCH --mem=256M\n" in script
    wait_until_no_jobs(wrong, timeout_s=DEADLINE_S)
    assert run_state(wrong / "runs", runs[wrong]) == "running"  # with no dispatcher left
    time.sleep(TEST_RESULT_GRACE_S + 1)  # past the grace a result of those jobs would have

    flow = edited / "hungry.py"
    flow.write_text(flow.read_text().replace('mem="256M"', 'mem="1G"'))
    python = wrong / "bin" / "python3"
    python.parent.mkdir()
    python.symlink_to(sys.executable)
    config = write_config(wrong, python)
    fixed = flow_cli(edited, "retry", runs[edited])
    by_flag = flow_cli(by_set, "retry", runs[by_set], "--set", "convert.mem=1G")
    repaired = flow_cli(wrong, "retry", runs[wrong], "--set", "convert.mem=1G")

    assert fixed.returncode == 0, fixed.stderr
    assert fixed.stdout.splitlines() == [
        "convert: mem 256M -> 1G (flow file)",
        f"run {runs[edited]}: 1 instance(s) will run again",
    ]
    assert by_flag.returncode == 0, by_flag.stderr
    assert by_flag.stdout.splitlines()[0] == "convert: mem 256M -> 1G (--set)"
    assert repaired.returncode == 0, repaired.stderr
    assert repaired.stdout.splitlines() == [
        "convert: mem 256M -> 1G (--set)",
        f"python /nowhere/bin/python3 -> {python} ([executor] python in {config})",
        f"run {runs[wrong]}: 1 instance(s) will run again",
    ]
    for folder in (edited, by_set):
        assert wait_for_run(folder / "runs", runs[folder], timeout_s=DEADLINE_S) == "succeeded"
        _first, second = convert_scripts(folder, runs[folder])
        assert "#SBATCH --mem=1G\n" in second
        assert "#SBATCH --array=1\n" in second
        calls = sorted((folder / "runs" / "convert.calls").read_text().split())
        assert calls == ["0", "1", "1"]
    assert wait_for_run(wrong / "runs", runs[wrong], timeout_s=DEADLINE_S) == "succeeded"
    (script,) = convert_scripts(wrong, runs[wrong])
    assert "#SBATCH --mem=1G\n" in script
    assert str(python) in script
