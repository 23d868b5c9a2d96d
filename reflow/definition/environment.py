"""Definition: a task's compute-node environment (``setup=`` lines, ``env=`` variables). Pure.

``setup`` is shell code the user wrote, run line by line before the worker starts (``module
load cdo``, ``source /sw/venv/bin/activate``); it is never quoted, so each line must be one
line. ``env`` is variables set to exact values: names are shell variable names, values
strings (ints and floats are written with ``str``), and every value is quoted where it is
written, so it reaches the task as given. The config's environment comes first: its setup
lines run before the task's, and a task's variable replaces the config's of the same name.
Neither enters an instance's identity: like resources, they say where a task runs, not what
it computes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from reflow.definition.errors import DefinitionError

_VARIABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_RESERVED_PREFIX = "SLURM_"


@dataclass(frozen=True, slots=True, kw_only=True)
class Environment:
    """Setup lines, in order, and variables sorted by name, as ``(name, value)`` pairs."""

    setup: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()

    def over(self, base: Environment) -> Environment:
        """Return ``base``'s setup lines then these; these variables replace ``base``'s."""
        merged = {**dict(base.env), **dict(self.env)}
        return Environment(setup=base.setup + self.setup, env=tuple(sorted(merged.items())))

    @property
    def is_empty(self) -> bool:
        """True when there is nothing to set up."""
        return not self.setup and not self.env

    def to_json(self) -> dict[str, Any]:
        """``{"setup": [...], "env": {...}}``, as the run's records keep it."""
        return {"setup": list(self.setup), "env": dict(self.env)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> Environment:
        """The environment ``to_json`` wrote (keys missing in older records: empty)."""
        data = data or {}
        return cls(
            setup=tuple(data.get("setup", ())), env=tuple(sorted(data.get("env", {}).items()))
        )


def environment_problems(setup: Any, env: Any, *, task: str | None = None) -> list[DefinitionError]:
    """Every problem of a ``setup=`` and an ``env=`` value (``None`` means not given)."""
    problems = [] if setup is None else _setup_problems(setup, task)
    return problems + ([] if env is None else _env_problems(env, task))


def build_environment(
    setup: Any = None, env: Any = None, *, task: str | None = None
) -> Environment:
    """Check and normalize ``setup=`` and ``env=``; raise the first problem found.

    Raises:
        DefinitionError: A setup line is not a one-line string without NUL, a variable name
            is not a shell variable name or is Slurm's, or a value is not a string or number
            or holds a NUL.
    """
    problems = environment_problems(setup, env, task=task)
    if problems:
        raise problems[0]
    lines = (setup,) if isinstance(setup, str) else tuple(setup or ())
    pairs = {name: _text(value) for name, value in (env or {}).items()}
    return Environment(setup=lines, env=tuple(sorted(pairs.items())))


def _setup_problems(setup: Any, task: str | None) -> list[DefinitionError]:
    lines = [setup] if isinstance(setup, str) else setup
    if not isinstance(lines, Sequence) or isinstance(lines, (bytes, str)):
        return [
            DefinitionError(
                f"setup={setup!r} must be a string or a list of strings",
                task=task,
                param="setup",
                value=setup,
                hint='write setup=["module load cdo"], one shell line each',
            )
        ]
    problems = []
    for number, line in enumerate(lines, 1):
        if not isinstance(line, str):
            problem = f"setup line {number} is {line!r}, not a string"
            hint = "write each setup line as a string"
        elif "\x00" in line:
            problem, hint = f"setup line {number} {line!r} contains a NUL", "remove it"
        elif "\n" in line or "\r" in line:
            problem = f"setup line {number} {line!r} contains a line break"
            hint = "pass a list with one shell line each"
        else:
            continue
        problems.append(DefinitionError(problem, task=task, param="setup", value=line, hint=hint))
    return problems


def _env_problems(env: Any, task: str | None) -> list[DefinitionError]:
    if not isinstance(env, Mapping):
        return [
            DefinitionError(
                f"env={env!r} must be a mapping of variable names to values",
                task=task,
                param="env",
                value=env,
                hint='write env={"OMP_NUM_THREADS": "4"}',
            )
        ]
    problems = []
    for name, value in env.items():
        if not isinstance(name, str) or not _VARIABLE.match(name):
            problem = f"env name {name!r} is not a shell variable name"
            hint = "use letters, digits and underscores, not starting with a digit"
        elif name.startswith(_RESERVED_PREFIX):
            problem = f"env name {name!r} is set by Slurm"
            hint = "reflow reads SLURM_ARRAY_TASK_ID to find the element; choose another name"
        elif isinstance(value, bool) or not isinstance(value, (str, int, float)):
            problem = f"env {name}={value!r} is not a string or a number"
            hint = f'write env={{"{name}": "..."}} with the value as a string'
        elif "\x00" in str(value):
            problem, hint = f"env {name}={value!r} contains a NUL", "remove it"
        else:
            continue
        problems.append(DefinitionError(problem, task=task, param="env", value=value, hint=hint))
    return problems


def _text(value: str | float) -> str:
    return value if isinstance(value, str) else str(value)
