"""Running: the stores of other run directories, read for their cached outputs; never written.

A run may take cached outputs from other run directories (``cache_from``). Their stores
belong to other runs, possibly of another reflow: they are opened without ``configure``,
so they are never migrated, never switched to another journal mode and never written
(``PRAGMA query_only``). A store of an older schema version is read as it is (the columns
read here exist in every version); a newer one, or a file that is not a reflow store, is
refused.

A read-write connection that refuses writes is used rather than sqlite's ``mode=ro``: a
read-only connection cannot remove the ``-wal`` and ``-shm`` files it makes beside a WAL
store, and leaves them behind in the other run directory; this one removes them on close,
as any reader does. Where the file cannot be written, sqlite opens it read-only by itself.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path

from reflow.definition.errors import StoreError, UsageError
from reflow.running.rundir.layout import STORE_NAME
from reflow.running.store.outputs import select_outputs
from reflow.running.store.records import ImportedOutput
from reflow.running.store.schema import BUSY_TIMEOUT_MS, StoreConnection, store_version

_PARAM = "cache_from"
_HINT = "name a run directory that a run was submitted with"


class ForeignStore:
    """Another run directory's store, read-only: ``with ForeignStore.open(root) as store:``."""

    def __init__(self, connection: sqlite3.Connection, root: Path) -> None:
        self._db = connection
        self.root = root

    @classmethod
    def open(cls, root: Path) -> ForeignStore:
        """Open the store of run directory ``root`` to read its cached outputs.

        Raises:
            UsageError: ``root`` does not exist, is not a folder, holds no reflow store, or
                holds a store this reflow cannot read (not a reflow store, damaged, or of a
                newer schema version). The message names ``root``.
        """
        if not root.exists():
            raise _refused(root, "it does not exist")
        if not root.is_dir():
            raise _refused(root, "it is a file, not a run directory")
        path = root / STORE_NAME
        if not path.is_file():
            raise _refused(root, f"it is not a reflow run directory (no {STORE_NAME})")
        try:
            connection = sqlite3.connect(
                f"{path.resolve().as_uri()}?mode=rw",
                uri=True,
                timeout=BUSY_TIMEOUT_MS / 1000,
                isolation_level=None,
                check_same_thread=False,
                factory=StoreConnection,
            )
        except sqlite3.Error as err:
            raise _refused(root, f"its store cannot be opened ({err})") from err
        connection.store_path = path
        try:
            connection.execute("PRAGMA query_only = ON")
            store_version(connection, path)
        except (sqlite3.Error, StoreError) as err:
            connection.close()
            if isinstance(err, StoreError) and "newer" in err.problem:
                raise _refused(root, err.problem, hint=err.hint) from err
            cause = err.problem if isinstance(err, StoreError) else str(err)
            raise _refused(root, cause) from err
        return cls(connection, root)

    def close(self) -> None:
        """Close the connection."""
        self._db.close()

    def __enter__(self) -> ForeignStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def cached_outputs(self, task: str, identities: Sequence[str]) -> dict[str, ImportedOutput]:
        """The outputs of ``task`` among ``identities`` found here, in one query, by identity."""
        rows = select_outputs(self._db, task, identities, ("value", "hash", "created", "run_id"))
        origin = str(self.root)
        return {
            identity: ImportedOutput(
                identity=identity,
                value=value,
                hash=digest,
                created=created,
                run_id=run_id,
                origin=origin,
            )
            for identity, value, digest, created, run_id in rows
        }


def _refused(root: Path, problem: str, *, hint: str | None = None) -> UsageError:
    return UsageError(
        f"cannot take cached results from {root}: {problem}",
        param=_PARAM,
        value=str(root),
        hint=hint or _HINT,
    )
