"""Definition: the ``describe`` JSON manifest of a workflow, and the graph rebuilt from it. Pure.

The manifest holds everything needed to rebuild the command line and the graph without
importing user code (format ``reflow/describe/1``, documented in ``docs/describe.md``). The
dispatcher plans from it; only workers import the flow.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from reflow.definition.errors import StoreError
from reflow.definition.graph import Graph, build_graph
from reflow.definition.options import SubmitOption, submit_options
from reflow.definition.resources import Resources
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
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        found = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise StoreError(
            f"workflow manifest has format {found!r}, not {FORMAT!r}",
            value=found,
            hint="upgrade reflow, or submit the run again with this version",
        )
    tasks = {t["name"]: _task_from_json(t) for t in data["tasks"]}
    return build_graph(data["workflow"], tasks)


def options_from_description(data: dict[str, Any]) -> tuple[SubmitOption, ...]:
    """The ``submit`` options recorded in a manifest."""
    return tuple(
        SubmitOption(
            key=o["key"],
            flag=o["flag"],
            type=TypeRef.from_json(o["type"]),
            help=o["help"],
            short=o["short"],
            default=o["default"] if "default" in o else UNSET,
            tasks=tuple(o["tasks"]),
        )
        for o in data["options"]
    )


def _task_json(spec: TaskSpec) -> dict[str, Any]:
    return {
        "name": spec.name,
        "array": spec.is_array,
        "module": spec.module,
        "qualname": spec.qualname,
        "version": spec.version,
        "cache": spec.cache,
        "verify": spec.has_verify,
        "run_dir_arg": spec.run_dir_arg,
        "returns": spec.returns.to_json() if spec.returns is not None else None,
        "resources": _resources_json(spec.resources),
        "after": list(spec.after),
        "params": [_param_json(p) for p in spec.params],
        "inputs": [
            {"name": i.name, "type": i.type.to_json(), "sources": list(i.sources)}
            for i in spec.inputs
        ],
    }


def _resources_json(resources: Resources) -> dict[str, Any]:
    data = dataclasses.asdict(resources)
    data["extra"] = list(resources.extra)
    return data


def _param_json(param: ParamSpec) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": param.name,
        "type": param.type.to_json(),
        "help": param.help,
        "short": param.short,
        "namespace": param.namespace,
        "required": param.is_required,
    }
    if not param.is_required:
        data["default"] = param.default
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
    }
    if not option.is_required:
        data["default"] = option.default
    return data


def _task_from_json(data: dict[str, Any]) -> TaskSpec:
    resources = dict(data["resources"])
    resources["extra"] = tuple(resources.get("extra", ()))
    return TaskSpec(
        name=data["name"],
        is_array=data["array"],
        params=tuple(
            ParamSpec(
                name=p["name"],
                type=TypeRef.from_json(p["type"]),
                help=p["help"],
                short=p["short"],
                namespace=p["namespace"],
                default=p.get("default", UNSET),
            )
            for p in data["params"]
        ),
        inputs=tuple(
            InputSpec(
                name=i["name"], type=TypeRef.from_json(i["type"]), sources=tuple(i["sources"])
            )
            for i in data["inputs"]
        ),
        run_dir_arg=data["run_dir_arg"],
        returns=TypeRef.from_json(data["returns"]) if data["returns"] is not None else None,
        resources=Resources(**resources),
        after=tuple(data["after"]),
        version=data["version"],
        cache=data["cache"],
        has_verify=data["verify"],
        module=data["module"],
        qualname=data["qualname"],
    )
