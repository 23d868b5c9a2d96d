"""Running: the options a ``retry`` takes from the flow file, the config and overrides.

A retry runs failed elements again with what the user fixed since submit: the tasks'
resources as the flow file declares them now, the config's resource defaults and
interpreter, and explicit overrides (``--set convert.mem=8G``, ``resources=``), in rising
precedence. Only options that enter no identity change this way. When the flow file's tasks
changed in what identities rest on (parameters, versions, code hashed into identities, wiring),
the run keeps its recorded tasks and takes only their resources, and a note says so; a flow
file that no longer loads leaves the recorded options. Every change is an ``OptionChange``
that says where it came from.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from reflow.definition.description import describe, resources_from_json, resources_json
from reflow.definition.errors import DefinitionError, ReflowError, UsageError, suggest
from reflow.definition.graph import Graph
from reflow.definition.resources import (
    RESOURCE_OPTIONS,
    Resources,
    build_resources,
    field_of,
    show_value,
)
from reflow.running.codehash import code_hash
from reflow.running.config import Config
from reflow.running.dispatch.interpreter import check_python, config_place
from reflow.running.worker.loader import load_workflow_anew

_WHOLE_NUMBERS = ("cpus", "time", "array_limit")
# What a task's identities rest on, by the description's keys, named as a user says them.
_IDENTITY = {
    "array": "array",
    "version": "version",
    "cache": "cache",
    "fingerprint": "fingerprint",
    "code": "code",
    "returns": "return type",
    "params": "parameters",
    "inputs": "wiring",
    "after": "wiring",
    "run_dir_arg": "parameters",
}
# A parameter's help, flag and default do not change the values a run recorded.
_PARAM_IDENTITY = ("name", "type", "namespace", "output")


@dataclass(frozen=True, slots=True, kw_only=True)
class OptionChange:
    """One option a retry changed: of ``task`` (None: of the whole run), old, new, and why.

    ``str()`` is the line the CLI prints: ``convert: mem 256M -> 1G (flow file)``.
    """

    task: str | None
    option: str
    old: str
    new: str
    source: str

    def __str__(self) -> str:
        where = f"{self.task}: " if self.task else ""
        return f"{where}{self.option} {self.old} -> {self.new} ({self.source})"


@dataclass(frozen=True, slots=True, kw_only=True)
class Refreshed:
    """The manifest a retry writes, what changed in it, and notes on what it could not take."""

    manifest: dict[str, Any]
    changes: tuple[OptionChange, ...]
    notes: tuple[str, ...]


def parse_set(items: Sequence[str]) -> dict[str, dict[str, Any]]:
    """``--set`` values (``convert.mem=8G``) by task and option; ``extra`` collects a list.

    Raises:
        UsageError: An item is not ``TASK.OPTION=VALUE``.
    """
    found: dict[str, dict[str, Any]] = {}
    for item in items:
        target, equals, value = item.partition("=")
        task, dot, key = target.partition(".")
        if not (equals and dot and task and key and value):
            raise UsageError(
                f"{item!r} is not TASK.OPTION=VALUE",
                param="--set",
                value=item,
                hint="write e.g. --set convert.mem=8G --set convert.time=02:00:00",
            )
        options = found.setdefault(task, {})
        if key == "extra":
            options.setdefault("extra", []).append(value)
        else:
            options[key] = int(value) if key in _WHOLE_NUMBERS and value.isdigit() else value
    return found


def refresh_options(
    manifest: Mapping[str, Any],
    graph: Graph,
    config: Config,
    *,
    overrides: Mapping[str, Mapping[str, Any]],
    label: str,
    interpreter: str,
) -> Refreshed:
    """The run's manifest with the current task resources, defaults and interpreter.

    ``graph`` is the run's recorded graph; ``overrides`` come from ``label`` (``"--set"`` or
    ``"resources="``) and are kept in the manifest, so that they hold over the flow file in
    later retries until set again; ``interpreter`` is the one running the retry, taken when
    the recorded one came from a config setting that is no longer set.

    Raises:
        UsageError: An override names no task or no resource option, or its value is one the
            decorator would refuse; nothing was changed.
        ConfigError: The config's interpreter cannot run here.
    """
    forced = check_overrides(graph, overrides, label=label)
    current, notes = _flow_file_resources(manifest, graph)
    recorded = manifest.get("defaults")
    old_defaults = config.resources if recorded is None else resources_from_json(recorded)
    changes: list[OptionChange] = []
    updated = copy.deepcopy(dict(manifest))
    kept = updated.setdefault("overrides", {})  # earlier overrides hold until set again
    for task in updated["description"]["tasks"]:
        name = task["name"]
        old = graph.task(name).resources
        fields = {**kept.get(name, {}), **forced.get(name, {})}
        fields = {k: tuple(v) if k == "extra" else v for k, v in fields.items()}
        new = dataclasses.replace(current.get(name, old), **fields)
        task["resources"] = resources_json(new)
        if fields:
            kept[name] = {k: list(v) if k == "extra" else v for k, v in fields.items()}
        keys = {k for k in RESOURCE_OPTIONS if field_of(k) in forced.get(name, {})}
        changes.extend(_task_changes(name, old, new, keys, old_defaults, config, label))
    updated["defaults"] = resources_json(config.resources)
    python, python_from, change = _python(manifest, config, interpreter)
    if change is not None:
        check_python(config)
        changes.append(change)
    updated["python"], updated["python_from"] = python, python_from
    return Refreshed(manifest=updated, changes=tuple(changes), notes=tuple(notes))


def check_overrides(
    graph: Graph, overrides: Mapping[str, Mapping[str, Any]], *, label: str
) -> dict[str, dict[str, Any]]:
    """Each override checked as the decorator checks it, by ``Resources`` field name.

    Raises:
        UsageError: A task or option that does not exist, or a value the decorator refuses.
    """
    names = [spec.name for spec in graph.tasks]
    param = label.rstrip("=")  # the message starts "--set: " or "resources: "
    if not isinstance(overrides, Mapping):
        raise UsageError(
            f"{overrides!r} must map task names to options",
            param=param,
            value=overrides,
            hint='e.g. resources={"convert": {"mem": "8G"}}',
        )
    checked: dict[str, dict[str, Any]] = {}
    for task, options in overrides.items():
        if task not in names:
            raise UsageError(
                f"{task} names no task of this run",
                param=param,
                value=task,
                suggestion=suggest(str(task), names),
                hint="tasks: " + ", ".join(names),
            )
        if not isinstance(options, Mapping) or not options:
            raise UsageError(
                f"{task}: {options!r} must map resource options to values",
                param=param,
                value=options,
                hint='e.g. {"mem": "8G", "time": "02:00:00"}',
            )
        for key in options:
            if key not in RESOURCE_OPTIONS:
                raise UsageError(
                    f"{task}.{key}: {key} is not a resource option",
                    param=param,
                    value=key,
                    suggestion=suggest(str(key), RESOURCE_OPTIONS),
                    hint="a retry may change " + ", ".join(RESOURCE_OPTIONS),
                )
        try:
            resources = build_resources(task=task, **options)
        except DefinitionError as err:
            raise UsageError(
                f"{task}.{err.problem}", param=param, value=err.value, hint=err.hint
            ) from err
        checked[task] = {field_of(key): getattr(resources, field_of(key)) for key in options}
    return checked


def _flow_file_resources(
    manifest: Mapping[str, Any], graph: Graph
) -> tuple[dict[str, Resources], list[str]]:
    """The tasks' resources as the flow file declares them now, and a note when it cannot say."""
    source = manifest.get("source") or {}
    where = source.get("file") or source.get("module") or "the flow"
    try:
        flow = load_workflow_anew(manifest)
        now = flow.graph()
    except ReflowError as err:
        problem = str(err).splitlines()[0]
        return {}, [
            f"note: {where} does not load ({problem}); retry keeps the task options the run "
            "recorded"
        ]
    changed = identity_changes(manifest["description"], now)
    notes = []
    if changed:
        notes.append(
            f"note: {where} changed {'; '.join(changed)} since submit; retry keeps what the "
            "run recorded for these and takes only resources from the flow file (submit a "
            "new run to use the changes)"
        )
    return {spec.name: spec.resources for spec in now.tasks}, notes


