"""Planning: what the planner reads of a run (``TaskProgress``) and returns (``TaskPlan``). No I/O.

The planner sits below the store and keeps its own names of the instance states it reads
(``FINISHED_STATES``, ``FAILED_STATES``, ``STOPPED_STATES``); a test checks they equal the
store's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from reflow.definition.options import param_key
from reflow.definition.spec import UNSET, TaskSpec
from reflow.planning.encoding import to_json
from reflow.planning.finished import Finished
from reflow.planning.task_hits import TaskHit

FINISHED_STATES = frozenset({"done", "cached"})
FAILED_STATES = frozenset({"failed", "cancelled"})
STOPPED_STATES = FAILED_STATES | {"blocked"}
"""States of elements that ended without an output: failed, cancelled, or blocked by one."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskProgress:
    """What the store knows of a task that is already planned in the run.

    ``outputs`` holds every element's output once all finished; ``finished`` the outputs of
    the elements finished so far, where a downstream chain needs them. ``stopped`` maps each
    element that ended without an output to its cause (``convert[3] failed``). ``resolved``
    holds the elements that have an instance, when some do not yet (a chain whose upstream
    elements are still running). ``held`` counts elements planned to run that are not
    handed to the executor yet (the submit budget holds them back).
    """

    size: int
    counts: Mapping[str, int] = field(default_factory=dict)
    outputs: Sequence[Finished] | None = None
    error: str = ""
    finished: Mapping[int, Finished] | None = None
    stopped: Mapping[int, str] = field(default_factory=dict)
    resolved: frozenset[int] | None = None
    held: int = 0

    @property
    def is_complete(self) -> bool:
        """True when every element finished (``outputs`` holds them, in element order)."""
        return self.outputs is not None and not self.error

    @property
    def is_failed(self) -> bool:
        """True when every element ended and some ended without an output."""
        if self.error:
            return True
        ended = sum(n for state, n in self.counts.items() if state in FINISHED_STATES)
        stopped = sum(n for state, n in self.counts.items() if state in STOPPED_STATES)
        return stopped > 0 and ended + stopped == self.size


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskPlan:
    """A task planned in this call: per element its inputs and identity; cache hits.

    ``consumed`` holds what each input parameter consumes: for the names in ``per_element``
    a sequence with one item per element (of a chain planned element by element, only the
    items of ``known`` elements are read), for the others one value every element gets.

    A chain planned element by element (``elements`` is not None) holds only the elements
    decided in this call: ``identities`` belong to ``elements``, ``blocked`` maps the elements
    that can never run to why, and ``known`` holds the elements whose inputs the new inputs
    file must hold. ``size`` is then the task's element count.

    ``key`` is the task's key (``identity.task_key``) when the whole task was planned at
    once; ``digests`` then holds, per upstream task, the list hash of the output hashes the
    key was computed from and how many outputs it covers. ``whole`` is set when every
    element came from the cache in one step (a task hit): ``identities`` and ``cached`` are
    then empty, and the store copies the instances of the earlier planning ``whole.source``.
    """

    task: str
    identities: tuple[str, ...]
    cached: Mapping[int, Finished]
    rejected: tuple[str, ...] = ()
    error: str = ""
    consumed: Mapping[str, Any] = field(default_factory=dict)
    per_element: tuple[str, ...] = ()
    elements: tuple[int, ...] | None = None
    blocked: Mapping[int, str] = field(default_factory=dict)
    known: frozenset[int] = frozenset()
    size: int | None = None
    key: str = ""
    digests: Mapping[str, tuple[str, int]] = field(default_factory=dict)
    whole: TaskHit | None = None

    @property
    def element_count(self) -> int:
        """How many elements the task has."""
        if self.whole is not None:
            return self.whole.size
        return len(self.identities) if self.size is None else self.size

    @property
    def inputs(self) -> tuple[dict[str, Any], ...]:
        """Per element, each input parameter's value (tagged JSON), built when asked for.

        Only runnable tasks need them (for their inputs file), so a fully cached fan-out of
        100,000 elements never builds 100,000 dicts. An element whose inputs are not known
        yet (a chain element waiting for its upstream element) gets an empty row.
        """
        if self.elements is None:
            return rows(self.consumed, self.per_element, len(self.identities))
        shared = {k: v for k, v in self.consumed.items() if k not in self.per_element}
        return tuple(
            {**shared, **{name: self.consumed[name][e] for name in self.per_element}}
            if e in self.known
            else {}
            for e in range(self.element_count)
        )

    @property
    def runnable(self) -> list[int]:
        """Elements that must run (not found in the cache)."""
        if self.elements is not None:
            return [e for e in self.elements if e not in self.cached]
        size = len(self.identities)
        if self.error or len(self.cached) == size:
            return []
        if not self.cached:
            return list(range(size))
        return [e for e in range(size) if e not in self.cached]

    def identity_of(self) -> dict[int, str]:
        """``element -> identity`` of the elements planned in this call."""
        elements = range(len(self.identities)) if self.elements is None else self.elements
        return dict(zip(elements, self.identities, strict=True))


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


def cache_hits(
    spec: TaskSpec,
    identities: Sequence[str],
    elements: Iterable[int],
    lookup: Lookup | None,
    validate: Validator | None,
) -> tuple[dict[int, Finished], list[str]]:
    """The elements found in the cache, and the identities whose hit no longer verifies."""
    cached: dict[int, Finished] = {}
    rejected: list[str] = []
    if lookup is None or not identities:
        return cached, rejected
    hits = lookup(spec.name, identities)
    if not hits:
        return cached, rejected
    for element, identity in zip(elements, identities, strict=True):
        hit = hits.get(identity)
        if hit is None:
            continue
        if validate is not None and not validate(spec, hit):
            rejected.append(identity)
            continue
        cached[element] = hit
    return cached, rejected


def rows(
    values: Mapping[str, Any], per_element: Sequence[str], size: int
) -> tuple[dict[str, Any], ...]:
    """Each element's inputs: its own item of ``per_element`` names, the others shared."""
    shared = {
        name: list(value) if isinstance(value, Items) else value
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


def own_params(spec: TaskSpec, params: Mapping[str, Any]) -> dict[str, Any]:
    """The task's parameter values in tagged JSON form, as the run's manifest holds them."""
    own = {}
    for param in spec.params:
        key = param_key(spec.name, param)
        if key in params:
            own[param.name] = params[key]
        else:  # a value the manifest lacks: its default, in the same tagged form
            own[param.name] = None if param.default is UNSET else to_json(param.default)
    return own


class Items(Sequence[Any]):
    """Consumed items in order, equal to the list of them; built as a list only when used.

    Each part is a list of items, or (flagged True) finished outputs whose values are the
    items, so the outputs of a cached gather are not even parsed unless inputs are written.
    """

    __slots__ = ("_parts",)

    def __init__(self, parts: Iterable[tuple[Sequence[Any], bool]]) -> None:
        self._parts = tuple(parts)

    @property
    def parts(self) -> tuple[tuple[Sequence[Any], bool], ...]:
        """The parts, in order."""
        return self._parts

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
