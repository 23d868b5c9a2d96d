"""Planning: graph + parameters + a snapshot of the run -> the instances to create. No I/O.

``plan`` walks the tasks in topological order. A task is planned once all its upstream tasks
are complete: its elements' inputs and identities are computed, cache hits become finished
instances at once (so a fully cached graph completes in one call), and misses become
runnable; a whole task whose key names an earlier planning with every output still cached
is one task hit (``task_hits``), with nothing asked per element. An array fed by chains
(beside fan-outs and broadcasts of complete jobs) is planned element by element as its
upstream elements end (``elementwise``); any other task whose inputs ended with failures
cannot be planned, and its error names them. Values are handled in their tagged JSON form
(``encoding.to_json``) and never decoded here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from reflow.definition.graph import Edge, Graph
from reflow.definition.spec import TaskSpec
from reflow.definition.wiring import EdgeMode
from reflow.planning.elementwise import (
    chain_edges,
    length_error,
    plan_elements,
    root_cause,
    stopped_inputs,
    task_version,
)
from reflow.planning.finished import Finished
from reflow.planning.identity import column_identities, item_hashes, list_hash, task_key
from reflow.planning.plans import (
    FAILED_STATES,
    FINISHED_STATES,
    STOPPED_STATES,
    Items,
    Lookup,
    Plan,
    TaskPlan,
    TaskProgress,
    Validator,
    own_params,
)
from reflow.planning.task_hits import ByElement, TaskLookup, output_digest, output_hashes

__all__ = [
    "FAILED_STATES",
    "FINISHED_STATES",
    "STOPPED_STATES",
    "Finished",
    "Lookup",
    "Plan",
    "TaskPlan",
    "TaskProgress",
    "Validator",
    "plan",
    "plan_task",
]


def plan(
    graph: Graph,
    params: Mapping[str, Any],
    progress: Mapping[str, TaskProgress],
    lookup: Lookup,
    *,
    force_tasks: Iterable[str] = (),
    force_all: bool = False,
    validate: Validator | None = None,
    task_lookup: TaskLookup | None = None,
) -> Plan:
    """Plan every task (or chain element) whose inputs ended and that is not planned yet.

    Args:
        graph: The workflow graph.
        params: The run's parameter values (tagged JSON) by option key.
        progress: The run's already planned tasks.
        lookup: Reads cache hits from the store snapshot.
        force_tasks: Tasks whose cache is ignored.
        force_all: Ignore the cache of every task.
        validate: When given, a cache hit is used only if it returns True.
        task_lookup: Finds a whole task in the cache by its key; asked only for a task that
            uses the cache and when no cache hit is checked (``validate`` is None).
    """
    forced = set(force_tasks)
    known = _Known(progress)
    planned: list[TaskPlan] = []
    waiting: list[str] = []
    blocked: list[str] = []
    for spec in graph.tasks:
        use_cache = spec.cache and not force_all and spec.name not in forced
        look = lookup if use_cache else None
        whole = task_lookup if use_cache and validate is None else None
        task_plan = _plan_one(
            graph, spec, params, progress.get(spec.name), known, look, validate, whole
        )
        if task_plan is None:
            if spec.name not in progress:
                waiting.append(spec.name)
            continue
        planned.append(task_plan)
        known.add(task_plan)
        if task_plan.error and task_plan.task in known.upstream_failed:
            blocked.append(spec.name)
    return Plan(tasks=tuple(planned), waiting=tuple(waiting), blocked=tuple(blocked))


class _Known:
    """What planning knows of each task so far: the snapshot, plus this call's plans."""

    def __init__(self, progress: Mapping[str, TaskProgress]) -> None:
        self.outputs: dict[str, Sequence[Finished]] = {
            t: p.outputs for t, p in progress.items() if p.is_complete and p.outputs is not None
        }
        self.finished: dict[str, Mapping[int, Finished]] = {
            t: dict(p.finished if p.finished is not None else enumerate(p.outputs or ()))
            for t, p in progress.items()
        }
        self.stopped: dict[str, dict[int, str]] = {t: dict(p.stopped) for t, p in progress.items()}
        self.sizes = {t: p.size for t, p in progress.items() if not p.error}
        self.errors = {t: p.error for t, p in progress.items() if p.error}
        self.failed = {t for t, p in progress.items() if p.is_failed}
        self.upstream_failed: set[str] = set()

    def is_final(self, task: str) -> bool:
        """True when every element of ``task`` ended (or it could not be planned)."""
        return task in self.outputs or task in self.failed

    def add(self, task_plan: TaskPlan) -> None:
        """Take in a plan made in this call."""
        name = task_plan.task
        if task_plan.error:
            self.errors[name] = task_plan.error
            self.failed.add(name)
            return
        if task_plan.whole is not None:
            self.sizes[name] = task_plan.whole.size
            self.outputs[name] = task_plan.whole.outputs
            self.finished[name] = ByElement(task_plan.whole.outputs)
            return
        size = task_plan.element_count
        self.sizes[name] = size
        earlier = self.finished.get(name, {})
        finished = earlier if isinstance(earlier, dict) else dict(earlier)
        finished.update(task_plan.cached)
        self.finished[name] = finished
        stopped = self.stopped.setdefault(name, {})
        stopped.update((e, root_cause(reason)) for e, reason in task_plan.blocked.items())
        if len(finished) == size:
            self.outputs[name] = [finished[e] for e in range(size)]
        elif stopped and len(finished) + len(stopped) == size:
            self.failed.add(name)


