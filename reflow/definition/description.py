"""Definition: the ``describe`` JSON manifest of a workflow, and the graph rebuilt from it. Pure.

The manifest holds everything needed to rebuild the command line and the graph without
importing user code (format ``reflow/describe/1``, documented in ``docs/describe.md``). The
dispatcher plans from it; only workers import the flow.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path, PurePath
from typing import Any

from reflow.definition.environment import Environment
from reflow.definition.errors import StoreError
from reflow.definition.graph import Graph, build_graph
from reflow.definition.options import SubmitOption, submit_options
from reflow.definition.resources import Resources
from reflow.definition.retry_policy import RetryPolicy
from reflow.definition.spec import UNSET, InputSpec, ParamSpec, TaskSpec
from reflow.definition.types import TypeRef

FORMAT = "reflow/describe/1"


def describe(graph: Graph) -> dict[str, Any]:
    """Return the JSON-able manifest of ``graph``."""
    return {
        "format": FORMAT,
        "workflow": graph.name,
        "tasks": [_task_json(spec) for spec in graph.tasks],
        "edges": [
            {
                "source": e.source,
                "target": e.target,
                "param": e.param,
                "mode": e.mode.value if e.mode else "after",
            }
            for e in graph.edges
        ],
        "options": [_option_json(o) for o in submit_options(graph.tasks)],
    }


def graph_from_description(data: dict[str, Any]) -> Graph:
    """Rebuild the graph (without functions) from ``describe`` output."""
    _check_format(data)
    tasks = {t["name"]: _task_from_json(t) for t in data["tasks"]}
    return build_graph(data["workflow"], tasks)


def options_from_description(data: dict[str, Any]) -> tuple[SubmitOption, ...]:
    """The ``submit`` options recorded in a manifest."""
    _check_format(data)
    options = []
    for o in data["options"]:
        ref = TypeRef.from_json(o["type"])
        options.append(
            SubmitOption(
                key=o["key"],
                flag=o["flag"],
                type=ref,
                help=o["help"],
                short=o["short"],
                default=_default_from_json(o["default"], ref) if "default" in o else UNSET,
                tasks=tuple(o["tasks"]),
                is_output=bool(o.get("output", False)),
            )
        )
    return tuple(options)


def _check_format(data: Any) -> None:
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        found = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise StoreError(
            f"workflow manifest has format {found!r}, not {FORMAT!r}",
            value=found,
            hint="upgrade reflow, or submit the run again with this version",
        )


def _default_json(value: Any) -> Any:
    """A default's JSON form: a ``Path`` becomes its string, read back by its type."""
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, list):
        return [_default_json(item) for item in value]
    return value


def _default_from_json(value: Any, ref: TypeRef) -> Any:
    if value is None:
        return None
    if ref.kind == "optional":
        return _default_from_json(value, ref.args[0])
    if ref.kind == "path":
        return Path(value)
    if ref.kind == "list":
        return [_default_from_json(item, ref.item) for item in value]
    return value


def _task_json(spec: TaskSpec) -> dict[str, Any]:
    return {
        "name": spec.name,
        "array": spec.is_array,
        "module": spec.module,
        "qualname": spec.qualname,
        "version": spec.version,
        "cache": spec.cache,
        "fingerprint": spec.fingerprint,
        "code": spec.code,
        "verify": spec.has_verify,
        "run_dir_arg": spec.run_dir_arg,
        "returns": spec.returns.to_json() if spec.returns is not None else None,
        "resources": resources_json(spec.resources),
        **spec.environment.to_json(),
        "retry": spec.retry.to_json(),
        "after": list(spec.after),
        "params": [_param_json(p) for p in spec.params],
        "inputs": [
            {"name": i.name, "type": i.type.to_json(), "sources": list(i.sources)}
            for i in spec.inputs
        ],
    }


def resources_json(resources: Resources) -> dict[str, Any]:
    """A task's resources as the manifest holds them."""
    data = dataclasses.asdict(resources)
    data["extra"] = list(resources.extra)
    return data


def resources_from_json(data: dict[str, Any]) -> Resources:
    """``Resources`` read back from ``resources_json``."""
    fields = dict(data)
    fields["extra"] = tuple(fields.get("extra", ()))
    return Resources(**fields)


def _param_json(param: ParamSpec) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": param.name,
        "type": param.type.to_json(),
        "help": param.help,
        "short": param.short,
        "namespace": param.namespace,
        "output": param.is_output,
        "required": param.is_required,
    }
    if not param.is_required:
        data["default"] = _default_json(param.default)
    return data


def _option_json(option: SubmitOption) -> dict[str, Any]:
    data: dict[str, Any] = {
        "key": option.key,
        "flag": option.flag,
        "type": option.type.to_json(),
        "help": option.help,
        "short": option.short,
        "required": option.is_required,
        "tasks": list(option.tasks),
        "output": option.is_output,
    }
    if not option.is_required:
        data["default"] = _default_json(option.default)
    return data


def _task_from_json(data: dict[str, Any]) -> TaskSpec:
    return TaskSpec(
        name=data["name"],
        is_array=data["array"],
        params=tuple(_param_from_json(p) for p in data["params"]),
        inputs=tuple(
            InputSpec(
                name=i["name"], type=TypeRef.from_json(i["type"]), sources=tuple(i["sources"])
            )
            for i in data["inputs"]
        ),
        run_dir_arg=data["run_dir_arg"],
        returns=TypeRef.from_json(data["returns"]) if data["returns"] is not None else None,
        resources=resources_from_json(data["resources"]),
        environment=Environment.from_json(data),
        retry=RetryPolicy.from_json(data.get("retry")),
        after=tuple(data["after"]),
        version=data["version"],
        cache=data["cache"],
        fingerprint=data.get("fingerprint"),
        code=data.get("code", ""),
        has_verify=data["verify"],
        module=data["module"],
        qualname=data["qualname"],
    )


def _param_from_json(data: dict[str, Any]) -> ParamSpec:
    ref = TypeRef.from_json(data["type"])
    return ParamSpec(
        name=data["name"],
        type=ref,
        help=data["help"],
        short=data["short"],
        namespace=data["namespace"],
        is_output=bool(data.get("output", False)),
        default=_default_from_json(data["default"], ref) if "default" in data else UNSET,
    )
