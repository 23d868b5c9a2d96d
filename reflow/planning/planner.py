"""Planning: graph + parameters + a snapshot of the run -> the instances to create. No I/O.

``plan`` walks the tasks in topological order. A task is planned once all its upstream tasks
are complete: its elements' inputs and identities are computed, cache hits become finished
instances at once (so a fully cached graph completes in one call), and misses become
runnable. A task with a failed upstream is blocked; others wait. Values are handled in their
tagged JSON form (``encoding.to_json``) and never decoded here.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from json.encoder import encode_basestring
from typing import Any

from reflow.definition.graph import Edge, Graph
from reflow.definition.options import param_key
from reflow.definition.spec import UNSET, TaskSpec
from reflow.definition.wiring import EdgeMode
from reflow.planning.encoding import to_json, to_text
from reflow.planning.identity import column_identities, list_hash, value_hashes

FINISHED_STATES = frozenset({"done", "cached"})
FAILED_STATES = frozenset({"failed", "cancelled"})


class Finished:
    """A finished element's output: its tagged JSON value and its hash.

    Built from the value, or with :meth:`from_text` from the canonical text the store keeps;
    then the text is parsed only when ``value`` is first read. Planning reads the values of
    a fan-out's source and of the inputs it writes, never those of cache hits it only counts,
    so resubmitting a fully cached fan-out of 100,000 elements parses none of their outputs.
    Immutable, like a frozen dataclass.
    """

    __slots__ = ("_text", "_value", "hash")
    __match_args__ = ("value", "hash")

    _text: str | None
    _value: Any
    hash: str

    def __init__(self, value: Any, hash: str) -> None:  # noqa: A002 - the field's name
        _set_text(self, None)
        _set_value(self, value)
        _set_hash(self, hash)

    @classmethod
    def from_text(cls, text: str, hash: str) -> Finished:  # noqa: A002
        """A finished output whose value is parsed from ``text`` when first read."""
        finished: Finished = object.__new__(cls)
        _set_text(finished, text)
        _set_value(finished, None)
        _set_hash(finished, hash)
        return finished

    @property
    def value(self) -> Any:
        """The output in tagged JSON form (``encoding.to_json``)."""
        text = self._text
        if text is not None:
            _set_value(self, json.loads(text))
            _set_text(self, None)
        return self._value

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"Finished is immutable; cannot set {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"Finished is immutable; cannot delete {name!r}")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Finished):
            return NotImplemented
        return self.hash == other.hash and self.value == other.value

    def __hash__(self) -> int:
        return hash(self.hash)  # equal outputs have equal hashes; values may be lists

    def __repr__(self) -> str:
        return f"Finished(value={self.value!r}, hash={self.hash!r})"


# The slots' own setters: immutable from outside, cheap to fill for 100,000 cache hits.
_set_text = Finished.__dict__["_text"].__set__
_set_value = Finished.__dict__["_value"].__set__
_set_hash = Finished.__dict__["hash"].__set__


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
    """A task planned in this call: per element its inputs and identity; cache hits.

    ``consumed`` holds what each input parameter consumes: for the names in ``per_element``
    a list with one item per element, for the others one value every element gets.
    """

    task: str
    identities: tuple[str, ...]
    cached: Mapping[int, Finished]
    rejected: tuple[str, ...] = ()
    error: str = ""
    consumed: Mapping[str, Any] = field(default_factory=dict)
    per_element: tuple[str, ...] = ()

    @property
    def inputs(self) -> tuple[dict[str, Any], ...]:
        """Per element, each input parameter's value (tagged JSON), built when asked for.

        Only runnable tasks need them (for their inputs file), so a fully cached fan-out of
        100,000 elements never builds 100,000 dicts.
        """
        return _rows(self.consumed, self.per_element, len(self.identities))

    @property
    def runnable(self) -> list[int]:
        """Elements that must run (not found in the cache)."""
        size = len(self.identities)
        if self.error or len(self.cached) == size:
            return []
        if not self.cached:
            return list(range(size))
        return [e for e in range(size) if e not in self.cached]


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
) -> TaskPlan:
    """Plan one task whose upstream tasks are all complete."""
    consumed = {
        inp.name: _consume(graph, spec, inp.name, outputs, per_element=spec.is_array)
        for inp in spec.inputs
    }
    sizes = {name: len(c.items) for name, c in consumed.items() if c.items is not None}
    if spec.is_array and len(set(sizes.values())) > 1:
        shown = ", ".join(f"{name} has {n}" for name, n in sizes.items())
        return TaskPlan(
            task=spec.name,
            identities=(),
            cached={},
            error=f"element-wise inputs differ in length ({shown}); they must match",
        )
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
        version=spec.version if not spec.code else f"{spec.version}+code:{spec.code}",
        params=_own_params(spec, params),
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
    )


def _rows(
    values: Mapping[str, Any], per_element: Sequence[str], size: int
) -> tuple[dict[str, Any], ...]:
    """Each element's inputs: its own item of ``per_element`` names, the others shared."""
    shared = {
        name: list(value) if isinstance(value, _Items) else value
        for name, value in values.items()
        if name not in per_element
    }
    if not per_element:
        return tuple(dict(shared) for _ in range(size))
    if len(per_element) == 1 and not shared:
        (name,) = per_element
        return tuple({name: item} for item in values[name])
    columns = [values[name] for name in per_element]
    return tuple(
        {**shared, **dict(zip(per_element, row, strict=True))} for row in zip(*columns, strict=True)
    )


