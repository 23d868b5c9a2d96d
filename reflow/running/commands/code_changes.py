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


def code_change_warnings(root: Path, hashes: Mapping[str, str]) -> list[str]:
    """One line per task whose cached results in ``root`` were made by other code."""
    if not (RunLayout(root, "").store).exists():
        return []
    lines = []
    store = SqliteStore.open(root)
    try:
        codes: dict[str, Mapping[str, str]] = {}
        for task, digest in hashes.items():
            stale = 0
            for run_id, count in store.outputs_by_run(task).items():
                if run_id not in codes:
                    codes[run_id] = _recorded_code(root, run_id)
                recorded = codes[run_id].get(task)
                if recorded and recorded != digest:
                    stale += count
            if stale:
                lines.append(
                    f"warning: {task}: its code changed since {stale} cached result(s) were made;"
                    " they are reused where the inputs match. To recompute them: --force-task"
                    f' {task}, or set [cache] on_code_change = "rerun"'
                )
    finally:
        store.close()
    return lines


def _recorded_code(root: Path, run_id: str) -> Mapping[str, str]:
    try:
        return read_manifest(RunLayout(root, run_id)).get("code") or {}
    except StoreError:
        return {}
