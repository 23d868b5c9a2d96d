"""Running: follow a run until it ends, showing progress per task and a closing summary.

On a terminal every task has one line, redrawn in place with ANSI cursor movement (no
dependency); anywhere else (a pipe, a log file, a notebook) a task's line is printed again
only when it changes, so a log stays short. The summary counts instances by state, gives the
elapsed time and, for failures, the failed elements' logs and the commands to look further;
one more line points to ``report`` when a task used under a third of what it asked for.
Reads the store through ``load_status``; it never writes anything but ``out``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

from reflow.running.commands.hints import console_command
from reflow.running.commands.status import STATE_ORDER, group_label, load_status
from reflow.running.commands.usage import underused_line
from reflow.running.store.sqlite import SqliteStore
from reflow.running.store.states import RUN_FINAL, InstanceState, RunState

_STALLED = "stalled"
_WORDS = {InstanceState.SUBMITTED.value: "running", InstanceState.READY.value: "queued"}

_POLL_S = 0.2
_MAX_POLL_S = 2.0
_READING_SHARE = 10
"""A follower waits at least this many times as long as its last read of the run took."""
_BAR_WIDTH = 20
_CURSOR_UP = "\x1b[{}A"
_CLEAR_LINE = "\r\x1b[2K"
_EXAMPLE_LOGS = 3
_ASK_SCHEDULER_EVERY_S = 30.0


def wait_for_run(
    run_dir: Path, run_id: str, *, timeout_s: float | None = None, out: IO[str] | None = None
) -> str:
    """Poll the store until the run ends or ``timeout_s`` passes; return the last state.

    Args:
        run_dir: The run directory.
        run_id: The run to follow.
        timeout_s: Give up after this many seconds; None waits for the end.
        out: Where progress and the summary go; None prints nothing.

    Returns:
        ``succeeded``, ``failed`` or ``cancelled`` once the run ended; ``stalled`` when its
        local dispatcher is gone; the current state (``running``) on timeout.
    """
    started = time.monotonic()
    deadline = None if timeout_s is None else started + timeout_s
    view = None if out is None else ProgressView(out, tty=is_terminal(out))
    last_asked = -_ASK_SCHEDULER_EVERY_S
    while True:
        # The store says how far the run got; the scheduler is asked about the dispatcher
        # job only now and then, so following a Slurm run costs the controller little.
        now = time.monotonic()
        ask = now - last_asked >= _ASK_SCHEDULER_EVERY_S
        if ask:
            last_asked = now
        # failed elements are read once, for the summary, not on every poll
        data = load_status(Path(run_dir), run_id, ask_scheduler=ask, failures=False)
        took = time.monotonic() - now
        state = _final_state(data)
        if state is None and deadline is not None and time.monotonic() > deadline:
            state = str(data["state"])
        if view is not None:
            view.update(data, time.monotonic() - started)
        if state is not None:
            break
        pause = poll_interval_s(now - started, took)
        if deadline is not None:  # a slow read spaces the next one, never past the timeout
            pause = max(0.0, min(pause, deadline - time.monotonic()))
        sleep_unless_ended(run_dir, run_id, started, pause)
    if view is not None:
        data = load_status(Path(run_dir), run_id, ask_scheduler=False)
        summary = render_summary(data, state, time.monotonic() - started)
        view.finish(summary + _report_pointer(Path(run_dir), run_id))
    return state


def sleep_unless_ended(run_dir: Path, run_id: str, started: float, seconds: float) -> None:
    """Sleep ``seconds``, or less when the run ends meanwhile.

    A large run's full read is slow and so comes seldom (``poll_interval_s``); in between, the
    run's own row alone is read at the rate of a small run, so ``--wait`` returns soon after
    the run ended whatever its size.
    """
    until = time.monotonic() + seconds
    while (left := until - time.monotonic()) > 0:
        time.sleep(min(left, poll_interval_s(time.monotonic() - started)))
        if time.monotonic() < until and _has_ended(run_dir, run_id):
            return


def _has_ended(run_dir: Path, run_id: str) -> bool:
    with SqliteStore.open(Path(run_dir)) as store:
        return store.run(run_id).state in RUN_FINAL


def _report_pointer(run_dir: Path, run_id: str) -> str:
    """The line pointing to ``report`` when a task asked far too much, else nothing."""
    line = underused_line(run_dir, run_id)
    return f"{line}\n" if line else ""


def poll_interval_s(elapsed_s: float, took_s: float = 0.0) -> float:
    """Look often at first, then less: 0.2 s growing to 2 s over three minutes.

    A long Slurm run followed with ``--wait`` should not keep a store on a network file
    system busy; a short local run should still feel instant. And a follower spends at most
    a tenth of its time reading: after a read that took ``took_s`` (a large run whose
    results arrived but are not ingested yet is read file by file), it waits ten times that.
    """
    return max(min(_MAX_POLL_S, _POLL_S + elapsed_s / 100), _READING_SHARE * took_s)


def _final_state(data: Mapping[str, Any]) -> str | None:
    """The state to stop at, or None while the run goes on."""
    if data["state"] in RUN_FINAL:
        return str(data["state"])
    if data["dispatcher"].get("alive") is False:
        return _STALLED
    return None


def is_terminal(out: IO[str]) -> bool:
    """True when ``out`` is an interactive terminal that understands cursor movement."""
    if os.environ.get("TERM", "") == "dumb":
        return False
    try:
        return out.isatty()
    except (AttributeError, ValueError, OSError):
        return False


class ProgressView:
    """Draws one line per task: in place on a terminal, as changed lines elsewhere."""

    def __init__(self, out: IO[str], *, tty: bool) -> None:
        self.out = out
        self.tty = tty
        self._drawn = 0
        self._last: dict[str, str] = {}

    def update(self, data: Mapping[str, Any], elapsed_s: float) -> None:
        """Show the run's current progress."""
        tasks = data["tasks"]
        width = max((len(t["task"]) for t in tasks), default=4)
        lines = {t["task"]: task_line(t, width) for t in tasks}
        if self.tty:
            header = f"run {data['run_id']}: {data['state']}, {elapsed_s:.1f}s"
            self._redraw([header, *(f"  {line}" for line in lines.values())])
        else:
            for task, line in lines.items():
                if self._last.get(task) != line:
                    self.out.write(f"[{elapsed_s:6.1f}s] {line}\n")
            self._last = lines
        self.out.flush()

    def finish(self, summary: str) -> None:
        """Leave the last progress on screen and print the summary below it."""
        self.out.write(summary)
        self.out.flush()

    def _redraw(self, lines: list[str]) -> None:
        columns = _columns(self.out)
        text = _CURSOR_UP.format(self._drawn) if self._drawn else ""
        for line in lines:
            text += _CLEAR_LINE + (line[: columns - 1] if columns else line) + "\n"
        self.out.write(text)
        self._drawn = len(lines)


