"""Dispatch: the two file locks of a run directory.

A run's dispatcher lock keeps one dispatcher per run; the run directory's share lock lets
one run at a time decide which work to take from, or leave to, the other runs. Both are
``flock`` locks on files named by ``RunLayout``, released by the kernel when a holder dies.
"""

from __future__ import annotations

import fcntl
import time
from collections.abc import Iterator
from contextlib import contextmanager

from reflow.running.rundir.layout import RunLayout, locked

_LOCK_POLL_S = 0.02


@contextmanager
def dispatcher_lock(layout: RunLayout, *, wait_s: float = 0.0) -> Iterator[bool]:
    """Hold the run's dispatcher lock; yields False when another dispatcher holds it.

    With ``wait_s`` the lock is tried again for that long before giving up.
    """
    layout.run.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + wait_s
    with layout.dispatcher_lock.open("a") as handle:
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    yield False
                    return
                time.sleep(_LOCK_POLL_S)
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextmanager
def share_lock(layout: RunLayout) -> Iterator[None]:
    """Hold the run directory's share lock, waiting for it: one run decides at a time."""
    with layout.share_lock.open("a") as handle, locked(handle.fileno()):
        yield
