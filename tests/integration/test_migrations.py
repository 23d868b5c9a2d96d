"""Store migrations, from the user's side: a run directory of schema 1 opens with this reflow.

The fixture ``tests/migrations/stores/v1`` is a real store of schema version 1 with two runs of
``tests/migrations/flow_v1.py`` (one succeeded with ``--count 4``, one failed on ``f1.nc`` with
``--count 2``). Each test works on a copy of it. The flow's tasks append a line to
``<run_dir>/<task>.calls`` each time they run, so the counters prove what ran.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from reflow.definition.errors import StoreError
from reflow.running.store import migrations, schema
from reflow.running.store.sqlite import SqliteStore

HERE = Path(__file__).resolve().parent
FLOW = HERE.parent / "migrations" / "flow_v1.py"
FIXTURE = HERE.parent / "migrations" / "stores" / "v1"
SUCCEEDED = "migrated-20261203-130523-1c0215"
FAILED = "migrated-20261203-130524-d2ca79"
DEADLINE_S = 120


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    """A copy of the schema-1 run directory."""
    target = tmp_path / "run"
    shutil.copytree(FIXTURE, target)
    return target


def environment(tmp_path: Path, mode: str = "local") -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REFLOW_")}
    env.update(REFLOW_MODE=mode, XDG_CONFIG_HOME=str(tmp_path / "config"))
    return env


def console(run_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``reflow ARGS --run-dir RUN_DIR``: the console script, in a subprocess."""
    code = "import sys; from reflow.running.commands.console import main; sys.exit(main())"
    return _run([sys.executable, "-c", code, *args, "--run-dir", str(run_dir)], run_dir)


def flow(run_dir: Path, *args: str, mode: str = "local") -> subprocess.CompletedProcess[str]:
    """``python flow_v1.py ARGS --run-dir RUN_DIR``, in a subprocess."""
    return _run([sys.executable, str(FLOW), *args, "--run-dir", str(run_dir)], run_dir, mode)


def _run(
    argv: Sequence[str], run_dir: Path, mode: str = "local"
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv,
        cwd=run_dir.parent,
        env=environment(run_dir.parent, mode),
        capture_output=True,
        text=True,
        timeout=DEADLINE_S,
        check=False,
    )


def version(store: Path) -> int:
    db = sqlite3.connect(store)
    try:
        return int(db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()[0])
    finally:
        db.close()


def tables(store: Path) -> dict[str, str]:
    """Name -> SQL of every table and index of ``store``."""
    db = sqlite3.connect(store)
    try:
        rows = db.execute("SELECT name, sql FROM sqlite_master WHERE sql IS NOT NULL").fetchall()
    finally:
        db.close()
    return dict(rows)


def dump(store: Path) -> list[str]:
    """Every statement that rebuilds ``store``: its schema and all its rows."""
    db = sqlite3.connect(store)
    try:
        return list(db.iterdump())
    finally:
        db.close()


def rows(store: Path, table: str) -> list[tuple[Any, ...]]:
    db = sqlite3.connect(store)
    try:
        return db.execute(f"SELECT * FROM {table} ORDER BY 1, 2, 3").fetchall()
    finally:
        db.close()


def files(folder: Path) -> dict[str, str]:
    """Relative path -> SHA-256 of every file under ``folder``."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def calls(run_dir: Path) -> dict[str, list[str]]:
    """What each task of the flow logged, per ``<task>.calls`` file."""
    return {p.stem: p.read_text().split() for p in sorted(run_dir.glob("*.calls"))}


def status(run_dir: Path, run_id: str) -> dict[str, Any]:
    done = flow(run_dir, "status", run_id, "--json")
    assert done.returncode == 0, done.stderr
    data: dict[str, Any] = json.loads(done.stdout)
    return data


def counts(data: dict[str, Any]) -> dict[str, dict[str, int]]:
    return {task["task"]: task["counts"] for task in data["tasks"]}


def submit(run_dir: Path, *args: str) -> str:
    """Submit with ``--wait``; return the new run's id."""
    done = flow(run_dir, "submit", "--wait", *args)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout.split("submitted run ", 1)[1].split()[0]


def test_the_steps_lead_to_the_schema_version_of_this_reflow() -> None:
    assert migrations.LATEST == schema.SCHEMA_VERSION == 5
    assert version(FIXTURE / "reflow.sqlite") == 1
    assert version(FIXTURE.parent / "v2" / "reflow.sqlite") == 2
    assert version(FIXTURE.parent / "v3" / "reflow.sqlite") == 3
    assert version(FIXTURE.parent / "v4" / "reflow.sqlite") == 4


