"""Running: the lines of the live view (``watch``), laid out from a status dict. Pure.

No curses and no I/O here: ``layout`` turns what ``watch`` knows (the run's status, which
task is selected, the log lines read for it, a message) into at most ``height`` lines of at
most ``width - 1`` characters, so the view can be tested at any window size, tiny ones too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from reflow.running.commands.progress import task_line

Style = Literal["title", "normal", "selected", "failure", "log", "message"]

HELP = "up/down select  l log  c cancel task  r retry run  q quit"
_FAILURES_KEPT = 3
"""Lines of failures kept on screen before the log pane takes the rest."""


@dataclass(frozen=True, slots=True)
class Line:
    """One line to draw and how it looks."""

    text: str
    style: Style = "normal"


@dataclass(frozen=True, slots=True, kw_only=True)
class ViewState:
    """What the view shows besides the status: selection, log pane, message, clocks."""

    selected: int = 0
    show_log: bool = False
    log_title: str = ""
    log_lines: Sequence[str] = ()
    message: str = ""
    elapsed_s: float = 0.0
    dispatcher: str = "unknown"
    retried: Mapping[str, tuple[int, int]] = field(default_factory=dict)


def layout(status: Mapping[str, Any], view: ViewState, width: int, height: int) -> list[Line]:
    """The lines of the view for a window of ``width`` x ``height`` cells.

    Args:
        status: The run's status (``load_status``).
        view: The selection, log pane and message.
        width: Columns of the window; every line is cut to ``width - 1`` characters.
        height: Rows of the window; at most this many lines are returned.

    Returns:
        Lines from the top: the title, one row per task (scrolled to keep the selected one
        visible), failures and the log pane when shown; the message and the keys are the
        last lines of the window. A window too small for that gets what fits, the message
        (say a question waiting for y/n) first.
    """
    if width < 2 or height < 1:
        return []
    title = Line(_title(status, view), "title")
    bottom = ([Line(view.message, "message")] if view.message else []) + [Line(HELP)]
    if height < 1 + len(bottom):
        lines = ([bottom[0]] if view.message else []) + [title, *bottom[1:]]
        return _cut(lines[:height], width)
    room = height - 1 - len(bottom)
    tasks = _task_rows(status, view, room)
    room -= len(tasks)
    failures = _failure_lines(status)
    log = _log_lines(view) if view.show_log else []
    if log:
        log = _newest(log, room - min(len(failures), _FAILURES_KEPT))
    failures = failures[: room - len(log)]
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
        count, most = view.retried.get(task["task"], (0, 0))
        if count:
            text += f"  ({count} retried, up to {most} attempts)"
        chosen = number == view.selected
        rows.append(Line(("> " if chosen else "  ") + text, "selected" if chosen else "normal"))
    if len(rows) <= room:
        return rows
    first = min(max(0, view.selected - room // 2), len(rows) - room)
    return rows[first : first + room]


def _failure_lines(status: Mapping[str, Any]) -> list[Line]:
    """Failures grouped by task and reason, each with its first example's error."""
    lines = []
    for group in status["failures"]:
        text = f"  {group['task']}: {group['count']} {group['state']} ({group['reason']})"
        if group["examples"]:
            example = group["examples"][0]
            text += f"  [{example['element']}] {example['error']}"
        lines.append(Line(text, "failure"))
    return lines


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
