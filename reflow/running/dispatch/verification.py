"""Running: decide whether a cached output can still be trusted.

Outputs typed ``Path`` (anywhere inside them, e.g. ``list[Path]``) are checked for existence;
a task's ``verify=`` callable is called on the decoded output. The flow is imported only when
a task with ``verify=`` is actually checked.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from reflow.definition.spec import TaskSpec
from reflow.definition.types import TypeRef
from reflow.planning.encoding import PATH_TAG, from_json
from reflow.planning.planner import Finished, Validator
from reflow.running.worker.loader import load_workflow


def tagged_paths(value: Any) -> Iterator[str]:
    """Every path inside a tagged JSON value."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if len(item) == 1 and PATH_TAG in item:
                yield str(item[PATH_TAG])
            else:
                stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def holds_path(ref: TypeRef | None) -> bool:
    """True when values of type ``ref`` can contain a ``Path``."""
    return ref is not None and (ref.kind == "path" or any(holds_path(a) for a in ref.args))


def make_validator(manifest: Mapping[str, Any]) -> Validator:
    """A validator for the run's tasks; imports the flow on first use of a ``verify=``."""
    callables: dict[str, Any] = {}
    cwd = str(manifest.get("cwd") or str(Path.cwd()))

    def user_verify(spec: TaskSpec) -> Any:
        if spec.name not in callables:
            workflow = load_workflow(manifest)
            callables.update({n: t.verify for n, t in workflow.tasks.items()})
        return callables.get(spec.name)

    def validate(spec: TaskSpec, finished: Finished) -> bool:
        for path in tagged_paths(finished.value):
            if not os.path.exists(os.path.join(cwd, path)):  # noqa: PTH110, PTH118 - hot path
                return False
        if spec.has_verify:
            check = user_verify(spec)
            if check is not None:
                try:
                    return bool(check(from_json(finished.value)))
                except Exception:  # noqa: BLE001 - a raising verify= means "not valid"
                    return False
        return True

    return validate