def test_a_v1_run_directory_lists_its_runs_migrated_with_a_backup(
    run_dir: Path, tmp_path: Path
) -> None:
    store = run_dir / "reflow.sqlite"
    before = dump(store)
    done = console(run_dir, "runs", "--json")
    assert done.returncode == 0, done.stderr
    listed = {run["run_id"]: (run["state"], run["instances"]) for run in json.loads(done.stdout)}
    assert listed == {SUCCEEDED: ("succeeded", 6), FAILED: ("failed", 3)}
    assert version(store) == schema.SCHEMA_VERSION
    backup = run_dir / "reflow.sqlite.bak-v1"
    assert version(backup) == 1
    assert dump(backup) == before
    assert "origin" not in tables(backup)["outputs"]
    assert "origin" in tables(store)["outputs"]
    # The migrated store has exactly the schema a new store gets, and keeps every row.
    fresh = SqliteStore.open(tmp_path / "fresh", create=True)
    fresh.close()
    assert tables(store) == tables(tmp_path / "fresh" / "reflow.sqlite")
    assert rows(store, "runs") == rows(backup, "runs")
    # Planned tasks gain a task key, unknown for those planned before.
    assert rows(store, "tasks") == [(*row, "") for row in rows(backup, "tasks")]
    assert rows(backup, "batches")
    assert "batches" not in tables(store)  # what nothing read is gone
    # Instances gain a back-off time and raised resources, both unset; no attempt is known.
    assert rows(store, "instances") == [(*row, None, None) for row in rows(backup, "instances")]
    assert rows(store, "attempts") == []
    # Every output was made in this run directory: none names another as its origin.
    assert rows(store, "outputs") == [(*row, "") for row in rows(backup, "outputs")]
    assert rows(backup, "outputs")


def test_status_of_the_migrated_runs_shows_their_states_and_the_failure(run_dir: Path) -> None:
    succeeded = status(run_dir, SUCCEEDED)
    assert succeeded["state"] == "succeeded"
    assert counts(succeeded) == {
        "prepare": {"done": 1},
        "convert": {"done": 4},
        "finalize": {"done": 1},
    }
    failed = status(run_dir, FAILED)
    assert failed["state"] == "failed"
    assert counts(failed) == {
        "prepare": {"done": 1},
        "convert": {"done": 1, "failed": 1},
        "finalize": {},
    }
    [failure] = failed["failures"]
    assert (failure["task"], failure["reason"]) == ("convert", "exception")
    assert [(e["element"], e["error"]) for e in failure["examples"]] == [
        (1, "ValueError: cannot convert f1.nc")
    ]
    table = flow(run_dir, "status", FAILED)
    assert table.returncode == 0, table.stderr
    assert "FAILED" in table.stdout
    assert "ValueError: cannot convert f1.nc" in table.stdout


def test_the_migrated_cache_serves_a_resubmit_and_a_bigger_one_runs_only_the_new_work(
    run_dir: Path,
) -> None:
    same = submit(run_dir, "--count", "4")
    assert counts(status(run_dir, same)) == {
        "prepare": {"cached": 1},
        "convert": {"cached": 4},
        "finalize": {"cached": 1},
    }
    assert calls(run_dir) == {}
    bigger = submit(run_dir, "--count", "5")
    # prepare's parameters changed, so it runs; its first four items are the old ones, so
    # only f4.nc converts; finalize gathers a new list and runs again.
    assert counts(status(run_dir, bigger)) == {
        "prepare": {"done": 1},
        "convert": {"cached": 4, "done": 1},
        "finalize": {"done": 1},
    }
    assert calls(run_dir) == {"prepare": ["x"], "convert": ["f4.nc"], "finalize": ["x"]}


def test_the_backup_holds_what_is_only_in_the_write_ahead_log(run_dir: Path) -> None:
    store = run_dir / "reflow.sqlite"
    writer = sqlite3.connect(store, isolation_level=None)
    try:
        writer.execute("PRAGMA journal_mode = wal")
        writer.execute("PRAGMA wal_autocheckpoint = 0")
        writer.execute("UPDATE runs SET message = 'only in the WAL' WHERE run_id = ?", (FAILED,))
        assert (run_dir / "reflow.sqlite-wal").stat().st_size > 0
        SqliteStore.open(run_dir).close()  # while the writer keeps the WAL from a checkpoint
    finally:
        writer.close()
    backup = run_dir / "reflow.sqlite.bak-v1"
    assert sorted(p.name for p in run_dir.glob("reflow.sqlite.bak-v1*")) == [backup.name]
    db = sqlite3.connect(backup)
    try:
        [(message,)] = db.execute("SELECT message FROM runs WHERE run_id = ?", (FAILED,))
    finally:
        db.close()
    assert message == "only in the WAL"
    assert version(backup) == 1