def _columns(out: IO[str]) -> int | None:
    """The terminal's width, or None when it cannot be told."""
    try:
        return os.get_terminal_size(out.fileno()).columns or None
    except (AttributeError, ValueError, OSError):
        return None


def task_line(task: Mapping[str, Any], width: int) -> str:
    """One task's progress: a bar, finished/total, and the count in each state."""
    name = str(task["task"]).ljust(width)
    counts: Mapping[str, int] = task["counts"]
    total = task["elements"]
    if task["error"]:
        return f"{name}  {_bar(0, 1)}  error: {task['error']}"
    if total is None:
        return f"{name}  {_bar(0, 1)}  ?  waiting"
    finished = counts.get(InstanceState.DONE, 0) + counts.get(InstanceState.CACHED, 0)
    digits = len(str(total))
    states = ", ".join(f"{counts[s]} {_word(s)}" for s in STATE_ORDER if counts.get(s))
    return f"{name}  {_bar(finished, total)}  {finished:>{digits}}/{total}  {states or 'planned'}"


def _word(state: str) -> str:
    """How a state reads in a progress line: instances handed to the executor are running."""
    return _WORDS.get(state, state)


def _bar(finished: int, total: int) -> str:
    filled = _BAR_WIDTH if total == 0 else _BAR_WIDTH * finished // total
    return "[" + "#" * filled + "." * (_BAR_WIDTH - filled) + "]"


def render_summary(data: Mapping[str, Any], state: str, elapsed_s: float) -> str:
    """The closing lines: state, elapsed time, counts by state, and where failures are logged.

    Args:
        data: The run's status (``load_status``).
        state: What ``wait_for_run`` returns.
        elapsed_s: The time the wait took.

    Returns:
        Text ending in a newline.
    """
    run_id, root = data["run_id"], data["run_dir"]
    totals = {s: sum(t["counts"].get(s, 0) for t in data["tasks"]) for s in STATE_ORDER}
    counted = ", ".join(f"{n} {s}" for s, n in totals.items() if n) or "no instances yet"
    lines = [f"run {run_id} {state} after {elapsed_s:.1f}s: {counted}"]
    waiting = [t["task"] for t in data["tasks"] if not t["planned"]]
    if waiting:
        lines.append(f"  not started: {', '.join(waiting)}")
    lines.extend(
        f"  {t['task']} could not be planned: {t['error']}" for t in data["tasks"] if t["error"]
    )
    for group in data["failures"]:
        lines.append(f"  {group_label(group)}")
        for example in group["examples"][:_EXAMPLE_LOGS]:
            lines.append(f"    [{example['element']}] {example['error']}")
            if example["log"]:
                lines.append(f"        log: {example['log']}")
    if data["failures"]:
        task = data["failures"][0]["task"]
        lines.append(f"  read a log:  {console_command('logs', run_id, root, task)}")
    if state in (RunState.FAILED, RunState.CANCELLED, _STALLED):
        lines.append(f"  run again:   {console_command('retry', run_id, root)}")
    if state == _STALLED:
        lines.insert(1, "  the run's dispatcher is no longer running")
    elif state not in RUN_FINAL:
        lines.append(f"  follow it:   {console_command('status', run_id, root)}")
    return "\n".join(lines) + "\n"
