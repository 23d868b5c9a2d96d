"""Planning: an array task fed element for element by other arrays, planned as they end. No I/O.

Element ``i`` of a chain consumes one element of its upstream array and nothing else of it,
so it is planned as soon as that element finished, while the rest of the upstream array still
runs, and it can never run once that element failed: it is then blocked, with the failed
element as its cause (``upstream convert[3] failed``). A task is planned this way when it has
a chain edge and each of its other edges is a fan-out or a broadcast (a job's list, item ``i``
to element ``i``, or a job's value for every element), whose job must be complete first.
Sources concatenated into one parameter (``Result(steps=[...])``) of chains and fan-outs give
element ``i`` one item of one source: the sources' sizes, in order, say which. A flatten
does not, as its items' places depend on every list before them. Every other consumer of a
whole task (a gather, a flatten, an ``after=``) waits until every element of it ended, and
is not planned when some ended without an output: its error names them (``2 of 10 inputs
failed: convert[3], ...``).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from reflow.definition.graph import Edge, Graph
from reflow.definition.spec import TaskSpec
from reflow.definition.wiring import EdgeMode
from reflow.planning.finished import Finished
from reflow.planning.identity import column_identities, item_hashes
from reflow.planning.plans import Lookup, TaskPlan, Validator, cache_hits, own_params

BLOCKED_PREFIX = "upstream "
_SHOWN = 5
_PLANNED_ALONE = frozenset({EdgeMode.CHAIN, EdgeMode.FAN_OUT, EdgeMode.BROADCAST})


def chain_edges(graph: Graph, spec: TaskSpec) -> tuple[Edge, ...]:
    """The chain edges of a task planned element by element; empty for any other task."""
    if not spec.is_array:
        return ()
    edges = graph.incoming(spec.name)
    if any(edge.mode not in _PLANNED_ALONE for edge in edges):
        return ()
    return tuple(edge for edge in edges if edge.mode is EdgeMode.CHAIN)


@dataclass(frozen=True, slots=True)
class _Part:
    """One source of a per-element parameter: it feeds the elements from ``start`` to ``end``.

    ``items`` holds a fan-out's items (a job's list); ``finished`` a chain's elements that
    finished so far (the planner's view when the part was laid out).
    """

    source: str
    start: int
    end: int
    items: Sequence[Any] | None = None
    finished: Mapping[int, Finished] | None = None


def _layout(
    edges: Sequence[Edge],
    sizes: Mapping[str, int],
    outputs: Mapping[str, Sequence[Finished]],
    finished: Mapping[str, Mapping[int, Finished]],
) -> dict[str, list[_Part]]:
    """Each per-element parameter's sources, in the order they are concatenated."""
    layout: dict[str, list[_Part]] = {}
    for edge in edges:
        if edge.mode not in (EdgeMode.CHAIN, EdgeMode.FAN_OUT):
            continue
        parts = layout.setdefault(str(edge.param), [])
        start = parts[-1].end if parts else 0
        if edge.mode is EdgeMode.CHAIN:
            end = start + sizes[edge.source]
            parts.append(_Part(edge.source, start, end, finished=finished.get(edge.source, {})))
        else:
            (single,) = outputs[edge.source]
            items: Sequence[Any] = single.value
            parts.append(_Part(edge.source, start, start + len(items), items=items))
    return layout


class _Column(Sequence[Any]):
    """One parameter's item for each element of the task, read from its sources when asked."""

    __slots__ = ("_parts", "_starts")

    def __init__(self, parts: Sequence[_Part]):
        self._parts = tuple(parts)
        self._starts = [part.start for part in parts]

    def locate(self, element: int) -> tuple[int, int]:
        """``(part, index in it)`` of the item ``element`` gets."""
        at = bisect_right(self._starts, element) - 1
        return at, element - self._parts[at].start

    def __len__(self) -> int:
        return self._parts[-1].end if self._parts else 0

    def __getitem__(self, element: Any) -> Any:
        if not 0 <= element < len(self):
            raise IndexError(element)
        at, index = self.locate(element)
        part = self._parts[at]
        if part.items is None:
            assert part.finished is not None
            return part.finished[index].value
        return part.items[index]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, _Column):
            return NotImplemented
        return self._parts == other._parts

    __hash__ = None  # type: ignore[assignment]  # like a list

    def ended(self, stopped: Mapping[str, Mapping[int, str]]) -> tuple[set[int], dict[int, str]]:
        """The elements whose item is known, and those whose item never will be, with why.

        A fan-out's items are known; a chain's once its element finished, never once it
        ended without an output (``stopped`` holds why, by source and element).
        """
        known: set[int] = set()
        causes: dict[int, str] = {}
        for part in self._parts:
            if part.items is not None:
                known.update(range(part.start, part.end))
                continue
            start = part.start
            known.update(e + start for e in part.finished or {})
            causes.update((e + start, why) for e, why in stopped.get(part.source, {}).items())
        return known, causes

    def hashes(self, elements: Sequence[int]) -> list[str]:
        """The hash of each of ``elements``' items (sorted), which their identities hold.

        ``elements`` are cut once per part; a fan-out's items are hashed together, and only
        those of the elements asked for.
        """
        found: list[str] = []
        for part in self._parts:
            first, last = bisect_left(elements, part.start), bisect_left(elements, part.end)
            indices = [element - part.start for element in elements[first:last]]
            if part.items is None:
                assert part.finished is not None
                own = part.finished
                found += [own[index].hash for index in indices]
            else:
                found += item_hashes([part.items[index] for index in indices])
        return found


