"""Definition: the options of ``@job`` and ``@array_job``, checked and read into a ``TaskSpec``.

Every problem of one task's options, resources and signature is gathered and raised
together, so a flow script reports them all at once. Pure.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal, TypedDict

from reflow.definition.environment import Environment, build_environment, environment_problems
from reflow.definition.errors import DefinitionError, raise_collected, suggest
from reflow.definition.resources import RESOURCE_OPTIONS, Resources, build_resources
from reflow.definition.retry_policy import RETRY_KEYS, RetryPolicy, build_retry_policy
from reflow.definition.spec import FINGERPRINT_MODES, TaskSpec, task_spec_from_function

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


class TaskOptions(TypedDict, total=False):
    """The options of ``@job`` and ``@array_job`` (besides ``array=``), all optional.

    ``name`` renames the task; resources are ``cpus``, ``mem`` (``"4G"``), ``time``
    (``"HH:MM:SS"``), ``gpus``, ``partition``, ``account``, ``qos``, ``constraint``, ``extra``
    (more sbatch options), ``array_limit`` (elements running at once) and ``pack`` (elements
    per Slurm array task, or ``"auto"``); ``after`` orders the
    task after others; ``version`` and ``cache`` steer caching; ``fingerprint`` says how the
    files a task returns are fingerprinted (``"stat"``, ``"content"`` or ``"path"``; the
    config's ``[cache] fingerprint`` when not given); ``code_deps`` lists helper functions
    whose code counts as the task's own; ``verify`` checks a cached output before it is
    trusted. ``setup`` (shell lines run before the worker, a string or a list) and ``env``
    (variables, a mapping) make the task's environment on the compute node.
    ``retries``, ``mem_factor``, ``time_factor``, ``max_mem``, ``max_time``,
    ``retry_on`` and ``retry_delay`` say how failed elements are resubmitted on their own
    (see ``retry_policy``).
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
    pack: int | Literal["auto"] | None
    after: Sequence[str]
    version: str | int
    cache: bool
    fingerprint: Literal["stat", "content", "path"] | None
    code_deps: Sequence[Callable[..., Any]]
    verify: Callable[[Any], bool] | None
    # The compute-node environment (``definition/environment.py``).
    setup: str | Sequence[str]
    env: Mapping[str, str | int | float]
    retries: int | None
    mem_factor: float
    time_factor: float
    max_mem: str | int | None
    max_time: str | int | None
    retry_on: Sequence[type[BaseException]] | type[BaseException]
    retry_delay: float


_RESOURCE_KEYS = (*RESOURCE_OPTIONS, "pack")
_OPTION_KEYS = frozenset({*TaskOptions.__annotations__, "array"})


def spec_from_options(func: Callable[..., Any], options: dict[str, Any]) -> TaskSpec:
    """The task ``func`` declares with ``options``.

    Raises:
        DefinitionError: The one problem of its options and signature, or all of them.
    """
    name, spec, problems = read_task(func, options)
    raise_collected(problems, where=f"task {name!r}")
    assert spec is not None  # raise_collected raised otherwise
    return spec


def read_task(
    func: Callable[..., Any], options: dict[str, Any]
) -> tuple[str, TaskSpec | None, list[DefinitionError]]:
    """The task's name, the task as far as it can be read, and every problem found.

    With problems in its options only, the task is still read with the default options, so
    that its references to other tasks can be checked too; None when it cannot be read.

    Raises:
        DefinitionError: ``func`` is not a function, or an option is unknown.
    """
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
    given = {k: options[k] for k in _RESOURCE_KEYS if k in options}
    try:
        resources = build_resources(task=name, **given)
    except DefinitionError as err:
        problems.extend(_each_problem(_resources_of, name, given) or [err])
    environment = _environment(name, options, problems)
    retry = RetryPolicy()
    given = {k: options[k] for k in RETRY_KEYS if k in options}
    try:
        retry = build_retry_policy(task=name, options=given)
    except DefinitionError as err:
        problems.extend(_each_problem(build_retry_policy, name, given) or [err])
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
            environment=environment,
            retry=retry,
        )
    except DefinitionError as err:
        problems.append(err)
    return name, spec, problems


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


def _environment(
    name: str, options: dict[str, Any], problems: list[DefinitionError]
) -> Environment:
    """``setup=`` and ``env=`` checked; each problem is added to ``problems``."""
    setup, env = options.get("setup"), options.get("env")
    found = environment_problems(setup, env, task=name)
    problems.extend(found)
    return Environment() if found else build_environment(setup, env, task=name)


def _resources_of(*, task: str, options: dict[str, Any]) -> Resources:
    return build_resources(task=task, **options)


def _each_problem(
    build: Callable[..., object], task: str, given: dict[str, Any]
) -> list[DefinitionError]:
    """The problem of every option on its own (``mem=`` and ``time=`` both, say)."""
    found = []
    for key, value in given.items():
        try:
            build(task=task, options={key: value})
        except DefinitionError as err:
            found.append(err)
    return found
