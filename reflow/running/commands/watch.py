"""Running: ``watch``, a full-screen live view of a run, and ``status --watch``, its plain form.

The view is drawn with the standard library's ``curses`` and redrawn in place: a row per
task, failures, the log of the selected task's first failed element, the elapsed time and
the dispatcher's state. Keys select a task, show its log, cancel it, retry the run or quit;
quitting leaves the run going. It reads the store like ``status`` (once a second, asking the
scheduler about the dispatcher only every 30 s) and writes nothing but through ``cancel_run``
and ``retry_run``. Where curses cannot run (not a terminal), the status table is printed
again until the run ends. The lines to draw come from ``watch_view.layout``.
"""

from __future__ import annotations

import contextlib
import curses
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any

from reflow.definition.errors import ReflowError
from reflow.running.commands.progress import is_terminal
from reflow.running.commands.status import load_status, render_status
from reflow.running.commands.watch_view import Line, ViewState, layout
from reflow.running.dispatch.control import cancel_run, retry_run
from reflow.running.dispatch.dispatcher import TERMINAL_RUN_STATES
from reflow.running.rundir.layout import RunLayout
from reflow.running.store.sqlite import SqliteStore
from reflow.running.store.states import InstanceState

REFRESH_S = 1.0
PLAIN_REFRESH_S = 2.0
ASK_SCHEDULER_EVERY_S = 30.0
_KEY_WAIT_MS = 200
_LOG_LINES = 200
_LOG_TAIL_BYTES = 64 * 1024
_CLEAR_SCREEN = "\x1b[H\x1b[2J"


def watch_run(root: Path, run_id: str | None, *, out: IO[str]) -> int:
    """Show the live view of ``run_id`` (the latest run when None) until the user quits.

    Args:
        root: The run directory.
        run_id: The run to watch; None for the latest.
        out: Where the plain table goes when ``out`` is not an interactive terminal.

    Returns:
        0 when the user leaves the view (``q`` or Ctrl-C) or, without a terminal, when the
        run ended.
    """
    first = load_status(root, run_id, ask_scheduler=False)
    run_id = str(first["run_id"])
    if not (out is sys.stdout and is_terminal(out) and sys.stdin.isatty()):
        return watch_status(root, run_id, out=out)
    session = WatchSession(root, run_id, first)
    try:
        curses.wrapper(session.run)
    except KeyboardInterrupt:
        return 0
    except curses.error:
        if session.started:
            raise
        return watch_status(root, run_id, out=out)
    return 0


def watch_status(
    root: Path, run_id: str | None, *, out: IO[str], interval_s: float = PLAIN_REFRESH_S
) -> int:
    """Print the status table every ``interval_s`` until the run ends or its dispatcher is gone.

    On a terminal the screen is cleared before each table; elsewhere a table is printed only
    when it changed, so a log stays short. Returns 0, also when Ctrl-C stops it early.
    """
    try:
        _print_tables(root, run_id, out, interval_s)
    except KeyboardInterrupt:
        out.write("\n")
    return 0


def _print_tables(root: Path, run_id: str | None, out: IO[str], interval_s: float) -> None:
    tty = is_terminal(out)
    last_asked = -ASK_SCHEDULER_EVERY_S
    shown = ""
    while True:
        now = time.monotonic()
        ask = now - last_asked >= ASK_SCHEDULER_EVERY_S
        last_asked = now if ask else last_asked
        data = load_status(root, run_id, ask_scheduler=ask)
        run_id = str(data["run_id"])
        text = render_status(data)
        if tty:
            out.write(_CLEAR_SCREEN + text)
        elif text != shown:
            out.write(("\n" if shown else "") + text)
        shown = text
        out.flush()
        if has_ended(data):
            return
        time.sleep(interval_s)


def has_ended(status: Mapping[str, Any]) -> bool:
    """True when the run is over, or its dispatcher is gone so that it cannot go on."""
    return status["state"] in TERMINAL_RUN_STATES or status["dispatcher"].get("alive") is False


def dispatcher_state(status: Mapping[str, Any], known_alive: bool | None) -> str:
    """``finished``, ``alive``, ``not running`` or ``unknown``, as ``status`` reports it."""
    if status["state"] in TERMINAL_RUN_STATES:
        return "finished"
    alive = status["dispatcher"].get("alive")
    alive = known_alive if alive is None else alive
    if alive is None:
        return "unknown"
    return "alive" if alive else "not running"


def read_tail(path: Path, count: int) -> list[str]:
    """The last ``count`` lines of a text file (its end only is read); [] when it is missing."""
    try:
        with path.open("rb") as handle:
            size = handle.seek(0, 2)
            handle.seek(max(0, size - _LOG_TAIL_BYTES))
            data = handle.read()
    except OSError:
        return []
    return data.decode(errors="replace").splitlines()[-count:]


