"""Running: the store's reads across runs: earlier instances, origins, work others claim.

``why`` compares a run's instances with each element's most recent earlier instance; the
code-change warning counts cached outputs by the run that made them; ``logs`` finds the run
that made a cached element's output; the dispatcher asks which identities another running
run is already working on, so overlapping runs share work, how long a task's elements
took before (``pack="auto"``), and whether an earlier planning of a task with the same key is
still cached whole (a task hit). Reads only.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence

from reflow.running.store.outputs import select_outputs
from reflow.running.store.states import InstanceState, RunState


class StoreHistory:
    """The cross-run reads of ``SqliteStore``."""

    _db: sqlite3.Connection

    def claimed_elsewhere(self, run_id: str, identities: Sequence[str]) -> dict[str, str]:
        """``identity -> run id`` for those of ``identities`` another run is working on.

        Another running run of this run directory claims an identity when its instance is
        submitted, or ready in a run created before this one (the older run goes first, so two
        runs never wait for each other). Without another running run this is one small query.
        """
        runs = self._db.execute(
            "SELECT run_id, created FROM runs WHERE state = ?", (RunState.RUNNING.value,)
        ).fetchall()
        mine = next((created for other, created in runs if other == run_id), None)
        others = [(other, created) for other, created in runs if other != run_id]
        if not others or not identities or mine is None:
            return {}
        wanted = set(identities)
        found: dict[str, str] = {}
        for other, created in others:
            states = [InstanceState.SUBMITTED.value]
            if (created, other) < (mine, run_id):
                states.append(InstanceState.READY.value)
            marks = ",".join("?" * len(states))
            rows = self._db.execute(
                f"SELECT identity FROM instances WHERE run_id = ? AND state IN ({marks})",  # noqa: S608
                (other, *states),
            )
            found.update((identity, other) for (identity,) in rows if identity in wanted)
        return found

    def others_active(self, run_id: str) -> bool:
        """Whether another run of this run directory runs, or changed since ``run_id`` began.

        Only such a run can have made a result, or claimed work, that ``run_id``'s planning
        did not see; without one, a run shares nothing and skips the share lock.
        """
        row = self._db.execute(
            "SELECT count(*) FROM runs WHERE run_id != ?1 AND (state = ?2"
            " OR updated >= (SELECT created FROM runs WHERE run_id = ?1))",
            (run_id, RunState.RUNNING.value),
        ).fetchone()
        return bool(row[0])

    def shared_work(
        self, run_id: str, identities: Sequence[str]
    ) -> tuple[dict[str, str], dict[str, str]]:
        """``(done, claimed)`` for ``identities``, read in one snapshot of the store.

        ``done`` is ``identity -> output hash`` of those now in the cache, ``claimed`` is
        ``identity -> run id`` of those another run is working on (``claimed_elsewhere``).
        One read transaction holds both: a result ingested between two separate reads would
        be neither done in the first nor claimed in the second, and would run twice.
        """
        self._db.execute("BEGIN")
        try:
            done = self.output_hashes(identities)
            claimed = self.claimed_elsewhere(run_id, identities)
        finally:
            self._db.execute("COMMIT")
        return done, claimed

    def uncached_instances(self, run_id: str, task: str) -> list[tuple[int, str]]:
        """``(element, identity)`` of the run's instances of ``task`` not taken from the cache."""
        return list(
            self._db.execute(
                "SELECT element, identity FROM instances WHERE run_id = ? AND task = ?"
                " AND state != ? ORDER BY element",
                (run_id, task, InstanceState.CACHED.value),
            )
        )

    def earlier_instances(
        self, run_id: str, task: str, elements: Sequence[int]
    ) -> dict[int, tuple[str, str, str]]:
        """``element -> (run id, identity, state)``: each element's most recent earlier instance.

        Earlier means of a run of this run directory created before ``run_id``. The runs are
        read newest first, each by its primary key, until every element has one.
        """
        wanted = set(elements)
        found: dict[int, tuple[str, str, str]] = {}
        runs = self._db.execute(
            "SELECT t.run_id FROM tasks t JOIN runs r ON r.run_id = t.run_id WHERE t.task = ?"
            " AND t.run_id != ? AND r.created <= (SELECT created FROM runs WHERE run_id = ?)"
            " ORDER BY r.created DESC, r.run_id DESC",
            (task, run_id, run_id),
        ).fetchall()
        for (earlier,) in runs:
            if not wanted:
                break
            rows = self._db.execute(
                "SELECT element, identity, state FROM instances WHERE run_id = ? AND task = ?",
                (earlier, task),
            )
            for element, identity, state in rows:
                if element in wanted:
                    found[element] = (earlier, identity, state)
                    wanted.discard(element)
        return found

    def outputs_by_run(self, task: str) -> dict[str, int]:
        """``run id -> number of cached outputs of task`` by the run that made them."""
        rows = self._db.execute(
            "SELECT run_id, count(*) FROM outputs WHERE task = ? GROUP BY run_id", (task,)
        )
        return {str(run_id): int(count) for run_id, count in rows}

    def output_makers(self, task: str, identities: Sequence[str]) -> dict[str, str]:
        """``identity -> run id`` of the run that made each cached output among ``identities``.

        Outputs taken from another run directory (``cache_from``) are left out: their maker
        is a run of that directory.
        """
        rows = select_outputs(self._db, task, identities, ("run_id", "origin"))
        return {identity: run_id for identity, run_id, origin in rows if not origin}

    def output_origin(self, identity: str) -> tuple[str, int | None, str] | None:
        """``(run id, element, run directory)`` of the instance that made ``identity``'s output.

        The element is None when that run no longer holds the instance here (always so for
        an output taken from another run directory, named by the third field, "" for this
        one); the whole answer is None when nothing is cached for ``identity``.
        """
        row = self._db.execute(
            "SELECT o.run_id, min(i.element), o.origin FROM outputs o LEFT JOIN instances i"
            " ON i.run_id = o.run_id AND i.task = o.task AND i.identity = o.identity"
            " WHERE o.identity = ? GROUP BY o.run_id",
            (identity,),
        ).fetchone()
        return None if row is None else (str(row[0]), row[1], str(row[2] or ""))

    def output_hashes(self, identities: Sequence[str]) -> dict[str, str]:
        """``identity -> output hash`` for those of ``identities`` in the cache."""
        rows = self._db.execute(
            "SELECT o.identity, o.hash FROM json_each(?) AS j JOIN outputs AS o"
            " ON o.identity = j.value",
            (json.dumps(list(identities)),),
        )
        return dict(rows)

    def done_elapsed(self, task: str) -> list[float]:
        """Seconds each ``done`` element of ``task`` ran, over every run: one query.

        ``pack="auto"`` takes the median of these to choose how many elements an array task
        runs.
        """
        rows = self._db.execute(
            "SELECT ended - started FROM instances WHERE task = ? AND state = ?"
            " AND started IS NOT NULL AND ended IS NOT NULL",
            (task, InstanceState.DONE.value),
        )
        return [max(0.0, float(elapsed)) for (elapsed,) in rows]

    def outputs_changes(self) -> int:
        """How many times a cached output was deleted or replaced in this store, ever."""
        row = self._db.execute("SELECT value FROM meta WHERE key = 'outputs_changed'").fetchone()
        return int(row[0])

    def task_hit(
        self, run_id: str, task: str, key: str, changes: int
    ) -> tuple[str, int, list[str] | None, str | None] | None:
        """``(run, size, hashes, digest)`` when a planning of ``task`` with ``key`` is cached.

        The most recent other run that planned ``task`` with ``key`` (``identity.task_key``)
        holds, element by element, the identities a planning with that key computes. When
        the list hash of their output hashes was recorded (``record_task_outputs``) while
        ``changes`` outputs had changed (``outputs_changes``, read before), every output is
        still cached as it was: the answer gives that digest, and no hashes. Otherwise one
        query over that run's instances, joined with the outputs, checks that each still has
        one and gives their hashes in element order. None when one is missing.
        """
        if not key:
            return None
        row = self._db.execute(
            "SELECT t.run_id, t.size, d.digest FROM tasks t JOIN runs r ON r.run_id = t.run_id"
            " LEFT JOIN task_outputs d ON d.task = t.task AND d.task_key = t.task_key"
            " AND d.changes = ? WHERE t.task = ? AND t.task_key = ? AND t.error = ''"
            " AND t.run_id != ? ORDER BY r.created DESC, t.run_id DESC LIMIT 1",
            (changes, task, key, run_id),
        ).fetchone()
        if row is None:
            return None
        source, size, digest = str(row[0]), int(row[1]), row[2]
        if digest is not None:
            return source, size, None, str(digest)
        hashes = [digest for (digest,) in self._planned(source, task, "o.hash", missing=True)]
        if len(hashes) != size or None in hashes:
            return None
        return source, size, hashes, None

    def planned_hashes(self, run_id: str, task: str) -> list[str]:
        """The output hash of each instance of ``task`` in ``run_id`` that has one, in order."""
        return [digest for (digest,) in self._planned(run_id, task, "o.hash", missing=False)]

    def planned_outputs(self, run_id: str, task: str) -> list[tuple[str, str]]:
        """``(output JSON text, hash)`` of each instance of ``task`` in ``run_id``, in order.

        Every instance's identity is looked up, whatever its state (a task hit checked that
        each has an output); one without an output is left out.
        """
        return list(self._planned(run_id, task, "o.value, o.hash", missing=False))

    def _planned(self, run_id: str, task: str, columns: str, *, missing: bool) -> sqlite3.Cursor:
        """``columns`` of each output of ``task``'s instances in ``run_id``, by element.

        With ``missing``, an instance without an output gives a row of NULLs.
        """
        join = "LEFT JOIN" if missing else "JOIN"
        return self._db.execute(
            f"SELECT {columns} FROM instances i {join} outputs o ON o.identity = i.identity"  # noqa: S608 - our words
            " WHERE i.run_id = ? AND i.task = ? ORDER BY i.element",
            (run_id, task),
        )

    def task_keys(self, run_id: str) -> dict[str, str]:
        """``task -> task key`` of the run's planned tasks (``''`` where none was recorded)."""
        rows = self._db.execute("SELECT task, task_key FROM tasks WHERE run_id = ?", (run_id,))
        return {str(task): str(key) for task, key in rows}