def test_two_processes_opening_a_v1_store_at_once_both_work_on_it_migrated(
    run_dir: Path,
) -> None:
    started = [
        subprocess.Popen(
            [sys.executable, str(FLOW), "runs", "--json", "--run-dir", str(run_dir)],
            cwd=run_dir.parent,
            env=environment(run_dir.parent),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    for process in started:
        out, err = process.communicate(timeout=DEADLINE_S)
        assert process.returncode == 0, err
        assert {run["run_id"] for run in json.loads(out)} == {SUCCEEDED, FAILED}
    assert version(run_dir / "reflow.sqlite") == schema.SCHEMA_VERSION
    assert version(run_dir / "reflow.sqlite.bak-v1") == 1


def test_two_connections_opening_a_v1_store_at_once_migrate_it_once(
    run_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ran: list[str] = []
    drop = migrations.STEPS[0]
    both_opening = threading.Barrier(2)

    def slow_drop(db: sqlite3.Connection) -> None:
        ran.append(threading.current_thread().name)
        threading.Event().wait(0.5)  # the other thread now waits for the write lock
        drop(db)

    monkeypatch.setattr(migrations, "STEPS", (slow_drop,))
    errors: list[BaseException] = []

    def open_store() -> None:
        both_opening.wait(timeout=10)
        try:
            SqliteStore.open(run_dir).close()
        except BaseException as err:  # noqa: BLE001 - reported by the assertion below
            errors.append(err)

    threads = [threading.Thread(target=open_store, name=f"opener-{i}") for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=DEADLINE_S)
    assert errors == []
    assert len(ran) == 1
    assert version(run_dir / "reflow.sqlite") == schema.SCHEMA_VERSION
    assert version(run_dir / "reflow.sqlite.bak-v1") == 1


def test_a_store_newer_than_this_reflow_is_refused_untouched(run_dir: Path) -> None:
    store = run_dir / "reflow.sqlite"
    db = sqlite3.connect(store)
    db.execute("UPDATE meta SET value = '99' WHERE key = 'schema'")
    db.commit()
    db.close()
    before = files(run_dir)
    for done in (console(run_dir, "runs"), flow(run_dir, "status", FAILED)):
        assert done.returncode == 2, done.stdout + done.stderr
        [line] = done.stderr.splitlines()
        assert "schema version 99" in line
        assert f"schema version {schema.SCHEMA_VERSION}" in line
        assert "upgrade reflow" in line
    assert files(run_dir) == before


def test_a_failing_step_leaves_the_store_at_version_1_and_unchanged(
    run_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(db: sqlite3.Connection) -> None:
        db.execute("ALTER TABLE no_such_table ADD COLUMN x TEXT")

    store = run_dir / "reflow.sqlite"
    before = dump(store)
    monkeypatch.setattr(migrations, "STEPS", (*migrations.STEPS, broken))
    monkeypatch.setattr(migrations, "LATEST", migrations.LATEST + 1)
    monkeypatch.setattr(schema, "SCHEMA_VERSION", migrations.LATEST)
    with pytest.raises(StoreError) as caught:
        SqliteStore.open(run_dir)
    message = str(caught.value)
    assert "\n" not in message
    assert f"from schema version 1 to {migrations.LATEST}" in message
    assert "no such table: no_such_table" in message
    assert str(run_dir / "reflow.sqlite.bak-v1") in message
    assert version(store) == 1
    assert dump(store) == before  # the first step's DROP TABLE was rolled back too
    assert dump(run_dir / "reflow.sqlite.bak-v1") == before
    monkeypatch.undo()
    SqliteStore.open(run_dir).close()
    assert version(store) == schema.SCHEMA_VERSION


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    """A 400 KiB tmpfs for this test, unmounted afterwards."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    point = tmp_path / "tmpfs"
    point.mkdir()
    mount = ["mount", "-t", "tmpfs", "-o", "size=400k", "tmpfs", str(point)]
    done = subprocess.run(mount, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    yield point
    subprocess.run(["umount", "-l", str(point)], check=False)


def test_no_room_for_the_backup_gives_one_line_and_leaves_the_store_at_version_1(
    small_fs: Path,
) -> None:
    run_dir = small_fs / "run"
    shutil.copytree(FIXTURE, run_dir)
    before = dump(run_dir / "reflow.sqlite")
    fillers: list[Path] = []
    while True:  # fill the file system, then free 48 KiB: about the store's size
        filler = small_fs / f"filler-{len(fillers)}"
        try:
            filler.write_bytes(b"x" * 4096)
        except OSError:
            filler.unlink(missing_ok=True)
            break
        fillers.append(filler)
    for filler in fillers[-12:]:
        filler.unlink()
    done = console(run_dir, "runs")
    assert done.returncode == 2, done.stdout + done.stderr
    [line] = done.stderr.splitlines()
    assert f"from schema version 1 to {schema.SCHEMA_VERSION}" in line
    assert "full" in line
    assert version(run_dir / "reflow.sqlite") == 1
    assert sorted(p.name for p in run_dir.iterdir()) == ["reflow.sqlite", "runs"]
    assert dump(run_dir / "reflow.sqlite") == before
    for filler in fillers[:-12]:
        filler.unlink()
    assert console(run_dir, "runs").returncode == 0
    assert version(run_dir / "reflow.sqlite") == schema.SCHEMA_VERSION


def test_a_dry_run_on_a_v1_run_directory_changes_nothing_in_it(run_dir: Path) -> None:
    before = files(run_dir)
    done = flow(run_dir, "submit", "--count", "4", mode="dry-run")
    assert done.returncode == 0, done.stdout + done.stderr
    # The cache hits are real: the dry run read the migrated copy of the v1 store.
    for line in ("prepare: 1 cached", "convert: 4 cached", "finalize: 1 cached"):
        assert line in done.stdout
    assert files(run_dir) == before
    assert version(run_dir / "reflow.sqlite") == 1