def _own_params(spec: TaskSpec, params: Mapping[str, Any]) -> dict[str, Any]:
    """The task's parameter values in tagged JSON form, as the run's manifest holds them."""
    own = {}
    for param in spec.params:
        key = param_key(spec.name, param)
        if key in params:
            own[param.name] = params[key]
        else:  # a value the manifest lacks: its default, in the same tagged form
            own[param.name] = None if param.default is UNSET else to_json(param.default)
    return own


def _consume(
    graph: Graph,
    spec: TaskSpec,
    name: str,
    outputs: Mapping[str, Sequence[Finished]],
    *,
    per_element: bool,
) -> _Consumed:
    edges = [e for e in graph.incoming(spec.name) if e.param == name]
    if len(edges) == 1 and edges[0].mode in (EdgeMode.DIRECT, EdgeMode.BROADCAST):
        (single,) = outputs[edges[0].source]
        return _Consumed(value=single.value, hash=single.hash)
    parts: list[tuple[Sequence[Any], bool]] = []
    item_hashes: list[str] = []
    for edge in edges:
        more, more_hashes = _items(edge, outputs[edge.source])
        parts.extend(more._parts)
        item_hashes.extend(more_hashes)
    items = _Items(parts)
    whole = "" if per_element else list_hash(item_hashes)
    return _Consumed(items=items, item_hashes=item_hashes, value=items, hash=whole)


def _items(edge: Edge, finished: Sequence[Finished]) -> tuple[_Items, list[str]]:
    """The items one edge contributes to a list or to the elements of an array."""
    if edge.mode in (EdgeMode.CHAIN, EdgeMode.GATHER):
        # One item per finished element, known by its hash: its value is read only if used.
        return _Items([(finished, True)]), [f.hash for f in finished]
    if edge.mode in (EdgeMode.FAN_OUT, EdgeMode.DIRECT):
        (single,) = finished
        items = list(single.value)
    else:
        items = [item for f in finished for item in f.value]
    return _Items([(items, False)]), _item_hashes(items)


class _Items(Sequence[Any]):
    """Consumed items in order, equal to the list of them; built as a list only when used.

    Each part is a list of items, or (flagged True) finished outputs whose values are the
    items, so the outputs of a cached gather are not even parsed unless inputs are written.
    """

    __slots__ = ("_parts",)

    def __init__(self, parts: Iterable[tuple[Sequence[Any], bool]]) -> None:
        self._parts = tuple(parts)

    def __len__(self) -> int:
        return sum(len(part) for part, _ in self._parts)

    def __getitem__(self, index: Any) -> Any:
        return list(self)[index]

    def __iter__(self) -> Iterator[Any]:
        for part, outputs in self._parts:
            yield from ((f.value for f in part) if outputs else part)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence) or isinstance(other, str):
            return NotImplemented
        return list(self) == list(other)

    __hash__ = None  # type: ignore[assignment]  # like a list

    def __repr__(self) -> str:
        return repr(list(self))


def _item_hashes(items: list[Any]) -> list[str]:
    """Value hashes of items already in tagged JSON form."""
    if all(type(item) is str for item in items):
        return value_hashes(map(encode_basestring, items))
    return value_hashes(to_text(item) for item in items)
