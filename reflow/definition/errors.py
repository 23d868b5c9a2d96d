"""Definition: the one exception tree of reflow. Pure; every layer raises from here.

Each error carries fields (``task``, ``param``, ``value``, ``suggestion``, ...) and builds its
one-line message from them: where, what is wrong, how to fix it. Bugs are not ``ReflowError``s.
A fix that is a command is kept as its words (``command``), without the program: the command
line that prints the error puts in front how the user runs reflow (``python flow.py`` or
``reflow``), so that the line can be pasted (``message``).
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Sequence
from typing import Any


def suggest(word: str, candidates: Iterable[str]) -> str | None:
    """Return the candidate closest to ``word``, or None when nothing is close."""
    import difflib  # only on an error path; not imported for --help

    matches = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return matches[0] if matches else None


DEFAULT_PROGRAM = "reflow"
"""The program of a command in a message printed outside a command line: the console script."""


def command_line(program: str, words: Sequence[str]) -> str:
    """``program`` (already quoted) and ``words``, each quoted for the shell, to paste."""
    return f"{program} {shlex.join(words)}" if words else program


class ReflowError(Exception):
    """Base of every error reflow reports to a user: one line, where, what, how to fix."""

    def __init__(
        self,
        message: str,
        *,
        task: str | None = None,
        param: str | None = None,
        value: Any = None,
        suggestion: str | None = None,
        hint: str | None = None,
        command: Sequence[str] = (),
    ) -> None:
        self.task = task
        self.param = param
        self.value = value
        self.suggestion = suggestion
        self.hint = hint
        self.command = tuple(command)
        self.problem = message
        super().__init__(self._render())

    def message(self, program: str = DEFAULT_PROGRAM) -> str:
        """The one-line message, with ``command`` (if any) run by ``program``.

        ``program`` is how the user runs reflow where the message is printed
        (``python examples/flow.py``); ``str(error)`` uses the ``reflow`` console script.
        """
        return self._render(program)

    def _where(self) -> str:
        if self.task and self.param:
            return f"{self.task}({self.param}): "
        if self.task:
            return f"{self.task}: "
        if self.param:
            return f"{self.param}: "
        return ""

    def _render(self, program: str = DEFAULT_PROGRAM) -> str:
        text = self._where() + self.problem
        if self.suggestion:
            text += f'; did you mean "{self.suggestion}"?'
        if self.hint:
            text += f"; {self.hint}"
        text = " ".join(text.split())
        if self.command:  # after the spaces are tidied: a quoted path keeps its own
            text += f"{':' if self.hint else ';'} {command_line(program, self.command)}"
        return text


class DefinitionError(ReflowError):
    """A flow author's mistake, raised at decoration time or by ``validate()``."""


class UsageError(ReflowError):
    """Bad command-line or ``submit()`` arguments, or a run that does not exist."""


class ConfigError(ReflowError):
    """A malformed config file or environment variable."""


class SubmissionError(ReflowError):
    """The scheduler refused work."""


class SubmissionLimitError(SubmissionError):
    """The scheduler refused work for now because a submit limit is reached; try later."""


class StoreError(ReflowError):
    """The run directory or its store cannot be used."""


class EncodingError(ReflowError):
    """A value cannot be encoded as JSON to cross a process boundary."""


class FlowDefinitionError(DefinitionError):
    """Several definition errors of one flow, reported together: ``3 errors in flow.py:``.

    ``errors`` holds each ``DefinitionError`` with its own fields; the message numbers them,
    one per line.
    """

    def __init__(self, errors: Sequence[DefinitionError], *, where: str) -> None:
        self.errors = tuple(errors)
        self.where = where
        super().__init__(f"{len(self.errors)} errors in {where}")

    def _render(self, program: str = DEFAULT_PROGRAM) -> str:
        lines = [f"{len(self.errors)} errors in {self.where}:"]
        lines.extend(
            f"  {number}. {error.message(program)}" for number, error in enumerate(self.errors, 1)
        )
        return "\n".join(lines)


def raise_collected(problems: Sequence[DefinitionError], *, where: str) -> None:
    """Raise nothing, the one problem, or every problem as ``FlowDefinitionError``."""
    flat: list[DefinitionError] = []
    for problem in problems:
        flat.extend(problem.errors if isinstance(problem, FlowDefinitionError) else [problem])
    if len(flat) == 1:
        raise flat[0]
    if flat:
        raise FlowDefinitionError(flat, where=where)


def article(noun: str) -> str:
    """``an int``, ``a str``: the noun with the indefinite article that reads right."""
    return f"{'an' if noun[:1].lower() in 'aeiou' else 'a'} {noun}"
