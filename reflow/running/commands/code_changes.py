"""Running: what ``submit`` does about edited task code (``[cache] on_code_change``).

Every run records the hash of each task's code in its manifest (``manifest["code"]``); the run
that made a cached result is kept with it in the store, so a later run can tell which cached
results an older body of a task made. With ``"warn"`` (the default) ``submit`` plans the new
run as its dispatcher will (from the store, without writing anything) and says, per task, how
many of the cached results this run reuses were made by other code, and how to recompute
them; with ``"rerun"`` the code hash enters the task's identity (see
``reflow.planning.identity``), so edited tasks run again; ``"ignore"`` says nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from reflow.definition.description import graph_from_description
from reflow.definition.errors import StoreError
from reflow.definition.graph import Graph
from reflow.planning.planner import Finished, plan
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


def code_change_warnings(
    root: Path,
    hashes: Mapping[str, str],
    manifest: Mapping[str, Any],
    forced: Iterable[str] = (),
) -> list[str]:
    """One line per task of which this run reuses cached results made by other code.

    Counted are exactly the cache hits of the run's first plan (what is cached at submit;
    what a task could take only after its upstream tasks ran again is not known yet) whose
    run recorded another code hash for the task. ``hashes`` holds the current code of the
    tasks; ``forced`` tasks reuse nothing. Results made before code hashes were recorded,
    or taken from another run directory, count as unknown and are not reported.
    """
    if not RunLayout(root, "").store.exists():
        return []
    forced = set(forced)
    with SqliteStore.open(root) as store:
        checked = {task: digest for task, digest in hashes.items() if task not in forced}
        makers = _makers_by_code(root, store, checked)
        if not makers:
            return []  # no cached result of other code: nothing to plan
        reused = _reused(store, manifest, forced)
        lines = []
        for task, older in makers.items():
            made = store.output_makers(task, reused.get(task, ()))
            runs = [run_id for run_id in made.values() if run_id in older]
            own = sum(1 for run_id in runs if older[run_id] == manifest.get("workflow"))
            if own:
                lines.append(
                    f"warning: {task}: its code changed; this run reuses {own} cached"
                    f" result(s) made by earlier code. To recompute them: --force-task {task},"
                    ' or set [cache] on_code_change = "rerun"'
                )
            others = sorted({older[run_id] for run_id in runs} - {manifest.get("workflow")})
            if others:
                named = ", ".join(repr(name) for name in others)
                lines.append(
                    f"warning: {task}: this run reuses {len(runs) - own} cached result(s) of a"
                    f" task {task} with other code in workflow {named}: the cache is shared by"
                    " task name, version and inputs across a run directory. To recompute"
                    f" them: --force-task {task}; to keep them apart, give the task a"
                    " version= of its own"
                )
    return lines


def _makers_by_code(
    root: Path, store: SqliteStore, hashes: Mapping[str, str]
) -> dict[str, dict[str, str]]:
    """``task -> {run: its workflow}`` of runs that made cached results with other code."""
    recorded: dict[str, Mapping[str, Any]] = {}
    makers: dict[str, dict[str, str]] = {}
    for task, digest in hashes.items():
        for run_id in store.outputs_by_run(task):
            if run_id not in recorded:
                recorded[run_id] = _recorded(root, run_id)
            code = (recorded[run_id].get("code") or {}).get(task)
            if code and code != digest:
                makers.setdefault(task, {})[run_id] = str(recorded[run_id].get("workflow", ""))
    return makers


def _reused(
    store: SqliteStore, manifest: Mapping[str, Any], forced: Iterable[str]
) -> dict[str, list[str]]:
    """``task -> identities`` the run's first plan takes from the cache, as the dispatcher will."""

    def lookup(task: str, identities: Sequence[str]) -> dict[str, Finished]:
        found = store.cached_outputs(task, identities)
        return {i: Finished.from_text(value, digest) for i, (value, digest) in found.items()}

    graph = graph_from_description(dict(manifest["description"]))
    result = plan(graph, manifest["params"], {}, lookup, force_tasks=forced)
    reused: dict[str, list[str]] = {}
    for task_plan in result.tasks:
        identity_of = task_plan.identity_of()
        reused[task_plan.task] = [identity_of[element] for element in task_plan.cached]
    return reused


def _recorded(root: Path, run_id: str) -> Mapping[str, Any]:
    try:
        return read_manifest(RunLayout(root, run_id))
    except StoreError:
        return {}
