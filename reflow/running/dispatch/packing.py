"""Running: how many elements one Slurm array task runs (a task's ``pack=``), per batch.

The dispatcher decides it when it submits a batch and records it in the batch file before
``sbatch``; the Slurm executor cuts the batch into array tasks of that many elements
(``executors/slurm_arrays.py``) and the worker runs them one after another.

- ``pack=N`` runs N elements per array task.
- ``pack="auto"`` takes the median run time of the task's earlier ``done`` elements in this
  run directory (one store query) and packs enough of them that an array task runs at least
  ``[executor] min_task_time`` (10 minutes by default). Without such history it does not pack.
- A declared ``time=`` stays per element: a packed array task asks for N times time. Where the
  partition's ``MaxTime`` is known, N is reduced so that N times time (or, without ``time=``,
  N times the median for ``"auto"``) fits in it.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
from collections.abc import Callable, Sequence

from reflow.definition.resources import Resources

DEFAULT_MIN_TASK_TIME_S = 600
"""How long an array task packed with ``pack="auto"`` runs at least, unless configured."""

_SHORTEST_ELEMENT_S = 0.001


def choose_pack(
    option: int | str | None,
    *,
    count: int,
    time_s: int | None,
    median_s: float | None,
    min_task_s: int,
    max_time_s: int | None,
) -> int:
    """Elements per array task for a batch of ``count`` elements. Pure.

    Args:
        option: The task's ``pack=``: None or an int, or ``"auto"``.
        count: Elements in the batch; no array task holds more.
        time_s: The declared time limit of one element, if any.
        median_s: The median run time of the task's earlier elements (``"auto"`` only).
        min_task_s: The least time an ``"auto"``-packed array task should run.
        max_time_s: The partition's ``MaxTime``, None when unlimited or unknown.
    """
    if option is None or count <= 1:
        return 1
    if option == "auto":
        if median_s is None:
            return 1
        pack = math.ceil(min_task_s / max(median_s, _SHORTEST_ELEMENT_S))
        per_element_s: float | None = time_s if time_s is not None else median_s
    else:
        pack = int(option)
        per_element_s = time_s
    if max_time_s is not None and per_element_s:
        pack = min(pack, int(max_time_s // per_element_s))
    return max(1, min(pack, count))


def packed_resources(resources: Resources, pack: int) -> Resources:
    """What one array task of ``pack`` elements asks for: ``pack`` times the element's time."""
    if pack == 1 or resources.time_s is None:
        return resources
    return dataclasses.replace(resources, time_s=resources.time_s * pack)


def pack_for(
    resources: Resources,
    *,
    count: int,
    history: Callable[[], Sequence[float]],
    max_time_s: Callable[[str | None], int | None] | None,
    min_task_s: int,
) -> int:
    """``choose_pack`` for a batch, reading history and ``MaxTime`` only when they matter."""
    option = resources.pack
    if option is None or option == 1 or count <= 1:
        return 1
    median_s: float | None = None
    if option == "auto":
        elapsed = history()
        if not elapsed:
            return 1
        median_s = statistics.median(elapsed)
    needs_bound = resources.time_s is not None or option == "auto"
    bound = max_time_s(resources.partition) if needs_bound and max_time_s is not None else None
    return choose_pack(
        option,
        count=count,
        time_s=resources.time_s,
        median_s=median_s,
        min_task_s=min_task_s,
        max_time_s=bound,
    )


def fit_budget(count: int, pack: int, room: int | None) -> tuple[int, int]:
    """How many of ``count`` elements fit in ``room`` array tasks, and the tasks they take.

    ``room`` None means no budget.
    """
    if room is not None:
        count = min(count, room * pack)
    return count, math.ceil(count / pack)
