"""The ``reflow`` console script against real runs: everything from the run directory alone.

Runs are made by the example flows in ``tmp_path``; the console script runs as a subprocess
from another working directory, where no flow file is at hand.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from reflow.definition.cli_builder import build_parser
from reflow.run import Run
from reflow.running.commands import progress
from reflow.running.commands.console import STORE_COMMANDS, build_console_parser
from reflow.running.commands.progress import wait_for_run

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
DEADLINE_S = 120

SLOW_FLOW = """
import time
from typing import Annotated
from reflow import Result, Workflow

wf = Workflow("slow")


@wf.job()
def naps() -> list[int]:
    return [60, 60]


@wf.array_job()
def nap(seconds: Annotated[int, Result(step="naps")]) -> int:
    time.sleep(seconds)
    return seconds
"""


def console_script() -> str:
    beside = Path(sys.executable).parent / "reflow"
    found = str(beside) if beside.exists() else shutil.which("reflow")
    assert found, "the reflow console script is not installed: pip install -e ."
    return found


def environment(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REFLOW_")}
    env.update(REFLOW_MODE="local", XDG_CONFIG_HOME=str(tmp_path / "config"))
    return env


def reflow(tmp_path: Path, *args: str | Path) -> subprocess.CompletedProcess[str]:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(exist_ok=True)
    return subprocess.run(
        [console_script(), *map(str, args)],
        cwd=elsewhere,
        env=environment(tmp_path),
        capture_output=True,
        text=True,
        timeout=DEADLINE_S,
        check=False,
    )


def make_failed_run(base: Path) -> tuple[Path, str]:
    """A run of examples/retry_flow.py whose element 1 failed; returns (run dir, run id)."""
    inbox = base / "inbox"
    inbox.mkdir()
    (inbox / "a.txt").write_text("1\n2\n")
    (inbox / "b.txt").write_text("3\nfour\n")
    run_dir = base / "run"
    done = subprocess.run(
        [
            sys.executable,
            str(EXAMPLES / "retry_flow.py"),
            "submit",
            "--run-dir",
            str(run_dir),
            "--inbox",
            str(inbox),
            "--wait",
        ],
        cwd=base,
        env=environment(base),
        capture_output=True,
        text=True,
        timeout=DEADLINE_S,
        check=False,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    (base / "submit.out").write_text(done.stdout)
    match = re.search(r"^submitted run (\S+)", done.stdout, re.M)
    assert match
    return run_dir, match.group(1)


@pytest.fixture(scope="module")
def failed_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A failed run that the tests only read."""
    return make_failed_run(tmp_path_factory.mktemp("failed"))


