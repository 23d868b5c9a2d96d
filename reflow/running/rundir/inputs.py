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
from json.encoder import encode_basestring
from typing import Any, BinaryIO

from reflow.definition.errors import StoreError
from reflow.planning.encoding import LocatedEncodingError, loads
from reflow.running.rundir.layout import RunLayout, write_atomic

_OFFSET = struct.Struct("<Q")
_NOTHING = object()
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
    try:
        data, lengths = _encode_lines(rows)
    except (TypeError, ValueError, UnicodeEncodeError) as err:
        raise LocatedEncodingError(
            f"inputs of {task} cannot be written as JSON ({err})",
            type_name=type(err).__name__,
            location="inputs",
            task=task,
            hint="encode input values with reflow.planning.encoding.to_json",
        ) from err
    offsets = itertools.accumulate(lengths, initial=0)
    index = struct.pack(f"<{len(lengths)}Q", *itertools.islice(offsets, len(lengths)))
    write_atomic(layout.inputs(task, plan), data)
    write_atomic(layout.inputs_index(task, plan), index)


def _encode_lines(rows: Sequence[Mapping[str, Any]]) -> tuple[bytes, list[int]]:
    """The UTF-8 lines ``{"element":e,"inputs":{...}}`` of all rows, and each one's length.

    Rows that share their keys (every planned task's rows do) are encoded a column at a
    time: a column of strings in one C pass, a value that all rows share once.
    """
    first = rows[0].keys() if rows else {}.keys()
    if not all(row.keys() == first for row in rows):
        # A chain planned element by element: elements not planned yet have empty rows.
        encode = _ENCODER.encode
        texts = [
            f'{{"element":{element},"inputs":{encode(row) if row else "{}"}}}\n'
            for element, row in enumerate(rows)
        ]
    else:
        names = sorted(first)
        keys = [f"{encode_basestring(name)}:" for name in names]
        columns = [_encode_column([row[name] for row in rows]) for name in names]
        if not keys:
            texts = [f'{{"element":{e},"inputs":{{}}}}\n' for e in range(len(rows))]
        elif len(keys) == 1:
            texts = [
                f'{{"element":{e},"inputs":{{{keys[0]}{text}}}}}\n'
                for e, text in enumerate(columns[0])
            ]
        else:
            texts = [
                f'{{"element":{e},"inputs":{{{",".join(map(str.__add__, keys, parts))}}}}}\n'
                for e, parts in enumerate(zip(*columns, strict=True))
            ]
    whole = "".join(texts)
    if whole.isascii():
        return whole.encode("ascii"), list(map(len, texts))
    lines = [text.encode() for text in texts]
    return b"".join(lines), list(map(len, lines))


def _encode_column(values: list[Any]) -> list[str]:
    """The canonical text of each value, as ``_ENCODER`` writes it inside an object."""
    if all(type(value) is str for value in values):
        return list(map(encode_basestring, values))
    encode = _ENCODER.encode
    texts: list[str] = []
    last: Any = _NOTHING
    text = ""
    for value in values:
        if value is not last:
            text = encode(value)
            last = value
        texts.append(text)
    return texts


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
    reader = InputsReader(layout, task, plan)
    try:
        return reader.read(element)
    finally:
        reader.close()


class InputsReader:
    """Reads elements' inputs of one planning, the two files opened once for all of them.

    A worker that runs many elements (a local chunk, a packed array task) keeps one reader;
    each ``read`` seeks to one element's line, as ``read_inputs`` does.
    """

    def __init__(self, layout: RunLayout, task: str, plan: str) -> None:
        self._task = task
        self._lines_path = layout.inputs(task, plan)
        self._index_path = layout.inputs_index(task, plan)
        self._index: BinaryIO | None = None
        self._lines: BinaryIO | None = None

    def read(self, element: int) -> dict[str, Any]:
        """The decoded inputs of ``element`` (see ``read_inputs``)."""
        task = self._task
        where = f"{self._lines_path} (element {element})"
        if element < 0:
            raise StoreError(f"{where}: element indices are not negative", task=task)
        try:
            if self._index is None or self._lines is None:
                self._index = self._index_path.open("rb")
                self._lines = self._lines_path.open("rb")
            self._index.seek(element * _OFFSET.size)
            raw = self._index.read(_OFFSET.size)
            if len(raw) < _OFFSET.size:
                raise StoreError(
                    f"{self._index_path} has no entry for element {element}",
                    task=task,
                    value=element,
                    hint="the batch names an element the planning did not produce",
                )
            (offset,) = _OFFSET.unpack(raw)
            self._lines.seek(offset)
            line = self._lines.readline()
        except OSError as err:
            self.close()
            raise StoreError(f"cannot read the inputs of {task}: {err}", task=task) from err
        return _decode_line(line, element, task, where)

    def close(self) -> None:
        """Close the files (a later ``read`` opens them again)."""
        for handle in (self._index, self._lines):
            if handle is not None:
                handle.close()
        self._index = self._lines = None


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
