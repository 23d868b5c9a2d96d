"""Running: a batch file: the elements of one submission, in order, and how they are packed.

The dispatcher writes it before the batch goes to the executor; a Slurm worker reads it to
find its elements from its array index, and intake reads it to find the bundle that holds a
packed element's result. ``pack`` is the number of elements per array task (1 when the file
predates packing); ``again`` the elements that have a log already (from an earlier attempt),
to which an attempt appends even when it prints nothing: the dispatcher lists the log folder
once, so no array task does (empty when the file predates it). No store.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import NamedTuple

from reflow.running.rundir.layout import RunLayout, write_atomic


class BatchFile(NamedTuple):
    """What a batch file records."""

    task: str
    elements: tuple[int, ...]
    pack: int = 1
    again: frozenset[int] = frozenset()

    def array_task_of(self) -> dict[int, int]:
        """``element -> the array task that runs it`` (its position divided by ``pack``)."""
        pack = self.pack
        return {element: position // pack for position, element in enumerate(self.elements)}


def write_batch(layout: RunLayout, batch: str, record: BatchFile) -> None:
    """Write the batch file of ``batch`` (atomically)."""
    data: dict[str, object] = {
        "task": record.task,
        "elements": record.elements,
        "pack": record.pack,
    }
    if record.again:
        data["again"] = sorted(record.again)
    write_atomic(layout.batch(batch), json.dumps(data))


def read_batch(layout: RunLayout, batch: str) -> BatchFile:
    """Read the batch file of ``batch``.

    Raises:
        OSError: The file cannot be read.
        ValueError: It is not a batch file.
    """
    try:
        data = json.loads(layout.batch(batch).read_text(encoding="utf-8"))
        elements: Sequence[int] = data["elements"]
        record = BatchFile(
            task=str(data["task"]),
            elements=tuple(int(e) for e in elements),
            pack=int(data.get("pack", 1)),
            again=frozenset(int(e) for e in data.get("again", ())),
        )
    except (KeyError, TypeError, AttributeError) as err:
        raise ValueError(f"{layout.batch(batch)} is not a batch file: {err!r}") from err
    if record.pack < 1:
        raise ValueError(f"{layout.batch(batch)} has pack {record.pack}")
    return record