def identity_changes(recorded: Mapping[str, Any], now: Graph) -> list[str]:
    """``convert (version, wiring)`` per task whose options that identities rest on differ.

    ``recorded`` is the run's description; ``now`` the flow file's graph. Resources, help
    texts, flags and defaults are left out: they name no result.
    """
    then = {task["name"]: task for task in recorded["tasks"]}
    current = {task["name"]: task for task in describe(now)["tasks"]}
    for spec in now.tasks:
        if then.get(spec.name, {}).get("code") and spec.func is not None:
            # code enters identities only where the run recorded it (on_code_change="rerun")
            current[spec.name]["code"] = code_hash(spec.func, spec.code_deps)
    found = [f"{name} (removed)" for name in then if name not in current]
    found += [f"{name} (added)" for name in current if name not in then]
    for name in then.keys() & current.keys():
        differ = sorted(
            {
                label
                for key, label in _IDENTITY.items()
                if _identity_part(key, then[name]) != _identity_part(key, current[name])
            }
        )
        if differ:
            found.append(f"{name} ({', '.join(differ)})")
    return sorted(found)


def _identity_part(key: str, task: Mapping[str, Any]) -> Any:
    if key == "params":
        return [{k: p.get(k) for k in _PARAM_IDENTITY} for p in task.get("params", [])]
    return task.get(key)


def _task_changes(
    task: str,
    old: Resources,
    new: Resources,
    forced: set[str],
    old_defaults: Resources,
    config: Config,
    label: str,
) -> list[OptionChange]:
    """One change per option whose value the task's elements ask for differs."""
    before, after = old.over(old_defaults), new.over(config.resources)
    changes = []
    for option in RESOURCE_OPTIONS:
        field = field_of(option)
        was, now = getattr(before, field), getattr(after, field)
        if was == now:
            continue
        if option in forced:
            source = label
        elif getattr(old, field) != getattr(new, field):
            source = "flow file"
        else:
            place = config.source_of(f"executor.{option}")
            source = config_place(place) or f"[executor] {option} no longer set in the config"
        changes.append(
            OptionChange(
                task=task, option=option, old=show_value(option, was), new=show_value(option, now),
                source=source,
            )
        )  # fmt: skip
    return changes


def _python(
    manifest: Mapping[str, Any], config: Config, interpreter: str
) -> tuple[str, str | None, OptionChange | None]:
    """The interpreter after the retry, where it was set, and the change (None: the same)."""
    old = str(manifest.get("python") or "")
    old_from = manifest.get("python_from")
    if config.python is not None:
        new, new_from = config.python, config.source_of("executor.python")
        source = config_place(new_from) or "[executor] python"
    elif old_from:
        new, new_from = interpreter, None
        source = f"{config_place(old_from)} no longer set: the interpreter running retry"
    else:
        return old, None, None
    if new == old:
        return old, new_from, None
    return new, new_from, OptionChange(task=None, option="python", old=old, new=new, source=source)
