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
from collections.abc import Sequence
from contextlib import AbstractContextManager

from reflow.running.store.attempts import close_attempts, drop_attempts
from reflow.running.store.records import Ended, Retry
from reflow.running.store.states import InstanceState

_S = InstanceState

_ENDED = (
    "UPDATE instances SET state = ?, started = ?, ended = ?, reason = ?, error = ?, host = ?,"  # noqa: S608 - state names from the enums
    f" peak_rss_mb = ? WHERE run_id = ? AND task = ? AND element = ? AND batch = ?"
    f" AND state = '{_S.SUBMITTED.value}'"
)
_OUTPUT = (
    "INSERT OR REPLACE INTO outputs (identity, task, value, hash, created, run_id)"  # noqa: S608 - state names from the enums
    " SELECT ?, ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM instances WHERE run_id = ?"
    f" AND task = ? AND element = ? AND batch = ? AND state = '{_S.SUBMITTED.value}')"
)


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
        now = time.time()
        outputs = [
            (e.identity, e.task, *e.output, now, run_id, run_id, e.task, e.element, e.batch)
            for e in ended
            if e.output is not None
        ]
        with self._transaction() as db:
            db.executemany(_OUTPUT, outputs)
            close_attempts(db, run_id, ended)
            cursor = db.executemany(_ENDED, [e.row(run_id) for e in ended])
            return cursor.rowcount

    def fail_lost(self, run_id: str, ended: Sequence[Ended]) -> int:
        """Fail submitted instances whose job ended without a result; return how many."""
        if not ended:
            return 0
        with self._transaction() as db:
            close_attempts(db, run_id, ended)
            return db.executemany(_ENDED, [e.row(run_id) for e in ended]).rowcount

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
