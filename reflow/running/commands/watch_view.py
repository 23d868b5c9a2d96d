"""Running: the lines of the live view (``watch``), laid out from a status dict. Pure.

No curses and no I/O here: ``layout`` turns what ``watch`` knows (the run's status, the
newest failed elements, which task is selected, the log lines read for it, a message) into at
most ``height`` lines of at most ``width - 1`` characters, so the view can be tested at any
window size, tiny ones too. ``task_retries`` sums up a task's retried elements from the
``retried`` history of ``status``: how many, the most attempts, and the resources raised.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any, Literal

from reflow.definition.resources import RESOURCE_OPTIONS, field_of, show_value
from reflow.running.commands.progress import task_line

Style = Literal["title", "normal", "selected", "failure", "log", "message"]

HELP = "up/down select  l log  c cancel task  r retry run  q quit"
LOG_HELP = (
    "up/down select  n/p next/prev failed  0-9 Enter element  l hide log  c cancel  r retry  q quit"
)
_FAILURES_KEPT = 3
"""Lines of failures kept on screen before the log pane takes the rest."""


@dataclass(frozen=True, slots=True)
class Line:
    """One line to draw and how it looks."""

    text: str
    style: Style = "normal"


@dataclass(frozen=True, slots=True, kw_only=True)
class Failure:
    """A failed element as the view lists it: where, why, and when it ended (epoch seconds)."""

    task: str
    element: int
    reason: str
    error: str
    ended: float | None

    def __str__(self) -> str:
        when = time.strftime("%H:%M:%S", time.localtime(self.ended)) if self.ended else "--:--:--"
        why = f"{self.reason}: {self.error}" if self.error else self.reason
        return f"{when}  {self.task}[{self.element}]  {why}"


@dataclass(frozen=True, slots=True, kw_only=True)
class ViewState:
    """What the view shows besides the status: selection, failures, log pane, message, clocks.

    ``failures`` are the run's failed elements, newest first; ``retried`` maps a task to the
    note on its retried elements (``task_retries``); ``message`` may span lines, the last
    one being a question that waits for y/n.
    """

    selected: int = 0
    show_log: bool = False
    log_title: str = ""
    log_lines: Sequence[str] = ()
    message: str = ""
    elapsed_s: float = 0.0
    dispatcher: str = "unknown"
    retried: Mapping[str, str] = field(default_factory=dict)
    failures: Sequence[Failure] = ()


def task_retries(retried: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """``task -> "2 retried, up to 3 attempts; mem 256M -> 1G"`` from ``status["retried"]``.

    A resource is named where a retry raised it: from the lowest value an element had before
    a raise to the highest one a raise gave, over the task's elements.
    """
    counts: dict[str, list[int]] = {}
    raised: dict[str, dict[str, tuple[int, int]]] = {}
    for entry in retried:
        task = entry["task"]
        seen = counts.setdefault(task, [0, 0])
        seen[0] += 1
        seen[1] = max(seen[1], int(entry["attempts"]))
        for before, after in pairwise(entry["history"]):
            for option in RESOURCE_OPTIONS:
                old = before["resources"].get(field_of(option))
                new = after["resources"].get(field_of(option))
                if isinstance(old, int) and isinstance(new, int) and new > old:
                    low, high = raised.setdefault(task, {}).get(option, (old, new))
                    raised[task][option] = (min(low, old), max(high, new))
    notes = {}
    for task, (count, most) in counts.items():
        notes[task] = f"{count} retried, up to {most} attempts"
        changes = [
            f"{option} {show_value(option, low)} -> {show_value(option, high)}"
            for option, (low, high) in raised.get(task, {}).items()
        ]
        if changes:
            notes[task] += "; " + ", ".join(changes)
    return notes


def layout(status: Mapping[str, Any], view: ViewState, width: int, height: int) -> list[Line]:
    """The lines of the view for a window of ``width`` x ``height`` cells.

    Args:
        status: The run's status (``load_status``).
        view: The selection, failures, log pane and message.
        width: Columns of the window; every line is cut to ``width - 1`` characters.
        height: Rows of the window; at most this many lines are returned.

    Returns:
        Lines from the top: the title, one row per task (scrolled to keep the selected one
        visible), the newest failures and the log pane when shown; the message and the keys
        are the last lines of the window. A window too small for that gets what fits, the
        message's last line (say a question waiting for y/n) first.
    """
    if width < 2 or height < 1:
        return []
    title = Line(_title(status, view), "title")
    message = [Line(text, "message") for text in view.message.splitlines()]
    bottom = [*message, Line(LOG_HELP if view.show_log else HELP)]
    if height < 1 + len(bottom):
        lines = [*message[-1:], title, *message[:-1], bottom[-1]]
        return _cut(lines[:height], width)
    room = height - 1 - len(bottom)
    tasks = _task_rows(status, view, room)
    room -= len(tasks)
    failures = _failure_lines(view.failures)
    log = _log_lines(view) if view.show_log else []
    if log:
        log = _newest(log, room - min(len(failures), 1 + _FAILURES_KEPT))
    failures = _fit_failures(failures, room - len(log))
    body = [title, *tasks, *failures, *log]
    gap = [Line("")] * (height - len(body) - len(bottom))
    return _cut([*body, *gap, *bottom], width)


def _title(status: Mapping[str, Any], view: ViewState) -> str:
    return (
        f"run {status['run_id']} ({status['workflow']}): {str(status['state']).upper()}"
        f"  elapsed {format_duration(view.elapsed_s)}  dispatcher: {view.dispatcher}"
    )


def _task_rows(status: Mapping[str, Any], view: ViewState, room: int) -> list[Line]:
    """One row per task, the selected one marked; a window of them when they do not fit."""
    tasks = status["tasks"]
    if room <= 0 or not tasks:
        return []
    width = max(len(t["task"]) for t in tasks)
    rows = []
    for number, task in enumerate(tasks):
        text = task_line(task, width)
        if task["task"] in view.retried:
            text += f"  ({view.retried[task['task']]})"
        chosen = number == view.selected
        rows.append(Line(("> " if chosen else "  ") + text, "selected" if chosen else "normal"))
    if len(rows) <= room:
        return rows
    first = min(max(0, view.selected - room // 2), len(rows) - room)
    return rows[first : first + room]


def _failure_lines(failures: Sequence[Failure]) -> list[Line]:
    """A heading, then a line per failed element, newest first."""
    if not failures:
        return []
    head = Line("newest failures, latest first:", "title")
    return [head, *(Line(f"  {failure}", "failure") for failure in failures)]


def _fit_failures(lines: list[Line], room: int) -> list[Line]:
    """The heading and the newest failures that fit in ``room`` rows (none without two)."""
    return lines[:room] if room >= 2 else []


def _log_lines(view: ViewState) -> list[Line]:
    """The log pane: its title, then the last lines of the log."""
    body = [Line("    " + text, "log") for text in view.log_lines] or [Line("    (empty)", "log")]
    return [Line(view.log_title, "title"), *body]


def _newest(log: list[Line], room: int) -> list[Line]:
    """The log pane's title and as many of its last lines as fit in ``room`` rows."""
    if room <= 0:
        return []
    tail = log[1:][len(log) - room :] if room > 1 else []
    return [log[0], *tail]


def _cut(lines: list[Line], width: int) -> list[Line]:
    """Lines no wider than ``width - 1`` (curses cannot write the last cell of a window)."""
    return [Line(_printable(line.text)[: width - 1], line.style) for line in lines]


def _printable(text: str) -> str:
    """``text`` with tabs as spaces and other control characters dropped."""
    text = text.replace("\t", "    ")
    return "".join(ch for ch in text if ch.isprintable())


def format_duration(seconds: float) -> str:
    """``12s``, ``3m05s`` or ``2h03m05s``."""
    total = max(0, int(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m{secs:02d}s"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"
