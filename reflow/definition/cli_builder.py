"""Definition: the argparse command line built from submit options. Pure, no I/O.

``build_parser`` takes only ``SubmitOption`` data, so the same parser can be rebuilt from a
``describe`` manifest without importing user code.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from pathlib import Path, PurePath
from typing import Any

from reflow.definition.options import SubmitOption
from reflow.definition.types import TypeRef

COMMANDS = (
    "submit", "status", "cancel", "retry", "runs", "logs", "result", "why", "dag", "describe",
    "watch",
)  # fmt: skip
DAG_FORMATS = ("text", "mermaid", "dot", "svg", "png")
_CONVERTERS: dict[str, Callable[[str], Any]] = {
    "str": str,
    "int": int,
    "float": float,
    "path": Path,
}


def build_parser(
    prog: str, workflow: str, options: Sequence[SubmitOption]
) -> argparse.ArgumentParser:
    """Return the full command-line parser of a workflow."""
    parser = argparse.ArgumentParser(
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
    submit.add_argument("--wait", action="store_true", help="follow progress until the run ends")
    group = submit.add_argument_group("workflow parameters")
    for option in options:
        _add_option(group, option)

    status = commands.add_parser("status", help="show a run's state")
    status.add_argument("run_id", nargs="?", metavar="RUN_ID", help="default: the latest run")
    _add_run_dir(status)
    status.add_argument("--json", action="store_true", help="print everything as JSON")
    status.add_argument("--watch", action="store_true", help="print it again until the run ends")

    cancel = commands.add_parser("cancel", help="cancel a run's active work")
    cancel.add_argument("run_id", metavar="RUN_ID")
    _add_run_dir(cancel)
    cancel.add_argument("--task", metavar="TASK", help="cancel only this task")

    retry = commands.add_parser("retry", help="rerun failed and cancelled work, resume a run")
    retry.add_argument("run_id", metavar="RUN_ID")
    _add_run_dir(retry)
    retry.add_argument("--task", metavar="TASK", help="retry only this task")
    retry.add_argument(
        "--no-verify",
        dest="verify",
        action="store_false",
        help="trust cached upstream outputs without checking them",
    )
    retry.add_argument("--wait", action="store_true", help="follow progress until the run ends")

    runs = commands.add_parser("runs", help="list the runs in a run directory")
    _add_run_dir(runs)
    runs.add_argument("--json", action="store_true", help="print the list as JSON")

    logs = commands.add_parser("logs", help="print an element's log")
    logs.add_argument("run_id", metavar="RUN_ID")
    logs.add_argument("task", metavar="TASK")
    logs.add_argument("index", nargs="?", type=int, metavar="INDEX", help="element index")
    _add_run_dir(logs)

    result = commands.add_parser("result", help="print a finished element's output")
    result.add_argument("run_id", metavar="RUN_ID")
    result.add_argument("task", metavar="TASK")
    result.add_argument(
        "index", nargs="?", type=int, metavar="INDEX", help="element index (default: all)"
    )
    _add_run_dir(result)
    result.add_argument("--json", action="store_true", help="print the output as JSON")

    why = commands.add_parser("why", help="say why instances were not taken from the cache")
    why.add_argument("run_id", nargs="?", metavar="RUN_ID", help="default: the latest run")
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
    watch.add_argument("run_id", nargs="?", metavar="RUN_ID", help="default: the latest run")
    _add_run_dir(watch)
    return parser


def _add_run_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--run-dir",
        type=Path,
        metavar="DIR",
        help="run directory (default: [defaults] run_dir in the config, or REFLOW_RUN_DIR)",
    )


def _add_option(group: argparse._ArgumentGroup, option: SubmitOption) -> None:
    ref = option.type.args[0] if option.type.kind == "optional" else option.type
    kwargs: dict[str, Any] = {"dest": option.key}
    if ref.kind == "bool":
        kwargs["action"] = argparse.BooleanOptionalAction
    else:
        item = ref.item if ref.is_list else ref
        kwargs["type"] = _converter(item)
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
    group.add_argument(*flags, **kwargs).help = _help(option)


def _help(option: SubmitOption) -> str:
    text = option.help or ""
    suffix = "required" if option.is_required else f"default: {_shown(option.default)}"
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
