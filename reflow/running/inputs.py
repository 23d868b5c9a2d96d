"""Running: a planned task's inputs file, written whole, read per element. Never plans.

The dispatcher writes, for each planning of a task, ``RunLayout.inputs(task, plan)``: JSON
lines in element order, line ``e`` being ``{"element":e,"inputs":{name: <tagged JSON>}}``,
and ``RunLayout.inputs_index(task, plan)``: one 8-byte little-endian unsigned byte offset per
element. A worker seeks straight to its element's line, so reading one element of a
100,000-element fan-out costs the same as reading one of ten. This module never decides what
the inputs are; the planner does.
"""

from __future__ import annotations

import itertools
import json
import struct
from collections.abc import Mapping, Sequence
from typing import Any

from reflow.definition.errors import StoreError
from reflow.planning.encoding import LocatedEncodingError, loads
from reflow.running.layout import RunLayout, write_atomic

_OFFSET = struct.Struct("<Q")
_ENCODER = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
)


def write_inputs(
    layout: RunLayout, task: str, plan: str, rows: Sequence[Mapping[str, Any]]
) -> None:
    """Write the inputs of every element of ``task`` for planning ``plan``.

    Both files are written atomically, the index last, so a reader that finds the index
    also finds the complete lines it points into.

    Args:
        layout: The run's paths.
        task: The task's name.
        plan: The planning's id (part of the file names).
        rows: For element ``e``, ``rows[e]`` maps each input parameter to its value, already
            in tagged JSON form (``encoding.to_json``).

    Raises:
        LocatedEncodingError: A row holds data that is not JSON (a bug in the caller).
    """
    encode = _ENCODER.encode
    try:
        lines = [
            f'{{"element":{element},"inputs":{encode(row)}}}\n'.encode()
            for element, row in enumerate(rows)
        ]
    except (TypeError, ValueError, UnicodeEncodeError) as err:
        raise LocatedEncodingError(
            f"inputs of {task} cannot be written as JSON ({err})",
            type_name=type(err).__name__,
            location="inputs",
            task=task,
            hint="encode input values with reflow.planning.encoding.to_json",
        ) from err
    offsets = itertools.accumulate(map(len, lines), initial=0)
    index = struct.pack(f"<{len(lines)}Q", *itertools.islice(offsets, len(lines)))
    write_atomic(layout.inputs(task, plan), b"".join(lines))
    write_atomic(layout.inputs_index(task, plan), index)


def read_inputs(layout: RunLayout, task: str, plan: str, element: int) -> dict[str, Any]:
    """Return the decoded inputs of one element, reading only that element's line.

    Args:
        layout: The run's paths.
        task: The task's name.
        plan: The planning's id.
        element: The element index.

    Returns:
        Each input parameter's value, decoded (``{"$path": ...}`` becomes a ``Path``).

    Raises:
        StoreError: The files are missing, hold no line for ``element``, or the line is
            malformed or belongs to another element.
    """
    index_path = layout.inputs_index(task, plan)
    where = f"{layout.inputs(task, plan)} (element {element})"
    if element < 0:
        raise StoreError(f"{where}: element indices are not negative", task=task)
    try:
        with index_path.open("rb") as index:
            index.seek(element * _OFFSET.size)
            raw = index.read(_OFFSET.size)
        if len(raw) < _OFFSET.size:
            raise StoreError(
                f"{index_path} has no entry for element {element}",
                task=task,
                value=element,
                hint="the batch names an element the planning did not produce",
            )
        (offset,) = _OFFSET.unpack(raw)
        with layout.inputs(task, plan).open("rb") as lines:
            lines.seek(offset)
            line = lines.readline()
    except OSError as err:
        raise StoreError(f"cannot read the inputs of {task}: {err}", task=task) from err
    return _decode_line(line, element, task, where)


def _decode_line(line: bytes, element: int, task: str, where: str) -> dict[str, Any]:
    try:
        record = loads(line.decode(), where=where)
    except (UnicodeDecodeError, LocatedEncodingError) as err:
        raise StoreError(f"{where} is not a valid inputs line: {err}", task=task) from err
    if (
        not isinstance(record, dict)
        or record.get("element") != element
        or not isinstance(record.get("inputs"), dict)
    ):
        raise StoreError(
            f"{where}: the indexed line is not this element's inputs",
            task=task,
            hint="the inputs file and its index do not match; plan the task again",
        )
    inputs: dict[str, Any] = record["inputs"]
    return inputs
