"""Running: how the store looks up cached outputs by identity, in its own store or another's.

Shared by ``SqliteStore`` (cache hits, the makers of outputs) and ``ForeignStore`` (hits in
other run directories' stores). Reads only.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from typing import Any

_SCAN_ABOVE = 10_000
"""Above this many identities a task's outputs are scanned instead of looked up one by one."""


def select_outputs(
    db: sqlite3.Connection, task: str, identities: Sequence[str], columns: Sequence[str]
) -> list[tuple[Any, ...]]:
    """``(identity, *columns)`` of the outputs of ``task`` among ``identities``, in one query.

    A task without any output is answered from its index at once; a few identities are looked
    up by primary key; for many, reading the task's outputs in index order and filtering is
    several times faster than 100,000 random lookups.
    ``columns`` are names of ``outputs`` columns, never user text.
    """
    wanted = ", ".join(f"o.{column}" for column in columns)
    if db.execute("SELECT 1 FROM outputs WHERE task = ? LIMIT 1", (task,)).fetchone() is None:
        return []  # a task that never ran here (a first run): nothing to look up
    if len(identities) > _SCAN_ABOVE:
        chosen = set(identities)
        rows = db.execute(
            f"SELECT o.identity, {wanted} FROM outputs AS o WHERE o.task = ?",  # noqa: S608 - our columns
            (task,),
        )
        return [row for row in rows if row[0] in chosen]
    return db.execute(
        f"SELECT o.identity, {wanted} FROM json_each(?) AS j"  # noqa: S608 - our columns
        " JOIN outputs AS o ON o.identity = j.value",
        (json.dumps(list(identities)),),
    ).fetchall()