def length_error(task: str, sizes: Mapping[str, int]) -> TaskPlan:
    """The plan of a task whose element-wise inputs differ in length: an error, no element."""
    shown = ", ".join(f"{name} has {n}" for name, n in sizes.items())
    return TaskPlan(
        task=task,
        identities=(),
        cached={},
        error=f"element-wise inputs differ in length ({shown}); they must match",
    )


def task_version(spec: TaskSpec) -> str:
    """The version that enters a task's identities: ``version=`` and the code's hash."""
    return spec.version if not spec.code else f"{spec.version}+code:{spec.code}"


def blocked_reason(cause: str) -> str:
    """Why an element is blocked, from the cause: ``upstream convert[3] failed``."""
    return BLOCKED_PREFIX + cause


def root_cause(reason: str) -> str:
    """The cause a blocked element passes on to its own consumers (``convert[3] failed``)."""
    return reason.removeprefix(BLOCKED_PREFIX)


def plan_elements(
    spec: TaskSpec,
    params: Mapping[str, object],
    *,
    edges: Sequence[Edge],
    size: int | None,
    sizes: Mapping[str, int],
    outputs: Mapping[str, Sequence[Finished]],
    finished: Mapping[str, Mapping[int, Finished]],
    stopped: Mapping[str, Mapping[int, str]],
    skip: frozenset[int],
    lookup: Lookup | None,
    validate: Validator | None,
    held: bool = False,
) -> TaskPlan | None:
    """Plan the elements of a chain whose upstream elements ended; None when none did.

    ``edges`` are the task's incoming edges (``chain_edges`` accepted them), ``sizes`` the
    chain sources' element counts; ``size`` is the task's, None when it is planned for the
    first time (then its inputs' lengths, which must agree; else the plan is an error);
    ``skip`` holds the elements planned before. A task planned for the first time always
    gets a plan, so that its size is recorded.
    The new inputs file holds the elements planned now, and when some planned before wait to
    be submitted (``held``), theirs too: batches read the task's latest inputs file.
    """
    layout = _layout(edges, sizes, outputs, finished)
    fresh = size is None
    if size is None:  # planned for the first time: the inputs' lengths must agree
        lengths = {name: parts[-1].end for name, parts in layout.items()}
        if len(set(lengths.values())) > 1:
            return length_error(spec.name, lengths)
        size = next(iter(lengths.values()))
    columns = {name: _Column(parts) for name, parts in layout.items()}
    known = set(range(size))
    causes: dict[int, str] = {}
    for column in columns.values():
        ended, stops = column.ended(stopped)
        known &= ended
        for element, cause in stops.items():
            causes.setdefault(element, cause)
    ready = sorted(known - skip)
    blocked = {
        e: blocked_reason(cause) for e, cause in causes.items() if e not in known and e not in skip
    }
    if not (ready or blocked or fresh):
        return None
    digests: dict[str, str | list[str]] = {}
    consumed: dict[str, object] = {}
    for edge in edges:
        if edge.mode is EdgeMode.BROADCAST:
            (single,) = outputs[edge.source]
            digests[str(edge.param)], consumed[str(edge.param)] = single.hash, single.value
    for name, column in columns.items():
        digests[name], consumed[name] = column.hashes(ready), column
    identities = column_identities(
        task=spec.name,
        version=task_version(spec),
        params=own_params(spec, params),
        columns=digests,
        size=len(ready),
    )
    cached, rejected = cache_hits(spec, identities, ready, lookup, validate)
    return TaskPlan(
        task=spec.name,
        identities=tuple(identities),
        cached=cached,
        rejected=tuple(rejected),
        consumed=consumed,
        per_element=tuple(columns),
        elements=tuple(ready),
        blocked=blocked,
        known=frozenset(known if held else ready),
        size=size,
    )


def stopped_inputs(
    upstream: Sequence[str],
    sizes: Mapping[str, int],
    stopped: Mapping[str, Mapping[int, str]],
    errors: Mapping[str, str],
) -> str:
    """Why a task that consumes whole tasks cannot run: the inputs that ended without output.

    ``2 of 10 inputs failed: convert[3], convert[7]``; an input blocked by a failure further
    up names that failure: ``check[3] (upstream convert[3] failed)``.
    """
    parts: list[str] = []
    for up in upstream:
        if up in errors:
            parts.append(f"upstream {up} could not run")
            continue
        causes = stopped.get(up)
        if not causes:
            continue
        labels = [_label(up, element, cause) for element, cause in sorted(causes.items())]
        shown = ", ".join(labels[:_SHOWN])
        if len(labels) > _SHOWN:
            shown += f" and {len(labels) - _SHOWN} more"
        # "failed" only when every one did: a cancelled input did not fail
        ended = (
            "failed" if all(c.endswith(" failed") for c in causes.values()) else "did not succeed"
        )
        parts.append(f"{len(causes)} of {sizes.get(up, len(causes))} inputs {ended}: {shown}")
    return "; ".join(parts) or "an upstream task ended without output"


def _label(task: str, element: int, cause: str) -> str:
    name = f"{task}[{element}]"
    if cause == f"{name} failed":
        return name
    if cause.startswith(f"{name} "):
        return cause
    return f"{name} ({blocked_reason(cause)})"
