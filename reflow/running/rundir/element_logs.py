"""Running: an element's log: the lines that frame each attempt, and where the text is.

Every attempt of an element appends to its log (``logs/<task>/<element>.log``): a header
line, what the element and its subprocesses printed, and a footer the worker writes when the
element ends. A successful element that printed nothing leaves no log.

A packed array task does not open a log per element (a create and a remove per element, two
metadata operations each on a shared file system): its elements print into the array task's
shared output (``logs/<task>/pack-<batch>.<t>.log``), each between its header and footer,
and the worker copies an element's part, its *segment*, into the element's log when it
printed something, failed, or has a log already (``BatchFile.again``); the shared
output goes when the array task ends. Until then the running element's text is only there:
``running_text`` reads it. When the array task is killed or cancelled, what records that
copies the cut segment into the element's log (``keep_cut_segments``), so an ended
element's text is always in its own log. That copy records how far it copied
(``layout.cut_record``, beside the shared output, never written into it), and both copies
hold an ``flock`` on the shared output: an element that goes on after a cancel copied its
cut segment (it ended in that moment, or ignores the signal) copies only what follows, so no
text is in a log twice and none is lost.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterable
from pathlib import Path

from reflow.running.rundir.batches import read_batch
from reflow.running.rundir.layout import (
    RunLayout,
    cut_record,
    locked,
    log_name,
    open_append,
    write_all,
    write_atomic,
)
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


def copied_until(shared: Path, element: int) -> int | None:
    """How far a cancel copied ``element``'s segment of ``shared`` into its log; None: not.

    Read under ``locked`` on the shared output, as the copy writes it.
    """
    try:
        text = cut_record(shared).read_text(encoding="utf-8").split()
        return int(text[1]) if len(text) == 2 and int(text[0]) == element else None
    except (OSError, ValueError):
        return None


def append_segment(shared: int, start: int, end: int, log: Path) -> None:
    """Append bytes ``start`` to ``end`` of the open file ``shared`` to the log ``log``.

    Raises:
        OSError: The log cannot be written.
    """
    fd = open_append(log)
    try:
        while start < end:
            data = os.pread(shared, min(_BLOCK * 16, end - start), start)
            if not data:
                break
            write_all(fd, data)
            start += len(data)
    finally:
        os.close(fd)


def logged_elements(layout: RunLayout, task: str, elements: Iterable[int]) -> frozenset[int]:
    """Which of ``elements`` have a log in ``task``'s log folder (one listing of it)."""
    wanted = {log_name(element): element for element in elements}
    try:
        with os.scandir(layout.logs_dir(task)) as entries:
            return frozenset(wanted[e.name] for e in entries if e.name in wanted)
    except OSError:
        return frozenset()


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
    try:
        fd = os.open(layout.pack_log(task, batch, position // record.pack), os.O_RDONLY)
    except OSError:
        return b""
    try:
        found = _unended_segment(fd, task)
    finally:
        os.close(fd)
    return found[2] if found is not None and found[0] == element else b""


def keep_cut_segments(
    layout: RunLayout, stopped: Iterable[tuple[str, str, int]], *, ended: bool
) -> None:
    """Copy the output of each stopped packed array task's running element into its log.

    ``stopped`` holds ``(task, batch, element)`` of elements whose array task was killed or
    cancelled before they ended, as that is recorded (once). The running element's segment
    is the last of its array task's shared output and has no footer. When the array tasks
    ``ended`` (the scheduler says so), their shared outputs hold nothing more to keep and
    go; a cancel, whose workers may still be stopping, leaves them. Elements of unpacked
    batches are left alone.

    Raises:
        OSError: A log cannot be written.
    """
    by_task: dict[tuple[str, str, int], set[int]] = {}
    array_tasks: dict[str, dict[int, int]] = {}  # batch -> element -> its array task
    for task, batch, element in stopped:
        if batch not in array_tasks:
            array_tasks[batch] = _packed_array_tasks(layout, batch)
        array_task = array_tasks[batch].get(element)
        if array_task is not None:
            by_task.setdefault((task, batch, array_task), set()).add(element)
    for (task, batch, array_task), elements in by_task.items():
        shared = layout.pack_log(task, batch, array_task)
        try:
            fd = os.open(shared, os.O_RDONLY)
        except FileNotFoundError:
            continue
        try:
            with locked(fd):  # its worker may be copying the same segment now
                _keep_cut(layout, fd, shared, task, elements)
        finally:
            os.close(fd)
        if ended:
            shared.unlink(missing_ok=True)
            cut_record(shared).unlink(missing_ok=True)


def _keep_cut(layout: RunLayout, fd: int, shared: Path, task: str, elements: set[int]) -> None:
    """Copy the unended last segment of ``shared`` to its element's log; record how far.

    Only when that element is one of ``elements``, and from where a copy before this one
    stopped.
    """
    found = _unended_segment(fd, task)
    if found is None or found[0] not in elements:
        return
    element, start, cut = found
    end = start + len(cut)
    begin = max(start, copied_until(shared, element) or start)
    if begin < end:
        text = cut[begin - start :]
        log = open_append(layout.log(task, element))
        try:
            write_all(log, text if text.endswith(b"\n") else text + b"\n")
        finally:
            os.close(log)
    write_atomic(cut_record(shared), f"{element} {end}\n")


def _packed_array_tasks(layout: RunLayout, batch: str) -> dict[int, int]:
    """``element -> array task`` of a packed batch; empty for an unpacked or unreadable one."""
    try:
        record = read_batch(layout, batch)
    except (OSError, ValueError):
        return {}
    return record.array_task_of() if record.pack > 1 else {}


def _unended_segment(shared: int, task: str) -> tuple[int, int, bytes] | None:
    """The last segment of the open shared output ``shared``, if it has no footer.

    Returns:
        Its element, the offset where it starts, and its bytes; None when the file is empty
        or cannot be read, or its last element ended.
    """
    mark = f"\n{HEADER}".encode()
    try:
        end = os.fstat(shared).st_size
        start, lines, at, step = end, b"\n", -1, _BLOCK
        while start > 0 and at < 1:
            start, step = max(0, end - step), step * 2  # a long segment: fewer reads
            lines = b"\n" + os.pread(shared, end - start, start)
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
    return int(found.group(2)), start + at, cut  # ``lines`` starts with one added "\n"
