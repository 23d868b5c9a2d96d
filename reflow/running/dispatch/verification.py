"""Running: decide whether a cached output can still be trusted.

Every ``Path`` inside a cached output (e.g. in a ``list[Path]``) is checked against the
fingerprint its worker recorded (size and modification time, or a hash of the bytes): a file
that changed or vanished makes the output stale. A path recorded without a fingerprint (by
an older reflow, or with ``fingerprint="path"``) is checked for existence only. A task's
``verify=`` callable is then called on the decoded output. This is the one place where reflow
re-reads the files of finished work. The flow is imported only when a task with ``verify=`` is
actually checked.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from reflow.definition.spec import TaskSpec
from reflow.definition.types import TypeRef
from reflow.planning.encoding import from_json
from reflow.planning.paths import tagged_paths
from reflow.planning.planner import Finished, Validator
from reflow.running.fingerprints import differs
from reflow.running.worker.loader import load_workflow


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
        for path, recorded in tagged_paths(finished.value):
            full = os.path.join(cwd, path)  # noqa: PTH118 - hot path
            if recorded is None:
                if not os.path.exists(full):  # noqa: PTH110 - hot path
                    return False
            elif differs(recorded, Path(full)) is not None:
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
