"""Running: migrations of the store's schema, one step per version; never used on a new store.

A run directory written by an earlier reflow opens with a newer one. When ``configure``
finds a store of schema version N older than ``SCHEMA_VERSION``, ``migrate`` first copies it
to ``reflow.sqlite.bak-vN`` beside it (with sqlite's backup API, so a WAL is not lost), then
runs the steps N -> N+1 -> ... -> current and sets the version, all inside the write
transaction that ``configure`` holds. Any error rolls the whole migration back, leaving the
store as it was, and becomes one ``StoreError`` naming both versions and the copy. Two
processes opening an old store at once migrate it once: the second one takes the write lock
after the first committed and finds the current version.

How to change the schema (to version N+1):

1. Change the DDL in ``schema.py`` to the new schema (a new store is created from it
   directly, never through the steps) and bump ``SCHEMA_VERSION`` to N+1.
2. Append a step to ``STEPS`` that turns a version-N store into exactly that schema, keeping
   the rows whose meaning did not change (the cache above all). A step only runs statements
   on the connection it gets: no ``BEGIN``/``COMMIT``, no files, no other connections. A
   ``CREATE TABLE`` in a step spells its columns out; it never reuses ``schema.py``'s
   text, which will move on.
3. Before changing anything, run ``python tests/migrations/make_store.py`` with the code of
   version N if ``tests/migrations/stores/vN`` does not exist yet: it keeps a real store of
   that version. Never regenerate an existing fixture.
4. Extend ``tests/integration/test_migrations.py`` to open the new fixture, and to check
   what the step keeps.

``SCHEMA_V1`` is the frozen schema of version 1, for the benchmark that builds a large old
store without an old reflow; the schema of every later version is the one its fixture holds.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

from reflow.definition.errors import StoreError

SCHEMA_V1 = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY, workflow TEXT NOT NULL, created REAL NOT NULL,
    state TEXT NOT NULL, executor TEXT NOT NULL, options TEXT NOT NULL,
    dispatcher TEXT NOT NULL DEFAULT '{}', updated REAL NOT NULL, message TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS tasks (
    run_id TEXT NOT NULL, task TEXT NOT NULL, plan TEXT NOT NULL, size INTEGER NOT NULL,
    error TEXT NOT NULL DEFAULT '', PRIMARY KEY (run_id, task)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS instances (
    run_id TEXT NOT NULL, task TEXT NOT NULL, element INTEGER NOT NULL, identity TEXT NOT NULL,
    state TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, batch TEXT, job_id TEXT,
    submitted REAL, started REAL, ended REAL, reason TEXT, error TEXT, host TEXT,
    peak_rss_mb REAL, PRIMARY KEY (run_id, task, element)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS instances_state ON instances (run_id, state);
CREATE TABLE IF NOT EXISTS outputs (
    identity TEXT PRIMARY KEY, task TEXT NOT NULL, value TEXT NOT NULL, hash TEXT NOT NULL,
    created REAL NOT NULL, run_id TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS outputs_task ON outputs (task);
CREATE TABLE IF NOT EXISTS batches (
    run_id TEXT NOT NULL, batch TEXT NOT NULL, task TEXT NOT NULL, state TEXT NOT NULL,
    scheduler_ids TEXT NOT NULL DEFAULT '[]', created REAL NOT NULL, message TEXT,
    PRIMARY KEY (run_id, batch)
) WITHOUT ROWID;
"""
"""The schema of version 1, as reflow 0.1 created it; ``meta`` holds ``('schema', '1')``."""


def _record_origins(db: sqlite3.Connection) -> None:
    """1 -> 2: give each output an ``origin``.

    ``outputs.origin`` names the other run directory an output was taken from
    (``cache_from``); every output of a version-1 store was made in its own, so it is ``''``.
    """
    db.execute("ALTER TABLE outputs ADD COLUMN origin TEXT NOT NULL DEFAULT ''")


def _record_attempts(db: sqlite3.Connection) -> None:
    """2 -> 3: instances get ``not_before`` and ``resources``; submissions get ``attempts``.

    Nothing is rerun: a version-2 instance has no back-off and no raised resources (both
    NULL), and its earlier submissions have no rows in ``attempts`` (status shows their
    count from ``instances.attempts``, without the resources each used).
    """
    db.execute("ALTER TABLE instances ADD COLUMN not_before REAL")
    db.execute("ALTER TABLE instances ADD COLUMN resources TEXT")
    db.execute(
        "CREATE TABLE attempts ("
        "\n    run_id TEXT NOT NULL, task TEXT NOT NULL, element INTEGER NOT NULL,"
        " batch TEXT NOT NULL,"
        "\n    attempt INTEGER NOT NULL, job_id TEXT, resources TEXT NOT NULL DEFAULT '{}',"
        "\n    state TEXT NOT NULL, reason TEXT, error TEXT, submitted REAL NOT NULL,"
        " begin REAL,"
        "\n    ended REAL, PRIMARY KEY (run_id, task, element, batch)"
        "\n) WITHOUT ROWID"
    )