def test_console_offers_the_flow_clis_run_directory_commands_with_the_same_flags() -> None:
    def flags(parser: argparse.ArgumentParser) -> dict[str, list[str]]:
        (sub,) = (a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        return {
            name: sorted(s for a in p._actions for s in a.option_strings or [a.dest])
            for name, p in sub.choices.items()
        }

    console = flags(build_console_parser())
    flow_cli = flags(build_parser("flow.py", "demo", ()))
    assert list(console) == list(STORE_COMMANDS)
    assert console == {name: flow_cli[name] for name in STORE_COMMANDS}


def test_help_lists_the_commands(tmp_path: Path) -> None:
    shown = reflow(tmp_path, "--help")
    assert shown.returncode == 0
    for name in STORE_COMMANDS:
        assert re.search(rf"^\s+{name}\s", shown.stdout, re.M), name
    assert "submit" not in shown.stdout.split("positional arguments")[1].split("options")[0]


def test_runs_status_and_logs_read_a_failed_run(
    tmp_path: Path, failed_run: tuple[Path, str]
) -> None:
    run_dir, run_id = failed_run
    runs = reflow(tmp_path, "runs", "--run-dir", run_dir)
    assert runs.returncode == 0, runs.stderr
    assert re.search(rf"^{run_id}\s+failed\s+local\s+3\s", runs.stdout, re.M), runs.stdout
    (listed,) = json.loads(reflow(tmp_path, "runs", "--run-dir", run_dir, "--json").stdout)
    assert (listed["run_id"], listed["state"], listed["workflow"]) == (run_id, "failed", "inbox")

    status = reflow(tmp_path, "status", "--run-dir", run_dir)
    assert status.returncode == 0, status.stderr
    assert f"run {run_id} (inbox): FAILED" in status.stdout
    assert "parse: 1 failed (exception: ValueError)" in status.stdout
    data = json.loads(reflow(tmp_path, "status", run_id, "--run-dir", run_dir, "--json").stdout)
    (group,) = data["failures"]
    assert (group["task"], group["reason"], group["type"], group["count"]) == (
        "parse",
        "exception",
        "ValueError",
        1,
    )
    assert group["examples"][0]["element"] == 1

    failed_log = reflow(tmp_path, "logs", run_id, "parse", "--run-dir", run_dir)
    assert failed_log.returncode == 0, failed_log.stderr
    assert "1.log (failed)" in failed_log.stdout
    assert "b.txt:2: 'four'" in failed_log.stdout
    first = reflow(tmp_path, "logs", run_id, "parse", "0", "--run-dir", run_dir)
    assert "0.log (done)" in first.stdout
    assert "a.txt:1: '1'" in first.stdout


def test_python_dash_m_reflow_is_the_console_script(
    tmp_path: Path, failed_run: tuple[Path, str]
) -> None:
    run_dir, run_id = failed_run
    runs = subprocess.run(
        [sys.executable, "-m", "reflow", "runs", "--run-dir", str(run_dir)],
        cwd=tmp_path, env=environment(tmp_path), capture_output=True, text=True, timeout=60,
        check=False,
    )  # fmt: skip
    assert runs.returncode == 0, runs.stderr
    assert re.search(rf"^{run_id}\s+failed\s+local\s+3\s", runs.stdout, re.M), runs.stdout


def test_retry_after_the_fix_succeeds(tmp_path: Path) -> None:
    run_dir, run_id = make_failed_run(tmp_path)
    (tmp_path / "inbox" / "b.txt").write_text("3\n4\n")
    retried = reflow(tmp_path, "retry", run_id, "--run-dir", run_dir, "--wait")
    assert retried.returncode == 0, retried.stdout + retried.stderr
    assert f"run {run_id} succeeded after" in retried.stdout
    assert "SUCCEEDED" in reflow(tmp_path, "status", run_id, "--run-dir", run_dir).stdout


def test_a_follower_waiting_between_slow_reads_returns_once_the_run_ended(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A large run's full read is slow, so the next one is far off; the run's own row is read
    # in between, and its end cuts the wait short.
    run_dir, run_id = make_failed_run(tmp_path)
    slept: list[float] = []
    monkeypatch.setattr(time, "sleep", slept.append)
    progress.sleep_unless_ended(run_dir, run_id, time.monotonic(), 60.0)
    assert slept == [pytest.approx(0.2, abs=0.01)]


def test_cancel_stops_a_running_run(tmp_path: Path) -> None:
    flow_file = tmp_path / "slow_flow.py"
    flow_file.write_text(
        SLOW_FLOW + '\nif __name__ == "__main__":\n    raise SystemExit(wf.cli())\n'
    )
    run_dir = tmp_path / "run"
    started = subprocess.run(
        [sys.executable, str(flow_file), "submit", "--run-dir", str(run_dir)],
        cwd=tmp_path,
        env=environment(tmp_path),
        capture_output=True,
        text=True,
        timeout=DEADLINE_S,
        check=False,
    )
    assert started.returncode == 0, started.stderr
    run_id = started.stdout.split()[2]
    deadline = time.monotonic() + DEADLINE_S
    while '"submitted": 2' not in reflow(tmp_path, "status", "--run-dir", run_dir, "--json").stdout:
        assert time.monotonic() < deadline, "the elements never started"
        time.sleep(0.2)
    waited = io.StringIO()
    # However far off the next read would be (a slow read spaces it), the timeout holds.
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(progress, "poll_interval_s", lambda *_args: 600.0)
        began = time.monotonic()
        assert wait_for_run(run_dir, run_id, timeout_s=0.5, out=waited) == "running"
        assert time.monotonic() - began < 60
    assert re.search(r"\] nap\s+\[\.+\]  0/2  2 running$", waited.getvalue(), re.M)
    assert f"follow it:   reflow status {run_id} --run-dir {run_dir}" in waited.getvalue()
    cancelled = reflow(tmp_path, "cancel", run_id, "--run-dir", run_dir)
    assert cancelled.returncode == 0, cancelled.stderr
    assert f"cancelled 2 instance(s) of run {run_id}" in cancelled.stdout
    status = reflow(tmp_path, "status", run_id, "--run-dir", run_dir, "--json")
    data = json.loads(status.stdout)
    assert data["state"] == "cancelled"
    assert data["tasks"][1]["counts"] == {"cancelled": 2}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("status", "no-such-run"), "no run 'no-such-run'"),
        (("logs", "RUN", "nosuchtask"), "nosuchtask"),
        (("cancel", "no-such-run"), "no run 'no-such-run'"),
    ],
)
def test_errors_are_one_line_and_exit_2(
    tmp_path: Path, failed_run: tuple[Path, str], args: tuple[str, ...], message: str
) -> None:
    run_dir, run_id = failed_run
    args = tuple(run_id if a == "RUN" else a for a in args)
    done = reflow(tmp_path, *args, "--run-dir", run_dir)
    assert done.returncode == 2
    assert done.stderr.startswith("error: ")
    assert done.stderr.count("\n") == 1
    assert message in done.stderr
    assert "Traceback" not in done.stderr


