"""Store migrations from schema 3, from the user's side: the unread ``batches`` table goes.

The fixture ``tests/migrations/stores/v3`` is a real store of schema version 3 with two runs of
``tests/migrations/flow_v1.py`` (one succeeded with ``--count 4``, one failed on ``f1.nc`` with
``--count 2``), made by ``tests/migrations/make_store.py``. Each test works on a copy of it.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest

from reflow.running.store import migrations, schema
from reflow.running.store.sqlite import SqliteStore
from tests.integration.test_migrations import (
    calls,
    console,
    counts,
    rows,
    status,
    submit,
    tables,
    version,
)

FIXTURE = Path(__file__).resolve().parent.parent / "migrations" / "stores" / "v3"
SUCCEEDED = "migrated-20261203-190226-a6b7b2"
FAILED = "migrated-20261203-190228-ce0b0f"


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    """A copy of the schema-3 run directory."""
    target = tmp_path / "run"
    shutil.copytree(FIXTURE, target)
    return target


def test_the_frozen_v3_schema_is_the_one_the_fixture_has(tmp_path: Path) -> None:
    made = tmp_path / "v3.sqlite"
    db = sqlite3.connect(made)
    db.executescript(migrations.SCHEMA_V3)
    db.close()
    assert tables(made) == tables(FIXTURE / "reflow.sqlite")


def test_a_v3_run_directory_migrates_keeping_every_row_but_the_batches(
    run_dir: Path, tmp_path: Path
) -> None:
    store = run_dir / "reflow.sqlite"
    done = console(run_dir, "runs", "--json")
    assert done.returncode == 0, done.stderr
    listed = {run["run_id"]: (run["state"], run["instances"]) for run in json.loads(done.stdout)}
    assert listed == {SUCCEEDED: ("succeeded", 6), FAILED: ("failed", 3)}
    backup = run_dir / "reflow.sqlite.bak-v3"
    assert (version(store), version(backup)) == (schema.SCHEMA_VERSION, 3)
    fresh = SqliteStore.open(tmp_path / "fresh", create=True)
    fresh.close()
    assert tables(store) == tables(tmp_path / "fresh" / "reflow.sqlite")
    for table in ("runs", "tasks", "instances", "outputs", "attempts"):
        assert rows(store, table) == rows(backup, table)
    assert len(rows(store, "attempts")) == 9  # every submission of both runs is kept
    assert rows(backup, "batches")
    assert "batches" not in tables(store)


def test_the_migrated_runs_show_their_failure_and_the_cache_serves_a_resubmit(
    run_dir: Path,
) -> None:
    failed = status(run_dir, FAILED)
    assert failed["state"] == "failed"
    [failure] = failed["failures"]
    assert [(e["element"], e["error"]) for e in failure["examples"]] == [
        (1, "ValueError: cannot convert f1.nc")
    ]
    same = submit(run_dir, "--count", "4")
    assert counts(status(run_dir, same)) == {
        "prepare": {"cached": 1},
        "convert": {"cached": 4},
        "finalize": {"cached": 1},
    }
    assert calls(run_dir) == {}  # the upgrade reran nothing
    bigger = submit(run_dir, "--count", "5")
    assert counts(status(run_dir, bigger))["convert"] == {"cached": 4, "done": 1}
    assert calls(run_dir)["convert"] == ["f4.nc"]