def _drop_batches(db: sqlite3.Connection) -> None:
    """3 -> 4: the ``batches`` table goes.

    It recorded each submission with its scheduler ids, which nothing read: the ``attempts``
    table holds every submission of every element with its job id. Nothing is rerun.
    """
    db.execute("DROP TABLE batches")


def _record_task_keys(db: sqlite3.Connection) -> None:
    """4 -> 5: each planned task gets a ``task_key``; changes to outputs are counted.

    A task's key says what all its identities were computed from, so that a later run can
    take the whole task from the cache at once. A task planned before has none (``''``):
    nothing is rerun, its elements are found in the cache one by one as before, and the
    next run that plans it records its key. ``task_outputs`` (empty) and the count of
    changed outputs (``meta`` ``outputs_changed``, 0, kept by two triggers) let a later run
    trust the hashes of a task's outputs that it read before, while nothing changed.
    """
    db.execute("ALTER TABLE tasks ADD COLUMN task_key TEXT NOT NULL DEFAULT ''")
    db.execute(
        "CREATE TABLE task_outputs ("
        "\n    task TEXT NOT NULL, task_key TEXT NOT NULL, digest TEXT NOT NULL,"
        " changes INTEGER NOT NULL,"
        "\n    PRIMARY KEY (task, task_key)"
        "\n) WITHOUT ROWID"
    )
    for event, name in (("DELETE", "outputs_deleted"), ("UPDATE", "outputs_updated")):
        db.execute(
            f"CREATE TRIGGER {name} AFTER {event} ON outputs BEGIN"  # noqa: S608 - our words
            " UPDATE meta SET value = value + 1 WHERE key = 'outputs_changed'; END"
        )
    db.execute("INSERT INTO meta VALUES ('outputs_changed', '0')")


Step = Callable[[sqlite3.Connection], None]

STEPS: tuple[Step, ...] = (_record_origins, _record_attempts, _drop_batches, _record_task_keys)
"""``STEPS[N - 1]`` turns a store of schema version N into one of version N + 1."""

LATEST = len(STEPS) + 1
"""The version the steps lead to; ``schema.SCHEMA_VERSION`` must equal it."""


def backup_path(path: Path, version: int) -> Path:
    """Where the copy of store ``path`` at schema ``version`` is kept before migrating it."""
    return path.with_name(f"{path.name}.bak-v{version}")


def migrate(db: sqlite3.Connection, path: Path, found: int) -> None:
    """Copy the store of schema version ``found`` aside, then migrate it to ``LATEST``.

    Run inside the write transaction (``BEGIN IMMEDIATE``) that read ``found``; the caller
    commits, or rolls back on any error, which leaves the store as it was.

    Args:
        db: The store's connection, inside its write transaction.
        path: The store's file.
        found: The schema version the store has, older than ``LATEST``.

    Raises:
        StoreError: The copy could not be written, or a step failed (the message names both
            versions and the copy; the caller's rollback leaves the store unchanged).
    """
    copy = backup_path(path, found)
    _backup(path, copy, found)
    try:
        for step in STEPS[found - 1 :]:
            step(db)
        db.execute("UPDATE meta SET value = ? WHERE key = 'schema'", (str(LATEST),))
    except (sqlite3.Error, StoreError) as err:
        if isinstance(err, StoreError):
            cause, hint = err.problem, err.hint
        else:
            cause, hint = str(err), "use the run directory with the reflow that wrote it"
        raise StoreError(
            f"cannot migrate the store {path} from schema version {found} to {LATEST} ({cause});"
            f" it is left at version {found}, and a copy of it is in {copy}",
            value=str(path),
            hint=hint,
        ) from err


def _backup(path: Path, copy: Path, found: int) -> None:
    """Copy the committed store to ``copy`` (one file, rollback journal), atomically.

    A second connection reads it: sqlite's backup cannot read through a connection that holds
    the write transaction, and the write lock still lets readers see the committed state.
    """
    partial = copy.with_name(copy.name + ".partial")
    try:
        source = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            target = sqlite3.connect(partial)
            try:
                source.backup(target)
                target.execute("PRAGMA journal_mode = delete")
            finally:
                target.close()
        finally:
            source.close()
        partial.replace(copy)
    except (sqlite3.Error, OSError) as err:
        partial.unlink(missing_ok=True)
        raise StoreError(
            f"cannot migrate the store {path} from schema version {found} to {LATEST}:"
            f" copying it to {copy} failed ({err}); nothing was changed",
            value=str(path),
            hint="free some space in the run directory and try again",
        ) from err
