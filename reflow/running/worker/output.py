"""Running: where a worker's elements print: their own logs, or a packed array task's output.

File descriptors 1 and 2 are pointed at the file, so subprocesses of a task write there too.
``OwnLogs`` opens each element's log in turn (a local chunk, an unpacked array task);
``SharedOutput`` points them once at the shared output of a packed array task and copies an
element's segment into its log only when there is something to keep (the layout of both is
``rundir/element_logs.py``). Either way a successful element that printed nothing, with no
log from an earlier attempt (for a packed array task: not named in its batch file's
``again``), leaves no log.
"""

from __future__ import annotations

import contextlib
import os
import stat
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

from reflow.running.rundir.element_logs import append_segment, copied_until
from reflow.running.rundir.layout import cut_record, locked, log_name, open_append, write_all


class Attempt(Protocol):
    """One element's attempt as its output saw it."""

    def ran(self, *, failed: bool) -> None:
        """The element returned or raised (before the footer): note what it left."""

    def settled(self) -> None:
        """Its result is written: a silent success leaves no log."""


class ElementOutput(Protocol):
    """Where the elements of one worker print."""

    def element(self, element: int, header: str) -> contextlib.AbstractContextManager[Attempt]:
        """Output goes to ``element``'s place, after ``header``, inside the block."""

    def close(self) -> None:
        """Every element ended (or the worker gives up): put the output back."""


def _flush() -> None:
    sys.stdout.flush()
    sys.stderr.flush()


@contextlib.contextmanager
def pointed_at(fd: int) -> Iterator[None]:
    """File descriptors 1 and 2 write to ``fd`` inside the block."""
    _flush()
    saved = os.dup(1), os.dup(2)
    try:
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        yield
    finally:
        _flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for kept in saved:
            os.close(kept)


class _OwnAttempt:
    # A plain class, not a dataclass: see ``_Job`` in ``worker.py``.
    __slots__ = ("is_new", "log", "silent", "size")

    def __init__(self, log: Path) -> None:
        self.log = log
        self.is_new = False
        self.size = -1  # after the header; -1: the log could not be opened
        self.silent = False

    def ran(self, *, failed: bool) -> None:
        _flush()
        if self.size < 0 or failed or not self.is_new:
            return
        with contextlib.suppress(OSError):
            self.silent = self.log.stat().st_size == self.size

    def settled(self) -> None:
        # Only now: until the result exists, the header is what shows the element started.
        if self.silent:
            self.log.unlink(missing_ok=True)


class OwnLogs:
    """Each element prints into its own log, opened when it starts."""

    def __init__(self, logs: Path) -> None:
        self._logs = logs

    @contextlib.contextmanager
    def element(self, element: int, header: str) -> Iterator[Attempt]:
        attempt = _OwnAttempt(self._logs / log_name(element))
        _flush()
        try:
            fd = open_append(attempt.log)
        except OSError as err:  # output stays where it was: the chunk's own log
            print(f"reflow: cannot open the log {attempt.log}: {err}", file=sys.stderr)  # noqa: T201
            yield attempt
            return
        try:
            attempt.is_new = os.fstat(fd).st_size == 0
            write_all(fd, header.encode())
            attempt.size = os.fstat(fd).st_size
            with pointed_at(fd):
                yield attempt
        finally:
            os.close(fd)

    def close(self) -> None:
        """Nothing stays open between elements."""


class _SharedAttempt:
    __slots__ = ("after_header", "element", "keep", "output", "start")

    def __init__(self, output: SharedOutput, element: int, start: int, after_header: int) -> None:
        self.output = output
        self.element = element
        self.start = start
        self.after_header = after_header
        self.keep = False

    def ran(self, *, failed: bool) -> None:
        _flush()
        printed = self.output.size() > self.after_header
        self.keep = failed or printed or self.element in self.output.earlier

    def settled(self) -> None:
        """The segment was copied (or not) when the element's block ended."""


class SharedOutput:
    """The elements of a packed array task print into one file, each between its lines.

    File descriptors 1 and 2 point at it only while an element runs: what the worker says
    between elements (a flow that prints as it is imported, a result it cannot write) stays
    in the array task's own output, as for an unpacked one.
    """

    def __init__(self, path: Path, logs: Path, again: frozenset[int]) -> None:
        """Open the shared output ``path``; the elements ``again`` have a log already.

        Raises:
            OSError: It cannot be opened.
        """
        self.path = path
        self._logs = logs
        self._fd = open_append(path, readable=True)  # segments are read back to be copied
        self.earlier = again  # their logs hold earlier attempts: every attempt appends
        self._copied_all = True

    def size(self) -> int:
        return os.fstat(self._fd).st_size

    @contextlib.contextmanager
    def element(self, element: int, header: str) -> Iterator[Attempt]:
        with pointed_at(self._fd):
            start = self.size()
            write_all(self._fd, header.encode())
            attempt = _SharedAttempt(self, element, start, self.size())
            yield attempt
        if attempt.keep:
            log = self._logs / log_name(element)
            try:
                with locked(self._fd):  # a cancel may be copying this segment's beginning
                    begin = max(start, copied_until(self.path, element) or start)
                    append_segment(self._fd, begin, self.size(), log)
            except OSError as err:
                self._copied_all = False
                print(f"reflow: cannot copy {element}'s output to {log}: {err}", file=sys.stderr)  # noqa: T201

    def close(self) -> None:
        """The shared output goes when every segment is where it belongs."""
        os.close(self._fd)
        if self._copied_all:
            self.path.unlink(missing_ok=True)
            cut_record(self.path).unlink(missing_ok=True)


def drop_empty_scheduler_output(logs_dir: Path) -> None:
    """Remove the scheduler's output file of this array task if nothing was written to it.

    Slurm creates the file before the job starts; every element's output went to its own
    log, so the file is empty unless the worker or Slurm had something to say. Only a regular
    file in ``logs_dir`` that is both this process's stdout and stderr is removed.
    """
    _flush()
    try:
        out, err = os.fstat(1), os.fstat(2)
        target = Path("/proc/self/fd/1").readlink()
        found = target.stat()
    except OSError:
        return
    same = {(s.st_dev, s.st_ino) for s in (out, err, found)}
    is_empty_file = stat.S_ISREG(out.st_mode) and out.st_size == 0
    if is_empty_file and len(same) == 1 and target.parent == logs_dir:
        target.unlink(missing_ok=True)
