"""Ingest reads the next bundles in a thread while the store writes (``ReadAhead``)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from reflow.running.dispatch.read_ahead import ReadAhead

THREAD = "reflow-read-ahead"


def test_parts_come_in_order_made_by_another_thread() -> None:
    makers: list[str] = []

    def parts() -> Iterator[int]:
        for part in range(50):
            makers.append(threading.current_thread().name)
            yield part

    assert list(ReadAhead(parts())) == list(range(50))
    assert set(makers) == {THREAD}


def test_an_error_while_reading_is_raised_in_the_caller_after_the_parts_before() -> None:
    def parts() -> Iterator[int]:
        yield 1
        yield 2
        raise OSError("bundle vanished")

    got: list[int] = []
    with pytest.raises(OSError, match="bundle vanished"):
        got.extend(ReadAhead(parts()))
    assert got == [1, 2]


def test_a_caller_that_stops_early_stops_the_thread() -> None:
    made: list[int] = []
    resume = threading.Event()

    def parts() -> Iterator[int]:
        for part in range(1000):
            made.append(part)
            if part == 1:
                resume.wait(5)
            yield part

    ahead = iter(ReadAhead(parts()))
    assert next(ahead) == 0
    threading.Timer(0.2, resume.set).start()  # once the caller has stopped
    ahead.close()  # stops the thread and joins it
    assert made == [0, 1]
    assert THREAD not in {t.name for t in threading.enumerate()}


def test_no_part_is_made_while_paused() -> None:
    made: list[int] = []

    def parts() -> Iterator[int]:
        for part in range(1_000_000):
            made.append(part)
            yield part

    reader = ReadAhead(parts())
    ahead = iter(reader)
    assert next(ahead) == 0
    with reader.paused():
        before = len(made)
        time.sleep(0.1)
        assert len(made) == before
    deadline = time.monotonic() + 10
    while len(made) == before:  # and it goes on after
        assert time.monotonic() < deadline
        time.sleep(0.01)
    ahead.close()


def test_closed_while_paused_the_thread_ends() -> None:
    def parts() -> Iterator[int]:
        yield from range(1_000_000)

    reader = ReadAhead(parts())
    ahead = iter(reader)
    assert next(ahead) == 0
    closed = threading.Event()

    def close_while_paused() -> None:
        with reader.paused():
            ahead.close()
            closed.set()

    closer = threading.Thread(target=close_while_paused, daemon=True)
    closer.start()
    assert closed.wait(10), "closing while paused did not return"
    closer.join(10)
    assert THREAD not in {t.name for t in threading.enumerate()}


def test_pausing_after_the_last_part_and_iterating_twice() -> None:
    reader = ReadAhead(iter([1, 2]))
    ahead = iter(reader)
    assert list(ahead) == [1, 2]
    with reader.paused():  # the thread has ended: nothing to wait for
        pass
    with pytest.raises(RuntimeError, match="iterated once"):
        next(iter(reader))