def _plan_one(
    graph: Graph,
    spec: TaskSpec,
    params: Mapping[str, Any],
    current: TaskProgress | None,
    known: _Known,
    lookup: Lookup | None,
    validate: Validator | None,
    task_lookup: TaskLookup | None,
) -> TaskPlan | None:
    """The plan of one task (or of more of its elements) in this call; None: nothing new."""
    chains = chain_edges(graph, spec)
    edges = graph.incoming(spec.name)
    if current is not None:
        resolved = current.resolved
        if current.error or not chains or resolved is None or len(resolved) >= current.size:
            return None
        return plan_elements(
            spec, params, edges=edges, size=current.size, sizes=known.sizes,
            outputs=known.outputs, finished=known.finished, stopped=known.stopped, skip=resolved,
            lookup=lookup, validate=validate, held=current.held > 0,
        )  # fmt: skip
    upstream = spec.upstream
    if all(up in known.outputs for up in upstream):
        return plan_task(graph, spec, params, known.outputs, lookup, validate, task_lookup)
    sources = {edge.source for edge in chains}
    if (
        chains
        and sources <= known.sizes.keys()
        and all(up in known.outputs for up in upstream if up not in sources)
    ):
        return plan_elements(
            spec, params, edges=edges, size=None, sizes=known.sizes,
            outputs=known.outputs, finished=known.finished, stopped=known.stopped,
            skip=frozenset(), lookup=lookup, validate=validate,
        )  # fmt: skip
    if all(known.is_final(up) for up in upstream):
        known.upstream_failed.add(spec.name)
        why = stopped_inputs(upstream, known.sizes, known.stopped, known.errors)
        return TaskPlan(task=spec.name, identities=(), cached={}, error=why)
    return None


@dataclass(slots=True)
class _Consumed:
    """What one parameter consumes: per element (``items``) or one value for all.

    ``hash`` is the hash of ``value``; for a list of items it is computed only when the whole
    list is consumed (a gather), never for a fan-out, where each element has its own.
    """

    items: Sequence[Any] | None = None
    item_hashes: list[str] | None = None
    value: Any = None
    hash: str = ""


