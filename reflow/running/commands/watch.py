"""Running: ``watch``, a full-screen live view of a run, and ``status --watch``, its plain form.

The view is drawn with the standard library's ``curses`` and redrawn in place: a row per
task (with its retries and the resources they raised), the newest failed elements, the log
of an element of the selected task (its first failed one until the user picks another), the
elapsed time and the dispatcher's state. Keys (``watch_keys``) select a task and an element,
show its log, cancel the task, retry the run after showing what the retry changes, or quit;
quitting leaves the run going. It reads the store like ``status`` (once a second, asking the
scheduler about the dispatcher only every 30 s, as ``status`` does) plus the failed elements'
end times, and writes nothing but through ``cancel_run`` and ``retry``. Where curses cannot
run (not a terminal), the status table is printed again until the run ends. The lines to
draw come from ``watch_view.layout``.
"""

from __future__ import annotations

import contextlib
import curses
import heapq
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any

from reflow.definition.errors import ReflowError
from reflow.running.commands.logs import running_output
from reflow.running.commands.progress import is_terminal, poll_interval_s
from reflow.running.commands.status import elements_in, load_status, render_status
from reflow.running.commands.watch_keys import Controls, Question
from reflow.running.commands.watch_view import Failure, Line, ViewState, layout, task_retries
from reflow.running.dispatch.control import cancel_run, retry
from reflow.running.dispatch.dispatcher import TERMINAL_RUN_STATES
from reflow.running.rundir.layout import RunLayout
from reflow.running.store.sqlite import SqliteStore
from reflow.running.store.states import ACTIVE, InstanceState

