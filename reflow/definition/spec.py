"""Definition: frozen task specs, read once from a decorated function's signature. Pure.

``task_spec_from_function`` interprets ``Annotated[..., Param/Result]``, ``RunDir`` and plain
parameters; everything about one task that can be checked without the others is checked here.
"""

from __future__ import annotations

import enum
import inspect
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Annotated, Any, Literal, get_args, get_origin

if sys.version_info >= (3, 11):
    from typing import get_type_hints
else:  # 3.10 turns a None default into Optional[...]; typing_extensions undoes that
    from typing_extensions import get_type_hints

from reflow.definition.environment import Environment
from reflow.definition.errors import DefinitionError, article, raise_collected
from reflow.definition.markers import Namespace, Param, Result, RunDir
from reflow.definition.resources import Resources
from reflow.definition.retry_policy import RetryPolicy
from reflow.definition.types import TypeRef, UnsupportedTypeError, conforms, from_annotation


class _Unset(enum.Enum):
    UNSET = "UNSET"


UNSET = _Unset.UNSET
"""Marks "no default given" (a required parameter), distinct from a default of ``None``."""

_CLI_SCALARS = frozenset({"str", "int", "float", "bool", "path", "literal"})


@dataclass(frozen=True, slots=True, kw_only=True)
class ParamSpec:
    """One user parameter of a task, exposed as a ``submit`` flag."""

    name: str
    type: TypeRef
    help: str = ""
    short: str | None = None
    namespace: Namespace = "global"
    default: Any = UNSET
    is_output: bool = False

    @property
    def is_required(self) -> bool:
        """True when the parameter has no default and must be given on submit."""
        return self.default is UNSET


@dataclass(frozen=True, slots=True, kw_only=True)
class InputSpec:
    """One parameter fed by upstream tasks' outputs (a ``Result`` marker)."""

    name: str
    type: TypeRef
    sources: tuple[str, ...]


FingerprintMode = Literal["stat", "content", "path"]
FINGERPRINT_MODES: tuple[FingerprintMode, ...] = ("stat", "content", "path")
"""How the files a task returns are fingerprinted; see ``reflow.running.fingerprints``."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskSpec:
    """Everything reflow knows about one decorated function.

    ``func``, ``verify`` and ``code_deps`` are absent when a spec is rebuilt from a
    ``describe`` manifest. ``code`` is the hash of the task's code when it enters the
    identity (``[cache] on_code_change = "rerun"``), else "".
    """

    name: str
    is_array: bool = False
    params: tuple[ParamSpec, ...] = ()
    inputs: tuple[InputSpec, ...] = ()
    run_dir_arg: str | None = None
    returns: TypeRef | None = None
    resources: Resources = field(default_factory=Resources)
    environment: Environment = field(default_factory=Environment)
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    after: tuple[str, ...] = ()
    version: str = "1"
    cache: bool = True
    fingerprint: FingerprintMode | None = None
    code: str = ""
    has_verify: bool = False
    module: str = ""
    qualname: str = ""
    func: Callable[..., Any] | None = field(default=None, compare=False, repr=False)
    verify: Callable[[Any], bool] | None = field(default=None, compare=False, repr=False)
    code_deps: tuple[Callable[..., Any], ...] = field(default=(), compare=False, repr=False)

    @property
    def upstream(self) -> tuple[str, ...]:
        """Every task this one waits for: data sources first, then ``after``, no repeats."""
        names = [s for inp in self.inputs for s in inp.sources] + list(self.after)
        return tuple(dict.fromkeys(names))


def task_spec_from_function(
    func: Callable[..., Any],
    *,
    name: str,
    is_array: bool,
    resources: Resources,
    after: tuple[str, ...],
    version: str,
    cache: bool,
    verify: Callable[[Any], bool] | None,
    fingerprint: FingerprintMode | None = None,
    code_deps: tuple[Callable[..., Any], ...] = (),
    environment: Environment | None = None,
    retry: RetryPolicy | None = None,
) -> TaskSpec:
    """Read ``func``'s signature into a ``TaskSpec``; raise ``DefinitionError`` on misuse."""
    try:
        hints = get_type_hints(func, include_extras=True)
    except DefinitionError as err:  # a marker in a string annotation refused its arguments
        raise DefinitionError(
            err.problem, task=name, value=err.value, suggestion=err.suggestion, hint=err.hint
        ) from err
    except Exception as err:
        raise DefinitionError(
            f"cannot resolve the type annotations: {err}",
            task=name,
            hint="import every name used in the annotations at module level",
        ) from err
    params: list[ParamSpec] = []
    inputs: list[InputSpec] = []
    run_dir_arg: str | None = None
    problems: list[DefinitionError] = []  # every parameter is checked, then all are reported
    for parameter in inspect.signature(func).parameters.values():
        annotation = hints.get(parameter.name, inspect.Parameter.empty)
        try:
            _check_kind(name, parameter)
            if _is_run_dir(annotation):
                _check_one_run_dir(name, parameter, run_dir_arg)
                run_dir_arg = parameter.name
                continue
            marker, base = _split_annotated(name, parameter, annotation)
            if isinstance(marker, Result):
                inputs.append(_input_spec(name, parameter, base, marker))
            else:
                params.append(_param_spec(name, parameter, base, marker or Param()))
        except DefinitionError as err:
            problems.append(err)
    try:
        returns = _return_type(name, hints)
    except DefinitionError as err:
        problems.append(err)
    raise_collected(problems, where=f"task {name!r}")
    return TaskSpec(
        name=name,
        is_array=is_array,
        params=tuple(params),
        inputs=tuple(inputs),
        run_dir_arg=run_dir_arg,
        returns=returns,
        resources=resources,
        environment=environment or Environment(),
        retry=retry or RetryPolicy(),
        after=after,
        version=version,
        cache=cache,
        fingerprint=fingerprint,
        has_verify=verify is not None,
        module=getattr(func, "__module__", ""),
        qualname=getattr(func, "__qualname__", ""),
        func=func,
        verify=verify,
        code_deps=code_deps,
    )


