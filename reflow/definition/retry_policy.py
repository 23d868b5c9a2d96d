"""Definition: how a task's failed elements are resubmitted on their own. Pure, no I/O.

A ``RetryPolicy`` is read from the options ``retries``, ``mem_factor``, ``time_factor``,
``max_mem``, ``max_time``, ``retry_on`` and ``retry_delay``, checked here at decoration time.
Exception types in ``retry_on`` are kept as qualified class names (``builtins.OSError``), the
names a worker records for every class in a failure's MRO, so a subclass matches too.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from reflow.definition.errors import DefinitionError
from reflow.definition.resources import parse_mem, parse_time

DEFAULT_RETRIES = 2
"""Automatic resubmissions of an element when neither the task nor the config sets any."""
RETRY_KEYS = (
    "retries",
    "mem_factor",
    "time_factor",
    "max_mem",
    "max_time",
    "retry_on",
    "retry_delay",
)


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """What a failed element of a task may be resubmitted with.

    ``retries`` is None when the task does not set it (the config's ``[executor] retries``,
    else ``DEFAULT_RETRIES``, decides).
    """

    retries: int | None = None
    mem_factor: float = 2.0
    time_factor: float = 2.0
    max_mem_mb: int | None = None
    max_time_s: int | None = None
    retry_on: tuple[str, ...] = ()
    retry_delay_s: float = 30.0

    def to_json(self) -> dict[str, Any]:
        """The policy as the ``retry`` entry of a task in a describe manifest."""
        return {
            "retries": self.retries,
            "mem_factor": self.mem_factor,
            "time_factor": self.time_factor,
            "max_mem_mb": self.max_mem_mb,
            "max_time_s": self.max_time_s,
            "retry_on": list(self.retry_on),
            "retry_delay_s": self.retry_delay_s,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> RetryPolicy:
        """Read a manifest's ``retry`` entry; a manifest without one gets the defaults."""
        if not data:
            return cls()
        return cls(
            retries=data.get("retries"),
            mem_factor=float(data.get("mem_factor", 2.0)),
            time_factor=float(data.get("time_factor", 2.0)),
            max_mem_mb=data.get("max_mem_mb"),
            max_time_s=data.get("max_time_s"),
            retry_on=tuple(data.get("retry_on", ())),
            retry_delay_s=float(data.get("retry_delay_s", 30.0)),
        )


def qualified_name(cls: type) -> str:
    """``module.QualName`` of a class: ``builtins.OSError``, ``shutil.Error``."""
    return f"{cls.__module__}.{cls.__qualname__}"


def build_retry_policy(*, task: str, options: dict[str, Any]) -> RetryPolicy:
    """Check the retry options of ``task`` (the keys of ``RETRY_KEYS`` that are given)."""
    retries = options.get("retries")
    if retries is not None and (
        isinstance(retries, bool) or not isinstance(retries, int) or retries < 0
    ):
        raise DefinitionError(
            f"retries={retries!r} must be an int of 0 or more",
            task=task,
            param="retries",
            value=retries,
            hint="pass retries=0 to never resubmit an element on its own",
        )
    factors = {k: _factor(task, k, options.get(k, 2.0)) for k in ("mem_factor", "time_factor")}
    max_mem = options.get("max_mem")
    max_time = options.get("max_time")
    return RetryPolicy(
        retries=retries,
        mem_factor=factors["mem_factor"],
        time_factor=factors["time_factor"],
        max_mem_mb=None if max_mem is None else _renamed(parse_mem, max_mem, task, "max_mem"),
        max_time_s=None if max_time is None else _renamed(parse_time, max_time, task, "max_time"),
        retry_on=_exception_names(task, options.get("retry_on", ())),
        retry_delay_s=_delay(task, options.get("retry_delay", 30.0)),
    )


def _factor(task: str, name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 1:
        raise DefinitionError(
            f"{name}={value!r} must be a number above 1",
            task=task,
            param=name,
            value=value,
            hint=f"e.g. {name}=2 doubles it on every retry",
        )
    if not math.isfinite(value):
        raise DefinitionError(f"{name}={value!r} must be finite", task=task, param=name)
    return float(value)


def _delay(task: str, value: object) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not ok or not math.isfinite(float(value)) or float(value) < 0:  # type: ignore[arg-type]
        raise DefinitionError(
            f"retry_delay={value!r} must be a number of seconds, 0 or more",
            task=task,
            param="retry_delay",
            value=value,
            hint="e.g. retry_delay=30 waits 30 s, then 60 s, 120 s, ...",
        )
    return float(value)  # type: ignore[arg-type]


def _renamed(parse: Any, value: object, task: str, name: str) -> int:
    """Parse ``max_mem``/``max_time`` as ``mem``/``time``, naming the option in an error."""
    try:
        return int(parse(value, task=task))
    except DefinitionError as err:
        raise DefinitionError(
            err.problem.replace(f"{name.removeprefix('max_')}=", f"{name}=", 1),
            task=task,
            param=name,
            value=value,
            hint=err.hint,
        ) from err


def _exception_names(task: str, value: object) -> tuple[str, ...]:
    items: Sequence[object] = value if isinstance(value, (list, tuple)) else (value,)
    names = []
    for item in items:
        if not (isinstance(item, type) and issubclass(item, BaseException)):
            raise DefinitionError(
                f"retry_on={value!r} must be a tuple of exception classes",
                task=task,
                param="retry_on",
                value=value,
                hint="write e.g. retry_on=(OSError, TimeoutError)",
            )
        names.append(qualified_name(item))
    return tuple(sorted(set(names)))
