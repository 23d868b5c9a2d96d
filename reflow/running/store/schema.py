"""Running: the store's sqlite schema, its version, and how a connection is set up.

A new store is created from ``_SCHEMA``; an older one is migrated to it first (see
``migrations``, which holds how to change the schema). A newer one, or a file that is not a
reflow store, is refused untouched.

A sqlite error that the run directory causes (full, read-only, damaged, locked too long)
becomes a one-line ``StoreError`` saying what to fix; others are bugs and keep a traceback.

WAL is used where the file system supports it; on network file systems (NFS, Lustre, GPFS,
...) the rollback journal is used, since WAL needs shared memory between hosts.
"""

from __future__ import annotations

import os
import random
import sqlite3
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from reflow.definition.errors import StoreError
from reflow.running.store.migrations import migrate

SCHEMA_VERSION = 5
BUSY_TIMEOUT_MS = 60_000
CACHE_KB = 65_536
_NETWORK_FILESYSTEMS = ("nfs", "lustre", "gpfs", "cifs", "smb", "beegfs", "fuse", "9p", "ceph")
# Words in sqlite's messages for failures of the run directory rather than of reflow.
_ENVIRONMENTAL = frozenset({"full", "disk i/o", "readonly", "read-only", "locked", "busy"}) | {
    "unable to open",
    "malformed",
    "not a database",
}

