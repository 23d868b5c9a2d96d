"""Concurrent writers and readers of one run directory's store.

Six ``submit``s start at the same moment into a run directory that does not exist yet (as
processes through the CLI, and as threads through ``Workflow.submit``), and ``status`` and
``runs`` poll in a loop while the six dispatchers write. No user sees "database is locked"
or any other error, every run ends as it should, and the store passes its integrity check.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from reflow.definition.errors import ReflowError
from reflow.running.commands.console import build_console_parser
from reflow.running.commands.handlers import run_store_command
from reflow.running.store import schema as store_schema
from reflow.running.store.sqlite import SqliteStore
from reflow.running.store.states import RunState
from tests.flows.chaos_steps import wf as chaos_wf
from tests.reliability.processes import wait_for_workers

FLOW = Path(__file__).resolve().parents[1] / "flows" / "chaos_steps.py"
WRITERS = 6
# What a poller may see before the first submit has recorded its run: user errors, no crash.
EARLY = ("is not a reflow run directory", "holds no runs yet")
DEADLINE_S = 120


@pytest.fixture(autouse=True)
def local_mode(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("REFLOW_MODE", "local")
    monkeypatch.setenv("REFLOW_LOCAL_SLOTS", "2")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))


def params(writer: int) -> list[str]:
    """Half the writers share their parameters (and so the cache), half do not."""
    return ["--count", str(60 + writer % 2), "--seconds", "0", "--fail-every", "0"]


class Poller(threading.Thread):
    """Runs ``status`` and ``runs`` in-process in a loop until stopped; keeps every error."""

    def __init__(self, root: Path) -> None:
        super().__init__(daemon=True)
        self.root = root
        self.stop = threading.Event()
        self.polls = 0
        self.errors: list[str] = []

    def run(self) -> None:
        parser = build_console_parser()
        while not self.stop.is_set():
            for argv in (
                ["status", "--run-dir", str(self.root)],
                ["runs", "--run-dir", str(self.root)],
            ):
                try:
                    run_store_command(parser.parse_args(argv), out=io.StringIO())
                except ReflowError as err:
                    if not any(early in str(err) for early in EARLY):
                        self.errors.append(str(err))
                except Exception as err:  # noqa: BLE001 - collected for the assertion
                    self.errors.append(f"{type(err).__name__}: {err}")
                self.polls += 1


def cli_poll(root: Path, command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "reflow.running.commands.console", command, "--run-dir", str(root)],
        capture_output=True,
        text=True,
        timeout=DEADLINE_S,
        check=False,
    )


def finish(root: Path, run_ids: list[str], poll: Callable[[], None]) -> dict[str, str]:
    """Poll until every run ended; return each run's state."""
    deadline = time.monotonic() + DEADLINE_S
    while True:
        poll()
        store = SqliteStore.open(root)
        try:
            states = {run.run_id: run.state.value for run in store.runs()}
        finally:
            store.close()
        if all(states.get(run_id) != "running" for run_id in run_ids):
            return states
        assert time.monotonic() < deadline, f"runs did not end: {states}"


def check_store(root: Path, run_ids: list[str]) -> None:
    store = SqliteStore.open(root)
    try:
        assert store.integrity_problems() == []
        for run_id in run_ids:
            counts = store.state_counts(run_id)
            work = counts["work"]
            assert work.get("done", 0) + work.get("cached", 0) == sum(work.values())
            assert sum(work.values()) in (60, 61)
    finally:
        store.close()


