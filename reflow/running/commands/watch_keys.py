"""Running: what the live view's keys do to what the user chose. No reads, writes or drawing.

``Controls`` holds the choices (the task, whether its log shows, the element whose log shows,
an index being typed, a question waiting for y/n) and ``press`` answers one key with the
``Action`` that ``watch`` carries out: reading a log, asking before a cancel or a retry, doing
it after a ``y``, or leaving. In the log pane ``n`` and ``p`` step through the task's failed
elements (around the end, as a pager's search does) and digits then Enter pick any element.
"""

from __future__ import annotations

import curses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

Action = Literal["none", "quit", "show", "ask_cancel", "ask_retry", "cancel", "retry"]
"""``show``: the selection changed, read the log again; ``cancel``/``retry``: answered y."""

_ENTER = (curses.KEY_ENTER, ord("\n"), ord("\r"))
_ERASE = (curses.KEY_BACKSPACE, 127, 8)
_ESCAPE = 27
_TYPED_MAX = 9


@dataclass(frozen=True, slots=True, kw_only=True)
class Question:
    """A question waiting for y/n: its lines (the last one asks) and what y does."""

    action: Literal["cancel", "retry"]
    lines: tuple[str, ...]
    task: str | None = None
    declined: str = ""


@dataclass(slots=True, kw_only=True)
class Controls:
    """The user's choices in the view; ``element`` None is the task's first failed element."""

    selected: int = 0
    show_log: bool = False
    element: int | None = None
    typed: str | None = None
    question: Question | None = None
    message: str = ""

    def prompt(self) -> str:
        """The lines above the keys: the question, the index being typed, or the message."""
        if self.question is not None:
            return "\n".join(self.question.lines)
        if self.typed is not None:
            return f"show element: {self.typed}_  (Enter show, Esc stop)"
        return self.message

    def press(
        self, key: int, *, tasks: int, elements: int | None, failed: Sequence[int], shown: int
    ) -> Action:
        """Answer ``key``.

        Args:
            key: The key as curses reads it.
            tasks: How many tasks the run has.
            elements: How many elements the selected task has (None: not planned yet).
            failed: The selected task's failed elements, in index order.
            shown: The element whose log shows now.
        """
        if self.question is not None:
            question, self.question = self.question, None
            if key in (ord("y"), ord("Y")):
                return question.action
            self.message = question.declined
            return "none"
        if self.typed is not None:
            return self._typing(key, elements)
        if key in (ord("q"), ord("Q")):
            return "quit"
        if key in (curses.KEY_UP, ord("k"), curses.KEY_DOWN, ord("j")):
            step = -1 if key in (curses.KEY_UP, ord("k")) else 1
            self.selected = max(0, min(tasks - 1, self.selected + step))
            self.element = None
            return "show"
        if key == ord("l"):
            self.show_log = not self.show_log
            return "show"
        if key == ord("c") and tasks:
            return "ask_cancel"
        if key == ord("r"):
            return "ask_retry"
        if self.show_log and key in (ord("n"), ord("p")):
            return self._step(failed, shown, 1 if key == ord("n") else -1)
        if self.show_log and ord("0") <= key <= ord("9"):
            self.typed = chr(key)
            return "none"
        return "none"

    def _step(self, failed: Sequence[int], shown: int, step: int) -> Action:
        """The next (or previous) failed element after ``shown``, around the end."""
        if not failed:
            self.message = "no failed element in this task"
            return "none"
        later = [e for e in failed if e > shown] if step > 0 else [e for e in failed if e < shown]
        if later:
            self.element = later[0] if step > 0 else later[-1]
        else:
            self.element = failed[0] if step > 0 else failed[-1]
        self.message = ""
        return "show"

    def _typing(self, key: int, elements: int | None) -> Action:
        """Digits, Backspace, Enter (show that element) or Esc while an index is typed."""
        typed = self.typed or ""
        if ord("0") <= key <= ord("9") and len(typed) < _TYPED_MAX:
            self.typed = typed + chr(key)
        elif key in _ERASE:
            self.typed = typed[:-1] or None
        elif key == _ESCAPE:
            self.typed = None
        elif key in _ENTER:
            self.typed = None
            index = int(typed)
            if elements is None or index >= elements:
                have = "no elements yet" if not elements else f"elements 0-{elements - 1}"
                self.message = f"no element {index}: the task has {have}"
                return "none"
            self.element, self.message = index, ""
            return "show"
        return "none"
