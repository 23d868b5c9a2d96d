"""Definition: the argparse command line built from submit options. Pure, no I/O.

``build_parser`` takes only ``SubmitOption`` data, so the same parser can be rebuilt from a
``describe`` manifest without importing user code.
"""

from __future__ import annotations

import argparse
import math
import re
from argparse import Namespace
from collections.abc import Callable, Sequence
from pathlib import Path, PurePath
from typing import Any, NoReturn

from reflow.definition.errors import UsageError, suggest
from reflow.definition.options import SubmitOption
from reflow.definition.types import TypeRef

COMMANDS = (
    "submit", "status", "cancel", "retry", "runs", "logs", "result", "why", "dag", "describe",
    "watch", "report",
)  # fmt: skip
DAG_FORMATS = ("text", "mermaid", "dot", "svg", "png")
NONE_WORD = "none"
"""The value that passes None to an optional parameter (``--limit none``)."""


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a finite number (nan and inf cannot be stored as JSON)"
        )
    return value


_finite_float.__name__ = "float"


def _line_count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of lines (give 0 or more)")
    return value


_line_count.__name__ = "int"
_CONVERTERS: dict[str, Callable[[str], Any]] = {
    "str": str,
    "int": int,
    "float": _finite_float,
    "path": Path,
}


def _or_none(convert: Callable[[str], Any]) -> Callable[[str], Any]:
    """``convert``, except that ``none`` gives None (for an ``X | None`` parameter)."""

    def convert_or_none(text: str) -> Any:
        return None if text == NONE_WORD else convert(text)

    convert_or_none.__name__ = getattr(convert, "__name__", "value")
    return convert_or_none


_NEGATIVE_NUMBER = re.compile(r"^-(\d+|\d*\.\d+|inf|infinity|nan)$", re.IGNORECASE)


_RUN_ID_HELP = "the run's id, or latest (from a flow file: its workflow's latest run)"
LATEST = "latest"
"""The run id that names the latest run (a flow file's: of its own workflow)."""
_LATEST_HELP = "default: the latest run (from a flow file: its workflow's latest run)"
_INVALID_CHOICE = re.compile(r"invalid choice: ('[^']*'|\S+) \(choose from (.*)\)")
_QUOTED = re.compile(r"'([^']*)'")


class CommandParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` that takes no abbreviated flags and reports errors as one line.

    A bad argument raises ``UsageError`` naming the (sub)command's help, instead of printing
    argparse's usage block and exiting; flags must be spelled out (``--min-qual`` is not
    ``--min-quality``). Subcommands made with ``add_parser`` are ``CommandParser``s too.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)
        # "-inf" and "-nan" read as (negative) values, as "-1.5" does, so that the float
        # converter can say why they are refused instead of "expected one argument".
        self._negative_number_matcher = _NEGATIVE_NUMBER

    def error(self, message: str) -> NoReturn:
        """Raise ``UsageError`` with the message and where to read this command's help.

        A mistyped choice (``sumbit``) gets the closest one as a suggestion.
        """
        choice = _INVALID_CHOICE.search(message)
        suggestion = None
        if choice is not None:  # the choices are quoted, or (some Python versions) not
            listed = choice.group(2)
            offered = _QUOTED.findall(listed) or [c.strip() for c in listed.split(",")]
            suggestion = suggest(choice.group(1).strip("'"), offered)
        raise UsageError(message, suggestion=suggestion, hint=f"see: {self.prog} --help")


def parse_command_line(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> Namespace:
    """Parse ``argv``; an unknown flag is reported with its subcommand's help, not the top's.

    An unknown flag is the first thing to fix, so it is reported even when required
    arguments are missing too (argparse stops at those before it looks at the rest).

    Raises:
        UsageError: When an argument is missing, unknown or malformed.
    """
    try:
        args, extras = parser.parse_known_args(argv)
    except UsageError:
        unknown = _unknown_arguments(parser, argv)
        if unknown is None:
            raise
        args, extras = unknown
    if extras:
        owner = subcommands(parser).get(getattr(args, "command", None) or "", parser)
        flags = [flag for action in owner._actions for flag in action.option_strings]
        raise UsageError(
            f"unrecognized arguments: {' '.join(extras)}",
            suggestion=suggest(extras[0].split("=")[0], flags),
            hint=f"see: {owner.prog} --help",
        )
    return args


def _unknown_arguments(
    parser: argparse.ArgumentParser, argv: Sequence[str] | None
) -> tuple[Namespace, list[str]] | None:
    """``argv`` parsed with nothing required: the arguments no flag takes, if there are any."""
    parsers = [parser, *subcommands(parser).values()]
    required = [a for p in parsers for a in p._actions if a.required]
    for action in required:
        action.required = False
    try:
        args, extras = parser.parse_known_args(argv)
    except UsageError:  # a malformed value: argparse's own message says it
        return None
    finally:
        for action in required:
            action.required = True
    return (args, extras) if extras else None


def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """The parser of each subcommand of ``parser`` (argparse keeps them on private fields)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def build_parser(
    prog: str, workflow: str, options: Sequence[SubmitOption]
) -> argparse.ArgumentParser:
    """Return the full command-line parser of a workflow.

    Args:
        prog: How the user runs the flow (``python flow.py``); help and hints start with it.
        workflow: The workflow's name.
        options: The ``submit`` parameters.
    """
    parser = CommandParser(
        prog=prog,
        description=f"reflow workflow {workflow!r}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    submit = commands.add_parser(
        "submit", help="start a run", description=f"Start a run of {workflow!r}."
    )
    _add_run_dir(submit)
    submit.add_argument("--force", action="store_true", help="rerun every task, ignoring the cache")
    submit.add_argument(
        "--force-task",
        action="append",
        default=[],
        metavar="TASK",
        help="rerun this task, ignoring its cache (repeatable)",
    )
    submit.add_argument(
        "--verify", action="store_true", help="verify cached outputs before trusting them"
    )
    submit.add_argument(
        "--cache-from",
        action="append",
        default=[],
        type=Path,
        metavar="DIR",
        help="also reuse cached results of this other run directory, read only (repeatable;"
        " default: [cache] cache_from in the config, or REFLOW_CACHE_FROM)",
    )
    submit.add_argument("--wait", action="store_true", help="follow progress until the run ends")
    group = submit.add_argument_group("workflow parameters")
    for option in options:
        _add_option(group, option)

    status = commands.add_parser("status", help="show a run's state")
    status.add_argument("run_id", nargs="?", metavar="RUN_ID", help=_LATEST_HELP)
    _add_run_dir(status)
    status.add_argument("--json", action="store_true", help="print everything as JSON")
    status.add_argument(
        "--failed",
        action="store_true",
        help="list every failed and cancelled element: task, index, reason, error, log",
    )
    status.add_argument("--watch", action="store_true", help="print it again until the run ends")

    cancel = commands.add_parser("cancel", help="cancel a run's active work")
    cancel.add_argument("run_id", metavar="RUN_ID", help=_RUN_ID_HELP)
    _add_run_dir(cancel)
    cancel.add_argument("--task", metavar="TASK", help="cancel only this task")

    retry = commands.add_parser("retry", help="rerun failed and cancelled work, resume a run")
    retry.add_argument("run_id", metavar="RUN_ID", help=_RUN_ID_HELP)
    _add_run_dir(retry)
    retry.add_argument("--task", metavar="TASK", help="retry only this task")
    retry.add_argument(
        "--no-verify",
        dest="verify",
        action="store_false",
        help="trust cached upstream outputs without checking them",
    )
    retry.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="TASK.OPTION=VALUE",
        help="ask for other resources from now on (convert.mem=8G); repeatable",
    )
    retry.add_argument(
        "--dry-run",
        action="store_true",
        help="show which options the retry would change, and change nothing",
    )
    retry.add_argument("--wait", action="store_true", help="follow progress until the run ends")

    runs = commands.add_parser("runs", help="list the runs in a run directory")
    _add_run_dir(runs)
    runs.add_argument("--json", action="store_true", help="print the list as JSON")

    logs = commands.add_parser("logs", help="print an element's log")
    logs.add_argument("run_id", metavar="RUN_ID", help=_RUN_ID_HELP)
    logs.add_argument("task", metavar="TASK")
    logs.add_argument("index", nargs="?", type=int, metavar="INDEX", help="element index")
    _add_run_dir(logs)
    logs.add_argument("--tail", type=_line_count, metavar="N", help="print only the last N lines")
    logs.add_argument(
        "--follow",
        action="store_true",
        help="keep printing new lines until the element ends (Ctrl-C stops)",
    )

    result = commands.add_parser("result", help="print a finished element's output")
    result.add_argument("run_id", metavar="RUN_ID", help=_RUN_ID_HELP)
    result.add_argument("task", metavar="TASK")
    result.add_argument(
        "index", nargs="?", type=int, metavar="INDEX", help="element index (default: all)"
    )
    _add_run_dir(result)
    result.add_argument("--json", action="store_true", help="print the output as JSON")

    why = commands.add_parser("why", help="say why instances were not taken from the cache")
    why.add_argument("run_id", nargs="?", metavar="RUN_ID", help=_LATEST_HELP)
    why.add_argument("--task", metavar="TASK", help="only this task")
    _add_run_dir(why)
    why.add_argument("--json", action="store_true", help="print the reasons as JSON")

    dag = commands.add_parser("dag", help="draw the task graph")
    dag.add_argument("--format", choices=DAG_FORMATS, default="text", help="default: text")
    dag.add_argument(
        "--output", "-o", type=Path, help="file for svg/png (default: <workflow>.<format> here)"
    )

    commands.add_parser("describe", help="print the JSON manifest of the workflow")

    watch = commands.add_parser("watch", help="follow a run in a live full-screen view")
    watch.add_argument("run_id", nargs="?", metavar="RUN_ID", help=_LATEST_HELP)
    _add_run_dir(watch)

    report = commands.add_parser(
        "report", help="compare what each task asked for with what its elements used"
    )
    report.add_argument("run_id", nargs="?", metavar="RUN_ID", help=_LATEST_HELP)
    _add_run_dir(report)
    report.add_argument("--json", action="store_true", help="print every figure as JSON")
    return parser


def _add_run_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--run-dir",
        type=_run_dir,
        metavar="DIR",
        help="run directory (default: [defaults] run_dir in the config, or REFLOW_RUN_DIR)",
    )


def _add_option(group: argparse._ArgumentGroup, option: SubmitOption) -> None:
    ref = option.type.args[0] if option.type.kind == "optional" else option.type
    kwargs: dict[str, Any] = {"dest": option.key}
    # `--x none` passes None to an optional scalar (not to a bool, a list or a Literal)
    takes_none = option.type.kind == "optional" and ref.kind in _CONVERTERS
    if ref.kind == "bool":
        kwargs["action"] = argparse.BooleanOptionalAction
    else:
        item = ref.item if ref.is_list else ref
        kwargs["type"] = _or_none(_converter(item)) if takes_none else _converter(item)
        kwargs["metavar"] = _metavar(option)
        if item.kind == "literal":
            kwargs["choices"] = list(item.values)
            kwargs.pop("metavar")
        if ref.is_list:
            kwargs["nargs"] = "+"
    if option.is_required:
        kwargs["required"] = True
    else:
        kwargs["default"] = option.default
    flags = [option.short, option.flag] if option.short else [option.flag]
    # Set after construction: Python 3.10's BooleanOptionalAction appends its own default.
    group.add_argument(*flags, **kwargs).help = _help(option, accepts_none=takes_none)


def _help(option: SubmitOption, *, accepts_none: bool) -> str:
    text = option.help or ""
    suffix = "required" if option.is_required else f"default: {_shown(option.default)}"
    if accepts_none:
        suffix += f"; pass {NONE_WORD} for None"
    text = f"{text} ({suffix})" if text else f"({suffix})"
    return text.replace("%", "%%")


def _shown(value: Any) -> str:
    if isinstance(value, PurePath):
        return repr(str(value))
    if isinstance(value, list):
        return "[" + ", ".join(_shown(item) for item in value) + "]"
    return repr(value)


def _metavar(option: SubmitOption) -> str:
    return option.flag.lstrip("-").upper().replace("-", "_")


def _converter(item: TypeRef) -> Callable[[str], Any]:
    if item.kind == "literal":
        if all(isinstance(v, str) for v in item.values):
            return str
        return _literal_converter(item)
    return _CONVERTERS[item.kind]


def _literal_converter(item: TypeRef) -> Callable[[str], Any]:
    by_text = {str(v): v for v in item.values}

    def convert(text: str) -> Any:
        if text not in by_text:
            raise argparse.ArgumentTypeError(f"invalid choice: {text!r}")
        return by_text[text]

    convert.__name__ = "choice"
    return convert


def collect_params(
    namespace: argparse.Namespace, options: Sequence[SubmitOption]
) -> dict[str, Any]:
    """Return the parsed parameter values of ``submit`` keyed by option key."""
    values = vars(namespace)
    return {option.key: values[option.key] for option in options if option.key in values}


def _run_dir(text: str) -> Path:
    """``--run-dir``'s value: any path but an empty one (which ``Path`` reads as ".")."""
    if not text.strip():
        raise argparse.ArgumentTypeError("is empty; give a folder's path (. for this folder)")
    return Path(text)
