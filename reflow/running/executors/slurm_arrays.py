"""Running: which array jobs a batch becomes on Slurm, and which elements each array task runs.

Pure: no scheduler call, no file. The rule, which the worker follows too:

- Unpacked (``pack`` 1), when every element index is below ``MaxArraySize`` and the range
  spec fits slurmctld's 4096-character limit on ``--array``: one array job whose array
  indices *are* the elements (``--array=0,3,7-9``); the worker command is unchanged and
  element = ``$SLURM_ARRAY_TASK_ID``. The job id of element ``e`` is ``<job id>_<e>``.
- Otherwise the batch's elements are cut, in order, into *array tasks* of ``pack`` elements
  (the last one may hold fewer), and the array tasks into chunks of at most ``MaxArraySize``,
  each submitted as its own array ``0..k-1`` from a numbered script beside the request's
  script (``convert.0.sh``, ``convert.1.sh``, ...; a single chunk keeps the script's name).
  Its worker command gets ``--array-offset N``: array task ``t = N + $SLURM_ARRAY_TASK_ID``
  runs entries ``t * pack`` to ``t * pack + pack - 1`` of the batch file's ``elements``.
  Every element of one array task has that task's job id, ``<job id of its chunk>_<index>``.

Every worker command also gets ``--turn-after T``, the number of array tasks of the whole
batch (its elements, unpacked), so that the last of them to end runs the next dispatcher turn.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from reflow.running.executors.base import BatchRequest
from reflow.running.ranges import compress
from reflow.running.rundir.layout import script_part
from reflow.running.worker.command import array_offset_args, turn_after_args

MAX_ARRAY_SPEC_CHARS = 4096
"""The longest ``--array`` value (throttle included) slurmctld accepts; longer ones are refused
with "Pathname of a file, directory or other parameter too long"."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ArrayPlan:
    """One sbatch call: its script, array spec, extra worker args, and per element its index.

    ``indices`` holds, for each element of the chunk in batch order, the array index of the
    array task that runs it.
    """

    script_path: Path
    array: str
    worker_args: tuple[str, ...]
    indices: tuple[int, ...]


def array_tasks(count: int, pack: int) -> list[range]:
    """The positions (into a batch's elements) that each array task runs, in order."""
    if pack < 1:
        raise ValueError(f"pack must be at least 1, got {pack}")
    return [range(start, min(start + pack, count)) for start in range(0, count, pack)]


def array_plans(request: BatchRequest, max_array_size: int) -> list[ArrayPlan]:
    """The array jobs that run ``request`` (see the module docstring); ``elements`` not empty."""
    elements = request.elements
    throttle = request.resources.array_limit
    throttle_chars = len(f"%{throttle}") if throttle is not None else 0
    if request.pack == 1:
        spec = compress(elements)
        if max(elements) < max_array_size and len(spec) + throttle_chars <= MAX_ARRAY_SPEC_CHARS:
            return [
                ArrayPlan(
                    script_path=request.script_path,
                    array=spec,
                    worker_args=turn_after_args(len(elements)),
                    indices=elements,
                )
            ]
    tasks = array_tasks(len(elements), request.pack)
    pieces = [tasks[i : i + max_array_size] for i in range(0, len(tasks), max_array_size)]
    paths = script_paths(request.script_path, len(pieces))
    plans = []
    offset = 0
    for path, piece in zip(paths, pieces, strict=True):
        plans.append(
            ArrayPlan(
                script_path=path,
                array=f"0-{len(piece) - 1}",
                worker_args=(*array_offset_args(offset), *turn_after_args(len(tasks))),
                indices=_indices(piece),
            )
        )
        offset += len(piece)
    return plans


def _indices(tasks: Sequence[range]) -> tuple[int, ...]:
    return tuple(index for index, positions in enumerate(tasks) for _ in positions)


def script_paths(script_path: Path, count: int) -> tuple[Path, ...]:
    """Return the script paths of ``count`` chunks: ``script_path`` itself for one chunk."""
    if count == 1:
        return (script_path,)
    return tuple(script_part(script_path, index) for index in range(count))
