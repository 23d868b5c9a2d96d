"""Running: the ``attempts`` table, one row per submission of an element. Store only.

The statements here run inside the transactions of the intent-named writes in ``writes.py``
(a submission adds rows, an ending closes them, a given-back attempt loses its row), so an
instance and its attempts always change together. ``element_attempts`` reads the history
that ``status`` shows and a final failure's message sums up.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from reflow.running.store.records import (
    ATTEMPT_COLUMNS,
    ELEMENT_PAIRS,
    Attempt,
    Ended,
    attempt_row,
)
from reflow.running.store.states import InstanceState

_CLOSE = (
    "UPDATE attempts SET state = ?, reason = ?, error = ?, ended = ? WHERE run_id = ?"
    " AND task = ? AND element = ? AND batch = ? AND state = ?"
)


def open_attempts(
    db: sqlite3.Connection,
    run_id: str,
    task: str,
    batch: str,
    *,
    resources: Mapping[str, int],
    submitted: float,
    begin: float | None,
) -> None:
    """Record the submission of ``batch``: a row per instance it holds, numbered after it.

    Run after the instances moved to ``submitted`` in ``batch`` (their ``attempts`` counts
    this one); one statement for the whole batch.
    """
    db.execute(
        "INSERT OR IGNORE INTO attempts (run_id, task, element, batch, attempt, job_id,"
        " resources, state, submitted, begin) SELECT run_id, task, element, batch, attempts,"
        " job_id, ?, ?, ?, ? FROM instances WHERE run_id = ? AND task = ? AND batch = ?",
        (json.dumps(dict(resources)), InstanceState.SUBMITTED.value, submitted, begin, run_id,
         task, batch),
    )  # fmt: skip


def close_attempts(db: sqlite3.Connection, run_id: str, ended: Iterable[Ended]) -> None:
    """Record how submitted attempts ended (done, failed, cancelled)."""
    db.executemany(
        _CLOSE,
        [
            (e.state.value, e.reason, e.error, e.ended, run_id, e.task, e.element, e.batch,
             InstanceState.SUBMITTED.value)
            for e in ended
        ],
    )  # fmt: skip


def close_staged_attempts(db: sqlite3.Connection, run_id: str) -> None:
    """Record how submitted attempts ended, from the rows staged in ``temp.staged_ends``."""
    db.execute(
        "UPDATE attempts SET (state, reason, error, ended) = (SELECT e.state, e.reason,"
        " e.error, e.ended FROM temp.staged_ends AS e WHERE e.task = attempts.task"
        " AND e.element = attempts.element) WHERE run_id = ?"
        " AND (task, element, batch) IN (SELECT task, element, batch FROM temp.staged_ends)"
        " AND state = ?",
        (run_id, InstanceState.SUBMITTED.value),
    )


def drop_attempts(
    db: sqlite3.Connection, run_id: str, rows: Iterable[tuple[str, int, str]]
) -> None:
    """Forget attempts that never started (``(task, element, batch)``): they are given back."""
    db.executemany(
        "DELETE FROM attempts WHERE run_id = ? AND task = ? AND element = ? AND batch = ?",
        [(run_id, task, element, batch) for task, element, batch in rows],
    )


def retried_attempts(db: sqlite3.Connection, run_id: str) -> dict[tuple[str, int], list[Attempt]]:
    """``(task, element) -> attempts`` of the run's elements submitted more than once."""
    # Candidates from the instances' own count (read through their primary key, like the
    # status counts), not from a scan that groups every attempt of the run.
    query = (
        f"SELECT {ATTEMPT_COLUMNS} FROM attempts WHERE run_id = ? AND (task, element) IN"  # noqa: S608 - our columns
        " (SELECT task, element FROM instances WHERE run_id = ? AND attempts > 1)"
        " ORDER BY task, element, submitted"
    )
    return _by_element(db.execute(query, (run_id, run_id)))


def resubmitted_elements(db: sqlite3.Connection, run_id: str, task: str) -> list[int]:
    """The elements of ``task`` submitted more than once in the run (a retry resets the count).

    One pass over the task's attempts in primary-key order.
    """
    query = (
        "SELECT element FROM attempts WHERE run_id = ? AND task = ?"
        " GROUP BY element HAVING count(*) > 1"
    )
    return [element for (element,) in db.execute(query, (run_id, task))]


def element_attempts(
    db: sqlite3.Connection, run_id: str, elements: Iterable[tuple[str, int]]
) -> dict[tuple[str, int], list[Attempt]]:
    """``(task, element) -> attempts`` of ``elements`` in submission order, in one query."""
    query = (
        f"SELECT {ATTEMPT_COLUMNS} FROM attempts"  # noqa: S608 - our columns
        f" WHERE run_id = ? AND (task, element) IN {ELEMENT_PAIRS}"
        " ORDER BY task, element, submitted"
    )
    return _by_element(db.execute(query, (run_id, json.dumps(list(elements)))))


def _by_element(rows: Iterable[Sequence[Any]]) -> dict[tuple[str, int], list[Attempt]]:
    found: dict[tuple[str, int], list[Attempt]] = {}
    for row in rows:
        attempt = attempt_row(row)
        found.setdefault((attempt.task, attempt.element), []).append(attempt)
    return found
