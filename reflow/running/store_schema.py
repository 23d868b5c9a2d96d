"""Running: the store's sqlite schema, its version, and how a connection is set up.

WAL is used where the file system supports it; on network file systems (NFS, Lustre, GPFS,
...) the rollback journal is used, since WAL needs shared memory between hosts.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from reflow.definition.errors import StoreError

SCHEMA_VERSION = 1
BUSY_TIMEOUT_MS = 60_000
_NETWORK_FILESYSTEMS = ("nfs", "lustre", "gpfs", "cifs", "smb", "beegfs", "fuse", "9p", "ceph")

_SCHEMA = """
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
    """Set journal mode and timeouts, create the tables, and check the schema version."""
    db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    fs = _filesystem_type(path.parent)
    wanted = "delete" if fs.startswith(_NETWORK_FILESYSTEMS) else "wal"
    mode = db.execute(f"PRAGMA journal_mode = {wanted}").fetchone()[0]
    if str(mode).lower() != wanted:
        db.execute("PRAGMA journal_mode = delete")
    db.execute("PRAGMA synchronous = NORMAL")
    db.execute("BEGIN IMMEDIATE")
    try:
        for statement in _SCHEMA.split(";"):
            if statement.strip():
                db.execute(statement)
        row = db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
        if row is None:
            db.execute("INSERT INTO meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),))
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
    if row is not None and int(row[0]) > SCHEMA_VERSION:
        raise StoreError(
            f"the store {path} has schema version {row[0]}, newer than this "
            f"reflow's {SCHEMA_VERSION}",
            value=int(row[0]),
            hint="upgrade reflow to read this run directory",
        )
