"""``watch`` as a user sees it: a real run on the local executor, the view in a tmux pane.

tmux gives the view a real pseudo-terminal whose screen the test reads (``capture-pane``)
and whose keyboard it types on (``send-keys``). After the view ends, the pane's shell
records the exit code and ``stty -a``, so the test sees whether the terminal was restored.
"""

from __future__ import annotations

import json
import os
import re
import select
import shlex
import shutil
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from reflow.running.commands.status import load_status
from reflow.running.rundir.layout import RunLayout
from reflow.running.store.sqlite import SqliteStore
from reflow.running.store.states import InstanceState
from tests.integration.flowfiles import cli, seed

FLOWS = Path(__file__).resolve().parents[1] / "flows"
FLOW = FLOWS / "watch_steps.py"
""" ``work`` elements wait while ``<run_dir>/hold`` exists; element 1 fails at once."""
FAILING = FLOWS / "watch_failures.py"
""" ``fail``'s four elements fail in index order, 0.4 s apart; ``calls`` counts them."""
RETRIES = FLOWS / "retry_steps.py"
""" With ``--fault oserror``, ``work``'s element 1 goes out three times; ``calls`` counts."""
DEADLINE_S = 60
HELP_START = "up/down select"

# CI must run these (scripts/test installs tmux); elsewhere a missing tmux skips them.
pytestmark = pytest.mark.skipif(
    shutil.which("tmux") is None and not os.environ.get("CI"), reason="tmux is not installed"
)


@pytest.fixture(autouse=True)
def local_mode(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("REFLOW_MODE", "local")
    monkeypatch.setenv("REFLOW_LOCAL_SLOTS", "4")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))


def wait_until(predicate: Callable[[], Any], what: str) -> Any:
    deadline = time.monotonic() + DEADLINE_S
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


class Pane:
    """A tmux pane on a private server, running one command, then recording how it ended."""

    def __init__(self, folder: Path, command: list[str], *, width: int = 100, height: int = 30):
        self.folder = folder
        self.socket = folder / "tmux.sock"
        script = folder / "pane.sh"
        # The shell catches Ctrl-C (a handler, not an ignore, which the command would
        # inherit) so that it outlives the command and records how the command ended.
        script.write_text(
            "trap : INT\n"
            f"{shlex.join(command)}\n"
            f"echo $? > {shlex.quote(str(folder / 'code'))}\n"
            f"stty -a > {shlex.quote(str(folder / 'stty'))}\n"
            "echo watch has ended\n"
            "sleep 600\n"
        )
        self.tmux(
            "new-session", "-d", "-s", "watch", "-x", str(width), "-y", str(height),
            f"sh {shlex.quote(str(script))}",
        )  # fmt: skip

    def tmux(self, *args: str) -> str:
        env = {**os.environ, "TERM": os.environ.get("TERM", "xterm")}
        done = subprocess.run(
            ["tmux", "-S", str(self.socket), *args],
            capture_output=True, text=True, env=env, timeout=DEADLINE_S, check=True,
        )  # fmt: skip
        return done.stdout

    def screen(self) -> list[str]:
        return self.tmux("capture-pane", "-p", "-t", "watch").splitlines()

    def wait_for(self, predicate: Callable[[list[str]], Any], what: str) -> list[str]:
        def check() -> list[str] | None:
            lines = self.screen()
            return lines if predicate(lines) else None

        try:
            return wait_until(check, what)  # type: ignore[no-any-return]
        except AssertionError as err:
            raise AssertionError(f"{err}; the screen:\n" + "\n".join(self.screen())) from None

    def keys(self, *keys: str) -> None:
        self.tmux("send-keys", "-t", "watch", *keys)

    def exit_code(self) -> int:
        code = wait_until(lambda: (self.folder / "code").exists(), "the view to end")
        assert code
        return int((self.folder / "code").read_text())

    def close(self) -> None:
        subprocess.run(
            ["tmux", "-S", str(self.socket), "kill-server"], capture_output=True, check=False
        )


@pytest.fixture
def pane_factory(tmp_path: Path) -> Iterator[Callable[[list[str]], Pane]]:
    panes: list[Pane] = []

    def make(command: list[str]) -> Pane:
        panes.append(Pane(tmp_path, command))
        return panes[-1]

    yield make
    for pane in panes:
        pane.close()


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
    small = pane.wait_for(lambda s: len(s) == 5 and s[-1].startswith("up/down"), "a small redraw")
    assert all(len(line) < 30 for line in small)
    assert small[0].startswith("run watched")
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