def test_missing_run_dir_and_unknown_command_exit_2(tmp_path: Path) -> None:
    nowhere = reflow(tmp_path, "status")
    assert nowhere.returncode == 2
    assert (
        nowhere.stderr
        == (
            "error: run_dir: no run directory given; pass --run-dir DIR (or run_dir=...), "
            "or set [defaults] run_dir in the config\n"
        )
        or "no run directory given" in nowhere.stderr
    )
    unknown = reflow(tmp_path, "submit")
    assert unknown.returncode == 2
    assert "invalid choice: 'submit'" in unknown.stderr


def test_wait_summary_names_the_failed_elements_and_their_logs(
    failed_run: tuple[Path, str],
) -> None:
    run_dir, run_id = failed_run
    printed = (run_dir.parent / "submit.out").read_text()
    assert "\x1b[" not in printed  # not a terminal: plain lines, no cursor movement
    assert re.search(r"^\[\s*[\d.]+s\] parse\s+\[#+\.*\]\s+1/2\s+1 done, 1 failed$", printed, re.M)
    summary = printed[printed.index(f"run {run_id} failed after") :]
    assert re.match(rf"run {run_id} failed after [\d.]+s: 2 done, 1 failed\n", summary)
    assert "  total could not be planned: 1 of 2 inputs failed: parse[1]" in summary
    assert "  parse: 1 failed (exception: ValueError)\n" in summary
    assert "'four' is not a number" in summary
    assert f"log: {run_dir}/runs/{run_id}/logs/parse/1.log" in summary
    assert f"reflow logs {run_id} parse --run-dir {run_dir}" in summary
    assert f"reflow retry {run_id} --run-dir {run_dir}" in summary

    again = io.StringIO()
    assert Run(run_dir, run_id).wait(timeout=DEADLINE_S, progress=True, file=again) == "failed"
    assert f"run {run_id} failed after" in again.getvalue()
    assert Run(run_dir, run_id).wait(timeout=DEADLINE_S) == "failed"


def test_submit_wait_on_a_terminal_redraws_one_line_per_task(tmp_path: Path) -> None:
    master, slave = os.openpty()
    command = [sys.executable, str(EXAMPLES / "demo_flow.py"), "submit", "--run-dir"]
    command += [str(tmp_path / "run"), "--start", "a", "--end", "b", "--bucket", "c", "--wait"]
    env = environment(tmp_path)
    env["TERM"] = "xterm"
    process = subprocess.Popen(
        command, cwd=tmp_path, env=env, stdin=subprocess.DEVNULL, stdout=slave, stderr=slave
    )
    os.close(slave)
    output = b""
    deadline = time.monotonic() + DEADLINE_S
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if not ready:
                continue
            try:
                chunk = os.read(master, 65536)
            except OSError:  # the terminal closed: the process is gone
                break
            if not chunk:
                break
            output += chunk
        assert process.wait(timeout=DEADLINE_S) == 0, output
    finally:
        os.close(master)
        if process.poll() is None:
            process.kill()
    text = output.decode()
    assert "\x1b[4A" in text  # back up over the header and the three task lines
    assert "\r\x1b[2K  convert   [####################]  3/3  3 done" in text
    assert re.search(r"run demo-\S+ succeeded after [\d.]+s: 5 done", text)
