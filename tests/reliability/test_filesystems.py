"""Run directories on a full, a read-only, and a WAL-less file system.

Each gives one clear line on stderr, exit code 2, no traceback, and nothing half-written:
every run the store knows has its manifest, every run folder is a run the store knows, and
no temporary file is left. Full and read-only file systems are small tmpfs mounts (the tests
skip, with the reason, where ``mount`` is not permitted); write permission is taken away
from a process running as ``nobody``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from reflow.running.commands import console
from reflow.running.dispatch import drive
from reflow.running.rundir.layout import STORE_NAME, RunLayout
from reflow.running.store import schema as store_schema
from reflow.running.store.schema import StoreConnection, configure
from reflow.running.store.sqlite import SqliteStore
from reflow.running.store.states import RunState
from tests.flows.demo_steps import wf as demo_wf
from tests.reliability.processes import is_alive, wait_until

FLOW = Path(__file__).resolve().parents[1] / "flows" / "demo_steps.py"


@pytest.fixture(autouse=True)
def local_mode(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("REFLOW_MODE", "local")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Callable[[str], Path]]:
    """Mounts a tmpfs of a given size (``"300k"``) for this test; unmounted afterwards."""
    mounted: list[Path] = []

    def mount(size: str) -> Path:
        if os.geteuid() != 0:
            pytest.skip("mounting a tmpfs needs root")
        point = tmp_path / f"tmpfs-{len(mounted)}"
        point.mkdir()
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(point)],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
        mounted.append(point)
        return point

    yield mount
    for point in mounted:
        subprocess.run(["umount", "-l", str(point)], check=False)


@pytest.fixture
def small_fs(tmpfs: Callable[[str], Path]) -> Path:
    """A 300 KiB tmpfs: a store, a manifest and little else fit."""
    return tmpfs("300k")


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    """``python demo_steps.py ARGS`` on the local executor."""
    return subprocess.run(
        [sys.executable, str(FLOW), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def assert_one_line_error(done: subprocess.CompletedProcess[str], *words: str) -> str:
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: ")
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def assert_whole(root: Path) -> None:
    """Every run the store knows has its manifest and every run folder is a known run."""
    assert not [p for p in root.rglob("*") if p.name.endswith(".tmp")]
    if not (root / STORE_NAME).exists():
        assert not list(root.glob("runs/*/manifest.json"))
        return
    store = SqliteStore.open(root)
    try:
        known = {run.run_id for run in store.runs()}
        assert store.integrity_problems() == []
    finally:
        store.close()
    folders = {p.name for p in (root / "runs").iterdir() if p.is_dir()}
    assert folders == known
    assert all(RunLayout(root, run_id).manifest.exists() for run_id in known)


def fill(folder: Path, free_pages: int = 0) -> list[Path]:
    """Fill the file system of ``folder`` with 4 KiB files, then free ``free_pages`` of them."""
    fillers: list[Path] = []
    while True:
        path = folder / f"filler-{len(fillers)}"
        try:
            with path.open("wb") as handle:
                handle.write(b"x" * 4096)
        except OSError:
            path.unlink(missing_ok=True)
            break
        fillers.append(path)
    for path in fillers[len(fillers) - free_pages :] if free_pages else []:
        path.unlink()
    return fillers


def test_full_disk_before_the_first_submit_leaves_nothing(small_fs: Path) -> None:
    fill(small_fs)
    root = small_fs / "new" / "runs"
    done = cli("submit", "--run-dir", str(root), "--count", "2")
    assert_one_line_error(done, "the file system is full", "free some space")
    assert not (small_fs / "new").exists()


def test_a_disk_filling_at_each_write_of_a_submit_leaves_whole_runs(small_fs: Path) -> None:
    failures: list[str] = []
    for free_pages in range(8):
        root = small_fs / f"rd{free_pages}"
        holder = SqliteStore.open(root, create=True)  # keeps the WAL index in place
        fillers = fill(small_fs, free_pages)
        done = cli("submit", "--run-dir", str(root), "--count", "2")
        holder.close()
        for path in fillers:
            path.unlink(missing_ok=True)
        if done.returncode == 0:
            break
        failures.append(assert_one_line_error(done))
        assert_whole(root)
        shutil.rmtree(root)  # each try starts with the same free space
    assert any("cannot write the run manifest" in line for line in failures), failures
    assert any("cannot use the store" in line for line in failures), failures
    assert done.returncode == 0, "a submit with enough free space succeeds"
    with SqliteStore.open(root) as store:
        pid = store.runs()[-1].dispatcher.pid
    if isinstance(pid, int):
        wait_until(lambda: not is_alive(pid), "the last dispatcher to end")


def test_read_only_file_system_gives_one_line_and_changes_nothing(
    tmpfs: Callable[[str], Path],
) -> None:
    small_fs = tmpfs("8m")
    root = small_fs / "runs"
    assert cli("submit", "--run-dir", str(root), "--count", "2", "--wait").returncode == 0
    before = sorted((p.name, p.stat().st_size) for p in root.rglob("*") if p.is_file())
    subprocess.run(["mount", "-o", "remount,ro", str(small_fs)], check=True)
    for args in (["submit", "--count", "2"], ["status"], ["runs"]):
        done = cli(*args, "--run-dir", str(root))
        assert_one_line_error(done, "read-only file system")
    done = cli("submit", "--run-dir", str(small_fs / "fresh"), "--count", "2")
    assert_one_line_error(done, "Read-only file system", "writable --run-dir")
    subprocess.run(["mount", "-o", "remount,rw", str(small_fs)], check=True)
    after = sorted((p.name, p.stat().st_size) for p in root.rglob("*") if p.is_file())
    assert after == before
    assert_whole(root)


def as_nobody(argv: list[str]) -> tuple[int, str]:
    """Run the ``reflow`` console in a forked child that runs as ``nobody``."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: drop root, send stderr into the pipe
        code = 70
        try:
            os.setgid(65534)
            os.setuid(65534)
            os.dup2(write, 2)
            sys.stderr = os.fdopen(2, "w", buffering=1)
            code = console.main(argv)
        finally:
            os._exit(code)
    os.close(write)
    with os.fdopen(read) as pipe:
        text = pipe.read()
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), text


