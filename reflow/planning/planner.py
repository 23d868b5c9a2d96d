"""Planning: graph + parameters + a snapshot of the run -> the instances to create. No I/O.

``plan`` walks the tasks in topological order. A task is planned once all its upstream tasks
are complete: its elements' inputs and identities are computed, cache hits become finished
instances at once (so a fully cached graph completes in one call), and misses become
runnable. A task with a failed upstream is blocked; others wait. Values are handled in their
tagged JSON form (``encoding.to_json``) and never decoded here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from json.encoder import encode_basestring
from typing import Any

from reflow.definition.graph import Edge, Graph
from reflow.definition.options import param_key
from reflow.definition.spec import UNSET, TaskSpec
from reflow.definition.wiring import EdgeMode
from reflow.planning.encoding import to_text
from reflow.planning.identity import instance_identities, list_hash, value_hash

FINISHED_STATES = frozenset({"done", "cached"})
FAILED_STATES = frozenset({"failed", "cancelled"})


@dataclass(frozen=True, slots=True)
class Finished:
    """A finished element's output: its tagged JSON value and its hash."""

    value: Any
    hash: str


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskProgress:
    """What the store knows of a task that is already planned in the run."""

    size: int
    counts: Mapping[str, int] = field(default_factory=dict)
    outputs: Sequence[Finished] | None = None
    error: str = ""

    @property
    def is_complete(self) -> bool:
        """True when every element finished (``outputs`` holds them, in element order)."""
        return self.outputs is not None and not self.error

    @property
    def is_failed(self) -> bool:
        """True when nothing of the task is active and some element failed or was cancelled."""
        if self.error:
            return True
        active = sum(n for state, n in self.counts.items() if state not in FINISHED_STATES)
        failed = sum(n for state, n in self.counts.items() if state in FAILED_STATES)
        return failed > 0 and active == failed


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskPlan:
    """A task planned in this call: per element its inputs and identity; cache hits."""

    task: str
    identities: tuple[str, ...]
    inputs: tuple[Mapping[str, Any], ...]
    cached: Mapping[int, Finished]
    rejected: tuple[str, ...] = ()
    error: str = ""

    @property
    def runnable(self) -> list[int]:
        """Elements that must run (not found in the cache)."""
        if self.error:
            return []
        return [e for e in range(len(self.identities)) if e not in self.cached]


@dataclass(frozen=True, slots=True, kw_only=True)
class Plan:
    """The result of planning: new task plans, and the tasks still waiting or blocked."""

    tasks: tuple[TaskPlan, ...]
    waiting: tuple[str, ...]
    blocked: tuple[str, ...]


Lookup = Callable[[str, Sequence[str]], Mapping[str, Finished]]
"""Cache lookup: ``(task, identities) -> {identity: Finished}`` for the hits."""
Validator = Callable[[TaskSpec, Finished], bool]
"""Decides whether a cached output may still be trusted (``Path`` exists, ``verify=``)."""


def plan(
    graph: Graph,
    params: Mapping[str, Any],
    progress: Mapping[str, TaskProgress],
    lookup: Lookup,
    *,
    force_tasks: Iterable[str] = (),
    force_all: bool = False,
    validate: Validator | None = None,
) -> Plan:
    """Plan every task whose upstream tasks are complete and that is not planned yet.

    Args:
        graph: The workflow graph.
        params: The run's parameter values (tagged JSON) by option key.
        progress: The run's already planned tasks.
        lookup: Reads cache hits from the store snapshot.
        force_tasks: Tasks whose cache is ignored.
        force_all: Ignore the cache of every task.
        validate: When given, a cache hit is used only if it returns True.
    """
    forced = set(force_tasks)
    outputs = {t: p.outputs for t, p in progress.items() if p.is_complete and p.outputs is not None}
    failed = {t for t, p in progress.items() if p.is_failed}
    planned: list[TaskPlan] = []
    waiting: list[str] = []
    blocked: list[str] = []
    for spec in graph.tasks:
        if spec.name in progress:
            continue
        upstream = spec.upstream
        if any(up in failed or up in blocked for up in upstream):
            blocked.append(spec.name)
        elif all(up in outputs for up in upstream):
            use_cache = spec.cache and not force_all and spec.name not in forced
            task_plan = plan_task(
                graph, spec, params, outputs, lookup if use_cache else None, validate
            )
            planned.append(task_plan)
            if task_plan.error:
                failed.add(spec.name)
            elif not task_plan.runnable:
                outputs[spec.name] = [task_plan.cached[e] for e in range(len(task_plan.identities))]
        else:
            waiting.append(spec.name)
    return Plan(tasks=tuple(planned), waiting=tuple(waiting), blocked=tuple(blocked))