def calls(run_dir: Path) -> Counter[str]:
    return Counter((run_dir / "calls").read_text().splitlines())


def submit_and_wait(flow: Path, tmp_path: Path, *args: str) -> tuple[Path, str]:
    run_dir = tmp_path / "runs"
    done = cli(flow, "submit", "--run-dir", str(run_dir), "--wait", *args, cwd=tmp_path)
    assert "submitted run " in done.stdout, done.stdout + done.stderr
    return run_dir, done.stdout.split("submitted run ", 1)[1].split()[0]


def test_watch_shows_the_resources_automatic_retries_raised(
    tmp_path: Path, pane_factory: Callable[[list[str]], Pane]
) -> None:
    """The local executor never ends in OUT_OF_MEMORY, so the test writes into the store what
    a Slurm run's dispatcher records for one (attempts at 256M, 512M, then 1G) over the
    attempts of a real element that went out three times."""
    run_dir, run_id = submit_and_wait(RETRIES, tmp_path, "--fault", "oserror")
    assert calls(run_dir)["work 1"] == 3
    with SqliteStore.open(run_dir) as store:
        seed(store, [(
            "UPDATE attempts SET resources = ?, reason = ? WHERE run_id = ? AND task = 'work'"
            " AND element = 1 AND attempt = ?",
            [('{"mem_mb": 256}', "out_of_memory", run_id, 1),
             ('{"mem_mb": 512}', "out_of_memory", run_id, 2),
             ('{"mem_mb": 1024}', None, run_id, 3)],
        )])  # fmt: skip
    table = cli(RETRIES, "status", run_id, "--run-dir", str(run_dir), cwd=tmp_path).stdout
    assert "attempt 2/3: OUT_OF_MEMORY at 256M -> 512M" in table, table
    assert "attempt 3/3: OUT_OF_MEMORY at 512M -> 1G" in table, table

    pane = pane_factory([sys.executable, str(RETRIES), "watch", run_id, "--run-dir", str(run_dir)])
    screen = pane.wait_for(lambda s: any(line[2:].startswith("work ") for line in s), "the rows")
    [work] = [line for line in screen if line[2:].startswith("work ")]
    assert work.endswith("3/3  3 done  (1 retried, up to 3 attempts; mem 256M -> 1G)"), work
    [items] = [line for line in screen if line[2:].startswith("items ")]
    assert "retried" not in items
    pane.keys("q")
    assert pane.exit_code() == 0


def test_watch_lists_the_newest_failures_first_and_what_fits(
    tmp_path: Path, pane_factory: Callable[[list[str]], Pane]
) -> None:
    run_dir, run_id = submit_and_wait(FAILING, tmp_path)
    assert calls(run_dir) == Counter({"fail 0": 1, "fail 1": 1, "fail 2": 1, "fail 3": 1})
    with SqliteStore.open(run_dir) as store:
        rows = store.instances_in(run_id, [InstanceState.FAILED])
    by_end = [row.element for row in sorted(rows, key=lambda row: row.ended or 0.0)]
    assert by_end == [0, 1, 2, 3], "the flow's elements end in index order"

    pane = pane_factory([sys.executable, str(FAILING), "watch", run_id, "--run-dir", str(run_dir)])
    screen = pane.wait_for(lambda s: "newest failures, latest first:" in s, "the failures")
    start = screen.index("newest failures, latest first:") + 1
    assert [re.sub(r"^  \d\d:\d\d:\d\d  ", "", line) for line in screen[start : start + 5]] == [
        "fail[3]  exception: KeyError: 'item 3'",
        "fail[2]  exception: ValueError: item 2 is even",
        "fail[1]  exception: KeyError: 'item 1'",
        "fail[0]  exception: ValueError: item 0 is even",
        "",
    ]

    pane.tmux("resize-window", "-t", "watch", "-x", "100", "-y", "8")
    small = pane.wait_for(lambda s: len(s) == 8 and s[-1].startswith(HELP_START), "a redraw")
    assert small[3] == "newest failures, latest first:"
    assert [line.split()[1] for line in small[4:7]] == ["fail[3]", "fail[2]", "fail[1]"]
    pane.keys("q")
    assert pane.exit_code() == 0


def log_pane(screen: list[str]) -> tuple[str, str]:
    """The log pane's title and its text."""
    start = next(n for n, line in enumerate(screen) if line.startswith("log of "))
    return screen[start], "\n".join(screen[start + 1 :])


