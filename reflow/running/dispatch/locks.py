"""Dispatch: the two file locks of a run directory.

A run's dispatcher lock keeps one dispatcher per run; the run directory's share lock lets
one run at a time decide which work to take from, or leave to, the other runs. Both are
``flock`` locks on files named by ``RunLayout``, released by the kernel when a holder dies.
"""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager

from reflow.running.rundir.layout import RunLayout


@contextmanager
def dispatcher_lock(layout: RunLayout) -> Iterator[bool]:
    """Hold the run's dispatcher lock; yields False when another dispatcher holds it."""
    layout.run.mkdir(parents=True, exist_ok=True)
    with layout.dispatcher_lock.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextmanager
def share_lock(layout: RunLayout) -> Iterator[None]:
    """Hold the run directory's share lock, waiting for it: one run decides at a time."""
    with layout.share_lock.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
