"""Opening a store tries its set-up again when sqlite answers "locked" at once.

Processes that open one store at once can meet while one of them changes the journal mode
or migrates it; sqlite then answers "database is locked" without waiting, where waiting
would deadlock. The set-up leaves nothing behind when it fails, so it is tried again.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from reflow.definition.errors import StoreError
from reflow.running.store import schema
from reflow.running.store.sqlite import SqliteStore


def failing_first(times: int, problem: str) -> Any:
    real = schema._configure
    calls = {"count": 0}

    def configure(db: sqlite3.Connection, path: Path) -> None:
        calls["count"] += 1
        if calls["count"] <= times:
            raise StoreError(f"cannot use the store {path}: {problem}") from (
                sqlite3.OperationalError(problem)
            )
        real(db, path)

    return configure, calls


def test_a_store_answering_locked_at_once_is_opened_on_a_later_try(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure, calls = failing_first(2, "database is locked")
    monkeypatch.setattr(schema, "_configure", configure)
    with SqliteStore.open(tmp_path, create=True) as store:
        assert store.runs() == []
    assert calls["count"] == 3


def test_other_problems_are_not_tried_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure, calls = failing_first(1, "disk I/O error")
    monkeypatch.setattr(schema, "_configure", configure)
    with pytest.raises(StoreError, match="disk I/O error"):
        SqliteStore.open(tmp_path, create=True)
    assert calls["count"] == 1


def test_locked_past_the_busy_timeout_gives_up_with_the_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure, calls = failing_first(10**6, "database is locked")
    monkeypatch.setattr(schema, "_configure", configure)
    monkeypatch.setattr(schema, "BUSY_TIMEOUT_MS", 300)
    with pytest.raises(StoreError, match="database is locked"):
        SqliteStore.open(tmp_path, create=True)
    assert calls["count"] > 1
