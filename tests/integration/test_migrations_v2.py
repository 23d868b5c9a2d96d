"""Store migrations from schema 2, from the user's side: automatic retries upgrade nothing away.

The fixture ``tests/migrations/stores/v2`` is a real store of schema version 2 with two runs of
``tests/migrations/flow_v1.py`` (one succeeded with ``--count 4``, one failed on ``f1.nc`` with
``--count 2``). Each test works on a copy of it; the helpers are those of the version-1 tests.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from reflow.running.store import schema
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

FIXTURE = Path(__file__).resolve().parent.parent / "migrations" / "stores" / "v2"
SUCCEEDED = "migrated-20261203-160204-8fb953"
FAILED = "migrated-20261203-160205-b37991"


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    """A copy of the schema-2 run directory."""
    target = tmp_path / "run"
    shutil.copytree(FIXTURE, target)
    return target


def test_a_v2_run_directory_migrates_keeping_every_row_and_knowing_no_attempts(
    run_dir: Path, tmp_path: Path
) -> None:
    store = run_dir / "reflow.sqlite"
    done = console(run_dir, "runs", "--json")
    assert done.returncode == 0, done.stderr
    listed = {run["run_id"]: (run["state"], run["instances"]) for run in json.loads(done.stdout)}
    assert listed == {SUCCEEDED: ("succeeded", 6), FAILED: ("failed", 3)}
    backup = run_dir / "reflow.sqlite.bak-v2"
    assert (version(store), version(backup)) == (schema.SCHEMA_VERSION, 2)
    fresh = SqliteStore.open(tmp_path / "fresh", create=True)
    fresh.close()
    assert tables(store) == tables(tmp_path / "fresh" / "reflow.sqlite")
    for table in ("runs", "tasks", "outputs"):
        assert rows(store, table) == rows(backup, table)
    assert "batches" not in tables(store)
    assert rows(store, "instances") == [(*row, None, None) for row in rows(backup, "instances")]
    assert rows(store, "attempts") == []


def test_the_migrated_runs_show_their_failure_and_the_cache_serves_a_resubmit(
    run_dir: Path,
) -> None:
    failed = status(run_dir, FAILED)
    assert failed["state"] == "failed"
    [failure] = failed["failures"]
    assert [(e["element"], e["error"]) for e in failure["examples"]] == [
        (1, "ValueError: cannot convert f1.nc")
    ]
    assert failed["retried"] == []
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
