"""Every command an error suggests can be pasted as printed: the flow file as the user ran it
(``python 'my flows/flow v1.py' runs --run-dir ...``) or the ``reflow`` console script.

Each hint is asserted as the exact line, then run as pasted from the same folder.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest

from reflow.running.rundir.layout import RunLayout
from tests.integration.test_console import SLOW_FLOW, console_script, environment
from tests.reliability.processes import wait_for_workers

DEADLINE_S = 120
CLI_TAIL = '\nif __name__ == "__main__":\n    raise SystemExit(wf.cli())\n'
FLOW = "my flows/flow v1.py"
"""The flow file, relative to the test's folder, as the user types it (quoted in hints)."""
FLOW_TEXT = """
from typing import Annotated

from reflow import Result, Workflow

wf = Workflow("hinted")


@wf.job()
def items() -> list[int]:
    return [0, 1]


@wf.array_job()
def check(item: Annotated[int, Result(step="items")]) -> int:
    print("checking", item)
    if item == 1:
        raise ValueError("bad item 1")
    return item


@wf.job()
def total(values: Annotated[list[int], Result(step="check")]) -> int:
    return sum(values)


if __name__ == "__main__":
    raise SystemExit(wf.cli())
"""


def run(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, cwd=cwd, env=environment(cwd), capture_output=True, text=True,
        timeout=DEADLINE_S, check=False,
    )  # fmt: skip