@dataclass(slots=True)
class _Consumed:
    """What one parameter consumes: per element (``items``) or one value for all."""

    items: list[Any] | None = None
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
) -> TaskPlan:
    """Plan one task whose upstream tasks are all complete."""
    consumed = {inp.name: _consume(graph, spec, inp.name, outputs) for inp in spec.inputs}
    sizes = {name: len(c.items) for name, c in consumed.items() if c.items is not None}
    if spec.is_array and len(set(sizes.values())) > 1:
        shown = ", ".join(f"{name} has {n}" for name, n in sizes.items())
        return TaskPlan(
            task=spec.name,
            identities=(),
            inputs=(),
            cached={},
            error=f"element-wise inputs differ in length ({shown}); they must match",
        )
    size = next(iter(sizes.values()), 0) if spec.is_array else 1
    own = _own_params(spec, params)
    rows: list[dict[str, Any]] = [{} for _ in range(size)]
    hashes: list[dict[str, str]] = [{} for _ in range(size)]
    for name, c in consumed.items():
        if c.items is not None and spec.is_array:
            assert c.item_hashes is not None
            for element, (item, digest) in enumerate(zip(c.items, c.item_hashes, strict=True)):
                rows[element][name] = item
                hashes[element][name] = digest
        else:
            for element in range(size):
                rows[element][name] = c.value
                hashes[element][name] = c.hash
    identities = instance_identities(
        task=spec.name, version=spec.version, params=own, inputs=hashes
    )
    cached: dict[int, Finished] = {}
    rejected: list[str] = []
    if lookup is not None and identities:
        hits = lookup(spec.name, identities)
        for element, identity in enumerate(identities):
            hit = hits.get(identity)
            if hit is None:
                continue
            if validate is not None and not validate(spec, hit):
                rejected.append(identity)
                continue
            cached[element] = hit
    return TaskPlan(
        task=spec.name,
        identities=tuple(identities),
        inputs=tuple(rows),
        cached=cached,
        rejected=tuple(rejected),
    )


def _own_params(spec: TaskSpec, params: Mapping[str, Any]) -> dict[str, Any]:
    own = {}
    for param in spec.params:
        value = params.get(param_key(spec.name, param), param.default)
        own[param.name] = None if value is UNSET else value
    return own


def _consume(
    graph: Graph, spec: TaskSpec, name: str, outputs: Mapping[str, Sequence[Finished]]
) -> _Consumed:
    edges = [e for e in graph.incoming(spec.name) if e.param == name]
    if len(edges) == 1 and edges[0].mode in (EdgeMode.DIRECT, EdgeMode.BROADCAST):
        (single,) = outputs[edges[0].source]
        return _Consumed(value=single.value, hash=single.hash)
    items: list[Any] = []
    item_hashes: list[str] = []
    for edge in edges:
        more, more_hashes = _items(edge, outputs[edge.source])
        items.extend(more)
        item_hashes.extend(more_hashes)
    return _Consumed(items=items, item_hashes=item_hashes, value=items, hash=list_hash(item_hashes))


def _items(edge: Edge, finished: Sequence[Finished]) -> tuple[list[Any], list[str]]:
    """The items one edge contributes to a list or to the elements of an array."""
    if edge.mode in (EdgeMode.CHAIN, EdgeMode.GATHER):
        return [f.value for f in finished], [f.hash for f in finished]
    if edge.mode in (EdgeMode.FAN_OUT, EdgeMode.DIRECT):
        (single,) = finished
        items = list(single.value)
    else:
        items = [item for f in finished for item in f.value]
    return items, _item_hashes(items)


def _item_hashes(items: list[Any]) -> list[str]:
    """Value hashes of items already in tagged JSON form."""
    if all(type(item) is str for item in items):
        texts: Iterable[str] = map(encode_basestring, items)
    else:
        texts = (to_text(item) for item in items)
    return list(map(value_hash, texts))
