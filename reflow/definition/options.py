"""Definition: the ``submit`` options derived from task parameters, with conflict checks. Pure.

A global ``Param`` becomes ``--name`` and is shared by every task that declares it; a local one
becomes ``--<task>-<name>``. Each option has a ``key``: the name under which its value is
stored in a run (``name`` for global, ``task.name`` for local).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from reflow.definition.errors import DefinitionError
from reflow.definition.spec import UNSET, ParamSpec, TaskSpec
from reflow.definition.types import TypeRef

# reflow's own options, and the names ``submit()`` and argparse keep for themselves
# (``--command`` would overwrite the parsed subcommand, ``--force-tasks`` the keyword).
RESERVED_FLAGS = frozenset(
    {
        "--run-dir",
        "--force",
        "--force-task",
        "--force-tasks",
        "--command",
        "--verify",
        "--cache-from",
        "--no-verify",
        "--wait",
        "--help",
        "--json",
        "--executor",
        "--task",
        "-h",
    }
)


@dataclass(frozen=True, slots=True, kw_only=True)
class SubmitOption:
    """One flag of ``submit``: where its value is stored and how argparse reads it."""

    key: str
    flag: str
    type: TypeRef
    help: str = ""
    short: str | None = None
    default: Any = UNSET
    tasks: tuple[str, ...] = ()
    is_output: bool = False

    @property
    def is_required(self) -> bool:
        """True when ``submit`` must be given this flag."""
        return self.default is UNSET


def param_key(task: str, param: ParamSpec) -> str:
    """The key under which a run stores the value of ``task``'s ``param``."""
    return param.name if param.namespace == "global" else f"{task}.{param.name}"


def _flag(task: str, param: ParamSpec) -> str:
    stem = param.name if param.namespace == "global" else f"{task}_{param.name}"
    return "--" + stem.replace("_", "-")


def submit_options(tasks: Iterable[TaskSpec]) -> tuple[SubmitOption, ...]:
    """Return the ``submit`` options of ``tasks``; raise on conflicting or colliding flags."""
    by_key: dict[str, SubmitOption] = {}
    flags: dict[str, str] = {}
    for spec in tasks:
        for param in spec.params:
            key = param_key(spec.name, param)
            known = by_key.get(key)
            if known is not None:
                by_key[key] = _merge_global(known, spec.name, param)
                continue
            option = SubmitOption(
                key=key,
                flag=_flag(spec.name, param),
                type=param.type,
                help=param.help,
                short=param.short,
                default=param.default,
                tasks=(spec.name,),
                is_output=param.is_output,
            )
            for flag in option_strings(option):
                _claim(flags, flag, spec.name, param.name)
            by_key[key] = option
    return tuple(by_key.values())


def option_strings(option: SubmitOption) -> tuple[str, ...]:
    """Every string argparse accepts for ``option``: a bool also gets ``--no-<name>``."""
    ref = option.type.args[0] if option.type.kind == "optional" else option.type
    negated = "--no-" + option.flag[2:] if ref.kind == "bool" else None
    return tuple(s for s in (option.short, option.flag, negated) if s)


def _claim(flags: dict[str, str], flag: str, task: str, name: str) -> None:
    if flag in RESERVED_FLAGS:
        raise DefinitionError(
            f"becomes the flag {flag}, which reflow itself uses",
            task=task,
            param=name,
            value=flag,
            hint="rename the parameter",
        )
    if flag in flags:
        raise DefinitionError(
            f"becomes the flag {flag}, which {flags[flag]} already uses",
            task=task,
            param=name,
            value=flag,
            hint='rename one of them or use Param(namespace="local")',
        )
    flags[flag] = f"{task}({name})"


def _merge_global(known: SubmitOption, task: str, param: ParamSpec) -> SubmitOption:
    """A global parameter declared again must agree on type, default and short flag."""
    for what, mine, theirs in (
        ("type", param.type, known.type),
        ("default", param.default, known.default),
        ("short flag", param.short, known.short),
    ):
        if mine != theirs:
            raise DefinitionError(
                f"global parameter --{known.key.replace('_', '-')} has {what} "
                f"{_show(mine)} here but {_show(theirs)} in {known.tasks[0]}()",
                task=task,
                param=param.name,
                value=_show(mine),
                hint='make them agree, or use Param(namespace="local")',
            )
    return SubmitOption(
        key=known.key,
        flag=known.flag,
        type=known.type,
        help=known.help or param.help,
        short=known.short,
        default=known.default,
        tasks=(*known.tasks, task),
        is_output=known.is_output or param.is_output,
    )


def _show(value: Any) -> str:
    return (
        "no default"
        if value is UNSET
        else repr(value)
        if not isinstance(value, TypeRef)
        else str(value)
    )
