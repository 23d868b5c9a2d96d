"""Definition: the markers users put in signatures (``Param``, ``Result``, ``RunDir``). Pure.

``Param`` and ``Result`` go inside ``Annotated[...]``; ``RunDir`` is a parameter's annotation
and default. Markers only record what the user wrote; ``spec.py`` interprets them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import PosixPath
from typing import Literal

from reflow.definition.errors import DefinitionError

Namespace = Literal["global", "local"]
_SHORT = re.compile(r"^-[A-Za-z]$")


@dataclass(frozen=True, slots=True)
class Param:
    """A task parameter that becomes a ``submit`` flag.

    Args:
        help: Help text shown by ``submit --help``.
        short: A one-letter short flag such as ``"-n"``.
        namespace: ``"global"`` gives ``--name`` shared by every task that declares it;
            ``"local"`` gives ``--<task>-<name>`` for this task alone.
        output: For a ``Path`` parameter that names where the workflow writes (an output
            folder): it need not exist at submit and is not fingerprinted. Every other
            ``Path`` parameter is an input: it must exist at submit, and its fingerprint
            enters the identity of the tasks that declare it.

    Example:
        ``start: Annotated[str, Param(help="Start date")]``
    """

    help: str = ""
    short: str | None = None
    namespace: Namespace = "global"
    output: bool = False
    problems: tuple[DefinitionError, ...] = field(default=(), init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Recorded, not raised: the decorator reports them with the task and parameter, and
        # together with every other problem of the flow.
        found: list[DefinitionError] = []
        given: dict[str, object] = {"help": self.help, "output": self.output}  # as passed
        if not isinstance(given["help"], str):
            found.append(DefinitionError(f"Param(help={self.help!r}) must be a string"))
        if self.short is not None and not (
            isinstance(self.short, str) and _SHORT.match(self.short)
        ):
            found.append(
                DefinitionError(
                    f"Param(short={self.short!r}) is not a short flag",
                    value=self.short,
                    hint='write a dash and one letter, e.g. short="-n"',
                )
            )
        if not isinstance(given["output"], bool):
            found.append(
                DefinitionError(
                    f"Param(output={self.output!r}) must be True or False", value=self.output
                )
            )
        if self.namespace not in ("global", "local"):
            found.append(
                DefinitionError(
                    f"Param(namespace={self.namespace!r}) is not a namespace",
                    value=self.namespace,
                    hint='use namespace="global" or namespace="local"',
                )
            )
        object.__setattr__(self, "problems", tuple(found))


@dataclass(frozen=True, slots=True, init=False)
class Result:
    """A parameter fed by the output of other tasks; adds the dependency and wires the data.

    Args:
        step: The one task whose output feeds this parameter.
        steps: Several tasks whose outputs are concatenated, in this order.

    Example:
        ``nc_file: Annotated[str, Result(step="prepare")]``
    """

    sources: tuple[str, ...] = field(default=())

    def __init__(self, step: str | None = None, *, steps: Sequence[str] | None = None) -> None:
        if (step is None) == (steps is None):
            raise DefinitionError(
                "Result needs exactly one of step= and steps=",
                hint='write Result(step="prepare") or Result(steps=["a", "b"])',
            )
        names = (step,) if step is not None else tuple(steps or ())
        if isinstance(steps, str) or not names:
            raise DefinitionError(
                f"Result(steps={steps!r}) must be a non-empty list of task names",
                value=steps,
                hint='write Result(steps=["a", "b"])',
            )
        for name in names:
            if not isinstance(name, str) or not name:
                raise DefinitionError(f"Result names {name!r}, which is not a task name")
        if len(set(names)) != len(names):
            raise DefinitionError(f"Result(steps={list(names)!r}) names a task twice")
        object.__setattr__(self, "sources", names)

    @property
    def step(self) -> str:
        """The first (usually only) source task."""
        return self.sources[0]


class RunDir(PosixPath):
    """The run directory, injected into a task at run time; never a command-line flag.

    Declare it as ``run_dir: RunDir = RunDir()``; inside the task it is a real path.
    """

    __slots__ = ()