def flow(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``python 'my flows/flow v1.py' ARGS`` from ``cwd``, as a user types it."""
    return run([sys.executable, FLOW, *args], cwd)


def reflow(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run([console_script(), *args], cwd)


def paste(line: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run the command a hint ends with (after ``: ``) as a shell would split it."""
    words = shlex.split(line.rsplit(": ", 1)[1])
    if words[0] == "python":
        return run([sys.executable, *words[1:]], cwd)
    assert words[0] == "reflow", line
    return run([console_script(), *words[1:]], cwd)


@pytest.fixture(scope="module")
def failed_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    """(folder, run directory, run id) of a run whose ``check[1]`` failed."""
    cwd = tmp_path_factory.mktemp("hints")
    (cwd / FLOW).parent.mkdir()
    (cwd / FLOW).write_text(FLOW_TEXT)
    run_dir = cwd / "run dir"
    done = flow(cwd, "submit", "--run-dir", str(run_dir), "--wait")
    assert done.returncode == 1, done.stdout + done.stderr
    return cwd, run_dir, done.stdout.split()[2]


def error_line(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    return lines[0]


@pytest.mark.parametrize(
    ("front", "verb", "program"),
    [("flow", "status", "python 'my flows/flow v1.py'"), ("reflow", "cancel", "reflow")],
)
def test_an_unknown_run_names_the_runs_command_of_the_program_that_was_run(
    failed_run: tuple[Path, Path, str], front: str, verb: str, program: str
) -> None:
    cwd, run_dir, run_id = failed_run
    run = flow if front == "flow" else reflow
    line = error_line(run(cwd, verb, "nosuch", "--run-dir", str(run_dir)))
    assert line == (
        f"error: no run 'nosuch' in {run_dir}; list the runs: {program} runs --run-dir '{run_dir}'"
    )
    pasted = paste(line, cwd)
    assert pasted.returncode == 0, pasted.stderr
    assert run_id in pasted.stdout


def test_the_result_of_a_failed_element_names_its_logs_command(
    failed_run: tuple[Path, Path, str],
) -> None:
    cwd, run_dir, run_id = failed_run
    line = error_line(flow(cwd, "result", run_id, "check", "1", "--run-dir", str(run_dir)))
    assert line.startswith(f"error: check[1] of run {run_id} is failed (exception: ")
    assert line.endswith(
        f"; read its log: python 'my flows/flow v1.py' logs {run_id} check 1 --run-dir '{run_dir}'"
    )
    pasted = paste(line, cwd)
    assert pasted.returncode == 0, pasted.stderr
    assert "checking 1" in pasted.stdout
    line = error_line(reflow(cwd, "result", run_id, "check", "1", "--run-dir", str(run_dir)))
    assert line.endswith(f"; read its log: reflow logs {run_id} check 1 --run-dir '{run_dir}'")
    assert "checking 1" in paste(line, cwd).stdout


def test_the_result_of_a_task_that_never_started_names_the_failed_elements(
    failed_run: tuple[Path, Path, str],
) -> None:
    cwd, run_dir, run_id = failed_run
    line = error_line(flow(cwd, "result", run_id, "total", "--run-dir", str(run_dir)))
    assert line == (
        f"error: total never started in run {run_id}, which ended failed: a task upstream of"
        " it did not succeed; see what failed:"
        f" python 'my flows/flow v1.py' status {run_id} --failed --run-dir '{run_dir}'"
    )
    pasted = paste(line, cwd)
    assert pasted.returncode == 0, pasted.stderr
    assert "check[1]  failed  exception  ValueError: bad item 1" in pasted.stdout
    logs = error_line(flow(cwd, "logs", run_id, "total", "--run-dir", str(run_dir)))
    assert logs == line  # its log, the same: it never ran, and never will in this run


def test_a_run_without_its_manifest_names_the_runs_command(
    failed_run: tuple[Path, Path, str], tmp_path: Path
) -> None:
    cwd, run_dir, run_id = failed_run
    copy = tmp_path / "copy"
    subprocess.run(["cp", "-r", str(run_dir), str(copy)], check=True)
    manifest = RunLayout(copy, run_id).manifest
    manifest.unlink()
    line = error_line(reflow(cwd, "cancel", run_id, "--run-dir", str(copy)))
    assert line.startswith(f"error: cannot read the run manifest {manifest}")
    assert line.endswith(
        f"; check --run-dir and the run id; list the runs: reflow runs --run-dir {copy}"
    )
    pasted = paste(line, cwd)
    assert pasted.returncode == 0, pasted.stderr
    assert run_id in pasted.stdout


def wait_until_running(run_dir: Path, run_id: str) -> None:
    """Wait until both elements of the slow flow's ``nap`` have started (their logs exist)."""
    logs = run_dir / "runs" / run_id / "logs" / "nap"
    deadline = time.monotonic() + DEADLINE_S
    while not ((logs / "0.log").exists() and (logs / "1.log").exists()):
        assert time.monotonic() < deadline, f"run {run_id} never ran both naps"
        time.sleep(0.1)


def test_the_result_of_a_running_then_cancelled_element_names_watch_then_retry(
    tmp_path: Path,
) -> None:
    (tmp_path / FLOW).parent.mkdir()
    (tmp_path / FLOW).write_text(SLOW_FLOW + CLI_TAIL)
    run_dir = tmp_path / "run dir"
    submitted = flow(tmp_path, "submit", "--run-dir", str(run_dir))
    assert submitted.returncode == 0, submitted.stderr
    run_id = submitted.stdout.split()[2]
    try:
        wait_until_running(run_dir, run_id)
        line = error_line(flow(tmp_path, "result", run_id, "nap", "0", "--run-dir", str(run_dir)))
        assert line == (
            f"error: nap[0] of run {run_id} is submitted, so it has no result; follow the run:"
            f" python 'my flows/flow v1.py' watch {run_id} --run-dir '{run_dir}'"
        )
        assert reflow(tmp_path, "cancel", run_id, "--run-dir", str(run_dir)).returncode == 0
        wait_for_workers(run_dir)
        pasted = paste(line, tmp_path)  # the run has ended: watch shows it once and returns
        assert pasted.returncode == 0, pasted.stderr
        assert "CANCELLED" in pasted.stdout
        line = error_line(reflow(tmp_path, "result", run_id, "nap", "0", "--run-dir", str(run_dir)))
        assert line.endswith(f"; run it again: reflow retry {run_id} --run-dir '{run_dir}'")
        pasted = paste(line, tmp_path)
        assert pasted.returncode == 0, pasted.stderr
        assert f"run {run_id}: 2 instance(s) will run again" in pasted.stdout
    finally:
        reflow(tmp_path, "cancel", run_id, "--run-dir", str(run_dir))
        wait_for_workers(run_dir)


def test_a_task_that_a_cancel_kept_from_starting_says_so_and_names_retry(
    tmp_path: Path,
) -> None:
    (tmp_path / FLOW).parent.mkdir()
    (tmp_path / FLOW).write_text(SLOW_FLOW.replace("[60, 60]", "time.sleep(60) or [1]") + CLI_TAIL)
    run_dir = tmp_path / "run dir"
    submitted = flow(tmp_path, "submit", "--run-dir", str(run_dir))
    assert submitted.returncode == 0, submitted.stderr
    run_id = submitted.stdout.split()[2]
    try:
        logs = RunLayout(run_dir, run_id).logs_dir("naps")
        deadline = time.monotonic() + 60
        while not (logs / "0.log").exists():  # naps is sleeping: nap is not planned yet
            assert time.monotonic() < deadline, f"run {run_id} never started naps"
            time.sleep(0.1)
    finally:
        assert reflow(tmp_path, "cancel", run_id, "--run-dir", str(run_dir)).returncode == 0
        wait_for_workers(run_dir)
    line = error_line(flow(tmp_path, "logs", run_id, "nap", "--run-dir", str(run_dir)))
    assert line == (
        f"error: nap never started in run {run_id}: the run was cancelled before it; run the"
        f" rest: python 'my flows/flow v1.py' retry {run_id} --run-dir '{run_dir}'"
    )


def test_an_unknown_flag_is_named_before_missing_required_ones(tmp_path: Path) -> None:
    (tmp_path / FLOW).parent.mkdir()
    (tmp_path / FLOW).write_text(
        FLOW_TEXT.replace("def items() -> list[int]:", "def items(count: int) -> list[int]:")
    )
    line = error_line(flow(tmp_path, "submit", "--bogus"))
    assert line == (
        "error: unrecognized arguments: --bogus; see: python 'my flows/flow v1.py' submit --help"
    )
    pasted = paste(line, tmp_path)
    assert pasted.returncode == 0, pasted.stderr
    assert "--count COUNT" in pasted.stdout
