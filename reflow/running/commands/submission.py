"""Running: turn a ``submit`` into a run: check parameters, write the manifest, start it.

Nothing is written before every argument has been checked; the manifest is written before
the run is recorded in the store, so a run the store knows always has a manifest.
"""

from __future__ import annotations

import secrets
import shutil
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import IO, Any

from reflow.definition.errors import UsageError, suggest
from reflow.definition.options import SubmitOption, submit_options
from reflow.definition.spec import FingerprintMode
from reflow.definition.types import conforms
from reflow.running.commands.code_changes import (
    code_change_warnings,
    record_code,
    task_code_hashes,
)
from reflow.running.commands.input_paths import parameter_json, str_path_warnings
from reflow.running.config import Config, load_config
from reflow.running.dispatch.drive import start_run
from reflow.running.dispatch.dry_run import dry_run
from reflow.running.dispatch.interpreter import check_python
from reflow.running.fingerprints import DEFAULT_MODE
from reflow.running.rundir.layout import RunLayout
from reflow.running.rundir.location import resolve_run_dir
from reflow.running.rundir.manifest import SubmittableWorkflow, build_manifest
from reflow.running.store.foreign import ForeignStore


@dataclass(frozen=True, slots=True, kw_only=True)
class Submitted:
    """Where a new run lives and which executor runs it."""

    run_dir: Path
    run_id: str
    executor: str


def submit_workflow(
    wf: SubmittableWorkflow,
    *,
    run_dir: str | Path | None,
    params: Mapping[str, Any],
    force: bool = False,
    force_tasks: Sequence[str] = (),
    verify: bool = False,
    by_key: bool = False,
    cache_from: Sequence[str | PurePath] = (),
    out: IO[str] | None = None,
) -> Submitted:
    """Validate, record and start a run of ``wf``; return where it lives.

    ``params`` are keyed by Python name (``start``, ``ingest_chunk``) or, with ``by_key``,
    by option key as the CLI collects them. ``cache_from`` names other run directories to
    take cached results from (the config's ``[cache] cache_from`` when empty).
    """
    graph = wf.graph()
    config = load_config()
    options = submit_options(graph.tasks)
    values = check_params(
        options, params, by_key=by_key, fingerprint_mode=config.fingerprint or DEFAULT_MODE
    )
    names = {spec.name for spec in graph.tasks}
    if not isinstance(force_tasks, (list, tuple)) or not all(
        isinstance(task, str) for task in force_tasks
    ):  # a str is a sequence too: each letter would be a task
        raise UsageError(
            f"force_tasks={force_tasks!r} must be a list of task names",
            param="force_tasks",
            value=force_tasks,
            hint=f"pass force_tasks=[{force_tasks!r}]"
            if isinstance(force_tasks, str)
            else "pass a list of the tasks' names, e.g. ['convert']",
        )
    for task in force_tasks:
        if task not in names:
            raise UsageError(
                f"--force-task {task!r} names no task",
                param="force_tasks",
                value=task,
                suggestion=suggest(task, names),
            )
    root = resolve_run_dir(run_dir, config)
    sources = resolve_cache_from(cache_from, config, root)
    mode = choose_mode(config)
    if mode != "dry-run":
        check_python(config)
    run_id = new_run_id(wf.name)
    manifest = build_manifest(
        wf,
        graph,
        run_id,
        values,
        python=config.python,
        python_from=config.source_of("executor.python"),
        defaults=config.resources,
        fingerprint=config.fingerprint,
        environment=config.environment,
    )
    warnings = str_path_warnings(options, values, cwd=Path.cwd())
    hashes = task_code_hashes(graph)
    record_code(manifest, hashes, rerun=config.on_code_change == "rerun")
    if (config.on_code_change or "warn") == "warn" and not force and mode != "dry-run":
        warnings += code_change_warnings(root, hashes, manifest, force_tasks)
    sys.stderr.writelines(line + "\n" for line in warnings)
    manifest["warnings"] = warnings  # status shows them as long as the run is kept
    run_options = {
        "force": force,
        "force_tasks": list(force_tasks),
        "verify": verify,
        "cache_from": [str(folder) for folder in sources],
    }
    if mode == "dry-run":
        dry_run(root, manifest, run_options, out=out or sys.stdout)
        return Submitted(run_dir=root, run_id=run_id, executor="dry-run")
    layout = RunLayout(root, run_id)
    start_run(layout, manifest, run_options, mode=mode)
    return Submitted(run_dir=root, run_id=run_id, executor=mode)


def check_params(
    options: Sequence[SubmitOption],
    given: Mapping[str, Any],
    *,
    by_key: bool,
    fingerprint_mode: FingerprintMode = DEFAULT_MODE,
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
        values[option.key] = parameter_json(
            option, value, name=name, cwd=Path.cwd(), mode=fingerprint_mode
        )
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


def resolve_cache_from(given: Sequence[str | PurePath], config: Config, root: Path) -> list[Path]:
    """The run directories to take cached results from: absolute, each checked, once each.

    ``given`` wins over the config's ``[cache] cache_from``; relative paths are made absolute
    in the folder ``submit`` runs in. ``root`` itself is left out: its cache is used anyway.

    Raises:
        UsageError: A folder does not exist or holds no store this reflow can read (named
            in the message, with where it was set when it came from the config).
    """
    if isinstance(given, (str, PurePath)) or not all(
        isinstance(entry, (str, PurePath)) for entry in given
    ):
        raise UsageError(
            f"cache_from={given!r} must be a list of run directories",
            param="cache_from",
            value=given,
            hint=f"pass e.g. cache_from=[{str(given)!r}]"
            if isinstance(given, (str, PurePath))
            else "pass a list of paths",
        )
    chosen = list(given) if given else list(config.cache_from or ())
    folders: list[Path] = []
    for entry in chosen:
        folder = Path(entry).expanduser().absolute()
        if folder != root and folder not in folders:
            folders.append(folder)
    for folder in folders:
        try:
            ForeignStore.open(folder).close()
        except UsageError as err:
            where = None if given else config.source_of("cache.cache_from")
            if where is None:
                raise
            raise UsageError(
                f"{err.problem} (from {where})", param=err.param, value=err.value, hint=err.hint
            ) from err
    return folders


def choose_mode(config: Config) -> str:
    """The executor: config/``REFLOW_MODE`` if set, else Slurm where ``sbatch`` exists."""
    if config.mode is not None:
        return config.mode
    return "slurm" if shutil.which("sbatch") else "local"


def new_run_id(workflow: str) -> str:
    """A run id that starts with the workflow's name and sorts by time: ``demo-20260401-...``."""
    return f"{workflow}-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}"