def test_watch_moves_the_log_between_failed_elements_and_to_a_typed_index(
    tmp_path: Path, pane_factory: Callable[[list[str]], Pane]
) -> None:
    run_dir, run_id = submit_and_wait(FAILING, tmp_path)
    pane = pane_factory([sys.executable, str(FAILING), "watch", run_id, "--run-dir", str(run_dir)])
    pane.wait_for(lambda s: "newest failures, latest first:" in s, "the view")
    pane.keys("Down", "l")

    def shows(element: int, which: str) -> Callable[[list[str]], bool]:
        def check(screen: list[str]) -> bool:
            if not any(line.startswith("log of ") for line in screen):
                return False
            title, text = log_pane(screen)
            return title.startswith(f"log of fail[{element}], {which}") and (
                f"fail element {element} starts" in text
            )

        return check

    screen = pane.wait_for(shows(0, "failed element 1 of 4"), "the first failed element's log")
    assert screen[-1].startswith(HELP_START)
    assert "n/p next/prev failed" in screen[-1]
    assert "ValueError: item 0 is even" in log_pane(screen)[1]
    pane.keys("n")
    screen = pane.wait_for(shows(1, "failed element 2 of 4"), "the next failed element's log")
    assert "KeyError: 'item 1'" in log_pane(screen)[1]
    assert "fail element 0 starts" not in log_pane(screen)[1]
    pane.keys("p", "p")
    pane.wait_for(shows(3, "failed element 4 of 4"), "back around to the last failed element")
    pane.keys("2")
    pane.wait_for(lambda s: "show element: 2_  (Enter show, Esc stop)" in s, "the typed index")
    pane.keys("Enter")
    pane.wait_for(shows(2, "failed element 3 of 4"), "the typed element's log")
    pane.keys("9", "Enter")
    pane.wait_for(lambda s: "no element 9: the task has elements 0-3" in s, "a refused index")
    pane.wait_for(shows(2, "failed element 3 of 4"), "the log kept")
    pane.keys("1", "3", "BSpace")
    pane.wait_for(lambda s: "show element: 1_  (Enter show, Esc stop)" in s, "a digit erased")
    pane.keys("Escape")
    pane.wait_for(lambda s: not any("show element:" in line for line in s), "typing stopped")
    pane.keys("n")
    pane.wait_for(shows(3, "failed element 4 of 4"), "the next failed element after the typed")
    pane.keys("Up")
    pane.wait_for(lambda s: any(line.startswith("log of items[0], first element") for line in s),
                  "another task's log")  # fmt: skip
    pane.keys("q")
    assert pane.exit_code() == 0


def test_watch_shows_what_a_retry_would_change_before_it_retries(
    tmp_path: Path, pane_factory: Callable[[list[str]], Pane]
) -> None:
    flow = tmp_path / "flow.py"
    flow.write_text(FAILING.read_text())
    run_dir, run_id = submit_and_wait(flow, tmp_path)
    flow.write_text(FAILING.read_text().replace('mem="256M"', 'mem="1G"'))
    dry = cli(flow, "retry", run_id, "--run-dir", str(run_dir), "--dry-run", cwd=tmp_path)
    assert dry.stdout.splitlines()[0] == "fail: mem 256M -> 1G (flow file)"

    pane = pane_factory([sys.executable, str(flow), "watch", run_id, "--run-dir", str(run_dir)])
    pane.wait_for(lambda s: "newest failures, latest first:" in s, "the view")
    pane.keys("r")
    screen = pane.wait_for(lambda s: s[-2] == "retry now? (y/n)", "the retry's question")
    assert screen[-4].startswith(f"retry {run_id}: 4 failed or cancelled instance(s) would")
    assert screen[-3] == "  fail: mem 256M -> 1G (flow file)"
    pane.keys("n")
    pane.wait_for(lambda s: s[-2] == "retry not started", "the declined retry")
    assert calls(run_dir)["fail 0"] == 1, "nothing ran again"

    pane.keys("r")
    pane.wait_for(lambda s: s[-2] == "retry now? (y/n)", "the question again")
    pane.keys("y")
    pane.wait_for(lambda s: "retry: 4 instance(s) will run again" in s, "the retry's outcome")
    wait_until(lambda: sum(calls(run_dir).values()) == 8, "the four elements to run again")
    assert calls(run_dir) == Counter({"fail 0": 2, "fail 1": 2, "fail 2": 2, "fail 3": 2})
    manifest = json.loads(RunLayout(run_dir, run_id).manifest.read_text())
    [fail] = [t for t in manifest["description"]["tasks"] if t["name"] == "fail"]
    assert fail["resources"]["mem_mb"] == 1024
    pane.keys("q")
    assert pane.exit_code() == 0
