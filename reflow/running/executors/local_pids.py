"""Running: pid files that let another process find and stop a local chunk. Keeps no state.

The local executor writes ``chunk-<batch>.<n>.pid`` next to each chunk's log when it starts
the chunk's process (which leads its own process group). A resumed dispatcher or ``cancel``
from the command line reads the file, checks that the pid still names *that* process (its
start time in ``/proc`` must match, so a recycled pid is never signalled) and signals the
group. This module only reads, writes and signals; it keeps no state.

It computes no folder: every path comes from its caller. The local executor puts a pid file
in the folder its ``BatchRequest`` names as ``log_dir`` (``RunLayout.logs_dir(task)``), and
looks for another instance's under ``run_root/logs/*/``.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from reflow.running.ranges import expand
from reflow.running.rundir.layout import write_atomic
from reflow.running.worker.command import WORKER_MODULE

"""Found in a chunk's command line when no start time can be compared."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ChunkProcess:
    """What a pid file records about one chunk's process."""

    pid: int
    started: float
    proc_start: int | None = None


def write_pid_file(path: Path, pid: int, started: float) -> None:
    """Record the chunk process ``pid`` (started at ``started``, epoch seconds) in ``path``."""
    record = {"pid": pid, "started": started, "proc_start": _proc_stat(pid)[1]}
    write_atomic(path, json.dumps(record) + "\n")


def read_pid_file(path: Path) -> ChunkProcess | None:
    """Return the record in ``path``, or None when it is missing or unreadable."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        proc_start = data.get("proc_start")
        return ChunkProcess(
            pid=int(data["pid"]),
            started=float(data["started"]),
            proc_start=int(proc_start) if proc_start is not None else None,
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def is_alive(record: ChunkProcess) -> bool:
    """True while the recorded process runs (not a zombie, not a recycled pid)."""
    try:
        os.kill(record.pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    state, proc_start = _proc_stat(record.pid)
    if state is None:  # gone since the signal check, or no /proc (not Linux) to ask
        return not Path("/proc/self/stat").exists()
    if state == "Z":
        return False
    if record.proc_start is not None:
        return proc_start == record.proc_start
    return WORKER_MODULE in _cmdline(record.pid)


def stop_groups(records: list[ChunkProcess], *, grace_s: float) -> None:
    """SIGTERM the process groups of live ``records``; SIGKILL those alive after ``grace_s``."""
    live = [r for r in records if is_alive(r)]
    for record in live:
        signal_group(record.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while live and time.monotonic() < deadline:
        time.sleep(0.02)
        live = [r for r in live if is_alive(r)]
    for record in live:
        signal_group(record.pid, signal.SIGKILL)


def signal_group(pid: int, signum: int) -> None:
    """Send ``signum`` to the process group led by ``pid``; a group already gone is fine."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signum)


def find_worker(*, run_id: str, batch: str, element: int) -> ChunkProcess | None:
    """The live worker process of run ``run_id`` and ``batch`` that runs ``element``.

    Found by its command line in ``/proc``: for a chunk whose dispatcher ended after
    starting it but before writing its pid file. None when there is no such process.
    """
    try:
        pids = [int(entry.name) for entry in Path("/proc").iterdir() if entry.name.isdigit()]
    except OSError:
        return None
    for pid in pids:
        argv = _argv(pid)
        if WORKER_MODULE not in argv or not _has(argv, "--run-id", run_id):
            continue
        if not _has(argv, "--batch", batch) or "--elements" not in argv:
            continue
        try:
            elements = expand(argv[argv.index("--elements") + 1])
        except (IndexError, ValueError):
            continue
        state, proc_start = _proc_stat(pid)
        if element in elements and state not in (None, "Z"):
            return ChunkProcess(pid=pid, started=time.time(), proc_start=proc_start)
    return None


def _has(argv: list[str], flag: str, value: str) -> bool:
    return any(pair == (flag, value) for pair in itertools.pairwise(argv))


def _argv(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return raw.decode(errors="replace").split("\0")


def _proc_stat(pid: int) -> tuple[str | None, int | None]:
    """The state letter and start time (clock ticks after boot) from ``/proc/<pid>/stat``."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None, None
    # The command name (field 2) is in parentheses and may hold spaces: split after it.
    fields = text[text.rfind(")") + 2 :].split()
    try:
        return fields[0], int(fields[19])
    except (IndexError, ValueError):
        return None, None


def _cmdline(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    return raw.replace(b"\0", b" ").decode(errors="replace")
