"""Definition: ``Flow``, a named collection of task specs built by decorators. Pure.

Decorators only record: ``@flow.job(...)`` reads the signature once, registers a ``TaskSpec``
and returns the function unchanged. ``include`` copies another flow's tasks, optionally
renamed with a prefix (``era5_convert``), references included.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, ParamSpec, TypedDict, TypeVar, overload

from reflow.definition.errors import DefinitionError, raise_collected, suggest
from reflow.definition.graph import Graph, build_graph, edges_into
from reflow.definition.resources import Resources, build_resources
from reflow.definition.spec import (
    FINGERPRINT_MODES,
    InputSpec,
    TaskSpec,
    task_spec_from_function,
)

if TYPE_CHECKING:
    from typing_extensions import Unpack

P = ParamSpec("P")
R = TypeVar("R")


class TaskOptions(TypedDict, total=False):
    """The options of ``@job`` and ``@array_job`` (besides ``array=``), all optional.

    ``name`` renames the task; resources are ``cpus``, ``mem`` (``"4G"``), ``time``
    (``"HH:MM:SS"``), ``gpus``, ``partition``, ``account``, ``qos``, ``constraint``, ``extra``
    (more sbatch options) and ``array_limit`` (elements running at once); ``after`` orders the
    task after others; ``version`` and ``cache`` steer caching; ``fingerprint`` says how the
    files a task returns are fingerprinted (``"stat"``, ``"content"`` or ``"path"``; the
    config's ``[cache] fingerprint`` when not given); ``code_deps`` lists helper functions
    whose code counts as the task's own; ``verify`` checks a cached output before it is
    trusted.
    """

    name: str | None
    cpus: int | None
    mem: str | int | None
    time: str | int | None
    gpus: int | str | None
    partition: str | None
    account: str | None
    qos: str | None
    constraint: str | None
    extra: Sequence[str]
    array_limit: int | None
    after: Sequence[str]
    version: str | int
    cache: bool
    fingerprint: Literal["stat", "content", "path"] | None
    code_deps: Sequence[Callable[..., Any]]
    verify: Callable[[Any], bool] | None


_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


def check_name(kind: str, name: object) -> str:
    """Return ``name`` if it is a valid flow, task or prefix name; raise otherwise."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise DefinitionError(
            f"{kind} name {name!r} is not valid",
            value=name,
            hint="use letters, digits and underscores, starting with a letter",
        )
    return name


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
        self._broken: dict[str, None] = {}  # tasks that could not be declared, in order
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
            broken=self._broken.keys(),
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
                ``array_limit``), ``after``, ``version``, ``cache`` and ``verify``.

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
        try:
            self._add(_spec_from_options(func, options))
        except DefinitionError as err:
            if not self._collects_problems:
                raise
            self._problems.append(err)
            name = options.get("name") or getattr(func, "__name__", "")
            self._broken[str(name)] = None

    def _add(self, spec: TaskSpec) -> None:
        if spec.name in self._tasks:
            raise DefinitionError(
                f"a task named {spec.name!r} is already registered in {self.name!r}",
                task=spec.name,
                value=spec.name,
                hint="rename the function, pass name=, or include() with a prefix",
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


_RESOURCE_KEYS = (
    "cpus",
    "mem",
    "time",
    "gpus",
    "partition",
    "account",
    "qos",
    "constraint",
    "extra",
    "array_limit",
)
_OPTION_KEYS = frozenset({*TaskOptions.__annotations__, "array"})


def _spec_from_options(func: Callable[..., Any], options: dict[str, Any]) -> TaskSpec:
    if not callable(func):
        raise DefinitionError(f"@job decorates functions, not {type(func).__name__}")
    given = options.get("name")
    name = check_name("task", getattr(func, "__name__", "") if given is None else given)
    unknown = sorted(set(options) - _OPTION_KEYS)
    if unknown:
        raise DefinitionError(
            f"unknown option {unknown[0]}=",
            task=name,
            param=unknown[0],
            suggestion=suggest(unknown[0], _OPTION_KEYS),
        )
    problems: list[DefinitionError] = []  # options and signature are checked, then reported
    checked = options
    try:
        _check_options(name, options)
    except DefinitionError as err:
        problems.append(err)
        checked = {}  # the signature is still read, with the default options
    resources = Resources()
    try:
        resources = build_resources(
            task=name, **{k: options[k] for k in _RESOURCE_KEYS if k in options}
        )
    except DefinitionError as err:
        problems.append(err)
    spec = None
    try:
        spec = task_spec_from_function(
            func,
            name=name,
            is_array=checked.get("array", False),
            resources=resources,
            after=tuple(dict.fromkeys(checked.get("after", ()))),
            version=str(checked.get("version", "1")),
            cache=checked.get("cache", True),
            verify=checked.get("verify"),
            fingerprint=checked.get("fingerprint"),
            code_deps=tuple(checked.get("code_deps", ())),
        )
    except DefinitionError as err:
        problems.append(err)
    raise_collected(problems, where=f"task {name!r}")
    assert spec is not None  # raise_collected raised otherwise
    return spec


def _check_options(name: str, options: dict[str, Any]) -> None:
    """Check the options that are not resources (``build_resources`` checks those)."""
    after = options.get("after", ())
    if not isinstance(after, (list, tuple)) or not all(isinstance(a, str) for a in after):
        raise DefinitionError(
            f"after={after!r} must be a list of task names",
            task=name,
            param="after",
            value=after,
            hint='write after=["cleanup"]',
        )
    version = options.get("version", "1")
    if isinstance(version, bool) or not isinstance(version, (str, int)) or version == "":
        raise DefinitionError(
            f"version={version!r} must be a non-empty str or an int",
            task=name,
            param="version",
            value=version,
        )
    verify = options.get("verify")
    if verify is not None and not callable(verify):
        raise DefinitionError(
            f"verify={verify!r} is not callable",
            task=name,
            param="verify",
            value=verify,
            hint="pass a function taking the output and returning True when it is still valid",
        )
    deps = options.get("code_deps", ())
    if not isinstance(deps, (list, tuple)) or not all(callable(d) for d in deps):
        raise DefinitionError(
            f"code_deps={deps!r} must be a list of functions",
            task=name,
            param="code_deps",
            value=deps,
            hint="write code_deps=[helper] with the helper functions the task calls",
        )
    fingerprint = options.get("fingerprint")
    if fingerprint is not None and fingerprint not in FINGERPRINT_MODES:
        raise DefinitionError(
            f"fingerprint={fingerprint!r} is not a fingerprint mode",
            task=name,
            param="fingerprint",
            value=fingerprint,
            suggestion=suggest(str(fingerprint), FINGERPRINT_MODES),
            hint="choose one of " + ", ".join(repr(m) for m in FINGERPRINT_MODES),
        )
    for flag in ("cache", "array"):
        value = options.get(flag, False)
        if not isinstance(value, bool):
            raise DefinitionError(
                f"{flag}={value!r} must be True or False", task=name, param=flag, value=value
            )


def _renamed(spec: TaskSpec, rename: Mapping[str, str]) -> TaskSpec:
    inputs = tuple(
        InputSpec(
            name=inp.name, type=inp.type, sources=tuple(rename.get(s, s) for s in inp.sources)
        )
        for inp in spec.inputs
    )
    after = tuple(rename.get(a, a) for a in spec.after)
    return dataclasses.replace(spec, name=rename[spec.name], inputs=inputs, after=after)