# ``outputs.origin``, ``instances.not_before`` and ``instances.resources`` are written where
# sqlite's ALTER TABLE puts an added column, so that a migrated store and a new one hold the
# same text in ``sqlite_master``. ``instances.resources`` is the JSON of the resources an
# element's next submission takes at least (``mem_mb``, ``time_s``): those of its last
# attempt, raised when it is retried automatically; ``not_before`` is the time before which
# it is not started. ``attempts`` keeps one row per submission of an element.
# ``tasks.task_key`` is the key of a task planned whole (``identity.task_key``; '' for a chain
# planned element by element): a later run finds the task's identities by it.
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY, workflow TEXT NOT NULL, created REAL NOT NULL,
    state TEXT NOT NULL, executor TEXT NOT NULL, options TEXT NOT NULL,
    dispatcher TEXT NOT NULL DEFAULT '{}', updated REAL NOT NULL, message TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS tasks (
    run_id TEXT NOT NULL, task TEXT NOT NULL, plan TEXT NOT NULL, size INTEGER NOT NULL,
    error TEXT NOT NULL DEFAULT '', task_key TEXT NOT NULL DEFAULT '', PRIMARY KEY (run_id, task)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS instances (
    run_id TEXT NOT NULL, task TEXT NOT NULL, element INTEGER NOT NULL, identity TEXT NOT NULL,
    state TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, batch TEXT, job_id TEXT,
    submitted REAL, started REAL, ended REAL, reason TEXT, error TEXT, host TEXT,
    peak_rss_mb REAL, not_before REAL, resources TEXT, PRIMARY KEY (run_id, task, element)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS instances_state ON instances (run_id, state);
CREATE TABLE IF NOT EXISTS outputs (
    identity TEXT PRIMARY KEY, task TEXT NOT NULL, value TEXT NOT NULL, hash TEXT NOT NULL,
    created REAL NOT NULL, run_id TEXT NOT NULL
, origin TEXT NOT NULL DEFAULT '') WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS outputs_task ON outputs (task);
CREATE TABLE IF NOT EXISTS attempts (
    run_id TEXT NOT NULL, task TEXT NOT NULL, element INTEGER NOT NULL, batch TEXT NOT NULL,
    attempt INTEGER NOT NULL, job_id TEXT, resources TEXT NOT NULL DEFAULT '{}',
    state TEXT NOT NULL, reason TEXT, error TEXT, submitted REAL NOT NULL, begin REAL,
    ended REAL, PRIMARY KEY (run_id, task, element, batch)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS task_outputs (
    task TEXT NOT NULL, task_key TEXT NOT NULL, digest TEXT NOT NULL, changes INTEGER NOT NULL,
    PRIMARY KEY (task, task_key)
) WITHOUT ROWID;
"""

# Every change to a cached output (deleted, or replaced by a result made again) counts in
# ``meta`` ``outputs_changed``; a new output does not. ``task_outputs`` records the list hash
# of the output hashes of a task planned with ``task_key``, with that count when they were
# read: while it is unchanged, every one of those outputs is still cached, as it was.
# Triggers hold ``;`` in their bodies, so they are run one by one, not split from _SCHEMA.
TRIGGERS = (
    "CREATE TRIGGER IF NOT EXISTS outputs_deleted AFTER DELETE ON outputs BEGIN"
    " UPDATE meta SET value = value + 1 WHERE key = 'outputs_changed'; END",
    "CREATE TRIGGER IF NOT EXISTS outputs_updated AFTER UPDATE ON outputs BEGIN"
    " UPDATE meta SET value = value + 1 WHERE key = 'outputs_changed'; END",
)


def _filesystem_type(path: Path) -> str:
    """The type of the file system holding ``path`` (from /proc/mounts; "" if unknown)."""
    try:
        mounts = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return ""
    best, kind = "", ""
    target = str(path.resolve())
    for line in mounts:
        fields = line.split()
        if len(fields) >= 3:
            mount = fields[1].replace("\\040", " ")
            inside = target == mount or target.startswith(mount.rstrip("/") + "/")
            if inside and len(mount) > len(best):
                best, kind = mount, fields[2]
    return kind


def configure(db: sqlite3.Connection, path: Path) -> None:
    """Set journal mode and timeouts, check the schema version, and create or migrate the tables.

    A store of an older schema version is copied to ``<store>.bak-v<N>`` and migrated in the
    same write transaction that checked its version (see ``migrations``). Processes opening
    one store at once can meet while one changes its journal mode or migrates it; sqlite then
    answers "locked" at once where waiting would deadlock, so the whole set-up, which leaves
    nothing behind when it fails, is tried again until the busy timeout has passed.

    Raises:
        StoreError: The file is not a reflow store, or a newer reflow wrote it; nothing in
            it is changed then. Or its migration failed, which leaves it as it was.
    """
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            _configure(db, path)
        except StoreError as err:
            if not _locked(err) or time.monotonic() >= deadline:
                raise
        else:
            return
        time.sleep(random.uniform(0.02, 0.2))  # noqa: S311 - apart, so the next tries do not meet


def _locked(err: BaseException | None) -> bool:
    """Whether sqlite's "database is locked" (or busy) is behind ``err``."""
    while err is not None:
        if isinstance(err, sqlite3.OperationalError):
            message = str(err).lower()
            return "locked" in message or "busy" in message
        err = err.__cause__
    return False


def _configure(db: sqlite3.Connection, path: Path) -> None:
    db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    store_version(db, path)  # before the journal mode: a foreign or newer file stays as it is
    fs = _filesystem_type(path.parent)
    wanted = "delete" if fs.startswith(_NETWORK_FILESYSTEMS) else "wal"
    mode = db.execute(f"PRAGMA journal_mode = {wanted}").fetchone()[0]
    if str(mode).lower() != wanted:
        db.execute("PRAGMA journal_mode = delete")
    db.execute("PRAGMA synchronous = NORMAL")
    # A turn writes 100,000 rows in one transaction: with sqlite's 2 MB page cache the
    # tables' pages are evicted and read again, which doubles the time of such a write.
    db.execute(f"PRAGMA cache_size = -{CACHE_KB}")
    # Ended instances are staged in a temporary table (``job_writes``): keep it in memory,
    # not in a file under a node's small /tmp.
    db.execute("PRAGMA temp_store = MEMORY")
    # An INSERT OR REPLACE deletes the output it replaces; only with recursive triggers does
    # that deletion fire ``outputs_deleted`` and count as a change (see TRIGGERS).
    db.execute("PRAGMA recursive_triggers = ON")
    db.execute("BEGIN IMMEDIATE")
    try:
        found = store_version(db, path)  # again: another process may have migrated it
        if found is None:
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    db.execute(statement)
            for trigger in TRIGGERS:
                db.execute(trigger)
            db.execute("INSERT INTO meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),))
            db.execute("INSERT INTO meta VALUES ('outputs_changed', '0')")
        elif found < SCHEMA_VERSION:
            migrate(db, path, found)
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def check_version(db: sqlite3.Connection, path: Path) -> bool:
    """True for an empty file; raise unless it holds a reflow store this reflow can read."""
    return store_version(db, path) is None


def store_version(db: sqlite3.Connection, path: Path) -> int | None:
    """The schema version of the store; None for an empty file.

    Raises:
        StoreError: The file is not a reflow store, or has a newer version than this reflow.
    """
    tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if not tables:
        return None
    row = (
        db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
        if "meta" in tables
        else None
    )
    if row is None or not str(row[0]).isdigit() or int(row[0]) < 1:
        raise StoreError(
            f"{path} is not a reflow store (no schema version in it)",
            value=str(path),
            hint="pass the --run-dir a run was submitted with",
        )
    found = int(row[0])
    if found > SCHEMA_VERSION:
        raise StoreError(
            f"the store {path} has schema version {found}, newer than this "
            f"reflow's schema version {SCHEMA_VERSION}",
            value=found,
            hint="upgrade reflow to read this run directory",
        )
    return found


class StoreConnection(sqlite3.Connection):
    """A connection that turns what the run directory lacks into a one-line ``StoreError``.

    A full disk, a read-only or vanished file system, a damaged file or a lock held past the
    busy timeout are the user's to fix; any other sqlite error is a bug in reflow and keeps
    its traceback. Set ``store_path`` after connecting.
    """

    store_path: Path

    def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:
        try:
            return super().execute(sql, parameters)
        except sqlite3.Error as err:
            problem = store_problem(self.store_path, err)
            if problem is None:
                raise
            raise problem from err

    def executemany(self, sql: str, parameters: Iterable[Any], /) -> sqlite3.Cursor:
        try:
            return super().executemany(sql, parameters)
        except sqlite3.Error as err:
            problem = store_problem(self.store_path, err)
            if problem is None:
                raise
            raise problem from err


def store_problem(path: Path, err: sqlite3.Error) -> StoreError | None:
    """The ``StoreError`` for a sqlite error the user can fix; None for any other (a bug)."""
    message = str(err)
    if not any(word in message.lower() for word in _ENVIRONMENTAL):
        return None
    cause, hint = _diagnose(path.parent, message)
    return StoreError(f"cannot use the store {path}: {cause}", value=str(path), hint=hint)


def _diagnose(root: Path, message: str) -> tuple[str, str]:
    """What is wrong with the run directory ``root``, and how to fix it."""
    try:
        fs = os.statvfs(root)
    except OSError as err:
        return f"{message} ({err.strerror})", "check that the run directory still exists"
    if fs.f_flag & os.ST_RDONLY:
        return "the run directory is on a read-only file system", "use a writable --run-dir"
    if not os.access(root, os.W_OK):
        return "the run directory is not writable", "fix its permissions, or use another --run-dir"
    if "full" in message.lower() or fs.f_bavail == 0:
        return "the file system is full", "free some space there and try again"
    if "locked" in message.lower() or "busy" in message.lower():
        waited = f"another process held it for over {BUSY_TIMEOUT_MS // 1000} s"
        return f"{message} ({waited})", "try again when the other command has finished"
    if "malformed" in message.lower() or "not a database" in message.lower():
        return f"the file is damaged ({message})", "restore it from a copy, or use a new --run-dir"
    return message, "check that the run directory is writable and not full"
