"""The logs command as a user runs it: --tail, --follow, cached elements, crashes, footers."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from tests.integration.flowfiles import cli

FLOW = Path(__file__).resolve().parents[1] / "flows" / "log_steps.py"


def submit(run_dir: Path, *args: str, wait: bool = True) -> str:
    """Submit the log_steps flow; return the run id."""
    extra = ("--wait",) if wait else ()
    done = cli(FLOW, "submit", "--run-dir", str(run_dir), *extra, *args, cwd=run_dir.parent)
    assert "submitted run " in done.stdout, done.stdout + done.stderr
    return done.stdout.split("submitted run ", 1)[1].split()[0]


def logs(run_dir: Path, run_id: str, *args: str) -> str:
    done = cli(FLOW, "logs", run_id, "talk", *args, "--run-dir", str(run_dir), cwd=run_dir.parent)
    assert done.returncode == 0, done.stderr
    return done.stdout


def log_path(run_dir: Path, run_id: str, element: int) -> Path:
    return run_dir / "runs" / run_id / "logs" / "talk" / f"{element}.log"


def wait_for(what: str, check: Callable[[], bool], timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


class Lines:
    """The lines a process prints, each with the time it arrived, read by a thread."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.arrived: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        assert process.stdout is not None
        stream = process.stdout
        threading.Thread(target=self._read, args=(stream,), daemon=True).start()

    def _read(self, stream: Iterable[str]) -> None:
        for line in stream:
            self.arrived.put(line.rstrip("\n"))
        self.arrived.put(None)

    def until(self, wanted: str, timeout_s: float = 60) -> None:
        """Read lines until one contains ``wanted``."""
        deadline = time.monotonic() + timeout_s
        while not any(wanted in line for line in self.seen):
            line = self.arrived.get(timeout=max(0.01, deadline - time.monotonic()))
            assert line is not None, f"the output ended before {wanted!r}: {self.seen}"
            self.seen.append(line)


def follow(run_dir: Path, run_id: str) -> subprocess.Popen[str]:
    env = {**os.environ, "REFLOW_MODE": "local", "XDG_CONFIG_HOME": str(run_dir.parent / "cfg")}
    argv = [sys.executable, str(FLOW), "logs", run_id, "talk", "0", "--run-dir", str(run_dir)]
    return subprocess.Popen(
        [*argv, "--follow"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )


def test_tail_prints_exactly_the_last_lines_of_the_log(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_id = submit(run_dir, "--count", "1", "--lines", "5")
    printed = logs(run_dir, run_id, "0", "--tail", "2").splitlines()
    assert printed[0] == f"==> {log_path(run_dir, run_id, 0)} (done)"
    assert printed[1] == "element 0 line 5"
    assert printed[2].startswith("<== reflow: element 0 of talk ended: done in ")
    assert len(printed) == 3
    assert len(logs(run_dir, run_id, "0").splitlines()) == 1 + 1 + 5 + 1  # all of it


def test_follow_prints_lines_as_they_are_written_and_ends_with_the_element(
    tmp_path: Path,
) -> None:
    run_dir = tmp_path / "run"
    run_id = submit(run_dir, "--count", "1", "--lines", "3", "--pause", "1.5", wait=False)
    log = log_path(run_dir, run_id, 0)
    wait_for("the element to start", lambda: "line 1" in (log.read_text() if log.exists() else ""))
    with follow(run_dir, run_id) as process:
        lines = Lines(process)
        lines.until("element 0 line 2")
        assert "element 0 line 3" not in log.read_text()  # printed while the element ran
        lines.until("<== reflow: element 0 of talk ended: done in ")
        assert process.wait(timeout=30) == 0
    assert lines.seen[0] == f"==> {log} (submitted)"
    assert [line for line in lines.seen if line.startswith("element ")] == [
        f"element 0 line {n}" for n in (1, 2, 3)
    ]


def test_ctrl_c_stops_following_quietly_with_exit_code_130(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_id = submit(run_dir, "--count", "1", "--lines", "60", "--pause", "0.5", wait=False)
    log = log_path(run_dir, run_id, 0)
    try:
        wait_for("the element to start", log.exists)
        with follow(run_dir, run_id) as process:
            Lines(process).until("element 0 line 1")
            process.send_signal(signal.SIGINT)
            assert process.wait(timeout=30) == 130
            assert process.stderr is not None
            assert "Traceback" not in process.stderr.read()
    finally:
        cli(FLOW, "cancel", run_id, "--run-dir", str(run_dir), cwd=tmp_path)


def test_a_cached_element_shows_the_log_of_the_run_that_made_its_result(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    first = submit(run_dir, "--count", "2", "--lines", "2")
    second = submit(run_dir, "--count", "2", "--lines", "2")
    assert second != first
    printed = logs(run_dir, second, "1").splitlines()
    made = f"(cached: the log of run {first}, which made this result)"
    assert printed[0] == f"==> {log_path(run_dir, first, 1)} {made}"
    assert printed[2:4] == ["element 1 line 1", "element 1 line 2"]


def test_a_crashed_element_is_named_killed_by_its_signal_in_status_and_logs(
    tmp_path: Path,
) -> None:
    run_dir = tmp_path / "run"
    run_id = submit(run_dir, "--count", "1", "--lines", "2", "--mode", "segv")
    status = cli(FLOW, "status", run_id, "--run-dir", str(run_dir), cwd=tmp_path)
    assert "killed by SIGSEGV" in status.stdout, status.stdout
    printed = logs(run_dir, run_id).splitlines()
    assert printed[-2:] == [
        "element 0 line 2",
        "<== reflow: the element's process was killed by SIGSEGV",
    ]


def test_a_failed_elements_log_ends_with_a_footer_naming_the_error(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_id = submit(run_dir, "--count", "1", "--lines", "1", "--mode", "raise")
    footer = log_path(run_dir, run_id, 0).read_text().splitlines()[-1]
    assert footer.startswith("<== reflow: element 0 of talk ended: failed after ")
    assert footer.endswith(" s: ValueError: element 0 was told to fail")
    assert logs(run_dir, run_id).splitlines()[-1] == footer  # and no line from the store


def test_a_cancelled_elements_log_ends_with_a_line_saying_it_was_cancelled(
    tmp_path: Path,
) -> None:
    run_dir = tmp_path / "run"
    run_id = submit(run_dir, "--count", "1", "--lines", "60", "--pause", "0.5", wait=False)
    log = log_path(run_dir, run_id, 0)
    wait_for("the element to start", lambda: "line 1" in (log.read_text() if log.exists() else ""))
    cancelled = cli(FLOW, "cancel", run_id, "--run-dir", str(run_dir), cwd=tmp_path)
    assert cancelled.returncode == 0, cancelled.stderr
    printed = logs(run_dir, run_id, "0").splitlines()
    assert printed[0] == f"==> {log} (cancelled)"
    assert printed[1].startswith("==> reflow: talk[0] batch ")  # the worker's header
    assert printed[2] == "element 0 line 1"
    assert printed[-1] == (
        "<== reflow: the element's process was stopped before it ended: cancelled by the user"
    )
    assert "line 60" not in log.read_text()  # it was stopped, not left to finish
