"""Running: every statement that changes the store, behind methods named by intent.

Each method is one transaction and moves instances only as ``states.INSTANCE_TRANSITIONS``
allows; each statement keeps a guard on the state it moves from (and on the batch, for what
a job did), so a dispatcher step repeated after a crash changes nothing twice and a result
is ingested at most once. Many rows go in one statement (``json_each``) or one
``executemany``, never one transaction per element.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from reflow.running.store.attempts import close_attempts, open_attempts
from reflow.running.store.job_writes import JobWrites
from reflow.running.store.records import INSTANCE_COLUMNS as _COLUMNS
from reflow.running.store.records import (
    DispatcherRecord,
    Ended,
    ImportedOutput,
    InstanceRow,
    instance_row,
)
from reflow.running.store.states import (
    ACTIVE,
    FAILED,
    InstanceState,
    RunState,
    sql_list,
)

_S = InstanceState
_CANCELLED_BY_USER = "cancelled by the user"
_UPSTREAM = "upstream"
"""The reason of a blocked instance; its error names the upstream element that failed."""


class StoreWrites(JobWrites):
    """The write half of ``SqliteStore``: one method per reason to change the store."""

    _db: sqlite3.Connection

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction: all of it lands, or none of it."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # Runs

    def create_run(
        self,
        *,
        run_id: str,
        workflow: str,
        executor: str,
        options: Mapping[str, Any],
        dispatcher: DispatcherRecord | None = None,
    ) -> None:
        """Record a new run in state ``running``."""
        now = time.time()
        record = dispatcher or DispatcherRecord()
        with self._transaction() as db:
            db.execute(
                "INSERT INTO runs (run_id, workflow, created, state, executor, options,"
                " dispatcher, updated) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    run_id,
                    workflow,
                    now,
                    RunState.RUNNING.value,
                    executor,
                    json.dumps(options),
                    record.to_json(),
                    now,
                ),
            )

    def finish_run(self, run_id: str, state: RunState, message: str) -> bool:
        """Move a running run to a final state; False when it was no longer running."""
        with self._transaction() as db:
            cursor = db.execute(
                "UPDATE runs SET state = ?, message = ?, updated = ? WHERE run_id = ?"
                " AND state = ?",
                (state.value, message, time.time(), run_id, RunState.RUNNING.value),
            )
            return cursor.rowcount == 1

    def set_dispatcher(self, run_id: str, record: DispatcherRecord) -> None:
        """Record what is known of the run's dispatcher."""
        with self._transaction() as db:
            db.execute(
                "UPDATE runs SET dispatcher = ?, updated = ? WHERE run_id = ?",
                (record.to_json(), time.time(), run_id),
            )

    # Planning and submitting

    def persist_plan(
        self,
        run_id: str,
        task: str,
        *,
        plan_id: str,
        identities: Sequence[str],
        cached: Collection[int],
        error: str = "",
        rejected: Sequence[str] = (),
        imported: Sequence[ImportedOutput] = (),
        chain: tuple[int, Sequence[int], Mapping[int, str]] | None = None,
        task_key: str = "",
    ) -> None:
        """Record a planned task: its instances, ``ready`` or ``cached`` (elements in ``cached``).

        Outputs in ``rejected`` (cache hits that no longer verify) leave the cache. Outputs in
        ``imported`` (cache hits found in other run directories) enter it, in the same
        transaction as the cached instances that use them, each with its ``origin``. A task
        that is already planned keeps its rows.

        A chain planned element by element gives ``chain``: its size, the elements that
        ``identities`` belong to, and its blocked elements with why (they get no identity).
        The task is recorded the first time; later, ``plan_id`` replaces its plan id.
        ``task_key`` is the key of a task planned whole (``identity.task_key``).
        """
        # One statement for every element: sqlite expands the JSON list itself, which is
        # several times faster than executemany over 100,000 Python tuples.
        size = len(identities)
        if chain is None:
            elements = json.dumps(
                ["c" + i if e in cached else "r" + i for e, i in enumerate(identities)]
            )
        else:
            size, indices, blocked = chain
            pairs = zip(indices, identities, strict=True)
            rows = {e: ("c" if e in cached else "r") + i for e, i in pairs}
            rows.update((e, "b" + why) for e, why in blocked.items())
            elements = json.dumps({str(e): text for e, text in rows.items()})
        with self._transaction() as db:
            db.executemany("DELETE FROM outputs WHERE identity = ?", [(i,) for i in rejected])
            if imported:
                db.executemany(
                    "INSERT OR IGNORE INTO outputs (identity, task, value, hash, created,"
                    " run_id, origin) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [(i.identity, task, i.value, i.hash, i.created, i.run_id, i.origin)
                     for i in imported],
                )  # fmt: skip
            _insert_task(db, run_id, task, plan_id, size, error, task_key)
            if chain is not None:
                db.execute(
                    "UPDATE tasks SET plan = ? WHERE run_id = ? AND task = ?",
                    (plan_id, run_id, task),
                )
            db.execute(
                "INSERT OR IGNORE INTO instances (run_id, task, element, identity, state,"  # noqa: S608 - state names from the enums
                " ended, reason, error) SELECT ?, ?, key, CASE substr(value, 1, 1) WHEN 'b'"
                " THEN '' ELSE substr(value, 2) END, CASE substr(value, 1, 1)"
                f" WHEN 'c' THEN '{_S.CACHED.value}' WHEN 'b' THEN '{_S.BLOCKED.value}'"
                f" ELSE '{_S.READY.value}' END, CASE substr(value, 1, 1) WHEN 'r' THEN NULL"
                " ELSE ? END, CASE substr(value, 1, 1) WHEN 'b' THEN ? END,"
                " CASE substr(value, 1, 1) WHEN 'b' THEN substr(value, 2) END FROM json_each(?)",
                (run_id, task, time.time(), _UPSTREAM, elements),
            )

    def persist_task_hit(
        self, run_id: str, task: str, *, plan_id: str, task_key: str, source: str, size: int
    ) -> None:
        """Record a task taken from the cache whole: the instances of run ``source``, cached.

        ``source`` planned ``task`` with the same ``task_key``, so its instances hold the
        identities of this planning, element by element, each with a cached output (see
        ``task_hit``). One statement copies them as ``cached`` instances of ``run_id``, as
        ``persist_plan`` would write them; a task that is already planned keeps its rows.
        """
        with self._transaction() as db:
            _insert_task(db, run_id, task, plan_id, size, "", task_key)
            db.execute(
                "INSERT OR IGNORE INTO instances (run_id, task, element, identity, state,"
                " ended) SELECT ?, task, element, identity, ?, ? FROM instances"
                " WHERE run_id = ? AND task = ?",
                (run_id, _S.CACHED.value, time.time(), source, task),
            )

    def record_task_outputs(self, digests: Sequence[tuple[str, str, str]], changes: int) -> None:
        """Record ``(task, task key, list hash of its output hashes)``, read at ``changes``.

        ``changes`` is ``outputs_changes`` as read before the hashes were: a planning that
        finds it unchanged may take the digest as it is (see ``task_hit``).
        """
        if not digests:
            return
        with self._transaction() as db:
            db.executemany(
                "INSERT OR REPLACE INTO task_outputs (task, task_key, digest, changes)"
                " VALUES (?, ?, ?, ?)",
                [(task, key, digest, changes) for task, key, digest in digests],
            )

    def mark_submitted(
        self,
        run_id: str,
        task: str,
        batch: str,
        jobs: Sequence[tuple[int, str]],
        *,
        resources: Mapping[str, int] | None = None,
        begin: float | None = None,
    ) -> None:
        """Ready instances handed to the executor: ``jobs`` holds ``(element, job id)``.

        Each element gets an ``attempts`` row with the ``resources`` it was given
        (``mem_mb``, ``time_s``) and the time Slurm may start it (``begin``).
        """
        now = time.time()
        used = json.dumps(dict(resources or {}))
        with self._transaction() as db:
            db.executemany(
                "UPDATE instances SET state = ?, batch = ?, job_id = ?,"
                " attempts = attempts + 1, submitted = ?, started = NULL, ended = NULL,"
                " reason = NULL, error = NULL, not_before = NULL, resources = ?"
                " WHERE run_id = ? AND task = ? AND element = ? AND state = ?",
                [
                    (_S.SUBMITTED.value, batch, job, now, used, run_id, task, element,
                     _S.READY.value)
                    for element, job in jobs
                ],
            )  # fmt: skip
            open_attempts(
                db, run_id, task, batch, resources=resources or {}, submitted=now, begin=begin
            )

    def fail_submission(
        self, run_id: str, task: str, elements: Sequence[int], reason: str, error: str
    ) -> None:
        """The scheduler refused a batch: its ready instances fail with its message."""
        now = time.time()
        with self._transaction() as db:
            db.executemany(
                "UPDATE instances SET state = ?, ended = ?, reason = ?, error = ?"
                " WHERE run_id = ? AND task = ? AND element = ? AND state = ?",
                [
                    (_S.FAILED.value, now, reason, error, run_id, task, e, _S.READY.value)
                    for e in elements
                ],
            )

    def adopt_cached(self, run_id: str, task: str, elements: Sequence[int]) -> int:
        """Ready instances whose identity got an output meanwhile become cached.

        Another run of this run directory did the same work first; this run takes its
        result instead of running it again. Returns how many were taken.
        """
        if not elements:
            return 0
        now = time.time()
        with self._transaction() as db:
            cursor = db.executemany(
                "UPDATE instances SET state = ?, ended = ? WHERE run_id = ? AND task = ?"
                " AND element = ? AND state = ?"
                " AND EXISTS (SELECT 1 FROM outputs o WHERE o.identity = instances.identity)",
                [(_S.CACHED.value, now, run_id, task, e, _S.READY.value) for e in elements],
            )
            return cursor.rowcount

    # Cancel and retry

    def cancel(self, run_id: str, task: str | None = None) -> list[InstanceRow]:
        """Cancel the run's active instances (of ``task`` only when given); return them.

        Without ``task`` a running run becomes ``cancelled``; a run that already ended keeps
        its state.
        """
        now = time.time()
        query = f"SELECT {_COLUMNS} FROM instances WHERE run_id = ?"  # noqa: S608 - our columns
        query += f" AND state IN ({sql_list(ACTIVE)})"
        args: tuple[Any, ...] = (run_id,)
        if task is not None:
            query, args = query + " AND task = ?", (run_id, task)
        with self._transaction() as db:
            active = [instance_row(row) for row in db.execute(query, args)]
            if task is None:
                db.execute(
                    "UPDATE runs SET state = ?, message = ?, updated = ? WHERE run_id = ?"
                    " AND state = ?",
                    (RunState.CANCELLED.value, _CANCELLED_BY_USER, now, run_id,
                     RunState.RUNNING.value),
                )  # fmt: skip
            db.executemany(
                "UPDATE instances SET state = ?, reason = ?, ended = ?, error = ?"  # noqa: S608 - state names from the enums
                " WHERE run_id = ? AND task = ? AND element = ?"
                f" AND state IN ({sql_list(ACTIVE)})",
                [
                    (_S.CANCELLED.value, _S.CANCELLED.value, now, _CANCELLED_BY_USER, run_id,
                     row.task, row.element)
                    for row in active
                ],
            )  # fmt: skip
            close_attempts(db, run_id, [_cancelled(row, now) for row in active if row.batch])
        return active

    def reset_for_retry(
        self,
        run_id: str,
        elements: Sequence[tuple[str, int]],
        replan: Collection[str] = (),
        unblock: Collection[str] = (),
    ) -> bool:
        """Retry: failed and cancelled ``elements`` become ready, ``replan`` is forgotten.

        Attempts go back to 0; the tasks in ``replan`` lose their rows and are planned
        again; the blocked instances of the tasks in ``unblock`` are forgotten, so that they
        are planned again as their upstream elements end; the run reopens; all in one
        transaction. A failed or cancelled run always
        reopens (it may hold tasks not planned yet); a succeeded run reopens only when
        there is something to rerun: an element that was still failed or cancelled, or a
        task to replan.

        Returns:
            Whether the run is ``running`` afterwards.
        """
        reopen_from = [RunState.FAILED, RunState.CANCELLED]
        with self._transaction() as db:
            reset = db.executemany(
                "UPDATE instances SET state = ?, attempts = 0, reason = NULL, error = NULL,"  # noqa: S608 - state names from the enums
                " ended = NULL, not_before = NULL WHERE run_id = ? AND task = ? AND element = ?"
                f" AND state IN ({sql_list(FAILED)})",
                [(_S.READY.value, run_id, task, element) for task, element in elements],
            )
            _forget(db, run_id, replan)
            unblocked = db.executemany(
                "DELETE FROM instances WHERE run_id = ? AND task = ? AND state = ?",
                [(run_id, task, _S.BLOCKED.value) for task in unblock],
            )
            if reset.rowcount > 0 or replan or unblocked.rowcount > 0:
                reopen_from.append(RunState.SUCCEEDED)
            db.execute(
                "UPDATE runs SET state = ?, message = '', updated = ? WHERE run_id = ?"  # noqa: S608 - state names from the enums
                f" AND state IN ({sql_list(reopen_from)})",
                (RunState.RUNNING.value, time.time(), run_id),
            )
            (state,) = db.execute("SELECT state FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        return bool(state == RunState.RUNNING.value)

    def forget_tasks(self, run_id: str, tasks: Collection[str]) -> None:
        """Delete the instances and plans of ``tasks``, so the next turn plans them again."""
        with self._transaction() as db:
            _forget(db, run_id, tasks)

    def forget_outputs(self, identities: Sequence[str]) -> None:
        """Remove outputs from the cache (they no longer verify)."""
        with self._transaction() as db:
            db.executemany("DELETE FROM outputs WHERE identity = ?", [(i,) for i in identities])


def _forget(db: sqlite3.Connection, run_id: str, tasks: Collection[str]) -> None:
    rows = [(run_id, task) for task in tasks]
    db.executemany("DELETE FROM instances WHERE run_id = ? AND task = ?", rows)
    db.executemany("DELETE FROM tasks WHERE run_id = ? AND task = ?", rows)


def _cancelled(row: InstanceRow, now: float) -> Ended:
    """How a cancelled instance's attempt ends."""
    return Ended.of(
        row, _S.CANCELLED, started=row.started, ended=now, reason=_S.CANCELLED.value,
        error=_CANCELLED_BY_USER,
    )  # fmt: skip


def _insert_task(
    db: sqlite3.Connection,
    run_id: str,
    task: str,
    plan_id: str,
    size: int,
    error: str,
    task_key: str,
) -> None:
    """Record a planned task; a task already planned in the run keeps its row."""
    db.execute(
        "INSERT OR IGNORE INTO tasks (run_id, task, plan, size, error, task_key)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (run_id, task, plan_id, size, error, task_key),
    )