class WatchSession:
    """The live view's state and its loop: read the store, draw, answer keys."""

    def __init__(self, root: Path, run_id: str, status: dict[str, Any]) -> None:
        self.root = root
        self.run_id = run_id
        self.started = False
        self.selected = 0
        self.show_log = False
        self.message = ""
        self.confirming: str | None = None
        self.status = status
        self._alive: bool | None = None
        self._retried: dict[str, tuple[int, int]] = {}
        self._log: tuple[str, list[str]] = ("", [])
        self._loaded = -REFRESH_S
        self._asked = -ASK_SCHEDULER_EVERY_S

    def run(self, screen: curses.window) -> None:
        """The loop that ``curses.wrapper`` runs; returns when the user quits."""
        self.started = True
        _hide_cursor()
        screen.timeout(_KEY_WAIT_MS)
        screen.keypad(True)
        while True:
            if time.monotonic() - self._loaded >= REFRESH_S:
                self._refresh_or_say()
            self.draw(screen)
            key = screen.getch()
            if key == curses.KEY_RESIZE:
                curses.update_lines_cols()
                screen.clear()
            elif key != -1 and not self.press(key):
                return

    def refresh(self) -> None:
        """Read the run's status, its retried elements and the selected task's log."""
        now = time.monotonic()
        ask = now - self._asked >= ASK_SCHEDULER_EVERY_S
        self._asked = now if ask else self._asked
        self._loaded = now
        self.status = load_status(self.root, self.run_id, ask_scheduler=ask)
        alive = self.status["dispatcher"].get("alive")
        self._alive = self._alive if alive is None else alive
        store = SqliteStore.open(self.root)
        try:
            self._retried = store.retried_counts(self.run_id)
        finally:
            store.close()
        self.selected = min(self.selected, max(0, len(self.status["tasks"]) - 1))
        self._log = self._read_log() if self.show_log else ("", [])

    def _refresh_or_say(self) -> None:
        """Refresh; a store that cannot be read now (say it is locked) is said, not fatal."""
        try:
            self.refresh()
        except ReflowError as err:
            self._loaded = time.monotonic()
            self.message = f"error: {err}"

    def view(self) -> ViewState:
        """What ``layout`` needs besides the status."""
        status = self.status
        end = status["updated"] if status["state"] in TERMINAL_RUN_STATES else time.time()
        message = self.message
        if self.confirming is not None:
            message = f"cancel task {self.confirming!r} of run {self.run_id}? (y/n)"
        return ViewState(
            selected=self.selected,
            show_log=self.show_log,
            log_title=self._log[0],
            log_lines=self._log[1],
            message=message,
            elapsed_s=end - status["created"],
            dispatcher=dispatcher_state(status, self._alive),
            retried=self._retried,
        )

    def draw(self, screen: curses.window) -> None:
        """Draw what fits in the window; a cell curses refuses is left out."""
        height, width = screen.getmaxyx()
        screen.erase()
        for row, line in enumerate(layout(self.status, self.view(), width, height)):
            with contextlib.suppress(curses.error):
                screen.addstr(row, 0, line.text, _attribute(line))
        screen.refresh()

    def press(self, key: int) -> bool:
        """Answer one key; False when the view should close."""
        if self.confirming is not None:
            task, self.confirming = self.confirming, None
            if key in (ord("y"), ord("Y")):
                self._act(
                    lambda: (
                        f"cancelled {cancel_run(self.root, self.run_id, task)} "
                        f"instance(s) of {task}"
                    )
                )
            else:
                self.message = f"{task} not cancelled"
            return True
        tasks = self.status["tasks"]
        if key in (ord("q"), ord("Q")):
            return False
        if key in (curses.KEY_UP, ord("k")):
            self.selected = max(0, self.selected - 1)
        elif key in (curses.KEY_DOWN, ord("j")):
            self.selected = max(0, min(len(tasks) - 1, self.selected + 1))
        elif key == ord("l"):
            self.show_log = not self.show_log
        elif key == ord("c") and tasks:
            self.confirming = tasks[self.selected]["task"]
            return True
        elif key == ord("r"):
            self._act(
                lambda: f"retry: {retry_run(self.root, self.run_id)} instance(s) will run again"
            )
        else:
            return True
        self._log = self._read_log() if self.show_log else ("", [])
        return True

    def _act(self, action: Callable[[], str]) -> None:
        """Run a cancel or retry; show its outcome, or its error, as the message."""
        try:
            self.message = action()
        except ReflowError as err:
            self.message = f"error: {err}"
        self._refresh_or_say()

    def _read_log(self) -> tuple[str, list[str]]:
        """The selected task's first failed element's log (else its first element's)."""
        if not self.status.get("tasks"):
            return ("", [])
        task = self.status["tasks"][self.selected]
        name = task["task"]
        failed = [
            example["element"]
            for group in self.status["failures"]
            if group["task"] == name and group["state"] == InstanceState.FAILED
            for example in group["examples"]
        ]
        if failed:
            element, which = min(failed), "first failed element"
        elif task["elements"]:
            element, which = 0, "first element"
        else:
            return (f"log of {name}: no elements yet", [])
        path = RunLayout(self.root, self.run_id).log(name, element)
        lines = read_tail(path, _LOG_LINES)
        note = "" if path.exists() else " (not started)"
        return (f"log of {name}[{element}], its {which}{note}: {path}", lines)


def _hide_cursor() -> None:
    with contextlib.suppress(curses.error):
        curses.curs_set(0)


def _attribute(line: Line) -> int:
    """How a line's style is drawn: bold titles, the selection reversed, failures bold."""
    return {
        "title": curses.A_BOLD,
        "selected": curses.A_REVERSE,
        "failure": curses.A_BOLD,
        "message": curses.A_BOLD,
    }.get(line.style, curses.A_NORMAL)
