"""Running: which elements a worker runs, from its command line and Slurm's array index.

``--elements 0-9,12`` names them (a local process). Otherwise ``$SLURM_ARRAY_TASK_ID`` says:
without ``--array-offset`` it is the element itself; with ``--array-offset N`` it is array
task ``t = N + $SLURM_ARRAY_TASK_ID`` of the batch file, which runs entries ``t * pack`` to
``t * pack + pack - 1`` of the file's ``elements`` (``pack`` 1 unless the file says more;
see ``executors/slurm_arrays.py``). A packed array task (``pack`` above 1) writes its results
into one bundle, named by ``t``. Reads the batch file only; writes nothing.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import NamedTuple

from reflow.running.ranges import expand
from reflow.running.rundir.batches import read_batch
from reflow.running.rundir.layout import RunLayout

ARRAY_TASK_ENV = "SLURM_ARRAY_TASK_ID"


class SelectionError(Exception):
    """The command line does not say which elements to run (exit status 2)."""


class Selection(NamedTuple):
    """The elements to run, in order, and the packed array task they form (None: unpacked).

    ``again``: which of them have a log already (known for a packed one only).
    """

    elements: tuple[int, ...]
    array_task: int | None = None
    again: frozenset[int] = frozenset()


def select(args: argparse.Namespace, layout: RunLayout, environ: Mapping[str, str]) -> Selection:
    """The elements this worker runs (see the module docstring).

    Raises:
        SelectionError: The flags, the array index or the batch file do not name elements.
    """
    if args.elements is not None:
        try:
            return Selection(elements=tuple(expand(args.elements)))
        except ValueError as err:
            raise SelectionError(f"--elements: {err}") from err
    raw = environ.get(ARRAY_TASK_ENV)
    if raw is None or not raw.strip().isdigit():
        raise SelectionError(f"${ARRAY_TASK_ENV} is {raw!r}; pass --elements outside Slurm")
    if args.array_offset is None:
        return Selection(elements=(int(raw),))
    array_task = args.array_offset + int(raw)
    path = layout.batch(args.batch)
    try:
        batch = read_batch(layout, args.batch)
    except (OSError, ValueError) as err:
        raise SelectionError(f"cannot read array task {array_task} of {path}: {err!r}") from err
    start = array_task * batch.pack
    elements = batch.elements[start : start + batch.pack]
    if not elements:
        raise SelectionError(f"{path} has no array task {array_task}")
    if batch.pack <= 1:
        return Selection(elements=elements)
    return Selection(elements=elements, array_task=array_task, again=batch.again & set(elements))
