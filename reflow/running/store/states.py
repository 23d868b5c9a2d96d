"""Running: the instance and run states, and the one table of transitions the store makes.

The values are the strings stored in the ``state`` columns, so stores written by earlier
releases keep working. Every state name in ``reflow/running`` is spelled here; the store's
SQL builds its state lists from these enums with :func:`sql_list`. The planning layer sits
below the store and keeps its own sets of names (``FINISHED_STATES``, ``FAILED_STATES``,
``STOPPED_STATES`` in ``planning/plans.py``); a test checks they equal the sets here.
``JobState`` in ``executors/base.py`` is another concept (what a scheduler says about a job)
and happens to share some words.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping


class _StoredState(str, enum.Enum):
    """A state stored as its plain string: prints, formats and hashes like its value."""

    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, spec: str) -> str:
        return format(str(self.value), spec)

    def __hash__(self) -> int:
        return hash(self.value)


class InstanceState(_StoredState):
    """Where one element of one task in one run is."""

    READY = "ready"
    SUBMITTED = "submitted"
    DONE = "done"
    CACHED = "cached"
    FAILED = "failed"
    CANCELLED = "cancelled"
    BLOCKED = "blocked"


class RunState(_StoredState):
    """Where a run is."""

    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


ACTIVE = frozenset({InstanceState.READY, InstanceState.SUBMITTED})
"""Instance states that are not final: planned to run, or handed to an executor."""
FINISHED = frozenset({InstanceState.DONE, InstanceState.CACHED})
"""Instance states with an output."""
FAILED = frozenset({InstanceState.FAILED, InstanceState.CANCELLED})
"""Instance states that ended without an output; only a retry makes them ready again."""
STOPPED = FAILED | {InstanceState.BLOCKED}
"""Instance states that ended without an output: failed, cancelled, or blocked by one of those
upstream (a chain element whose upstream element failed; it has no identity)."""
FINAL = FINISHED | STOPPED
"""Instance states that change only through retry (or a replan that forgets them)."""
RUN_FINAL = frozenset({RunState.SUCCEEDED, RunState.FAILED, RunState.CANCELLED})
"""Run states that only a retry leaves."""


class Intent(enum.Enum):
    """Why the store changes an instance's state: one name per write method."""

    PERSIST_PLAN = "persist a plan"
    MARK_SUBMITTED = "mark submitted"
    FAIL_SUBMISSION = "the scheduler refused the batch"
    INGEST_RESULT = "ingest a result"
    FAIL_LOST = "a job ended without a result"
    REQUEUE_LOST = "requeue lost work"
    AUTO_RETRY = "resubmit a failed attempt on its own"
    ADOPT = "take a result another run of the run directory made"
    CANCEL = "cancel"
    RETRY = "retry"
    UNBLOCK = "retry forgets what a failure blocked"
    FORGET = "forget a task that retry replans"


_S = InstanceState
NEW: None = None
"""Stands for "no row": the state before a plan is persisted and after a task is forgotten."""

INSTANCE_TRANSITIONS: Mapping[
    Intent, tuple[frozenset[InstanceState | None], frozenset[InstanceState | None]]
] = {
    Intent.PERSIST_PLAN: (frozenset({NEW}), frozenset({_S.READY, _S.CACHED, _S.BLOCKED})),
    Intent.MARK_SUBMITTED: (frozenset({_S.READY}), frozenset({_S.SUBMITTED})),
    Intent.FAIL_SUBMISSION: (frozenset({_S.READY}), frozenset({_S.FAILED})),
    Intent.INGEST_RESULT: (frozenset({_S.SUBMITTED}), frozenset({_S.DONE, _S.FAILED})),
    Intent.FAIL_LOST: (frozenset({_S.SUBMITTED}), frozenset({_S.FAILED})),
    Intent.REQUEUE_LOST: (frozenset({_S.SUBMITTED}), frozenset({_S.READY})),
    Intent.AUTO_RETRY: (frozenset({_S.SUBMITTED}), frozenset({_S.READY})),
    Intent.ADOPT: (frozenset({_S.READY}), frozenset({_S.CACHED})),
    Intent.CANCEL: (frozenset(ACTIVE), frozenset({_S.CANCELLED})),
    Intent.RETRY: (frozenset(FAILED), frozenset({_S.READY})),
    Intent.UNBLOCK: (frozenset({_S.BLOCKED}), frozenset({NEW})),
    Intent.FORGET: (frozenset({*InstanceState, NEW}), frozenset({NEW})),
}
"""Intent -> (states an instance may be in, states it may move to)."""

RUN_TRANSITIONS: Mapping[Intent, tuple[frozenset[RunState], frozenset[RunState]]] = {
    Intent.INGEST_RESULT: (
        frozenset({RunState.RUNNING}),
        frozenset({RunState.SUCCEEDED, RunState.FAILED, RunState.CANCELLED}),
    ),
    Intent.CANCEL: (frozenset({RunState.RUNNING}), frozenset({RunState.CANCELLED})),
    Intent.RETRY: (frozenset(RUN_FINAL), frozenset({RunState.RUNNING})),
}
"""Intent -> (run states, run states after): settling a running run (after ingesting what
its instances did) ends it; cancel ends a running one; retry reopens a failed or cancelled
run, and a succeeded one only when it has something to rerun (``reopen_run``)."""


def allowed_instance_moves() -> frozenset[tuple[InstanceState | None, InstanceState | None]]:
    """Every ``(before, after)`` pair of instance states the table allows (None: no row)."""
    return frozenset(
        (before, after)
        for befores, afters in INSTANCE_TRANSITIONS.values()
        for before in befores
        for after in afters
        if before != after
    )


def sql_list(states: Iterable[_StoredState]) -> str:
    """States as a SQL list of string literals, ``'ready', 'submitted'``, in a stable order."""
    return ", ".join(sorted(f"'{state.value}'" for state in states))
