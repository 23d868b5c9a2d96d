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
element's text is always in its own log. That copy ends the segment in the shared output
with a cut line (``cut_line``), and both copies hold an ``flock`` on the shared output: an
element that goes on after a cancel copied its cut segment (it ended in that moment, or
ignores the signal) copies only what follows the cut line, so no text is in a log twice.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from reflow.running.rundir.batches import read_batch
from reflow.running.rundir.layout import RunLayout, log_name, open_append, write_all
from reflow.running.rundir.results import ResultError

HEADER = "==> reflow: "
"""How the first line of each attempt in an element's log starts."""
FOOTER = "<== reflow: element "
"""How the last line of an element's log starts when the worker saw the element end."""
_BLOCK = 64 * 1024
_CUT = " stopped here; its output so far is in its log"


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


def cut_line(task: str, element: int) -> str:
    """The line a cut segment's copy ends it with in the shared output.

    It starts as a footer does, so the segment counts as ended and is not copied again.
    """
    return f"{FOOTER}{element} of {task}{_CUT}\n"


@contextlib.contextmanager
def locked(fd: int) -> Iterator[None]:
    """Hold an exclusive ``flock`` on the open shared output ``fd`` inside the block."""
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)


def after_cut(shared: int, start: int, end: int, task: str, element: int) -> int:
    """Where ``element``'s text not copied yet begins in its segment ``start`` to ``end``.

    That is ``start``, unless a cancel copied the segment's beginning (``cut_line``): then
    just after that line. Read under ``locked``.
    """
    mark = ("\n" + cut_line(task, element)).encode()
    found, at = start, start
    while at < end:
        # Blocks overlap by the mark's length, so a mark across two blocks is found.
        data = os.pread(shared, min(_BLOCK * 16, end - at), at)
        if not data:
            break
        hit = data.rfind(mark)
        if hit >= 0:
            found = at + hit + len(mark)
        if at + len(data) >= end:
            break
        at += max(1, len(data) - len(mark) + 1)
    return found


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
    return found[1] if found is not None and found[0] == element else b""


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
            fd = os.open(shared, os.O_RDWR | os.O_APPEND)
        except FileNotFoundError:
            continue
        try:
            with locked(fd):  # its worker may be copying the same segment now
                _keep_cut(layout, fd, task, elements)
        finally:
            os.close(fd)
        if ended:
            shared.unlink(missing_ok=True)


def _keep_cut(layout: RunLayout, shared: int, task: str, elements: set[int]) -> None:
    """Copy the unended last segment of ``shared`` to its element's log, and end it there.

    Only when that element is one of ``elements``; the cut line ends the segment.
    """
    found = _unended_segment(shared, task)
    if found is None or found[0] not in elements:
        return
    element, cut = found
    ends_line = cut.endswith(b"\n")
    fd = open_append(layout.log(task, element))
    try:
        write_all(fd, cut if ends_line else cut + b"\n")
    finally:
        os.close(fd)
    write_all(shared, ("" if ends_line else "\n").encode() + cut_line(task, element).encode())


def _packed_array_tasks(layout: RunLayout, batch: str) -> dict[int, int]:
    """``element -> array task`` of a packed batch; empty for an unpacked or unreadable one."""
    try:
        record = read_batch(layout, batch)
    except (OSError, ValueError):
        return {}
    return record.array_task_of() if record.pack > 1 else {}


def _unended_segment(shared: int, task: str) -> tuple[int, bytes] | None:
    """The last segment of the open shared output ``shared`` and its element, if it has no footer.

    None when the file is empty or cannot be read, or its last element ended.
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
    return int(found.group(2)), cut
