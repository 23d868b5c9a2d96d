"""Running: results read in a thread while the store writes those read before.

Ingesting 100,000 packed elements is two halves of about equal weight: reading and checking
the bundles (Python) and writing the store (sqlite). sqlite's statements run without
Python's lock (the GIL), so a thread that reads the next bundles overlaps them. Staging rows
from Python is the exception: sqlite's ``executemany`` takes the lock back for every row,
and a thread busy in Python would hold it most of the time; the store pauses the reader
while it stages (``ReadAhead.paused``).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Generator, Iterable, Iterator
from contextlib import contextmanager
from typing import Generic, Literal, TypeVar

_Part = TypeVar("_Part")


class ReadAhead(Generic[_Part]):
    """``parts`` as a thread makes them, while the caller uses those before.

    Iterated once. An error in the thread is raised in the caller after the parts made
    before it; a caller that stops early (or closes the iteration, also while paused) stops
    the thread before its next part.
    """

    def __init__(self, parts: Iterable[_Part]) -> None:
        self._parts = parts
        # A part, or the end: None, or the error that ended the thread.
        self._made: queue.SimpleQueue[
            tuple[Literal[True], _Part] | tuple[Literal[False], BaseException | None]
        ] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._turn = threading.Condition()
        self._paused = False
        self._making = False
        self._started = False

    def __iter__(self) -> Generator[_Part, None, None]:
        if self._started:
            raise RuntimeError("a ReadAhead is iterated once")
        self._started = True
        thread = threading.Thread(target=self._make, name="reflow-read-ahead", daemon=True)
        thread.start()
        try:
            while True:
                made = self._made.get()
                if made[0]:
                    yield made[1]
                elif made[1] is None:
                    return
                else:
                    raise made[1]
        finally:
            with self._turn:
                self._stop.set()
                self._turn.notify_all()
            thread.join()

    @contextmanager
    def paused(self) -> Iterator[None]:
        """While held, the thread makes no part (it finishes the one it is making first)."""
        try:
            with self._turn:
                self._paused = True
                self._turn.wait_for(lambda: not self._making)
            yield
        finally:
            with self._turn:
                self._paused = False
                self._turn.notify_all()

    def _make(self) -> None:
        """The thread: make each part unless paused, until the parts end or the caller stops."""
        parts = iter(self._parts)
        try:
            while True:
                with self._turn:
                    self._turn.wait_for(lambda: not self._paused or self._stop.is_set())
                    if self._stop.is_set():
                        return
                    self._making = True
                try:
                    part = next(parts)
                except StopIteration:
                    self._made.put((False, None))
                    return
                finally:
                    with self._turn:
                        self._making = False
                        self._turn.notify_all()
                self._made.put((True, part))
        except BaseException as err:  # noqa: BLE001 - raised again in the caller's thread
            self._made.put((False, err))