def _check_one_run_dir(task: str, parameter: inspect.Parameter, earlier: str | None) -> None:
    if earlier is not None:
        raise DefinitionError(
            f"declares RunDir twice (also as {earlier!r})",
            task=task,
            param=parameter.name,
            hint="keep one RunDir parameter",
        )


def _check_kind(task: str, parameter: inspect.Parameter) -> None:
    if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
        raise DefinitionError(
            "takes *args or **kwargs, which reflow cannot fill",
            task=task,
            param=parameter.name,
            hint="declare every parameter by name",
        )
    if parameter.kind is parameter.POSITIONAL_ONLY:
        raise DefinitionError(
            "is positional-only, but reflow passes arguments by name",
            task=task,
            param=parameter.name,
            hint="remove the / from the signature",
        )


def _is_run_dir(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, RunDir)


def _split_annotated(
    task: str, parameter: inspect.Parameter, annotation: Any
) -> tuple[Param | Result | None, Any]:
    if get_origin(annotation) is not Annotated:
        _check_run_dir_default(task, parameter)
        return None, annotation
    base, *extras = get_args(annotation)
    markers = [m for m in extras if isinstance(m, (Param, Result)) or m in (Param, Result)]
    if any(m in (Param, Result) for m in markers):
        raise DefinitionError(
            "uses the class Param/Result instead of an instance",
            task=task,
            param=parameter.name,
            hint="write Param() or Result(step=...) with parentheses",
        )
    if len(markers) > 1:
        raise DefinitionError(
            "carries more than one Param/Result marker",
            task=task,
            param=parameter.name,
            hint="keep exactly one",
        )
    if _is_run_dir(base):
        raise DefinitionError(
            "annotates RunDir with Param/Result; the run directory is injected, never passed",
            task=task,
            param=parameter.name,
            hint=f"write {parameter.name}: RunDir = RunDir()",
        )
    _check_run_dir_default(task, parameter)
    return (markers[0] if markers else None), base


