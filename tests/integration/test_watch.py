"""``watch`` as a user sees it: a real run on the local executor, the view in a tmux pane.

The pane is ``tmux_pane.Pane``, a real pseudo-terminal whose screen the test reads and whose
keyboard it types on; ``pane_factory`` (in the conftest) makes panes and closes them after.
"""

from __future__ import annotations

import re
import select
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from reflow.running.commands.status import load_status
from tests.integration.flowfiles import cli
from tests.integration.tmux_pane import (
    DEADLINE_S,
    FLOW,
    HELP_START,
    WATCH_MARKS,
    Pane,
    wait_until,
)

pytestmark = WATCH_MARKS


def submit(tmp_path: Path, *, hold: bool) -> tuple[Path, str]:
    """Start a run of the watch flow; with ``hold`` its work elements wait for the test."""
    run_dir = tmp_path / "runs"
    run_dir.mkdir()
    if hold:
        (run_dir / "hold").touch()
    done = cli(FLOW, "submit", "--run-dir", str(run_dir), cwd=tmp_path)
    assert "submitted run " in done.stdout, done.stdout + done.stderr
    return run_dir, done.stdout.split("submitted run ", 1)[1].split()[0]


def work_counts(run_dir: Path, run_id: str) -> dict[str, int]:
    data = load_status(run_dir, run_id, ask_scheduler=False)
    return dict(next(t for t in data["tasks"] if t["task"] == "work")["counts"])


def assert_terminal_restored(folder: Path) -> None:
    words = set(re.split(r"[\s;]+", (folder / "stty").read_text()))
    assert {"icanon", "echo"} <= words, "the terminal is left in raw or no-echo mode"
    assert not {"-icanon", "-echo"} & words


def test_watch_shows_tasks_selects_shows_a_log_cancels_retries_and_quits(
    tmp_path: Path, pane_factory: Callable[[list[str]], Pane]
) -> None:
    run_dir, run_id = submit(tmp_path, hold=True)
    wait_until(lambda: work_counts(run_dir, run_id).get("failed") == 1, "element 1 to fail")
    pane = pane_factory([sys.executable, str(FLOW), "watch", run_id, "--run-dir", str(run_dir)])

    screen = pane.wait_for(lambda s: any("1 failed" in line for line in s), "the task rows")
    assert screen[0].startswith(f"run {run_id} (watched): RUNNING")
    assert "dispatcher: alive" in screen[0]
    rows = [line for line in screen if re.match(r"^[> ] (prepare|work|total) ", line)]
    assert [row[2:].split()[0] for row in rows] == ["prepare", "work", "total"]
    assert rows[0].startswith("> prepare")
    assert "1/1  1 done" in rows[0]
    assert "0/4" in rows[1]
    assert "1 failed" in rows[1]
    assert "waiting" in rows[2]
    assert any(
        re.match(r"^  \d\d:\d\d:\d\d  work\[1\]  exception: RuntimeError: element 1 was", line)
        for line in screen
    ), screen
    assert screen[-1].startswith(HELP_START)

    pane.keys("Down")
    pane.wait_for(lambda s: any(line.startswith("> work") for line in s), "work selected")
    pane.keys("l")
    screen = pane.wait_for(lambda s: any("log of work[1]" in line for line in s), "the log pane")
    log_start = next(n for n, line in enumerate(screen) if "log of work[1]" in line)
    log = "\n".join(screen[log_start:])
    assert "work element 1 starts" in log
    assert "RuntimeError: element 1 was told to fail" in log

    pane.tmux("resize-window", "-t", "watch", "-x", "30", "-y", "5")
    small = pane.wait_for(
        lambda s: len(s) == 5 and s[0].startswith("run watched") and s[-1].startswith("up/down"),
        "a small redraw",  # a screen caught half-drawn shows its first line still empty
    )
    assert all(len(line) < 30 for line in small)
    pane.tmux("resize-window", "-t", "watch", "-x", "100", "-y", "30")
    pane.wait_for(lambda s: len(s) == 30 and s[-1].startswith(HELP_START), "a full redraw")

    pane.keys("c")
    pane.wait_for(lambda s: any("cancel task 'work'" in line and "(y/n)" in line for line in s),
                  "the question")  # fmt: skip
    assert work_counts(run_dir, run_id).get("cancelled") is None, "cancelled before y"
    pane.keys("y")
    pane.wait_for(lambda s: any(re.search(r"cancelled \d instance", line) for line in s),
                  "the cancel's outcome")  # fmt: skip
    counts = work_counts(run_dir, run_id)
    assert counts == {"failed": 1, "cancelled": 3}

    (run_dir / "hold").unlink()
    pane.keys("r")
    pane.wait_for(lambda s: "retry now? (y/n)" in s[-2] and "  no option changes" in s[-3],
                  "the retry's question")  # fmt: skip
    assert work_counts(run_dir, run_id) == {"failed": 1, "cancelled": 3}, "retried before y"
    pane.keys("y")
    pane.wait_for(lambda s: any("4 instance(s) will run again" in line for line in s),
                  "the retry's outcome")  # fmt: skip
    wait_until(lambda: work_counts(run_dir, run_id) == {"done": 3, "failed": 1}, "the rerun")
    pane.wait_for(lambda s: any(line.startswith("> work") and "3/4" in line for line in s),
                  "the rerun on screen")  # fmt: skip

    pane.keys("q")
    assert pane.exit_code() == 0
    after = pane.wait_for(lambda s: "watch has ended" in s, "the shell after the view")
    assert not any(HELP_START in line for line in after), "the alternate screen was not left"
    assert_terminal_restored(tmp_path)


