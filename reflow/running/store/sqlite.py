"""Running: ``SqliteStore``, the one source of truth for runs, instances and the cache index.

One sqlite file per run directory, shared by all its runs. Reads and writes are batched
(``executemany``, one transaction per dispatcher step) so that a 100,000-element task costs
a handful of statements. Elements never open the store (a worker does only for the turn
that its batch's last array task runs after them). WAL is used where the file system
supports it; on network file systems (NFS, Lustre, GPFS, ...) the rollback journal is used.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from reflow.definition.errors import StoreError, UsageError, suggest
from reflow.running.rundir.layout import STORE_NAME
from reflow.running.store.attempts import (
    element_attempts,
    resubmitted_elements,
    retried_attempts,
)
from reflow.running.store.history import StoreHistory
from reflow.running.store.outputs import select_outputs
from reflow.running.store.records import (
    ELEMENT_PAIRS,
    INSTANCE_COLUMNS,
    RUN_COLUMNS,
    Attempt,
    InstanceRow,
    RunRow,
    instance_row,
    run_row,
)
from reflow.running.store.schema import (
    BUSY_TIMEOUT_MS,
    StoreConnection,
    configure,
    store_problem,
)
from reflow.running.store.states import FINISHED, InstanceState, RunState, sql_list
from reflow.running.store.writes import StoreWrites


class SqliteStore(StoreHistory, StoreWrites):
    """The run directory's store: ``with SqliteStore.open(root) as store: ...``.

    Reads are here; every write is a method named by intent (``StoreWrites``).
    """

    def __init__(self, connection: sqlite3.Connection, path: Path) -> None:
        self._db = connection
        self.path = path

    @classmethod
    def open(cls, root: Path, *, create: bool = False) -> SqliteStore:
        """Open the store of run directory ``root``; create it when ``create`` is True.

        A store that cannot be created leaves nothing behind: neither the file nor the
        folders made for it.

        Raises:
            StoreError: When ``root`` is not a reflow run directory, is not writable or is
                full, or was written by a newer reflow.
        """
        path = root / STORE_NAME
        made: list[Path] | None = None  # when the store is new: the folders made for it
        if not path.exists():
            if not create:
                raise StoreError(
                    f"{root} is not a reflow run directory (no {STORE_NAME})",
                    value=str(root),
                    hint="pass the --run-dir a run was submitted with",
                )
            made = [p for p in (root, *root.parents) if not p.exists()]
            try:
                root.mkdir(parents=True, exist_ok=True)
            except OSError as err:
                raise StoreError(
                    f"cannot create run directory {root}: {err.strerror}",
                    value=str(root),
                    hint="choose a writable --run-dir",
                ) from err
        try:
            connection = sqlite3.connect(
                path,
                timeout=BUSY_TIMEOUT_MS / 1000,
                isolation_level=None,
                check_same_thread=False,
                factory=StoreConnection,
            )
        except sqlite3.Error as err:
            _remove_new(path, made)
            raise store_problem(path, err) or StoreError(f"cannot open {path}: {err}") from err
        connection.store_path = path
        try:
            configure(connection, path)
        except (sqlite3.Error, StoreError) as err:
            connection.close()
            _remove_new(path, made)
            if isinstance(err, StoreError):
                raise
            raise StoreError(
                f"cannot open the store {path}: {err}",
                value=str(path),
                hint="check that the run directory is writable and not full",
            ) from err
        return cls(connection, path)

    def close(self) -> None:
        """Close the connection."""
        self._db.close()

    def __enter__(self) -> SqliteStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # Runs

    def run(self, run_id: str) -> RunRow:
        """Return one run.

        Raises:
            UsageError: There is no such run (near matches are suggested).
        """
        row = self._db.execute(
            f"SELECT {RUN_COLUMNS} FROM runs WHERE run_id = ?",  # noqa: S608 - our columns
            (run_id,),
        ).fetchone()
        if row is None:
            known = [r.run_id for r in self.runs()]
            raise UsageError(
                f"no run {run_id!r} in {self.path.parent}",
                value=run_id,
                suggestion=suggest(run_id, known),
                hint="list the runs",
                command=("runs", "--run-dir", str(self.path.parent)),
            )
        return run_row(row)

    @classmethod
    def latest_in(cls, root: Path, workflow: str | None = None) -> str | None:
        """The newest run's id in run directory ``root``; None when it has no store yet.

        Nothing is created where there is no store.

        Raises:
            UsageError: The store holds no run (of ``workflow``) yet.
        """
        if not (root / STORE_NAME).exists():
            return None
        with cls.open(root) as store:
            return store.latest_run_id(workflow)

    def latest_run_id(self, workflow: str | None = None) -> str:
        """The newest run's id (of ``workflow`` only, when given).

        Raises:
            UsageError: The run directory holds no run (of ``workflow``) yet.
        """
        if workflow is None:
            row = self._db.execute(
                "SELECT run_id FROM runs ORDER BY created DESC, run_id DESC LIMIT 1"
            ).fetchone()
        else:
            row = self._db.execute(
                "SELECT run_id FROM runs WHERE workflow = ? ORDER BY created DESC, run_id DESC"
                " LIMIT 1",
                (workflow,),
            ).fetchone()
        if row is not None:
            return str(row[0])
        if workflow is not None and self._db.execute("SELECT 1 FROM runs LIMIT 1").fetchone():
            raise UsageError(
                f"{self.path.parent} holds no runs of workflow {workflow!r} yet",
                hint="submit one first, or name a run",
            )
        raise UsageError(f"{self.path.parent} holds no runs yet", hint="submit one first")

    def runs(self) -> list[RunRow]:
        """Every run, oldest first."""
        rows = self._db.execute(
            f"SELECT {RUN_COLUMNS} FROM runs ORDER BY created, run_id"  # noqa: S608
        ).fetchall()
        return [run_row(row) for row in rows]

    # Tasks and instances

    def planned_tasks(self, run_id: str) -> dict[str, tuple[str, int, str]]:
        """``task -> (plan id, element count, planning error)`` for the run's planned tasks."""
        rows = self._db.execute(
            "SELECT task, plan, size, error FROM tasks WHERE run_id = ?", (run_id,)
        )
        return {task: (plan, size, error) for task, plan, size, error in rows}

    def instances(
        self, run_id: str, task: str | None = None, *, element: int | None = None
    ) -> list[InstanceRow]:
        """The run's instances (of one task, and one element of it, when given)."""
        query = f"SELECT {INSTANCE_COLUMNS} FROM instances WHERE run_id = ?"  # noqa: S608
        args: tuple[Any, ...] = (run_id,)
        if task is not None:
            query += " AND task = ?"
            args = (run_id, task)
        if task is not None and element is not None:
            query += " AND element = ?"
            args = (run_id, task, element)
        return [
            instance_row(row) for row in self._db.execute(query + " ORDER BY task, element", args)
        ]

    def element_indices(self, run_id: str, task: str) -> list[int]:
        """The elements of ``task`` that have an instance in the run."""
        rows = self._db.execute(
            "SELECT element FROM instances WHERE run_id = ? AND task = ?", (run_id, task)
        )
        return [int(element) for (element,) in rows]

    def instances_in(self, run_id: str, states: Iterable[InstanceState]) -> list[InstanceRow]:
        """The run's instances in any of ``states``."""
        wanted = [state.value for state in states]
        marks = ",".join("?" * len(wanted))
        query = (
            f"SELECT {INSTANCE_COLUMNS} FROM instances"  # noqa: S608
            f" WHERE run_id = ? AND state IN ({marks}) ORDER BY task, element"
        )
        return [instance_row(row) for row in self._db.execute(query, (run_id, *wanted))]

    def submitted_elements(self, run_id: str) -> dict[tuple[str, str], list[int]]:
        """``(task, batch) -> elements`` of the run's submitted instances, without their rows."""
        rows = self._db.execute(
            "SELECT task, batch, json_group_array(element) FROM instances"
            " WHERE run_id = ? AND state = ? GROUP BY task, batch",
            (run_id, InstanceState.SUBMITTED.value),
        )
        return {(task, str(batch)): json.loads(elements) for task, batch, elements in rows}

    def instances_at(self, run_id: str, elements: Iterable[tuple[str, int]]) -> list[InstanceRow]:
        """The run's instances of ``elements`` (``(task, element)``), in one query."""
        query = (
            f"SELECT {INSTANCE_COLUMNS} FROM instances"  # noqa: S608 - our columns
            f" WHERE run_id = ? AND (task, element) IN {ELEMENT_PAIRS} ORDER BY task, element"
        )
        keys = json.dumps(list(elements))
        return [instance_row(row) for row in self._db.execute(query, (run_id, keys))]

    def attempts_of(
        self, run_id: str, elements: Iterable[tuple[str, int]]
    ) -> dict[tuple[str, int], list[Attempt]]:
        """``(task, element) -> attempts`` of ``elements``, oldest first, in one query."""
        return element_attempts(self._db, run_id, elements)

    def resubmitted(self, run_id: str, task: str) -> list[int]:
        """The elements of ``task`` submitted more than once in the run, retries included."""
        return resubmitted_elements(self._db, run_id, task)

    def retried_attempts(self, run_id: str) -> dict[tuple[str, int], list[Attempt]]:
        """``(task, element) -> attempts``, oldest first, of elements submitted more than once."""
        return retried_attempts(self._db, run_id)

    def earliest_start(self, run_id: str) -> float | None:
        """When the first ready instance held back by a retry's back-off may start, if any."""
        (found,) = self._db.execute(
            "SELECT min(not_before) FROM instances WHERE run_id = ? AND state = ?",
            (run_id, InstanceState.READY.value),
        ).fetchone()
        return None if found is None else float(found)

    def state_counts(self, run_id: str) -> dict[str, dict[str, int]]:
        """``task -> state -> count`` for the run."""
        counts: dict[str, dict[str, int]] = {}
        for task, state, count in self._db.execute(
            "SELECT task, state, count(*) FROM instances WHERE run_id = ? GROUP BY task, state",
            (run_id,),
        ):
            counts.setdefault(task, {})[state] = count
        return counts

    def queued_jobs(self, run_id: str) -> int:
        """How many scheduler jobs the run's submitted instances occupy.

        The elements of one packed array task share its job id and count once, as Slurm
        counts them against the user's submit limit.
        """
        count, without = self._db.execute(
            "SELECT count(DISTINCT job_id), count(*) - count(job_id) FROM instances"
            " WHERE run_id = ? AND state = ?",
            (run_id, InstanceState.SUBMITTED.value),
        ).fetchone()
        return int(count) + int(without)

    def cancel_mark(self, run_id: str) -> tuple[int, float | None]:
        """How many of the run's instances are cancelled, and when the latest was."""
        count, latest = self._db.execute(
            "SELECT count(*), max(ended) FROM instances WHERE run_id = ? AND state = ?",
            (run_id, InstanceState.CANCELLED.value),
        ).fetchone()
        return int(count), latest

    def instance_counts(self) -> dict[str, int]:
        """``run id -> number of instances`` for every run, in one query."""
        rows = self._db.execute("SELECT run_id, count(*) FROM instances GROUP BY run_id")
        return {str(run_id): int(count) for run_id, count in rows}

    def element_outputs(self, run_id: str, task: str) -> list[tuple[int, str, str]]:
        """``(element, output JSON text, output hash)`` of every finished element of a task."""
        return list(
            self._db.execute(
                "SELECT i.element, o.value, o.hash FROM instances i JOIN outputs o"  # noqa: S608
                " ON o.identity = i.identity WHERE i.run_id = ? AND i.task = ?"
                f" AND i.state IN ({sql_list(FINISHED)}) ORDER BY i.element",
                (run_id, task),
            )
        )

    def cached_outputs(self, task: str, identities: Sequence[str]) -> dict[str, tuple[str, str]]:
        """``identity -> (output JSON text, hash)`` for those of ``identities`` in the cache."""
        rows = select_outputs(self._db, task, identities, ("value", "hash"))
        return {identity: (value, digest) for identity, value, digest in rows}

    def integrity_problems(self) -> list[str]:
        """Sqlite's integrity check plus reflow's own consistency rules; empty when sound."""
        problems = [r[0] for r in self._db.execute("PRAGMA integrity_check") if r[0] != "ok"]
        checks = {
            "instance of an unknown run": "SELECT count(*) FROM instances i LEFT JOIN runs r"
            " ON r.run_id = i.run_id WHERE r.run_id IS NULL",
            "finished instance without output": "SELECT count(*) FROM instances i LEFT JOIN"  # noqa: S608 - state names from the enums
            f" outputs o ON o.identity = i.identity WHERE i.state IN ({sql_list(FINISHED)})"
            " AND o.identity IS NULL AND i.run_id IN (SELECT run_id FROM runs"
            f" WHERE state = '{RunState.SUCCEEDED.value}')",
            "instance of an unplanned task": "SELECT count(*) FROM instances i LEFT JOIN tasks t"
            " ON t.run_id = i.run_id AND t.task = i.task WHERE t.task IS NULL",
            "submitted instance without job": "SELECT count(*) FROM instances WHERE"  # noqa: S608 - state names from the enums
            f" state = '{InstanceState.SUBMITTED.value}' AND (job_id IS NULL OR batch IS NULL)",
        }
        for name, sql in checks.items():
            count = self._db.execute(sql).fetchone()[0]
            if count:
                problems.append(f"{count} {name}")
        return problems


def _remove_new(path: Path, made: Sequence[Path] | None) -> None:
    """Remove a store file that ``open`` just created, and the folders it made for it."""
    if made is None:
        return
    for suffix in ("", "-wal", "-shm", "-journal"):
        with contextlib.suppress(OSError):
            path.with_name(path.name + suffix).unlink()
    for folder in made:
        with contextlib.suppress(OSError):
            folder.rmdir()