def _check_run_dir_default(task: str, parameter: inspect.Parameter) -> None:
    if isinstance(parameter.default, RunDir):
        raise DefinitionError(
            "has a RunDir() default but is not annotated as RunDir",
            task=task,
            param=parameter.name,
            hint=f"write {parameter.name}: RunDir = RunDir()",
        )


def _input_spec(task: str, parameter: inspect.Parameter, base: Any, marker: Result) -> InputSpec:
    if parameter.default is not inspect.Parameter.empty:
        raise DefinitionError(
            "is fed by Result but has a default; upstream data always arrives",
            task=task,
            param=parameter.name,
            hint="remove the default",
        )
    if task in marker.sources:
        raise DefinitionError(
            "reads its own task's result",
            task=task,
            param=parameter.name,
            hint="name an upstream task in Result(step=...)",
        )
    return InputSpec(
        name=parameter.name, type=_type_of(task, parameter.name, base), sources=marker.sources
    )


def _param_spec(task: str, parameter: inspect.Parameter, base: Any, marker: Param) -> ParamSpec:
    if marker.problems:  # the marker's own arguments, now with the task and parameter
        raise_collected(
            [
                DefinitionError(
                    p.problem, task=task, param=parameter.name, value=p.value, hint=p.hint
                )
                for p in marker.problems
            ],
            where=f"task {task!r}",
        )
    default = parameter.default
    if base is inspect.Parameter.empty:
        shown = {inspect.Parameter.empty: "str", None: "str | None"}.get(
            default, type(default).__name__
        )
        given = "" if default is inspect.Parameter.empty else f" = {default!r}"
        raise DefinitionError(
            "has no type annotation, which its command-line flag needs",
            task=task,
            param=parameter.name,
            hint=f"annotate it, e.g. {parameter.name}: {shown}{given}",
        )
    ref = _type_of(task, parameter.name, base)
    _check_cli_type(task, parameter.name, ref)
    value = UNSET if default is inspect.Parameter.empty else _normalize_default(default)
    if value is None and ref.kind != "optional":
        raise DefinitionError(
            f"has default None, but its type {ref} does not allow None",
            task=task,
            param=parameter.name,
            value=None,
            hint=f"write {parameter.name}: {ref} | None = None",
        )
    if value is not UNSET and value is not None and not conforms(default, ref):
        raise DefinitionError(
            f"has default {default!r}, which is not {article(str(ref))}",
            task=task,
            param=parameter.name,
            value=default,
            hint="make the default match the annotation",
        )
    return ParamSpec(
        name=parameter.name,
        type=ref,
        help=marker.help,
        short=marker.short,
        namespace=marker.namespace,
        default=value,
        is_output=marker.output,
    )


def _normalize_default(default: Any) -> Any:
    """One Python form per type: paths as ``Path``, sequences as lists (type checked before)."""
    if isinstance(default, PurePath):
        return Path(default)
    if isinstance(default, (list, tuple)):
        return [_normalize_default(item) for item in default]
    return default


def _check_cli_type(task: str, name: str, ref: TypeRef) -> None:
    inner = ref.args[0] if ref.kind == "optional" else ref
    is_list = inner.kind == "list"
    inner = inner.item if is_list else inner
    # A list of bools has no sensible flag syntax (--x true false); argparse cannot read it.
    if inner.kind not in _CLI_SCALARS or (is_list and inner.kind == "bool"):
        raise DefinitionError(
            f"has type {ref}, which cannot be a command-line flag",
            task=task,
            param=name,
            value=str(ref),
            hint="use str, int, float, bool, Path, Literal[...], list[...] (not of bool) "
            "or Optional[...]",
        )


def _type_of(task: str, name: str, annotation: Any) -> TypeRef:
    try:
        return from_annotation(annotation)
    except UnsupportedTypeError as err:
        raise DefinitionError(
            f"has an unsupported type: {err}",
            task=task,
            param=name,
            value=repr(annotation),
            hint="use JSON-like types: str, int, float, bool, Path, list, dict[str, ...]",
        ) from err


def _return_type(task: str, hints: dict[str, Any]) -> TypeRef | None:
    if "return" not in hints:
        return None
    annotation = hints["return"]
    if get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    return _type_of(task, "return", annotation)
