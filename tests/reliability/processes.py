"""Process helpers of the reliability tests: find, kill and wait for dispatchers and workers.

Dispatchers and workers of a local run are not the test's children (the dispatcher detaches,
workers lead their own process groups), so they are found through the store and pid files.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from reflow.running.store.sqlite import SqliteStore

DEADLINE_S = 120.0


def is_alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie counts as gone)."""
    try:
        os.kill(pid, 0)
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (ProcessLookupError, PermissionError, OSError):
        return False
    return stat[stat.rfind(")") + 2 :].split()[0] != "Z"


def wait_until(predicate: Callable[[], Any], what: str, deadline_s: float = DEADLINE_S) -> None:
    """Poll ``predicate`` until it is true; fail after ``deadline_s``."""
    deadline = time.monotonic() + deadline_s
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def run_row(root: Path, run_id: str) -> Any:
    """The store's row of one run."""
    store = SqliteStore.open(root)
    try:
        return store.run(run_id)
    finally:
        store.close()


def dispatcher_pid(root: Path, run_id: str, since: float) -> int:
    """The pid of the detached dispatcher started at ``since`` or later, once it is recorded."""
    found: list[int] = []

    def recorded() -> bool:
        info = run_row(root, run_id).dispatcher
        if info.pid is not None and (info.started or 0.0) >= since:
            found.append(info.pid)
        return bool(found)

    wait_until(recorded, "the dispatcher to record its pid")
    return found[0]


def kill_detached(pid: int) -> bool:
    """SIGKILL a process that is not our child; True when it was alive to be killed."""
    alive = is_alive(pid)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return False
    wait_until(lambda: not is_alive(pid), f"process {pid} to die")
    return alive


def worker_pids(root: Path) -> list[int]:
    """The pids of every worker process (chunk) started in run directory ``root``."""
    return [
        int(json.loads(path.read_text())["pid"]) for path in root.glob("runs/*/logs/*/chunk-*.pid")
    ]


def kill_workers(root: Path) -> None:
    """SIGKILL the process group of every worker started in ``root`` and wait for the end."""
    pids = worker_pids(root)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
    wait_until(lambda: not any(is_alive(pid) for pid in pids), "workers to die")


def wait_for_workers(root: Path) -> None:
    """Wait until every worker process started in ``root`` has ended."""
    pids = worker_pids(root)
    wait_until(lambda: not any(is_alive(pid) for pid in pids), "worker processes to end")
