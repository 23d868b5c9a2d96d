"""Store migrations from schema 2, 3 and 4, from the user's side: an upgrade reruns nothing.

The fixtures ``tests/migrations/stores/v2``, ``v3`` and ``v4`` are real stores of those schema
versions, each with two runs of ``tests/migrations/flow_v1.py`` (one succeeded with
``--count 4``, one failed on ``f1.nc`` with ``--count 2``), made by
``tests/migrations/make_store.py``. Each test works on a copy; the helpers are those of the
version-1 tests.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
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

STORES = Path(__file__).resolve().parent.parent / "migrations" / "stores"


@dataclass(frozen=True)
class Fixture:
    version: int
    succeeded: str
    failed: str
    attempts: int  # rows of the attempts table after the upgrade


FIXTURES = [
    Fixture(2, "migrated-20261203-160204-8fb953", "migrated-20261203-160205-b37991", 0),
    Fixture(3, "migrated-20261203-190226-a6b7b2", "migrated-20261203-190228-ce0b0f", 9),
    Fixture(4, "migrated-20261203-213109-d391bd", "migrated-20261203-213116-40ad2c", 9),
]


@pytest.fixture(params=FIXTURES, ids=lambda f: f"v{f.version}")
def stored(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Fixture, Path]:
    """A fixture and a copy of its run directory."""
    fixture: Fixture = request.param
    target = tmp_path / "run"
    shutil.copytree(STORES / f"v{fixture.version}", target)
    return fixture, target


def test_a_run_directory_migrates_keeping_every_row_that_means_the_same(
    stored: tuple[Fixture, Path], tmp_path: Path
) -> None:
    fixture, run_dir = stored
    store = run_dir / "reflow.sqlite"
    done = console(run_dir, "runs", "--json")
    assert done.returncode == 0, done.stderr
    listed = {run["run_id"]: (run["state"], run["instances"]) for run in json.loads(done.stdout)}
    assert listed == {fixture.succeeded: ("succeeded", 6), fixture.failed: ("failed", 3)}
    backup = run_dir / f"reflow.sqlite.bak-v{fixture.version}"
    assert (version(store), version(backup)) == (schema.SCHEMA_VERSION, fixture.version)
    fresh = SqliteStore.open(tmp_path / "fresh", create=True)
    fresh.close()
    assert tables(store) == tables(tmp_path / "fresh" / "reflow.sqlite")
    for table in ("runs", "outputs"):
        assert rows(store, table) == rows(backup, table)
    # planned tasks gain a task key, unknown for those planned before ('')
    assert rows(store, "tasks") == [(*r, "") for r in rows(backup, "tasks")]
    if fixture.version == 2:  # instances gain a back-off time and raised resources, both unset
        assert rows(store, "instances") == [(*r, None, None) for r in rows(backup, "instances")]
    else:
        assert rows(store, "instances") == rows(backup, "instances")
        assert rows(store, "attempts") == rows(backup, "attempts")
    assert len(rows(store, "attempts")) == fixture.attempts
    if fixture.version < 4:
        assert rows(backup, "batches")
    assert "batches" not in tables(store)  # what nothing read is gone


def test_the_migrated_runs_show_their_failure_and_the_cache_serves_a_resubmit(
    stored: tuple[Fixture, Path],
) -> None:
    fixture, run_dir = stored
    failed = status(run_dir, fixture.failed)
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
    keys = {task: key for run_id, task, *_rest, key in rows(run_dir / "reflow.sqlite", "tasks")
            if run_id == same}  # fmt: skip
    assert sorted(keys) == ["convert", "finalize", "prepare"]
    assert all(keys.values())  # the resubmit recorded each task's key ...
    again = submit(run_dir, "--count", "4")  # ... so the next one takes whole tasks
    assert counts(status(run_dir, again)) == counts(status(run_dir, same))
    assert calls(run_dir) == {}
    bigger = submit(run_dir, "--count", "5")
    assert counts(status(run_dir, bigger))["convert"] == {"cached": 4, "done": 1}
    assert calls(run_dir)["convert"] == ["f4.nc"]