def test_six_concurrent_cli_submits_while_status_and_runs_poll(tmp_path: Path) -> None:
    root = tmp_path / "shared runs"
    poller = Poller(root)
    poller.start()
    submits = [
        subprocess.Popen(
            [sys.executable, str(FLOW), "submit", "--run-dir", str(root), *params(writer)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for writer in range(WRITERS)
    ]
    outcomes = [proc.communicate(timeout=DEADLINE_S) for proc in submits]
    for proc, (_out, err) in zip(submits, outcomes, strict=True):
        assert proc.returncode == 0, err
        assert err == "", err
    run_ids = [out.split("submitted run ", 1)[1].split()[0] for out, _ in outcomes]
    assert len(set(run_ids)) == WRITERS

    cli_errors: list[str] = []

    def poll_cli() -> None:
        for command in ("status", "runs"):
            done = cli_poll(root, command)
            if done.returncode != 0 or done.stderr:
                cli_errors.append(done.stderr)

    states = finish(root, run_ids, poll_cli)
    poller.stop.set()
    poller.join(timeout=DEADLINE_S)
    wait_for_workers(root)
    assert cli_errors == []
    assert poller.errors == []
    assert poller.polls > 20
    assert {states[run_id] for run_id in run_ids} == {"succeeded"}
    check_store(root, run_ids)
    print(f"{WRITERS} concurrent CLI submits, {poller.polls} in-process polls")


def test_six_concurrent_submits_from_threads(tmp_path: Path) -> None:
    root = tmp_path / "threads"
    barrier = threading.Barrier(WRITERS)

    def submit(writer: int) -> str:
        barrier.wait()
        count = int(params(writer)[1])
        return chaos_wf.submit(run_dir=root, count=count, seconds=0.0, fail_every=0).run_id

    with ThreadPoolExecutor(WRITERS) as pool:
        run_ids = list(pool.map(submit, range(WRITERS)))
    assert len(set(run_ids)) == WRITERS
    states = finish(root, run_ids, lambda: time.sleep(0.1))
    wait_for_workers(root)
    assert {states[run_id] for run_id in run_ids} == {"succeeded"}
    check_store(root, run_ids)
    assert len(os.listdir(root / "runs")) == WRITERS


@pytest.mark.parametrize("filesystem", ["ext4", "nfs4"], ids=["wal", "rollback-journal"])
def test_threads_writing_and_reading_one_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, filesystem: str
) -> None:
    # nfs4 makes the store use the rollback journal, where readers and writers block each other.
    monkeypatch.setattr(store_schema, "_filesystem_type", lambda path: filesystem)
    root = tmp_path / "store"
    SqliteStore.open(root, create=True).close()
    errors: list[str] = []
    done = threading.Event()

    def write(writer: int) -> None:
        store = SqliteStore.open(root)
        try:
            for number in range(25):
                run_id = f"w{writer}-{number}"
                store.create_run(run_id=run_id, workflow="w", executor="local", options={})
                identities = [f"{run_id}-{e}" for e in range(50)]
                store.persist_plan(run_id, "t", plan_id="p", identities=identities, cached=())
                store.finish_run(run_id, RunState.SUCCEEDED, "")
        except Exception as err:  # noqa: BLE001 - collected for the assertion
            errors.append(f"writer {writer}: {type(err).__name__}: {err}")
        finally:
            store.close()

    def read() -> None:
        while not done.is_set():
            try:
                store = SqliteStore.open(root)
                try:
                    for run in store.runs():
                        store.state_counts(run.run_id)
                finally:
                    store.close()
            except Exception as err:  # noqa: BLE001 - collected for the assertion
                errors.append(f"reader: {type(err).__name__}: {err}")

    readers = [threading.Thread(target=read) for _ in range(2)]
    for thread in readers:
        thread.start()
    with ThreadPoolExecutor(WRITERS) as pool:
        list(pool.map(write, range(WRITERS)))
    done.set()
    for thread in readers:
        thread.join(timeout=DEADLINE_S)
    assert errors == []
    store = SqliteStore.open(root)
    try:
        assert store.integrity_problems() == []
        assert len(store.runs()) == WRITERS * 25
        assert {run.state for run in store.runs()} == {"succeeded"}
        mode = store._db.execute("PRAGMA journal_mode").fetchone()[0]
    finally:
        store.close()
    assert mode == ("delete" if filesystem == "nfs4" else "wal")