REFRESH_S = 1.0
PLAIN_REFRESH_S = 2.0
ASK_SCHEDULER_EVERY_S = 30.0
_KEY_WAIT_MS = 200
_LOG_LINES = 200
_LOG_TAIL_BYTES = 64 * 1024
_FAILURES_READ = 100
"""Newest failed elements kept for the view: more never fit a screen."""
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
        took = time.monotonic() - now
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
        time.sleep(max(interval_s, poll_interval_s(0.0, took)))


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
        self.controls = Controls()
        self.status = status
        self._alive: bool | None = None
        self._retried: dict[str, str] = {}
        self._failures: list[Failure] = []
        self._failed: dict[str, list[int]] = {}
        self._log: tuple[str, list[str]] = ("", [])
        self._loaded = -REFRESH_S
        self._reading_s = 0.0  # how long the last refresh read the run (see poll_interval_s)
        self._asked = -ASK_SCHEDULER_EVERY_S

    def run(self, screen: curses.window) -> None:
        """The loop that ``curses.wrapper`` runs; returns when the user quits."""
        self.started = True
        _hide_cursor()
        screen.timeout(_KEY_WAIT_MS)
        screen.keypad(True)
        while True:
            if time.monotonic() - self._loaded >= max(
                REFRESH_S, poll_interval_s(0, self._reading_s)
            ):
                self._refresh_or_say()
            self.draw(screen)
            key = screen.getch()
            if key == curses.KEY_RESIZE:
                curses.update_lines_cols()
                screen.clear()
            elif key != -1 and not self.press(key):
                return

    def refresh(self) -> None:
        """Read the run's status, its failed elements and the log shown.

        The retries come from the ``retried`` history that ``status`` reads, the failed
        elements with their end times from its ``failed`` list.
        """
        now = time.monotonic()
        ask = now - self._asked >= ASK_SCHEDULER_EVERY_S
        self._asked = now if ask else self._asked
        self._loaded = now
        self.status = load_status(self.root, self.run_id, ask_scheduler=ask)
        alive = self.status["dispatcher"].get("alive")
        self._alive = self._alive if alive is None else alive
        self._retried = task_retries(self.status["retried"])
        self._read_failures(elements_in(self.status, InstanceState.FAILED))
        tasks = len(self.status["tasks"])
        self.controls.selected = min(self.controls.selected, max(0, tasks - 1))
        self._log = self._read_log() if self.controls.show_log else ("", [])
        self._reading_s = time.monotonic() - now

    def _read_failures(self, failed: list[dict[str, Any]]) -> None:
        """The newest failed elements, and each task's failed elements by index."""
        newest = heapq.nlargest(_FAILURES_READ, failed, key=lambda f: f["ended"] or 0.0)
        self._failures = [
            Failure(
                task=f["task"], element=f["element"], reason=f["reason"], error=f["error"],
                ended=f["ended"],
            )
            for f in newest
        ]  # fmt: skip
        self._failed = {}
        for f in failed:  # in task, element order
            self._failed.setdefault(f["task"], []).append(f["element"])

    def _refresh_or_say(self) -> None:
        """Refresh; a store that cannot be read now (say it is locked) is said, not fatal."""
        try:
            self.refresh()
        except ReflowError as err:
            self._loaded = time.monotonic()
            self.controls.message = f"error: {err}"

    def view(self) -> ViewState:
        """What ``layout`` needs besides the status."""
        status = self.status
        end = status["updated"] if status["state"] in TERMINAL_RUN_STATES else time.time()
        return ViewState(
            selected=self.controls.selected,
            show_log=self.controls.show_log,
            log_title=self._log[0],
            log_lines=self._log[1],
            message=self.controls.prompt(),
            elapsed_s=end - status["created"],
            dispatcher=dispatcher_state(status, self._alive),
            retried=self._retried,
            failures=self._failures,
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
        controls = self.controls
        question = controls.question
        task = self._task()
        action = controls.press(
            key,
            tasks=len(self.status["tasks"]),
            elements=task["elements"] if task else None,
            failed=self._failed.get(task["task"], []) if task else [],
            shown=self._shown()[0],
        )
        if action == "quit":
            return False
        if action == "ask_cancel" and task is not None:
            controls.question = Question(
                action="cancel",
                task=task["task"],
                lines=(f"cancel task {task['task']!r} of run {self.run_id}? (y/n)",),
                declined=f"{task['task']} not cancelled",
            )
        elif action == "ask_retry":
            self._ask_retry()
        elif action == "cancel" and question is not None:
            name = question.task
            self._act(lambda: f"cancelled {cancel_run(self.root, self.run_id, name)} "
                      f"instance(s) of {name}")  # fmt: skip
        elif action == "retry":
            self._act(self._retry)
        if action != "none":
            self._log = self._read_log() if controls.show_log else ("", [])
        return True

    def _ask_retry(self) -> None:
        """Ask before a retry, saying what it would run again and which options it changes."""
        try:
            preview = retry(self.root, self.run_id, dry_run=True)
        except ReflowError as err:
            self.controls.message = f"error: {err}"
            return
        changes = [f"  {change}" for change in preview.changes] or ["  no option changes"]
        self.controls.question = Question(
            action="retry",
            lines=(
                f"retry {self.run_id}: {preview.count} failed or cancelled instance(s) would"
                " run again; options it changes:",
                *changes,
                *(f"  {note}" for note in preview.notes),
                "retry now? (y/n)",
            ),
            declined="retry not started",
        )

    def _retry(self) -> str:
        done = retry(self.root, self.run_id)
        if not done.resumed:
            return "nothing to retry: the run succeeded and stays so"
        return f"retry: {done.count} instance(s) will run again"

    def _act(self, action: Callable[[], str]) -> None:
        """Run a cancel or retry; show its outcome, or its error, as the message."""
        try:
            self.controls.message = action()
        except ReflowError as err:
            self.controls.message = f"error: {err}"
        self._refresh_or_say()

    def _task(self) -> dict[str, Any] | None:
        tasks = self.status.get("tasks") or []
        return tasks[self.controls.selected] if tasks else None

    def _shown(self) -> tuple[int, str]:
        """The element whose log shows and what it is: the chosen one, else the first failed."""
        task = self._task()
        failed = self._failed.get(task["task"], []) if task else []
        element = self.controls.element
        if element is None:
            element = failed[0] if failed else 0
        if element in failed:
            return element, f"failed element {failed.index(element) + 1} of {len(failed)}"
        return element, "element" if self.controls.element is not None else "first element"

    def _read_log(self) -> tuple[str, list[str]]:
        """The log of the element shown (see ``_shown``)."""
        task = self._task()
        if task is None:
            return ("", [])
        name = task["task"]
        if not task["elements"]:
            return (f"log of {name}: no elements yet", [])
        element, which = self._shown()
        layout = RunLayout(self.root, self.run_id)
        path = layout.log(name, element)
        lines = read_tail(path, _LOG_LINES)
        with SqliteStore.open(self.root) as store:
            rows = store.instances(self.run_id, name, element=element)
        running = running_output(layout, rows[0]) if rows else b""
        if running:  # a packed element that runs: the rest is in its array task's output
            lines = [*lines, *running.decode(errors="replace").splitlines()][-_LOG_LINES:]
        note = "" if path.exists() or running else log_note(rows[0].state if rows else None)
        return (f"log of {name}[{element}], {which}{note}: {path}", lines)


def log_note(state: InstanceState | None) -> str:
    """What the log pane says of an element without a log: it has not started, or was silent."""
    if state is None or state in ACTIVE:
        return " (not started)"
    if state is InstanceState.CACHED:
        return " (cached: its log is the one of the run that made it; see logs)"
    if state is InstanceState.BLOCKED:
        return " (blocked: it did not run)"
    return f" ({state.value}: no output)"


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
