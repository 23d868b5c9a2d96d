"""Running: cancel and retry a run (the store first, then the executor, then a dispatcher).

Both are safe to repeat. ``retry`` verifies cached upstream outputs by default: a stale one
is removed from the cache, and its task and everything downstream of it are planned again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from reflow.definition.description import graph_from_description
from reflow.definition.errors import UsageError, suggest
from reflow.definition.graph import Graph
from reflow.planning.planner import Finished
from reflow.running.dispatch.drive import launch
from reflow.running.dispatch.verification import holds_path, make_validator, record_stale
from reflow.running.executors.local import LocalExecutor
from reflow.running.executors.slurm import SlurmExecutor
from reflow.running.rundir.layout import RunLayout
from reflow.running.rundir.manifest import read_manifest
from reflow.running.store.sqlite import SqliteStore
from reflow.running.store.states import FAILED, InstanceState


@dataclass(frozen=True, slots=True)
class Retried:
    """What ``retry`` did: how many instances run again, and whether the run goes on."""

    count: int
    resumed: bool


def executor_for(mode: str, layout: RunLayout) -> Any:
    """An executor able to cancel and query the jobs of a run made with ``mode``."""
    if mode == "slurm":
        return SlurmExecutor()
    return LocalExecutor(run_root=layout.run)


def _check_task(graph: Graph, task: str | None) -> None:
    names = [spec.name for spec in graph.tasks]
    if task is not None and task not in names:
        raise UsageError(
            f"--task {task!r} names no task of this run",
            param="task",
            value=task,
            suggestion=suggest(task, names),
        )


def cancel_run(root: Any, run_id: str, task: str | None = None) -> int:
    """Cancel the run's active instances (of ``task`` only when given); return how many.

    A run that already ended keeps its state: only a running run becomes ``cancelled``.
    """
    layout = RunLayout(root, run_id)
    with SqliteStore.open(layout.root) as store:
        run = store.run(run_id)
        _check_task(graph_from_description(read_manifest(layout)["description"]), task)
        active = store.cancel(run_id, task)
    job_ids = [str(row.job_id) for row in active if row.job_id]
    extra = list(run.dispatcher.pending_jobs) if task is None else []
    if job_ids or extra:
        executor_for(run.executor, layout).cancel([*job_ids, *extra])
    return len(active)


def retry_run(root: Any, run_id: str, task: str | None = None, *, verify: bool = True) -> int:
    """Make failed and cancelled instances runnable again and restart the dispatcher.

    Returns the number of instances that will run again (not counting stale upstream ones).
    """
    return retry(root, run_id, task, verify=verify).count


def retry(root: Any, run_id: str, task: str | None = None, *, verify: bool = True) -> Retried:
    """``retry_run``, also saying whether the run goes on.

    A succeeded run with nothing to rerun is left as it is (``resumed`` is False); a failed,
    cancelled or running one gets a dispatcher again.
    """
    layout = RunLayout(root, run_id)
    with SqliteStore.open(layout.root) as store:
        run = store.run(run_id)
        manifest = read_manifest(layout)
        graph = graph_from_description(manifest["description"])
        _check_task(graph, task)
        retried = [
            row for row in store.instances_in(run_id, FAILED) if task is None or row.task == task
        ]
        planned = store.planned_tasks(run_id)
        # What a failure blocked is planned again: blocked chain elements as their upstream
        # elements end, and tasks that could not be planned once their inputs have.
        after = graph.downstream({row.task for row in retried} | ({task} if task else set()))
        scope = None if task is None else after | {task}
        broken = [t for t, (_p, _s, err) in planned.items() if err and t in (scope or {t})]
        blocked = [
            row for row in store.instances_in(run_id, [InstanceState.BLOCKED])
            if scope is None or row.task in scope
        ]  # fmt: skip
        stale: set[str] = set()
        if verify:
            targets = {row.task for row in retried} | set(broken) | ({task} if task else set())
            validator = make_validator(manifest)
            stale = _stale_tasks(store, graph, run_id, targets, validator)
            record_stale(layout, validator)
        replan = set(broken) | stale | graph.downstream(stale)
        elements = [(row.task, row.element) for row in retried]
        unblock = {row.task for row in blocked}
        resumed = store.reset_for_retry(run_id, elements, replan, unblock)
    if resumed:
        launch(layout, run.executor)
    return Retried(len(retried) + len(blocked), resumed)


def _stale_tasks(
    store: SqliteStore, graph: Graph, run_id: str, targets: set[str], validate: Any
) -> set[str]:
    """Upstream tasks of ``targets`` with a finished output that no longer verifies."""
    ancestors: set[str] = set()
    frontier = set(targets)
    while frontier:
        ups = {up for name in frontier for up in graph.task(name).upstream} - ancestors
        ancestors |= ups
        frontier = ups
    stale: set[str] = set()
    doomed: list[str] = []
    for name in ancestors:
        spec = graph.task(name)
        if not (holds_path(spec.returns) or spec.has_verify):
            continue
        rows = store.instances(run_id, name)
        outputs = {e: Finished.from_text(v, h) for e, v, h in store.element_outputs(run_id, name)}
        for row in rows:
            finished = outputs.get(row.element)
            if finished is not None and not validate(spec, finished):
                stale.add(name)
                doomed.append(row.identity)
    store.forget_outputs(doomed)
    return stale
