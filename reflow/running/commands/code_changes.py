"""Running: what ``submit`` does about edited task code (``[cache] on_code_change``).

Every run records the hash of each task's code in its manifest (``manifest["code"]``), so a
later run can tell which cached results an older body of a task made. With ``"warn"`` (the
default) ``submit`` says, per task, how many cached results were made by other code and how to
recompute them, and reuses them; with ``"rerun"`` the code hash enters the task's identity
(see ``reflow.planning.identity``), so edited tasks run again; ``"ignore"`` says nothing.
Results made before code hashes were recorded count as unknown and are not reported.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from reflow.definition.errors import StoreError
from reflow.definition.graph import Graph
from reflow.running.codehash import code_hash
from reflow.running.commands.why import own_flags
from reflow.running.rundir.layout import RunLayout
from reflow.running.rundir.manifest import read_manifest
from reflow.running.store.sqlite import SqliteStore


def task_code_hashes(graph: Graph) -> dict[str, str]:
    """``task -> code hash`` of every task whose source can be read."""
    hashes = {}
    for spec in graph.tasks:
        if spec.func is not None:
            digest = code_hash(spec.func, spec.code_deps)
            if digest:
                hashes[spec.name] = digest
    return hashes


def record_code(manifest: dict[str, Any], hashes: Mapping[str, str], *, rerun: bool) -> None:
    """Put the code hashes into ``manifest``; under ``rerun`` into the tasks' identities too."""
    manifest["code"] = dict(hashes)
    if rerun:
        for task in manifest["description"]["tasks"]:
            task["code"] = hashes.get(task["name"], "")


def code_change_warnings(
    root: Path, hashes: Mapping[str, str], manifest: Mapping[str, Any]
) -> list[str]:
    """One line per task whose cached results in ``root`` were made by other code.

    Only results made with this run's values of the task's own parameters count (results of
    other parameter values will not be reused by this run), so a ``--force-task`` that
    recomputed them leaves nothing to report on the next submit.
    """
    if not (RunLayout(root, "").store).exists():
        return []
    keys = {
        task: [key for key, _flag in flags]
        for task, flags in own_flags(manifest["description"]).items()
    }
    params = manifest.get("params") or {}
    lines = []
    with SqliteStore.open(root) as store:
        recorded: dict[str, Mapping[str, Any]] = {}
        for task, digest in hashes.items():
            stale = 0
            for run_id, count in store.outputs_by_run(task).items():
                if run_id not in recorded:
                    recorded[run_id] = _recorded(root, run_id)
                earlier = recorded[run_id]
                code = (earlier.get("code") or {}).get(task)
                same = all(
                    (earlier.get("params") or {}).get(k) == params.get(k)
                    for k in keys.get(task, [])
                )
                if code and code != digest and same:
                    stale += count
            if stale:
                lines.append(
                    f"warning: {task}: its code changed since {stale} cached result(s) were made;"
                    " they are reused where the inputs match. To recompute them: --force-task"
                    f' {task}, or set [cache] on_code_change = "rerun"'
                )
    return lines


def _recorded(root: Path, run_id: str) -> Mapping[str, Any]:
    try:
        return read_manifest(RunLayout(root, run_id))
    except StoreError:
        return {}
