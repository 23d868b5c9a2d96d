"""Definition: ``Flow``, a named collection of task specs built by decorators. Pure.

Decorators only record: ``@flow.job(...)`` reads the signature once, registers a ``TaskSpec``
and returns the function unchanged. ``include`` copies another flow's tasks, optionally
renamed with a prefix (``era5_convert``), references included.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar, overload

from reflow.definition.errors import DefinitionError, suggest
from reflow.definition.graph import Graph, build_graph, edges_into
from reflow.definition.spec import InputSpec, TaskSpec
from reflow.definition.task_options import TaskOptions, check_name, read_task, spec_from_options

if TYPE_CHECKING:
    from typing_extensions import Unpack

P = ParamSpec("P")
R = TypeVar("R")


class Flow:
    """A reusable collection of tasks.

    Args:
        name: The flow's name (letters, digits, underscores).

    Example:
        >>> conversion = Flow("conversion")
        >>> @conversion.job()
        ... def prepare() -> list[str]:
        ...     return ["a.nc"]
    """

    def __init__(self, name: str) -> None:
        self.name = check_name("flow", name)
        self._tasks: dict[str, TaskSpec] = {}
        # Set by a Workflow defined in a script: decorators record their problems, and
        # graph() reports them all at once instead of the first one stopping the file.
        self._collects_problems = False
        self._problems: list[DefinitionError] = []
        # Tasks that could not be declared, in order, each as far as it could be read.
        self._broken: dict[str, TaskSpec | None] = {}
        self._where = f"workflow {self.name!r}"

    @property
    def tasks(self) -> Mapping[str, TaskSpec]:
        """The registered tasks by name, in registration order."""
        return dict(self._tasks)

    def graph(self) -> Graph:
        """Validate every task together and return the graph.

        Raises:
            DefinitionError: The one problem found, or ``FlowDefinitionError`` with every one.
        """
        return build_graph(
            self.name,
            self._tasks,
            recorded=self._problems,
            broken=self._broken,
            where=self._where,
        )

    def validate(self) -> None:
        """Check references, cycles, types and flags; raise ``DefinitionError`` on a problem."""
        self.graph()

    @overload
    def job(self, func: Callable[P, R], /) -> Callable[P, R]: ...

    @overload
    def job(
        self,
        /,
        *,
        array: bool = False,
        **options: Unpack[TaskOptions],
    ) -> Callable[[Callable[P, R]], Callable[P, R]]: ...

    def job(
        self, func: Callable[P, R] | None = None, /, **options: Any
    ) -> Callable[P, R] | Callable[[Callable[P, R]], Callable[P, R]]:
        """Register a function as a task that runs once per run (or per element with array=True).

        Args:
            func: The function, when used as ``@flow.job`` without parentheses.
            **options: ``array``, ``name``, resources (``cpus``, ``mem``, ``time``, ``gpus``,
                ``partition``, ``account``, ``qos``, ``constraint``, ``extra``,
                ``array_limit``, ``pack``), the environment (``setup``: shell lines run before the
                worker; ``env``: variables), ``after``, ``version``, ``cache``, ``verify``, and
                automatic retries (``retries``, ``mem_factor``, ``time_factor``,
                ``max_mem``, ``max_time``, ``retry_on``, ``retry_delay``).

        Returns:
            The function itself, unchanged, or a decorator that registers and returns it.

        Raises:
            DefinitionError: When an option or the signature is invalid. A ``Workflow``
                defined in a flow script records the error instead, and ``graph()`` reports
                every recorded error together.
        """
        if func is not None:
            self._register(func, **options)
            return func

        def decorate(function: Callable[P, R]) -> Callable[P, R]:
            self._register(function, **options)
            return function

        return decorate

    @overload
    def array_job(self, func: Callable[P, R], /) -> Callable[P, R]: ...

    @overload
    def array_job(
        self,
        /,
        **options: Unpack[TaskOptions],
    ) -> Callable[[Callable[P, R]], Callable[P, R]]: ...

    def array_job(
        self, func: Callable[P, R] | None = None, /, **options: Any
    ) -> Callable[P, R] | Callable[[Callable[P, R]], Callable[P, R]]:
        """Register a task that runs once per element; the same as ``job(array=True)``."""
        if "array" in options:
            raise DefinitionError("array_job() is always an array; drop array=")
        if func is not None:
            self._register(func, array=True, **options)
            return func
        return self.job(array=True, **options)

    def include(
        self, flow: Flow, *, prefix: str | None = None, bind: Mapping[str, str] | None = None
    ) -> None:
        """Copy ``flow``'s tasks into this one, renamed ``<prefix>_<task>`` when given.

        References between the included tasks (``Result`` and ``after``) are renamed too.
        A reference to a step that ``flow`` does not define is *external*: ``bind`` maps
        each such local name to a task of this workflow (``bind={"clean": "raw_clean"}``),
        so that a reusable flow never hard-codes another flow's prefix. An external name
        that is neither bound nor a task here is an error that lists the candidates.
        Nothing is added when any task cannot be.

        Raises:
            DefinitionError: When a (renamed) task name is already taken, types do not fit,
                or an external name is unbound or bound to no task.
        """
        if not isinstance(flow, Flow):
            raise DefinitionError(f"include() takes a Flow, not {type(flow).__name__}")
        if prefix is not None:
            check_name("prefix", prefix)
        bound = self._check_bind(flow, dict(bind or {}))
        rename = {name: f"{prefix}_{name}" if prefix else name for name in flow._tasks}
        rename.update(bound)
        # Copy first: ``flow`` may be this flow itself, and a failure must leave no half include.
        specs = [_renamed(spec, rename) for spec in flow._tasks.values()]
        before = dict(self._tasks)
        try:
            for spec in specs:
                self._add(spec)
        except DefinitionError:
            self._tasks = before
            raise

    def _check_bind(self, flow: Flow, bind: dict[str, str]) -> dict[str, str]:
        """Check ``include(bind=)`` against ``flow``'s external names; return it."""
        own = set(flow._tasks)
        external = {
            source
            for spec in flow._tasks.values()
            for source in (*(s for inp in spec.inputs for s in inp.sources), *spec.after)
            if source not in own
        }
        candidates = ", ".join(sorted(self._tasks)) or "none yet"
        for local, target in bind.items():
            if not isinstance(local, str) or not isinstance(target, str):
                raise DefinitionError(
                    f"include(bind=) maps names to task names, not {local!r}: {target!r}",
                    value=bind,
                    hint='write bind={"clean": "raw_clean"}',
                )
            if local not in external:
                raise DefinitionError(
                    f"include(bind=) binds {local!r}, which flow {flow.name!r} does not use",
                    param="bind",
                    value=local,
                    suggestion=suggest(local, external),
                    hint=f"its external steps: {', '.join(sorted(external)) or 'none'}",
                )
            if target not in self._tasks:
                raise DefinitionError(
                    f"include(bind=) binds {local!r} to {target!r}, which is no task of"
                    f" {self.name!r}",
                    param="bind",
                    value=target,
                    suggestion=suggest(target, self._tasks),
                    hint=f"define it before the include; its tasks: {candidates}",
                )
        unbound = sorted(external - set(bind) - set(self._tasks))
        if unbound:
            name = unbound[0]
            users = sorted(
                spec.name
                for spec in flow._tasks.values()
                if name in spec.after or any(name in inp.sources for inp in spec.inputs)
            )
            raise DefinitionError(
                f"flow {flow.name!r} uses the external step {name!r} (in {', '.join(users)}),"
                " which is neither bound nor a task here",
                param="bind",
                value=name,
                hint=f'bind it: include(..., bind={{"{name}": TASK}}) with TASK one of:'
                f" {candidates}",
            )
        return bind

    def _register(self, func: Callable[..., Any], **options: Any) -> None:
        if not self._collects_problems:
            self._add(spec_from_options(func, options))
            return
        name = str(options.get("name") or getattr(func, "__name__", ""))
        try:
            name, spec, problems = read_task(func, options)
            if spec is not None and not problems:
                self._add(spec)
                return
        except DefinitionError as err:
            spec, problems = None, [err]
        self._problems.extend(problems)
        self._broken[name] = spec  # its references are still checked when it could be read

    def _add(self, spec: TaskSpec) -> None:
        if spec.name in self._tasks:
            raise DefinitionError(
                f"a task named {spec.name!r} is already registered in {self.name!r}",
                task=spec.name,
                value=spec.name,
                hint="rename the function, pass name=, or include() with a prefix of its own",
            )
        if self._collects_problems:  # graph() checks every edge
            self._tasks[spec.name] = spec
            return
        candidate = {**self._tasks, spec.name: spec}
        edges_into(spec, candidate)
        for other in self._tasks.values():
            if any(spec.name in inp.sources for inp in other.inputs):
                edges_into(other, candidate)
        self._tasks[spec.name] = spec


def _renamed(spec: TaskSpec, rename: Mapping[str, str]) -> TaskSpec:
    inputs = tuple(
        InputSpec(
            name=inp.name, type=inp.type, sources=tuple(rename.get(s, s) for s in inp.sources)
        )
        for inp in spec.inputs
    )
    after = tuple(rename.get(a, a) for a in spec.after)
    return dataclasses.replace(spec, name=rename[spec.name], inputs=inputs, after=after)