def test_run_directory_without_write_permission_gives_one_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to run a process as nobody")
    base = Path(tempfile.mkdtemp(prefix="reflow-perm-", dir="/tmp"))  # tmp_path: root only
    monkeypatch.setenv("XDG_CONFIG_HOME", str(base / "config"))
    try:
        base.chmod(0o755)
        root = base / "runs"
        assert cli("submit", "--run-dir", str(root), "--count", "2", "--wait").returncode == 0
        subprocess.run(["chmod", "-R", "a-w", str(root)], check=True)
        for argv in (["status", "--run-dir", str(root)], ["runs", "--run-dir", str(root)]):
            code, stderr = as_nobody(argv)
            assert code == 2, stderr
            assert "Traceback" not in stderr
            assert stderr.count("\n") == 1
            assert "the run directory is not writable" in stderr, stderr
        subprocess.run(["chmod", "-R", "u+w", str(root)], check=True)
        assert_whole(root)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_without_shared_memory_the_store_falls_back_to_the_rollback_journal(
    tmp_path: Path,
) -> None:
    path = tmp_path / STORE_NAME
    # The unix-dotfile VFS has no shared memory, so sqlite refuses WAL there.
    connection = sqlite3.connect(
        f"file:{path}?vfs=unix-dotfile",
        uri=True,
        isolation_level=None,
        factory=StoreConnection,
    )
    connection.store_path = path
    configure(connection, path)
    assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    store = SqliteStore(connection, path)
    store.create_run(run_id="r1", workflow="w", executor="local", options={})
    store.finish_run("r1", RunState.SUCCEEDED, "rollback journal")
    assert [(r.run_id, r.message) for r in store.runs()] == [("r1", "rollback journal")]
    assert store.integrity_problems() == []
    store.close()
    assert not path.with_name(STORE_NAME + "-wal").exists()


def test_a_run_on_a_network_file_system_uses_the_rollback_journal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No NFS server here: the file system type is what store_schema reads from /proc/mounts.
    monkeypatch.setattr(store_schema, "_filesystem_type", lambda path: "nfs4")
    monkeypatch.setattr(drive, "launch", lambda layout, mode: None)  # driven in-process below
    run = demo_wf.submit(run_dir=tmp_path / "runs", count=3)
    assert drive.drive_locally(RunLayout(run.run_dir, run.run_id)) == "succeeded"
    with contextlib.closing(sqlite3.connect(run.run_dir / STORE_NAME)) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    assert not (run.run_dir / f"{STORE_NAME}-wal").exists()
    assert_whole(run.run_dir)


def test_an_unusable_wal_index_gives_one_line_and_leaves_no_store(tmp_path: Path) -> None:
    root = tmp_path / "runs"
    root.mkdir()
    (root / f"{STORE_NAME}-shm").mkdir()  # WAL's shared memory file cannot be created
    done = cli("submit", "--run-dir", str(root), "--count", "2")
    assert_one_line_error(done, "cannot use the store")
    assert sorted(p.name for p in root.iterdir()) == [f"{STORE_NAME}-shm"]
