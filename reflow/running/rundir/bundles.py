"""Running: a packed array task's result bundle: appended by its worker, read by the dispatcher.

A packed Slurm array task, which runs several elements, appends one line per finished element
to one *bundle* (JSON lines, each line written before the next element starts; see
``Bundle``), so that a task killed half-way keeps the results of the elements it
finished, and ingesting 100,000 elements reads as many files as there are array tasks. A line
holds the same document as a result file (``results``).

``read_bundle`` checks each line as a result file is checked: a torn or bad line is skipped,
and the first valid line of an element wins. ``successes_of`` is its fast path for the
common bundle, whose every line is a success of the array task's own elements: it checks the
lines column by column and gives the rows the store stages as they are, or None for any other
bundle, whose documents ``first_records`` then reads; the two agree on every bundle
``successes_of`` accepts. Both take the documents ``bundle_documents`` parsed once. This
module never touches the store.
"""

from __future__ import annotations

import contextlib
import math
import os
import threading
from collections.abc import Set
from itertools import repeat
from operator import itemgetter, methodcaller
from pathlib import Path
from typing import Any

from reflow.planning.encoding import JSON, LocatedEncodingError, to_text
from reflow.planning.identity import value_hash
from reflow.running.rundir.layout import open_append, write_all
from reflow.running.rundir.results import (
    FORMAT,
    ResultProblem,
    ResultRecord,
    decode_lines,
    first_records,
    read_bytes,
)

Success = tuple[str, int, str, float, float, str, float, str, str]
"""One element done, as the store stages it: task, element, batch, started, ended, host,
peak RSS (MB), the output's canonical text and its hash."""

_WHO = itemgetter("format", "run_id", "task", "batch", "error")
_COLUMNS = itemgetter(
    "element", "ok", "started", "ended", "host", "peak_rss_mb", "pid", "output", "output_hash"
)
_CPU_S = methodcaller("get", "cpu_s", 0.0)
_NUMBERS = frozenset({int, float})


class Bundle:
    """The bundle of one packed array task, as its worker appends to it.

    The worker opens it once and writes every line before the next element starts, so a
    worker that is killed (time limit, memory, ``scancel``) leaves the lines of every element
    it finished: they are the kernel's, and the file is closed as the process dies. A line
    reaches the disk, and on NFS the server (where a turn on another node reads it), at most
    ``sync_every_s`` after it was written, however long the next element runs: a timer
    thread syncs what is pending, and closing the bundle syncs the rest. An fsync, or an
    open and a close, per element would cost more than a trivial element itself, and each
    open is a metadata operation on a shared file system.
    """

    def __init__(self, path: Path, *, sync_every_s: float = 1.0) -> None:
        self.path = path
        self._sync_every_s = sync_every_s
        self._fd: int | None = None
        self._lock = threading.Lock()  # the timer's sync and close never overlap
        self._timer: threading.Timer | None = None
        self._pending = False

    def append(self, text: str) -> None:
        """Append one element's result as a line (see ``results.result_text``).

        Raises:
            OSError: The bundle cannot be opened or written.
        """
        with self._lock:
            if self._fd is None:
                self._fd = open_append(self.path)
            write_all(self._fd, text.encode() + b"\n")
            self._pending = True
            if self._timer is None:
                self._timer = threading.Timer(self._sync_every_s, self._sync)
                self._timer.daemon = True
                self._timer.start()

    def _sync(self) -> None:
        """The timer: put the pending lines on disk."""
        with self._lock:
            self._timer = None
            if self._fd is not None and self._pending:
                with contextlib.suppress(OSError):  # still pending: close syncs again, and raises
                    os.fsync(self._fd)
                    self._pending = False

    def close(self) -> None:
        """Put what is not on disk yet there, and close the file.

        Raises:
            OSError: The last lines could not be synced.
        """
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            fd, self._fd = self._fd, None
            if fd is None:
                return
            try:
                if self._pending:
                    os.fsync(fd)
            finally:
                os.close(fd)
            self._pending = False


def bundle_documents(path: Path) -> list[Any] | ResultProblem:
    """The documents of a bundle's complete lines (None for a line that is not JSON).

    Returns:
        The documents, or a ``ResultProblem`` when the file is missing or cannot be read.
    """
    raw = read_bytes(path, "no result bundle")
    if isinstance(raw, ResultProblem):
        return raw
    return decode_lines(raw.split(b"\n")[:-1])  # the last piece is empty, or a torn line


def read_bundle(
    path: Path, *, run_id: str, task: str, batch: str
) -> dict[int, ResultRecord] | ResultProblem:
    """Read a bundle: ``element -> record`` for its complete, valid lines (the first wins).

    Returns:
        The records, or a ``ResultProblem`` when the file is missing or cannot be read.
    """
    documents = bundle_documents(path)
    if isinstance(documents, ResultProblem):
        return documents
    return first_records(documents, run_id=run_id, task=task, batch=batch)


def successes_of(
    documents: list[Any], *, run_id: str, task: str, batch: str, elements: Set[int]
) -> list[Success] | None:
    """The rows of a bundle's documents when every one is a valid success of ``elements``.

    ``elements`` are the array task's own. The rows keep the lines' order (an element given
    twice is staged as its first line says, as ``read_bundle`` reads it).

    Returns:
        A row per line; None when the bundle holds anything else: a failure, a bad or foreign
        line, an element of another array task. ``first_records`` then reads the documents
        line by line.
    """
    if not documents:
        return []
    try:
        who = set(map(_WHO, documents))
        columns = list(zip(*map(_COLUMNS, documents), strict=True))
        cpu_s = list(map(_CPU_S, documents))
    except (TypeError, KeyError):
        return None  # a line that is not JSON, not an object, or lacks a field
    if not columns or who != {(FORMAT, run_id, task, batch, None)}:
        return None
    element, ok, started, ended, host, peak, pid, output, given = columns
    if not (
        _all_of(element, int)
        and _all_of(ok, bool)
        and all(ok)
        and _all_of(host, str)
        and _all_of(pid, int)
        and _all_of(given, str)
        and _numbers(started, ended, peak, cpu_s)
        and set(element) <= elements
    ):
        return None
    texts = _texts(output)
    if texts is None or list(map(value_hash, texts)) != list(given):
        return None
    return list(zip(repeat(task), element, repeat(batch), started, ended, host, peak, texts, given))


def _all_of(column: tuple[Any, ...], kind: type) -> bool:
    """Whether every value of ``column`` has exactly the type ``kind``."""
    return set(map(type, column)) == {kind}


def _numbers(*columns: Any) -> bool:
    """Whether every value of ``columns`` is a finite int or float (not a bool)."""
    return all(
        set(map(type, column)) <= _NUMBERS and all(map(math.isfinite, column)) for column in columns
    )


def _texts(outputs: tuple[JSON, ...]) -> list[str] | None:
    """The canonical text of each output; None when one cannot be written as JSON."""
    try:
        return [to_text(output, where="output") for output in outputs]
    except LocatedEncodingError:
        return None
