"""Running: an element's log: the lines that frame each attempt, and where the text is.

Every attempt of an element appends to its log (``logs/<task>/<element>.log``): a header
line, what the element and its subprocesses printed, and a footer the worker writes when the
element ends. A successful element that printed nothing leaves no log.

A packed array task does not open a log per element (a create and a remove per element, two
metadata operations each on a shared file system): its elements print into the array task's
shared output (``logs/<task>/pack-<batch>.<t>.log``), each between its header and footer,
and the worker copies an element's part, its *segment*, into the element's log when it
printed something, failed, or has a log from an earlier attempt; the shared output goes when
the array task ends. Until then the running element's text is only there: ``running_text``
reads it. When the array task is killed, the turn that records the failure copies the cut
segment into the element's log (``keep_cut_segment``), so a finished element's text is
always in its own log.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Collection
from pathlib import Path

from reflow.running.rundir.batches import read_batch
from reflow.running.rundir.layout import RunLayout
from reflow.running.rundir.results import ResultError

HEADER = "==> reflow: "
"""How the first line of each attempt in an element's log starts."""
FOOTER = "<== reflow: element "
"""How the last line of an element's log starts when the worker saw the element end."""
_BLOCK = 64 * 1024


def header(task: str, element: int, batch: str, host: str) -> str:
    """The first line of an attempt: ``==> reflow: convert[3] batch B on HOST at TIME``."""
    return f"{HEADER}{task}[{element}] batch {batch} on {host} at {_local_time()}\n"


def _local_time() -> str:
    """Now in local time with its offset, ISO 8601 to the second (``2026-12-04T05:09:01+01:00``).

    From ``time``, not ``datetime``: a worker imports nothing for its header.
    """
    now = time.localtime()
    offset = time.strftime("%z", now)
    return time.strftime("%Y-%m-%dT%H:%M:%S", now) + f"{offset[:3]}:{offset[3:]}"


def footer(task: str, element: int, error: ResultError | None, duration_s: float) -> str:
    """The last line of an attempt: how it ended and after how long.

    ``<== reflow: element 3 of convert ended: done in 1.2 s``, or ``... ended: failed after
    0.3 s: ValueError: ...`` with the first line of the error's message.
    """
    if error is None:
        how = f"done in {duration_s:.1f} s"
    else:
        lines = error.message.strip().splitlines()
        how = f"failed after {duration_s:.1f} s: {error.type}"
        how += f": {lines[0][:200]}" if lines else ""
    return f"{FOOTER}{element} of {task} ended: {how}"


def append_segment(shared: int, start: int, end: int, log: Path) -> None:
    """Append bytes ``start`` to ``end`` of the open file ``shared`` to the log ``log``.

    Raises:
        OSError: The log cannot be written.
    """
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        while start < end:
            data = os.pread(shared, min(_BLOCK * 16, end - start), start)
            if not data:
                break
            os.write(fd, data)
            start += len(data)
    finally:
        os.close(fd)


def running_text(layout: RunLayout, task: str, element: int, batch: str) -> bytes:
    """What a packed element that has not ended printed so far ("" when not packed or ended).

    Its array task comes from the batch file; its segment is the last in the array task's
    shared output (elements run in order), and one with a footer has ended: its text, if
    any, is in the element's log.
    """
    try:
        record = read_batch(layout, batch)
        position = record.elements.index(element)
    except (OSError, ValueError):
        return b""
    if record.pack <= 1:
        return b""
    found = _unended_segment(layout.pack_log(task, batch, position // record.pack), task)
    return found[1] if found is not None and found[0] == element else b""


def keep_cut_segment(
    layout: RunLayout, task: str, batch: str, array_task: int, elements: Collection[int]
) -> None:
    """Copy the segment that a kill cut short, if it is one of ``elements``', into its log.

    Called once, when the failures of ``elements`` of a killed array task are recorded.

    Raises:
        OSError: The log cannot be written.
    """
    found = _unended_segment(layout.pack_log(task, batch, array_task), task)
    if found is not None and found[0] in elements:
        element, cut = found
        with layout.log(task, element).open("ab") as log:
            log.write(cut if cut.endswith(b"\n") else cut + b"\n")


def _unended_segment(shared: Path, task: str) -> tuple[int, bytes] | None:
    """The last segment of the shared output ``shared`` and its element, if it has no footer.

    None when the file is missing or empty, or its last element ended.
    """
    mark = f"\n{HEADER}".encode()
    try:
        with shared.open("rb") as handle:
            end = handle.seek(0, os.SEEK_END)
            start, lines, at, step = end, b"\n", -1, _BLOCK
            while start > 0 and at < 1:
                start, step = max(0, end - step), step * 2  # a long segment: fewer reads
                handle.seek(start)
                lines = b"\n" + handle.read(end - start)
                at = lines.rfind(mark)
                at = at if start == 0 or at > 0 else -1  # a header must follow a newline
    except OSError:
        return None
    if at < 0:
        return None
    cut = lines[at + 1 :]
    found = re.match(re.escape(HEADER.encode()) + rb"(.+?)\[(\d+)\] batch ", cut)
    if found is None or found.group(1).decode(errors="replace") != task:
        return None
    if f"\n{FOOTER}".encode() in cut:
        return None
    return int(found.group(2)), cut