def test_reflow_watch_leaves_on_ctrl_c_without_a_traceback(
    tmp_path: Path, pane_factory: Callable[[list[str]], Pane]
) -> None:
    run_dir, run_id = submit(tmp_path, hold=False)
    wait_until(lambda: load_status(run_dir, run_id)["state"] == "failed", "the run to fail")
    console = [sys.executable, "-m", "reflow.running.commands.console"]
    pane = pane_factory([*console, "watch", "--run-dir", str(run_dir)])
    screen = pane.wait_for(lambda s: "dispatcher: finished" in s[0], "the view of the latest run")
    assert screen[0].startswith(f"run {run_id} (watched): FAILED")
    pane.keys("C-c")
    assert pane.exit_code() == 0
    after = pane.wait_for(lambda s: "watch has ended" in s, "the shell after the view")
    assert not any("Traceback" in line or "KeyboardInterrupt" in line for line in after)
    assert_terminal_restored(tmp_path)


def test_watch_without_a_terminal_prints_tables_until_the_run_ends(tmp_path: Path) -> None:
    run_dir, run_id = submit(tmp_path, hold=True)
    wait_until(lambda: work_counts(run_dir, run_id).get("failed") == 1, "element 1 to fail")
    proc = subprocess.Popen(
        [sys.executable, str(FLOW), "watch", run_id, "--run-dir", str(run_dir)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], DEADLINE_S)
        assert ready, "no table within the deadline"
        first = proc.stdout.readline()
        (run_dir / "hold").unlink()
        out, err = proc.communicate(timeout=DEADLINE_S)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == 0, err
    assert first.startswith(f"run {run_id} (watched): RUNNING")
    tables = (first + out).split("\n\n")
    assert len(tables) >= 2
    assert tables[-1].startswith(f"run {run_id} (watched): FAILED")
    assert "\x1b" not in out, "no terminal control codes in a pipe"

    again = cli(FLOW, "status", run_id, "--run-dir", str(run_dir), "--watch", cwd=tmp_path)
    assert again.returncode == 0
    assert again.stdout.count(f"run {run_id} (watched)") == 1
    assert "FAILED" in again.stdout


def test_a_terminal_curses_does_not_know_gets_the_plain_table(
    tmp_path: Path, pane_factory: Callable[[list[str]], Pane]
) -> None:
    run_dir, run_id = submit(tmp_path, hold=False)
    wait_until(lambda: load_status(run_dir, run_id)["state"] == "failed", "the run to fail")
    command = [sys.executable, str(FLOW), "watch", run_id, "--run-dir", str(run_dir)]
    pane = pane_factory(["env", "TERM=nosuchterm", *command])
    assert pane.exit_code() == 0
    after = pane.wait_for(lambda s: "watch has ended" in s, "the shell after the table")
    assert any(line.startswith(f"run {run_id} (watched): FAILED  executor=local") for line in after)
    assert not any(HELP_START in line for line in after)
