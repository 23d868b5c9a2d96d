"""Running: what the planner reads of a run, taken from the store in a few batched reads.

Outputs are read only where planning needs them in this turn: the upstream tasks of a task
that can be planned now, and the upstream arrays of a chain whose elements wait for theirs
(see ``planning/elementwise.py``). The elements that ended without an output, with their
cause, are read in one query, and only while something waits to be planned.
"""

from __future__ import annotations

from collections import defaultdict

from reflow.definition.graph import Graph
from reflow.planning.elementwise import chain_edges, root_cause
from reflow.planning.planner import Finished, TaskProgress
from reflow.running.store.records import InstanceRow
from reflow.running.store.sqlite import SqliteStore
from reflow.running.store.states import FINISHED, STOPPED, InstanceState


def read_progress(store: SqliteStore, graph: Graph, run_id: str) -> dict[str, TaskProgress]:
    """A snapshot of the run's planned tasks; outputs only where a task needs them."""
    planned = store.planned_tasks(run_id)
    counts = store.state_counts(run_id)
    complete: set[str] = set()
    partial: set[str] = set()  # chains with elements not planned yet
    for task, (_plan, size, error) in planned.items():
        task_counts = counts.get(task, {})
        if error:
            continue
        if sum(task_counts.get(s, 0) for s in FINISHED) == size:
            complete.add(task)
        elif sum(task_counts.values()) < size:
            partial.add(task)
    outputs_of: set[str] = set()  # complete tasks whose outputs planning reads
    finished_of: set[str] = set()  # tasks whose finished elements planning reads
    waiting = False
    for spec in graph.tasks:
        if spec.name in planned and spec.name not in partial:
            continue
        waiting = True
        chains = chain_edges(graph, spec)
        if spec.name not in planned and set(spec.upstream) <= complete:
            outputs_of.update(spec.upstream)
        elif chains:
            outputs_of.update(up for up in spec.upstream if up in complete)
            finished_of.update(edge.source for edge in chains)
            finished_of.add(spec.name)
    stopped: dict[str, dict[int, str]] = defaultdict(dict)
    if waiting and any(s in STOPPED for c in counts.values() for s in c):
        for row in store.instances_in(run_id, STOPPED):
            stopped[row.task][row.element] = stop_cause(row)
    snapshot: dict[str, TaskProgress] = {}
    for task, (_plan, size, error) in planned.items():
        outputs: list[Finished] | None = None
        finished: dict[int, Finished] | None = None
        if task in complete:
            outputs = _outputs(store, run_id, task) if task in outputs_of | finished_of else []
        elif task in finished_of:
            finished = {
                e: Finished.from_text(value, digest)
                for e, value, digest in store.element_outputs(run_id, task)
            }
        resolved = None
        if task in partial:
            resolved = frozenset(store.element_indices(run_id, task))
        snapshot[task] = TaskProgress(
            size=size,
            counts=counts.get(task, {}),
            outputs=outputs,
            error=error,
            finished=finished,
            stopped=stopped.get(task, {}),
            resolved=resolved,
            held=counts.get(task, {}).get(InstanceState.READY, 0),
        )
    return snapshot


def stop_cause(row: InstanceRow) -> str:
    """Why an element has no output, as its consumers name it: ``convert[3] failed``."""
    if row.state == InstanceState.BLOCKED:
        return root_cause(row.error or "")
    verb = "was cancelled" if row.state == InstanceState.CANCELLED else "failed"
    return f"{row.task}[{row.element}] {verb}"


def _outputs(store: SqliteStore, run_id: str, task: str) -> list[Finished]:
    return [
        Finished.from_text(value, digest)
        for _e, value, digest in store.element_outputs(run_id, task)
    ]
