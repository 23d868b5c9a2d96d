"""Planning: an array task fed 1:1 by other arrays, planned element by element. No I/O.

Element ``i`` of a 1:1 chain consumes element ``i`` of its upstream array and nothing else of
it, so it is planned as soon as that element finished, while the rest of the upstream array
still runs, and it can never run once that element failed: it is then blocked, with the
failed element as its cause (``upstream convert[3] failed``). A task is planned this way when
each of its per-element inputs is a single chain edge and its other inputs (one job's value
for every element) are complete. Every other consumer of a whole task (a gather, a fan-out, a
flatten, an ``after=``) waits until every element of it ended, and is not planned when some
ended without an output: its error names them (``2 of 10 inputs failed: convert[3], ...``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence

from reflow.definition.graph import Edge, Graph
from reflow.definition.spec import TaskSpec
from reflow.definition.wiring import EdgeMode
from reflow.planning.finished import Finished
from reflow.planning.identity import column_identities
from reflow.planning.plans import Lookup, TaskPlan, Validator, cache_hits, own_params

BLOCKED_PREFIX = "upstream "
_SHOWN = 5


def chain_edges(graph: Graph, spec: TaskSpec) -> tuple[Edge, ...]:
    """The chain edges of a task planned element by element; empty for any other task."""
    if not spec.is_array:
        return ()
    edges = graph.incoming(spec.name)
    per_param = Counter(edge.param for edge in edges if edge.is_data)
    chains = tuple(edge for edge in edges if edge.mode is EdgeMode.CHAIN)
    for edge in edges:
        if edge.mode not in (EdgeMode.CHAIN, EdgeMode.BROADCAST) or per_param[edge.param] > 1:
            return ()
    return chains


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
    size: int,
    outputs: Mapping[str, Sequence[Finished]],
    finished: Mapping[str, Mapping[int, Finished]],
    stopped: Mapping[str, Mapping[int, str]],
    skip: frozenset[int],
    lookup: Lookup | None,
    validate: Validator | None,
    fresh: bool,
    held: bool = False,
) -> TaskPlan | None:
    """Plan the elements of a chain whose upstream elements ended; None when none did.

    ``edges`` are the task's incoming edges (``chain_edges`` accepted them); ``skip`` holds
    the elements planned before. A task planned for the first time (``fresh``) always gets
    a plan, so that its size is recorded. The new inputs file holds the elements planned
    now, and when some planned before wait to be submitted (``held``), theirs too: batches
    read the task's latest inputs file.
    """
    sources = {str(e.param): e.source for e in edges if e.mode is EdgeMode.CHAIN}
    ready: list[int] = []
    blocked: dict[int, str] = {}
    known: set[int] = set()
    for element in range(size):
        if all(element in finished.get(src, {}) for src in sources.values()):
            known.add(element)
            if element not in skip:
                ready.append(element)
            continue
        if element in skip:
            continue
        for src in sources.values():
            cause = stopped.get(src, {}).get(element)
            if cause is not None:
                blocked[element] = blocked_reason(cause)
                break
    if not (ready or blocked or fresh):
        return None
    columns: dict[str, str | list[str]] = {}
    consumed: dict[str, object] = {}
    for edge in edges:
        if edge.mode is EdgeMode.BROADCAST:
            (single,) = outputs[edge.source]
            columns[str(edge.param)], consumed[str(edge.param)] = single.hash, single.value
    for name, src in sources.items():
        own = finished.get(src, {})
        columns[name] = [own[e].hash for e in ready]
        consumed[name] = tuple(own.get(e) for e in range(size))
    identities = column_identities(
        task=spec.name,
        version=task_version(spec),
        params=own_params(spec, params),
        columns=columns,
        size=len(ready),
    )
    cached, rejected = cache_hits(spec, identities, ready, lookup, validate)
    return TaskPlan(
        task=spec.name,
        identities=tuple(identities),
        cached=cached,
        rejected=tuple(rejected),
        consumed=consumed,
        per_element=tuple(sources),
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
        parts.append(f"{len(causes)} of {sizes.get(up, len(causes))} inputs failed: {shown}")
    return "; ".join(parts) or "an upstream task ended without output"


def _label(task: str, element: int, cause: str) -> str:
    name = f"{task}[{element}]"
    if cause == f"{name} failed":
        return name
    if cause.startswith(f"{name} "):
        return cause
    return f"{name} ({blocked_reason(cause)})"
