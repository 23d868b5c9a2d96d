"""Definition: the validated task graph: references, cycles, wiring, topological order. Pure.

``build_graph`` is the one place a set of task specs becomes a graph. Every problem it finds
is a ``DefinitionError`` naming the task, the parameter and the fix; it finds them all before
raising, so a flow with three mistakes reports three.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass

from reflow.definition.errors import DefinitionError, raise_collected, suggest
from reflow.definition.options import submit_options
from reflow.definition.spec import TaskSpec
from reflow.definition.wiring import EdgeMode, check_sources, infer_mode


@dataclass(frozen=True, slots=True, kw_only=True)
class Edge:
    """``source`` feeds ``target``: through parameter ``param`` (data) or as an ``after``."""

    source: str
    target: str
    param: str | None
    mode: EdgeMode | None

    @property
    def is_data(self) -> bool:
        """True for a ``Result`` edge, False for an ordering-only ``after`` edge."""
        return self.param is not None


@dataclass(frozen=True, slots=True, kw_only=True)
class Graph:
    """Tasks in topological order, and every edge between them."""

    name: str
    tasks: tuple[TaskSpec, ...]
    edges: tuple[Edge, ...]

    def task(self, name: str) -> TaskSpec:
        """Return the task called ``name``."""
        for spec in self.tasks:
            if spec.name == name:
                return spec
        raise KeyError(name)

    def incoming(self, name: str) -> tuple[Edge, ...]:
        """Edges into ``name``, data edges in parameter and source order, then ``after``."""
        return tuple(edge for edge in self.edges if edge.target == name)

    def downstream(self, names: set[str]) -> set[str]:
        """Every task reachable from ``names`` (not including them unless on a path)."""
        found: set[str] = set()
        frontier = set(names)
        while frontier:
            nxt = {e.target for e in self.edges if e.source in frontier} - found
            found |= nxt
            frontier = nxt
        return found


def build_graph(
    name: str,
    tasks: Mapping[str, TaskSpec],
    *,
    recorded: Sequence[DefinitionError] = (),
    broken: Mapping[str, TaskSpec | None] | None = None,
    where: str = "",
) -> Graph:
    """Validate ``tasks`` (in registration order) and return the graph.

    Every problem is found before any is raised: one is raised as it is, several together
    as ``FlowDefinitionError``. ``recorded`` are problems found while the tasks were declared;
    ``broken`` names tasks that could not be declared, so references to them are not
    reported a second time; where it maps a name to the task as far as it could be read, that
    task's own references are checked too.

    Raises:
        DefinitionError: The one problem, or ``FlowDefinitionError`` listing all of them.
    """
    problems = list(recorded)
    if not tasks and not problems:
        raise DefinitionError(
            f"workflow {name!r} has no tasks", hint="decorate a function with @wf.job()"
        )
    broken = broken or {}
    for spec in [*tasks.values(), *(read for read in broken.values() if read is not None)]:
        problems.extend(_reference_problems(spec, tasks, broken.keys()))
    order, cycle = _topological_order(tasks)
    if cycle is not None:
        problems.append(cycle)
    edges: list[Edge] = []
    for spec in tasks.values():
        incomplete = any(source not in tasks for source in spec.upstream)
        try:
            edges.extend(edges_into(spec, tasks))
            if not incomplete:
                _check_array_source(spec, edges)
        except DefinitionError as err:
            problems.append(err)
    try:
        submit_options(tasks.values())
    except DefinitionError as err:
        problems.append(err)
    raise_collected(problems, where=where or f"workflow {name!r}")
    rank = {task: i for i, task in enumerate(order)}
    edges.sort(key=lambda e: rank[e.target])
    return Graph(name=name, tasks=tuple(tasks[t] for t in order), edges=tuple(edges))


def edges_into(spec: TaskSpec, tasks: Mapping[str, TaskSpec]) -> list[Edge]:
    """Infer the edges into ``spec`` whose sources exist in ``tasks`` (checks their types)."""
    edges: list[Edge] = []
    for inp in spec.inputs:
        modes = []
        for source in inp.sources:
            if source in tasks:
                mode = infer_mode(tasks[source], spec, inp)
                modes.append(mode)
                edges.append(Edge(source=source, target=spec.name, param=inp.name, mode=mode))
        if len(modes) == len(inp.sources):
            check_sources(spec, inp, modes, [tasks[s].returns for s in inp.sources])
    data_sources = {s for inp in spec.inputs for s in inp.sources}
    for source in spec.after:
        if source in tasks and source not in data_sources:
            edges.append(Edge(source=source, target=spec.name, param=None, mode=None))
    return edges


def _reference_problems(
    spec: TaskSpec, tasks: Mapping[str, TaskSpec], broken: Set[str]
) -> list[DefinitionError]:
    problems = []
    names = [*tasks, *(name for name in broken if name not in tasks)]
    for inp in spec.inputs:
        for source in inp.sources:
            if source not in tasks and source not in broken:
                problems.append(
                    DefinitionError(
                        f'Result(step="{source}") names no task',
                        task=spec.name,
                        param=inp.name,
                        value=source,
                        suggestion=suggest(source, names),
                        hint=_known(names),
                    )
                )
    for source in spec.after:
        if source == spec.name:
            problems.append(
                DefinitionError(
                    "lists itself in after=[...]", task=spec.name, param="after", value=source
                )
            )
        elif source not in tasks and source not in broken:
            problems.append(
                DefinitionError(
                    f'after=["{source}"] names no task',
                    task=spec.name,
                    param="after",
                    value=source,
                    suggestion=suggest(source, names),
                    hint=_known(names),
                )
            )
    return problems


def _known(names: Sequence[str]) -> str:
    return "the tasks are " + ", ".join(names)


def _check_array_source(spec: TaskSpec, edges: list[Edge]) -> None:
    if not spec.is_array:
        return
    if any(e.target == spec.name and e.mode and e.mode.is_elementwise for e in edges):
        return
    raise DefinitionError(
        "is an array task, but no Result parameter gives it one item per element",
        task=spec.name,
        hint="add a parameter fed by a task returning a list (fan-out), or use @wf.job()",
    )


def _topological_order(tasks: Mapping[str, TaskSpec]) -> tuple[list[str], DefinitionError | None]:
    """Kahn's algorithm; ties break by registration order, so the order is deterministic.

    Upstream names that are not tasks are left out (they are reported elsewhere); a cycle is
    returned as a problem next to the order of the tasks outside it.
    """
    position = {task: i for i, task in enumerate(tasks)}
    # names that are no task, and a task after itself, are reported by _reference_problems
    waiting = {
        task: {up for up in spec.upstream if up in tasks and up != task}
        for task, spec in tasks.items()
    }
    users: dict[str, list[str]] = {task: [] for task in tasks}
    for task, ups in waiting.items():
        for up in ups:
            users[up].append(task)
    ready = [(position[t], t) for t, ups in waiting.items() if not ups]
    heapq.heapify(ready)
    order: list[str] = []
    while ready:
        _, task = heapq.heappop(ready)
        order.append(task)
        for user in users[task]:
            waiting[user].discard(task)
            if not waiting[user]:
                heapq.heappush(ready, (position[user], user))
    if len(order) < len(tasks):
        cycle = _find_cycle({t: ups for t, ups in waiting.items() if ups})
        return order, DefinitionError(
            f"tasks form a cycle: {' -> '.join(cycle)}",
            task=cycle[0],
            value=cycle,
            hint="remove one of these dependencies",
        )
    return order, None


def _find_cycle(waiting: Mapping[str, set[str]]) -> list[str]:
    """Walk upstream from any blocked task until a task repeats; return the cycle in order."""
    task = min(waiting)
    path: list[str] = []
    while task not in path:
        path.append(task)
        task = min(up for up in waiting[task] if up in waiting)
    cycle = path[path.index(task) :]
    cycle.reverse()
    return [*cycle, cycle[0]]
