"""Running: the one rule of automatic retries: whether a failed attempt goes out again, how.

What a resubmission changes depends on why the attempt failed:

* a node that failed or did not boot, preemption, or work lost without a trace: the same
  resources, at once;
* ``OUT_OF_MEMORY``: memory times ``mem_factor``, capped by ``max_mem=`` or the partition's
  memory per node; an attempt that already had the cap is not retried;
* ``TIMEOUT``: the time limit times ``time_factor``, capped by ``max_time=`` or the
  partition's ``MaxTime``;
* an exception in the task: only when its class (or a base class) is in ``retry_on=``,
  after ``retry_delay`` seconds, doubling per attempt;
* anything else (an exit code, a refused submission, cancel): never.

An element goes out at most ``retries`` more times than its first. ``submission_resources``
is the one place that says what a (re)submission asks for: the task's resources, raised to
at least what the element's last attempt had. Pure functions, no I/O.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass

from reflow.definition.resources import Resources, format_mem, format_time
from reflow.definition.retry_policy import RetryPolicy
from reflow.running.executors.base import FailureReason, PartitionLimits

SAME_RESOURCES = frozenset(
    {
        FailureReason.NODE_FAIL,
        FailureReason.BOOT_FAIL,
        FailureReason.PREEMPTED,
        FailureReason.LOST,
    }
)
"""Failures that say nothing about the element: it goes out again as it was."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Decision:
    """Whether a failed attempt goes out again; if so, when and with what.

    ``resources`` are the ones the next attempt takes at least (``mem_mb``, ``time_s``);
    ``note`` says why an attempt is not retried when that is worth saying (a cap reached).
    """

    retry: bool
    delay_s: float = 0.0
    resources: Mapping[str, int] = dataclasses.field(default_factory=dict)
    note: str = ""


def resource_shape(resources: Resources) -> dict[str, int]:
    """The resources a retry may raise, as stored per attempt: ``mem_mb`` and ``time_s``."""
    shape = {"mem_mb": resources.mem_mb, "time_s": resources.time_s}
    return {key: value for key, value in shape.items() if value is not None}


def submission_resources(task: Resources, raised: Mapping[str, int]) -> Resources:
    """What an element's (re)submission asks for: ``task``, raised to at least ``raised``.

    ``task`` is the task's resources in the run's manifest over the config's defaults;
    ``raised`` holds the element's last attempt's resources, escalated if it was retried.
    """
    mem, time = task.mem_mb, task.time_s
    if "mem_mb" in raised and (mem is None or raised["mem_mb"] > mem):
        mem = raised["mem_mb"]
    if "time_s" in raised and (time is None or raised["time_s"] > time):
        time = raised["time_s"]
    return dataclasses.replace(task, mem_mb=mem, time_s=time)


def decide(
    *,
    reason: FailureReason,
    classes: tuple[str, ...],
    used: Resources,
    policy: RetryPolicy,
    retries: int,
    attempt: int,
    limits: PartitionLimits,
) -> Decision:
    """Whether attempt number ``attempt`` (1 for the first), which failed, goes out again.

    Args:
        reason: Why it failed.
        classes: For an exception, the qualified names of its class and base classes.
        used: The resources the attempt had.
        policy: The task's retry options.
        retries: How many retries the element may have (the task's, the config's, or 2).
        attempt: Which attempt failed.
        limits: The partition's memory per node and longest time limit, where known.
    """
    if attempt > retries or reason is FailureReason.CANCELLED:
        return Decision(retry=False)
    shape = resource_shape(used)
    if reason in SAME_RESOURCES:
        return Decision(retry=True, resources=shape)
    if reason is FailureReason.EXCEPTION:
        if not set(classes) & set(policy.retry_on):
            return Decision(retry=False)
        return Decision(
            retry=True, delay_s=policy.retry_delay_s * 2 ** (attempt - 1), resources=shape
        )
    if reason is FailureReason.OUT_OF_MEMORY:
        cap = _lowest(policy.max_mem_mb, limits.mem_mb)
        return _raise(shape, "mem_mb", policy.mem_factor, cap, "max_mem= or mem=")
    if reason is FailureReason.TIMEOUT:
        cap = _lowest(policy.max_time_s, limits.time_s)
        return _raise(shape, "time_s", policy.time_factor, cap, "max_time= or time=")
    return Decision(retry=False)


def _raise(
    shape: dict[str, int],
    key: str,
    factor: float,
    cap: int | None,
    options: str,
) -> Decision:
    """Raise ``shape[key]`` by ``factor`` up to ``cap``; no retry without a value or at the cap."""
    name = options.split("=", 1)[0].removeprefix("max_")
    if key not in shape:
        return Decision(retry=False, note=f"no {name}= to raise; set {name}=")
    if cap is not None and shape[key] >= cap:
        return Decision(retry=False, note=f"at the cap; raise {options}")
    raised = math.ceil(shape[key] * factor)
    if key == "time_s":
        raised = math.ceil(raised / 60) * 60  # Slurm reads whole minutes
    if cap is not None:
        raised = min(raised, cap)
    return Decision(retry=True, resources={**shape, key: raised})


def _lowest(*caps: int | None) -> int | None:
    given = [cap for cap in caps if cap is not None]
    return min(given) if given else None


def show_resource(reason: FailureReason | str, resources: Mapping[str, int]) -> str:
    """The resource a failure is about, as people write it: ``256M``, ``00:02:00``; or ""."""
    if reason in (FailureReason.OUT_OF_MEMORY, FailureReason.OUT_OF_MEMORY.value):
        return format_mem(resources["mem_mb"]) if "mem_mb" in resources else ""
    if reason in (FailureReason.TIMEOUT, FailureReason.TIMEOUT.value):
        return format_time(resources["time_s"]) if "time_s" in resources else ""
    return ""
