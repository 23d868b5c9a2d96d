"""Running: the store's writes of what jobs did: results, failures, lost and retried work.

Part of ``StoreWrites`` (see ``writes.py`` for the rules every write keeps): each method is one
transaction, moves instances only as ``states.INSTANCE_TRANSITIONS`` allows, and lands only
while an instance is still ``submitted`` in the batch that ran it, so a result read twice, or
a failure seen by two turns, changes the store once.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import TYPE_CHECKING

from reflow.running.store.attempts import close_attempts, close_staged_attempts, drop_attempts
from reflow.running.store.records import Ended, Retry
from reflow.running.store.states import InstanceState

if TYPE_CHECKING:  # the type only: the store does not load the bundle reader
    from reflow.running.rundir.bundles import Success

_S = InstanceState

SUCCESS_CHUNK = 34_000
"""Successes written by one transaction of ``ingest_successes`` (see docs/performance.md)."""

# How submitted instances ended is first staged in a temporary table, one row each; then one
# statement each moves the outputs, the attempts and the instances, found by their primary
# keys. A batch of 100,000 elements costs three statements, not 300,000. The statements avoid
# ``UPDATE ... FROM`` (sqlite 3.33), which the sqlite of older HPC systems lacks. The staged
# rows carry no identity: the outputs take the instance's own.
_STAGE = """
CREATE TEMP TABLE IF NOT EXISTS staged_ends (
    task TEXT NOT NULL, element INTEGER NOT NULL, batch TEXT NOT NULL, state TEXT NOT NULL,
    started REAL, ended REAL, reason TEXT, error TEXT, host TEXT, peak_rss_mb REAL, value TEXT,
    hash TEXT, PRIMARY KEY (task, element)
) WITHOUT ROWID"""
_STAGE_ENDED = "INSERT OR IGNORE INTO temp.staged_ends VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
_STAGE_DONE = (
    "INSERT OR IGNORE INTO temp.staged_ends (task, element, batch, started, ended, host,"  # noqa: S608 - state names from the enums
    f" peak_rss_mb, value, hash, state) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, '{_S.DONE.value}')"
)
_STAGED_OUTPUTS = (
    "INSERT OR REPLACE INTO outputs (identity, task, value, hash, created, run_id)"  # noqa: S608 - state names from the enums
    " SELECT i.identity, e.task, e.value, e.hash, ?, ? FROM temp.staged_ends AS e"
    " CROSS JOIN instances AS i ON i.run_id = ? AND i.task = e.task AND i.element = e.element"
    f" WHERE e.value IS NOT NULL AND i.batch = e.batch AND i.state = '{_S.SUBMITTED.value}'"
)
_STAGED_INSTANCES = (
    "UPDATE instances SET (state, started, ended, reason, error, host, peak_rss_mb) ="  # noqa: S608 - state names from the enums
    " (SELECT e.state, e.started, e.ended, e.reason, e.error, e.host, e.peak_rss_mb"
    " FROM temp.staged_ends AS e WHERE e.task = instances.task AND e.element = instances.element)"
    " WHERE run_id = ? AND (task, element, batch) IN"
    f" (SELECT task, element, batch FROM temp.staged_ends) AND state = '{_S.SUBMITTED.value}'"
)


def _write_ended(
    db: sqlite3.Connection,
    run_id: str,
    ended: Sequence[Ended],
    done: Iterable[Success] = (),
    pause: Callable[[], AbstractContextManager[object]] = nullcontext,
) -> int:
    """Outputs, attempts and instances of ``ended`` and ``done``, in the caller's transaction.

    An element given twice (a result read twice) is written as its first entry says, those
    of ``ended`` first. ``pause`` is held while ``done`` is staged. Returns how many
    instances moved.
    """
    db.execute(_STAGE)
    db.execute("DELETE FROM temp.staged_ends")
    db.executemany(
        _STAGE_ENDED,
        [
            (e.task, e.element, e.batch, e.state.value, e.started, e.ended, e.reason, e.error,
             e.host, e.peak_rss_mb, *(e.output or (None, None)))
            for e in ended
        ],
    )  # fmt: skip
    with pause():
        db.executemany(_STAGE_DONE, done)
    db.execute(_STAGED_OUTPUTS, (time.time(), run_id, run_id))
    close_staged_attempts(db, run_id)
    moved = db.execute(_STAGED_INSTANCES, (run_id,)).rowcount
    db.execute("DELETE FROM temp.staged_ends")
    return moved


class JobWrites:
    """What jobs did: one method per reason, each one transaction."""

    _db: sqlite3.Connection

    def _transaction(self) -> AbstractContextManager[sqlite3.Connection]:
        raise NotImplementedError  # ``StoreWrites`` gives it

    def ingest_results(self, run_id: str, ended: Sequence[Ended]) -> int:
        """Record what submitted instances did: outputs and final rows in one transaction.

        Only instances still ``submitted`` in the same batch change, and an output enters
        the cache only with its instance, so a result read twice is ingested once.

        Returns:
            How many instances moved.
        """
        if not ended:
            return 0
        with self._transaction() as db:
            return _write_ended(db, run_id, ended)

    def ingest_successes(
        self,
        run_id: str,
        parts: Iterable[Sequence[Success]],
        *,
        pause: Callable[[], AbstractContextManager[object]] = nullcontext,
    ) -> int:
        """Record successes read as columns (``Success``) as their parts come.

        The rows are written once about ``SUCCESS_CHUNK`` have come, each chunk in a
        transaction of its own, so that a caller that reads the next parts in a thread does
        so while sqlite writes, without Python's lock, and no write lock is held while parts
        are read (on a network file system, reading thousands of bundles can take longer
        than a ``cancel`` waits for the store). ``pause`` is held while rows are staged from
        Python, which takes that lock for every row. Only instances still ``submitted`` in
        the same batch change, as in ``ingest_results``, so a chunk written twice changes
        the store once; an element given twice in one part is written as its first row
        says.

        Returns:
            How many instances moved.
        """
        moved = 0
        chunk: list[Success] = []
        for part in parts:
            chunk += part
            if len(chunk) >= SUCCESS_CHUNK:
                moved += self._write_successes(run_id, chunk, pause)
                chunk = []
        return moved + self._write_successes(run_id, chunk, pause)

    def _write_successes(
        self,
        run_id: str,
        chunk: Sequence[Success],
        pause: Callable[[], AbstractContextManager[object]],
    ) -> int:
        """One chunk of ``ingest_successes``, in one transaction; none when it is empty."""
        if not chunk:
            return 0
        with self._transaction() as db:
            return _write_ended(db, run_id, (), chunk, pause)

    def fail_lost(self, run_id: str, ended: Sequence[Ended]) -> int:
        """Fail submitted instances whose job ended without a result; return how many."""
        if not ended:
            return 0
        with self._transaction() as db:
            return _write_ended(db, run_id, ended)

    def auto_retry(self, run_id: str, retries: Sequence[Retry]) -> int:
        """Failed attempts go out again on their own: their instances become ready.

        Each attempt is closed as failed with its reason; its instance keeps the failure's
        reason and error (what status shows until the next attempt starts), is not started
        before ``not_before``, and takes at least the raised ``resources``. Only instances
        still ``submitted`` in the attempt's batch move. Returns how many moved.
        """
        if not retries:
            return 0
        with self._transaction() as db:
            close_attempts(db, run_id, [r.failed for r in retries])
            cursor = db.executemany(
                "UPDATE instances SET state = ?, started = ?, ended = ?, reason = ?, error = ?,"
                " host = ?, peak_rss_mb = ?, not_before = ?, resources = ? WHERE run_id = ?"
                " AND task = ? AND element = ? AND batch = ? AND state = ?",
                [
                    (_S.READY.value, f.started, f.ended, f.reason, f.error, f.host,
                     f.peak_rss_mb, r.not_before, json.dumps(dict(r.resources)), run_id,
                     f.task, f.element, f.batch, _S.SUBMITTED.value)
                    for r in retries
                    for f in (r.failed,)
                ],
            )  # fmt: skip
            return cursor.rowcount

    def requeue_lost(self, run_id: str, lost: Sequence[tuple[str, int, str, bool]]) -> int:
        """Submitted instances whose job vanished become ready again; return how many.

        ``lost`` holds ``(task, element, batch, never started)``: an attempt that never
        started is given back.
        """
        if not lost:
            return 0
        with self._transaction() as db:
            drop_attempts(db, run_id, [(t, e, b) for t, e, b, unstarted in lost if unstarted])
            cursor = db.executemany(
                "UPDATE instances SET state = ?, attempts = attempts - ? WHERE run_id = ?"
                " AND task = ? AND element = ? AND batch = ? AND state = ?",
                [
                    (_S.READY.value, int(unstarted), run_id, task, element, batch,
                     _S.SUBMITTED.value)
                    for task, element, batch, unstarted in lost
                ],
            )  # fmt: skip
            return cursor.rowcount