def plan_task(
    graph: Graph,
    spec: TaskSpec,
    params: Mapping[str, Any],
    outputs: Mapping[str, Sequence[Finished]],
    lookup: Lookup | None,
    validate: Validator | None = None,
    task_lookup: TaskLookup | None = None,
) -> TaskPlan:
    """Plan one task whose upstream tasks are all complete.

    With ``task_lookup``, the task's key is looked up first: a task hit plans every element
    as cached without computing an identity.
    """
    digests: dict[str, str] = {}
    key = _task_key(graph, spec, params, outputs, digests)
    read = {source: (digest, len(outputs[source])) for source, digest in digests.items()}
    if task_lookup is not None:
        whole = task_lookup(spec.name, key)
        if whole is not None:
            return TaskPlan(
                task=spec.name, identities=(), cached={}, key=key, whole=whole, digests=read
            )
    consumed = {
        inp.name: _consume(graph, spec, inp.name, outputs, digests, per_element=spec.is_array)
        for inp in spec.inputs
    }
    sizes = {name: len(c.items) for name, c in consumed.items() if c.items is not None}
    if spec.is_array and len(set(sizes.values())) > 1:
        return length_error(spec.name, sizes)
    size = next(iter(sizes.values()), 0) if spec.is_array else 1
    columns: dict[str, str | list[str]] = {}
    values: dict[str, Any] = {}
    per_element: list[str] = []
    for name, c in consumed.items():
        if spec.is_array and c.items is not None and c.item_hashes is not None:
            per_element.append(name)
            columns[name], values[name] = c.item_hashes, c.items
        else:
            columns[name], values[name] = c.hash, c.value
    identities = column_identities(
        task=spec.name,
        version=task_version(spec),
        params=own_params(spec, params),
        columns=columns,
        size=size,
    )
    cached: dict[int, Finished] = {}
    rejected: list[str] = []
    if lookup is not None and identities:
        hits = lookup(spec.name, identities)
        if validate is None:
            cached = {e: hits[i] for e, i in enumerate(identities) if i in hits} if hits else {}
        elif hits:
            for element, identity in enumerate(identities):
                hit = hits.get(identity)
                if hit is None:
                    continue
                if not validate(spec, hit):
                    rejected.append(identity)
                    continue
                cached[element] = hit
    return TaskPlan(
        task=spec.name,
        identities=tuple(identities),
        cached=cached,
        rejected=tuple(rejected),
        consumed=values,
        per_element=tuple(per_element),
        key=key,
        digests=read,
    )


def _task_key(
    graph: Graph,
    spec: TaskSpec,
    params: Mapping[str, Any],
    outputs: Mapping[str, Sequence[Finished]],
    digests: dict[str, str],
) -> str:
    """The task's key; ``digests`` gets the list hash of each upstream task's output hashes."""
    inputs: dict[str, list[tuple[str, str, str]]] = {}
    for edge in graph.incoming(spec.name):
        if edge.param is None:
            continue  # an ``after=`` edge: ordering only, it enters no identity
        if edge.source not in digests:
            digests[edge.source] = output_digest(outputs[edge.source])
        how = edge.mode.value if edge.mode is not None else ""
        inputs.setdefault(edge.param, []).append((how, edge.source, digests[edge.source]))
    return task_key(
        task=spec.name,
        version=task_version(spec),
        params=own_params(spec, params),
        inputs=inputs,
        array=spec.is_array,
    )


def _consume(
    graph: Graph,
    spec: TaskSpec,
    name: str,
    outputs: Mapping[str, Sequence[Finished]],
    digests: Mapping[str, str],
    *,
    per_element: bool,
) -> _Consumed:
    edges = [e for e in graph.incoming(spec.name) if e.param == name]
    if len(edges) == 1 and edges[0].mode in (EdgeMode.DIRECT, EdgeMode.BROADCAST):
        (single,) = outputs[edges[0].source]
        return _Consumed(value=single.value, hash=single.hash)
    if not per_element and len(edges) == 1 and edges[0].mode is EdgeMode.GATHER:
        # A gather of one task consumes the list hash of exactly its output hashes, which
        # the task's key was computed from: no hash is read again, no value unless used.
        gathered = Items([(outputs[edges[0].source], True)])
        return _Consumed(items=gathered, value=gathered, hash=digests[edges[0].source])
    parts: list[tuple[Sequence[Any], bool]] = []
    item_hashes: list[str] = []
    for edge in edges:
        more, more_hashes = _items(edge, outputs[edge.source])
        parts.extend(more.parts)
        item_hashes.extend(more_hashes)
    items = Items(parts)
    whole = "" if per_element else list_hash(item_hashes)
    return _Consumed(items=items, item_hashes=item_hashes, value=items, hash=whole)


def _items(edge: Edge, finished: Sequence[Finished]) -> tuple[Items, list[str]]:
    """The items one edge contributes to a list or to the elements of an array."""
    if edge.mode in (EdgeMode.CHAIN, EdgeMode.GATHER):
        # One item per finished element, known by its hash: its value is read only if used.
        return Items([(finished, True)]), output_hashes(finished)
    if edge.mode in (EdgeMode.FAN_OUT, EdgeMode.DIRECT):
        (single,) = finished
        items = list(single.value)
    else:
        items = [item for f in finished for item in f.value]
    return Items([(items, False)]), item_hashes(items)
