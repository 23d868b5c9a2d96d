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
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from reflow.definition.spec import TaskSpec
from reflow.definition.types import TypeRef
from reflow.planning.encoding import from_json
from reflow.planning.paths import tagged_paths
from reflow.planning.planner import Finished, Validator
from reflow.running.fingerprints import differs
from reflow.running.rundir.layout import RunLayout
from reflow.running.rundir.manifest import submitted_from
from reflow.running.rundir.stale import add_stale
from reflow.running.worker.loader import load_workflow


def holds_path(ref: TypeRef | None) -> bool:
    """True when values of type ``ref`` can contain a ``Path``."""
    return ref is not None and (ref.kind == "path" or any(holds_path(a) for a in ref.args))


class RunValidator:
    """Checks cached outputs for one run, and counts why the stale ones are stale.

    ``stale`` maps a task to ``reason -> count`` for every output it found stale since it was
    made; ``record_stale`` keeps those counts with the run, for ``status``.
    """

    def __init__(self, manifest: Mapping[str, Any]) -> None:
        self.manifest = manifest
        self.cwd = submitted_from(manifest)
        self.callables: dict[str, Any] = {}
        self.stale: dict[str, Counter[str]] = {}

    def __call__(self, spec: TaskSpec, finished: Finished) -> bool:
        """True when ``finished`` can still be trusted as ``spec``'s output."""
        reason = self.why_stale(spec, finished)
        if reason is not None:
            self.stale.setdefault(spec.name, Counter())[reason] += 1
        return reason is None

    def why_stale(self, spec: TaskSpec, finished: Finished) -> str | None:
        """Why ``finished`` is stale ("file changed (mtime)", ...), or None when it is not."""
        for path, recorded in tagged_paths(finished.value):
            full = os.path.join(self.cwd, path)  # noqa: PTH118 - hot path
            if recorded is None:
                if not os.path.exists(full):  # noqa: PTH110 - hot path
                    return "file missing"
                continue
            changed = differs(recorded, Path(full))
            if changed is not None:
                return "file missing" if changed == "missing" else f"file changed ({changed})"
        if spec.has_verify:
            check = self._user_verify(spec)
            if check is not None:
                try:
                    return None if check(from_json(finished.value)) else "verify= returned false"
                except Exception:  # noqa: BLE001 - a raising verify= means "not valid"
                    return "verify= raised"
        return None

    def _user_verify(self, spec: TaskSpec) -> Any:
        if spec.name not in self.callables:
            workflow = load_workflow(self.manifest)
            self.callables.update({n: t.verify for n, t in workflow.tasks.items()})
        return self.callables.get(spec.name)


def make_validator(manifest: Mapping[str, Any]) -> RunValidator:
    """A validator for the run's tasks; imports the flow on first use of a ``verify=``."""
    return RunValidator(manifest)


def record_stale(layout: RunLayout, validator: Validator | None) -> None:
    """Add what ``validator`` found stale to the run's record of stale outputs."""
    if isinstance(validator, RunValidator) and validator.stale:
        add_stale(layout, {task: dict(reasons) for task, reasons in validator.stale.items()})
        validator.stale.clear()
