"""Running: turn a ``submit`` into a run: check parameters, write the manifest, start it.

Nothing is written before every argument has been checked; the manifest is written before
the run is recorded in the store, so a run the store knows always has a manifest.
"""

from __future__ import annotations

import json
import secrets
import shutil
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import IO, Any, Protocol

from reflow.definition.description import describe
from reflow.definition.errors import UsageError, suggest
from reflow.definition.graph import Graph
from reflow.definition.options import SubmitOption, submit_options
from reflow.definition.types import conforms
from reflow.planning.encoding import to_json
from reflow.running.config import Config, load_config
from reflow.running.layout import RunLayout, write_atomic


class SubmittableWorkflow(Protocol):
    """What submission needs of a workflow: its graph, and where a worker can import it."""

    name: str
    defined_in: str
    defined_file: str | None
    defined_as: str | None

    def graph(self) -> Graph:
        """The validated graph."""
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class Submitted:
    """Where a new run lives and which executor runs it."""

    run_dir: Path
    run_id: str
    executor: str


MANIFEST_FORMAT = "reflow/run/1"


def submit_workflow(
    wf: SubmittableWorkflow,
    *,
    run_dir: str | Path | None,
    params: Mapping[str, Any],
    force: bool = False,
    force_tasks: Sequence[str] = (),
    verify: bool = False,
    by_key: bool = False,
    out: IO[str] | None = None,
) -> Submitted:
    """Validate, record and start a run of ``wf``; return where it lives.

    ``params`` are keyed by Python name (``start``, ``ingest_chunk``) or, with ``by_key``,
    by option key as the CLI collects them.
    """
    graph = wf.graph()
    config = load_config()
    options = submit_options(graph.tasks)
    values = check_params(options, params, by_key=by_key)
    names = {spec.name for spec in graph.tasks}
    for task in force_tasks:
        if task not in names:
            raise UsageError(
                f"--force-task {task!r} names no task",
                param="force_tasks",
                value=task,
                suggestion=suggest(task, names),
            )
    root = resolve_run_dir(run_dir, config)
    mode = choose_mode(config)
    run_id = new_run_id(wf.name)
    manifest = build_manifest(wf, graph, run_id, values, python=config.python)
    run_options = {"force": force, "force_tasks": list(force_tasks), "verify": verify}
    if mode == "dry-run":
        from reflow.running.dry_run import dry_run

        dry_run(root, manifest, run_options, out=out or sys.stdout)
        return Submitted(run_dir=root, run_id=run_id, executor="dry-run")
    from reflow.running.drive import start_run

    layout = RunLayout(root, run_id)
    start_run(layout, manifest, run_options, mode=mode)
    return Submitted(run_dir=root, run_id=run_id, executor=mode)


def build_manifest(
    wf: SubmittableWorkflow,
    graph: Graph,
    run_id: str,
    values: Mapping[str, Any],
    *,
    python: str | None = None,
) -> dict[str, Any]:
    """The run's manifest: its description, parameters, flow source, interpreter and folder."""
    return {
        "format": MANIFEST_FORMAT,
        "run_id": run_id,
        "workflow": wf.name,
        "description": describe(graph),
        "params": dict(values),
        "source": flow_source(wf),
        "python": python or sys.executable,
        "cwd": str(Path.cwd()),
    }


def check_params(
    options: Sequence[SubmitOption], given: Mapping[str, Any], *, by_key: bool
) -> dict[str, Any]:
    """Check parameter values against the options; return them as tagged JSON by key."""
    by_name = {o.key if by_key else o.flag[2:].replace("-", "_"): o for o in options}
    for name in given:
        if name not in by_name:
            raise UsageError(
                f"{name}={given[name]!r} is not a parameter of this workflow",
                param=name,
                value=given[name],
                suggestion=suggest(name, by_name),
                hint=f"parameters: {', '.join(sorted(by_name)) or 'none'}",
            )
    values: dict[str, Any] = {}
    for name, option in by_name.items():
        if name in given:
            value = _coerce(option, given[name])
        elif option.is_required:
            raise UsageError(
                f"missing required parameter {name}",
                param=name,
                hint=f"pass {name}=... (on the command line {option.flag} ...)",
            )
        else:
            value = _coerce(option, option.default)
        if value is not None and not conforms(value, option.type):
            raise UsageError(
                f"{name}={value!r} is not of type {option.type}",
                param=name,
                value=value,
                hint=_choices_hint(option) or f"pass a value of type {option.type}",
            )
        values[option.key] = to_json(value, where=name)
    return values


def _coerce(option: SubmitOption, value: Any) -> Any:
    """Accept a str for a Path parameter, and a tuple for a list."""
    kind = option.type.args[0].kind if option.type.kind == "optional" else option.type.kind
    if kind == "path" and isinstance(value, str):
        return Path(value)
    if kind == "list" and isinstance(value, tuple):
        return list(value)
    return value


def _choices_hint(option: SubmitOption) -> str | None:
    ref = option.type.args[0] if option.type.kind == "optional" else option.type
    ref = ref.item if ref.is_list else ref
    if ref.kind == "literal":
        return "choose one of " + ", ".join(repr(v) for v in ref.values)
    return None


def resolve_run_dir(run_dir: str | Path | PurePath | None, config: Config) -> Path:
    """The run directory: the argument, else the config's default; absolute."""
    chosen = run_dir if run_dir is not None else config.run_dir
    if chosen is None:
        raise UsageError(
            "no run directory given",
            param="run_dir",
            hint="pass --run-dir DIR (or run_dir=...), or set [defaults] run_dir in the config",
        )
    path = Path(chosen).expanduser()
    if path.exists() and not path.is_dir():
        raise UsageError(
            f"run directory {str(path)!r} is a file",
            param="run_dir",
            value=str(path),
            hint="choose a directory",
        )
    return path.absolute()


def choose_mode(config: Config) -> str:
    """The executor: config/``REFLOW_MODE`` if set, else Slurm where ``sbatch`` exists."""
    if config.mode is not None:
        return config.mode
    return "slurm" if shutil.which("sbatch") else "local"


def new_run_id(workflow: str) -> str:
    """A run id that starts with the workflow's name and sorts by time: ``demo-20260401-...``."""
    return f"{workflow}-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}"


def flow_source(wf: SubmittableWorkflow) -> dict[str, Any]:
    """Where a worker finds the workflow: a flow file, or an importable module."""
    module = wf.defined_in
    file = wf.defined_file
    if module == "__main__" and wf.defined_as:
        module = wf.defined_as  # run as ``python -m package.flow``: import it by that name
    if module == "__main__" and not file:
        raise UsageError(
            f"workflow {wf.name!r} is defined in a notebook or REPL, where a worker cannot "
            "import it",
            value=wf.name,
            hint="move the tasks into a module (e.g. flow.py) and import the workflow from it",
        )
    sys_path = [str(Path.cwd())]
    if file:
        top = Path(file).resolve().parent
        for _ in range(module.count(".")):
            top = top.parent
        sys_path.insert(0, str(top))
    return {
        "module": module,
        "file": str(Path(file).resolve()) if module == "__main__" and file else None,
        "sys_path": sys_path,
    }


def write_manifest(layout: RunLayout, manifest: Mapping[str, Any]) -> None:
    """Write the run's manifest atomically."""
    write_atomic(layout.manifest, json.dumps(manifest, indent=1) + "\n")
