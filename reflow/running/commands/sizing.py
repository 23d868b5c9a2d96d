"""Running: the figures of a right-sizing report, from what each element used. Pure, no I/O.

``task_figures`` turns one task's element usages and its request into percentiles (p50, p95,
max), efficiencies, core-hours and a suggested ``cpus=``/``mem=``/``time=``. A suggestion is
the p95 element's figure plus ``HEADROOM``, rounded up to values that both Slurm and the
task decorators accept: memory in steps of 64M (256M past 1G), time in whole minutes, cpus
as a whole number.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from reflow.definition.resources import format_mem, format_time

HEADROOM = 1.2
"""A suggestion is the p95 figure times this."""
UNDERUSED = 1 / 3
"""A task whose every element used less than this share of its memory or time request is
pointed out at the end of ``--wait``."""
_MEM_STEP_MB = 64
_LARGE_MEM_STEP_MB = 256
_MINUTE_S = 60
_HOUR_S = 3600.0
_TIMED_S = 1.0
"""The shortest elapsed time of an element whose CPU time counts for the cores it kept busy."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ElementUsage:
    """What one element asked for and used; ``None`` where it is not known."""

    element: int
    elapsed_s: float | None
    cpu_s: float | None
    peak_rss_mb: float | None
    cpus: int | None = None
    mem_mb: float | None = None
    time_s: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Request:
    """What each element of a task asked for; ``None`` where it asked nothing."""

    cpus: int | None
    mem_mb: float | None
    time_s: float | None


def percentiles(values: Sequence[float]) -> dict[str, float] | None:
    """``{"p50", "p95", "max"}`` of ``values`` (nearest rank), or None when there are none."""
    if not values:
        return None
    ordered = sorted(values)

    def rank(share: float) -> float:
        return ordered[max(0, math.ceil(share * len(ordered)) - 1)]

    return {"p50": rank(0.5), "p95": rank(0.95), "max": ordered[-1]}


def suggest_mem(peak_mb: float) -> str:
    """A ``mem=`` for a p95 peak of ``peak_mb``: plus headroom, rounded up to a step."""
    wanted = max(1.0, peak_mb * HEADROOM)
    step = _MEM_STEP_MB if wanted <= 1024 else _LARGE_MEM_STEP_MB
    return format_mem(math.ceil(wanted / step) * step)


def suggest_time(elapsed_s: float) -> str:
    """A ``time=`` for a p95 run time of ``elapsed_s``: plus headroom, in whole minutes."""
    minutes = max(1, math.ceil(elapsed_s * HEADROOM / _MINUTE_S))
    return format_time(minutes * _MINUTE_S)


def suggest_cpus(cores_used: float) -> int:
    """A ``cpus=`` for a p95 of ``cores_used`` busy cores: plus headroom, to the nearest."""
    return max(1, math.floor(cores_used * HEADROOM + 0.5))


def request_of(usages: Sequence[ElementUsage], default: Request) -> Request:
    """The request the scheduler recorded (the largest per element), else ``default``."""
    cpus = [u.cpus for u in usages if u.cpus is not None]
    mem = [u.mem_mb for u in usages if u.mem_mb is not None]
    time = [u.time_s for u in usages if u.time_s is not None]
    return Request(
        cpus=max(cpus) if cpus else default.cpus,
        mem_mb=max(mem) if mem else default.mem_mb,
        time_s=max(time) if time else default.time_s,
    )


def task_figures(
    task: str, usages: Sequence[ElementUsage], request: Request, *, from_cache: int
) -> dict[str, Any]:
    """The report of one task: request, usage percentiles, efficiencies, core-hours, advice."""
    cpus = request.cpus or 1
    elapsed = [u.elapsed_s for u in usages if u.elapsed_s is not None]
    cpu = [u.cpu_s for u in usages if u.cpu_s is not None]
    peak = [u.peak_rss_mb for u in usages if u.peak_rss_mb is not None]
    # CPU time is counted in clock ticks: below a second, one tick more or less swings the
    # ratio past 100 %, so only elements that ran that long say how busy the cores were.
    timed = [u for u in usages if (u.elapsed_s or 0.0) >= _TIMED_S and u.cpu_s is not None]
    # No element keeps more cores busy than it was given (its cgroup forbids it); an elapsed
    # time in whole seconds (sacct's) can make it look so.
    cores = [min(float(u.cpu_s or 0.0) / float(u.elapsed_s or 1.0), cpus) for u in timed]
    figures: dict[str, Any] = {
        "task": task,
        "elements": len(usages),
        "from_cache": from_cache,
        "requested": {"cpus": request.cpus, "mem_mb": request.mem_mb, "time_s": request.time_s},
        "used": {
            "peak_rss_mb": percentiles(peak),
            "elapsed_s": percentiles(elapsed),
            "cpu_s": percentiles(cpu),
        },
        "cpu_efficiency": percentiles([c / cpus for c in cores]),
        "mem_efficiency": percentiles([p / request.mem_mb for p in peak])
        if request.mem_mb
        else None,
        "core_hours": {
            "allocated": sum(elapsed) * cpus / _HOUR_S,
            "limit": len(usages) * request.time_s * cpus / _HOUR_S if request.time_s else None,
            "used": sum(cpu) / _HOUR_S if cpu else None,
        },
    }
    figures["suggestion"] = _suggestion(figures, cores)
    figures["underused"] = _underused(figures)
    return figures


def _suggestion(figures: dict[str, Any], cores: list[float]) -> dict[str, Any]:
    used = figures["used"]
    suggestion: dict[str, Any] = {}
    busy = percentiles(cores)
    if busy is not None:
        suggestion["cpus"] = suggest_cpus(busy["p95"])
    if used["peak_rss_mb"] is not None:
        suggestion["mem"] = suggest_mem(used["peak_rss_mb"]["p95"])
    if used["elapsed_s"] is not None:
        suggestion["time"] = suggest_time(used["elapsed_s"]["p95"])
    return suggestion


def _underused(figures: dict[str, Any]) -> list[str]:
    """``mem`` and/or ``time`` when even the largest element used under a third of it."""
    requested, used = figures["requested"], figures["used"]
    found = []
    for key, figure in (("mem", "peak_rss_mb"), ("time", "elapsed_s")):
        limit = requested[f"{key}_mb" if key == "mem" else f"{key}_s"]
        if limit and used[figure] is not None and used[figure]["max"] < limit * UNDERUSED:
            found.append(key)
    return found
