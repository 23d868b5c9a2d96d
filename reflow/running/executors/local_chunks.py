"""Running: one local chunk's bookkeeping and per-element states. Starts no process.

A chunk is one worker process for some elements of a batch. What the local executor knows
about it (queued, started, exit status, cancelled, the element logs it found before the
start) is turned here into one ``JobStatus`` per element. Nothing here starts a process.
"""

from __future__ import annotations

import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from reflow.running.executors.base import (
    BatchRequest,
    FailureReason,
    JobState,
    JobStatus,
    how_it_ended,
)
from reflow.running.rundir.element_logs import HEADER
from reflow.running.rundir.layout import log_name

PENDING = JobStatus(state=JobState.PENDING)
RUNNING = JobStatus(state=JobState.RUNNING)
DONE = JobStatus(state=JobState.DONE)


@dataclass(slots=True, kw_only=True)
class Chunk:
    """One queued, running or finished worker process (mutable bookkeeping, never shared)."""

    chunk_id: str
    request: BatchRequest
    elements: list[int]
    members: frozenset[int]
    slots: int
    process: subprocess.Popen[bytes] | None = None
    pidfd: int | None = None
    started: float = 0.0
    returncode: int | None = None
    failure: JobStatus | None = None
    cancelled: set[int] = field(default_factory=set)
    log_marks: dict[int, tuple[int, int] | None] = field(default_factory=dict)

    @property
    def is_running(self) -> bool:
        return self.process is not None and self.returncode is None


def element_status(chunk: Chunk, element: int) -> JobStatus:
    """The state of one of ``chunk``'s elements (see the local executor's docstring)."""
    if element in chunk.cancelled:
        code = chunk.returncode
        return JobStatus(state=JobState.FAILED, reason=FailureReason.CANCELLED, exit_code=code)
    if chunk.failure is not None:
        return chunk.failure
    if chunk.process is None:
        return PENDING
    if chunk.returncode is None:
        return RUNNING
    if chunk.returncode == 0:
        return DONE
    mark = log_mark(chunk.request.log_dir, element)
    if mark is not None and mark != chunk.log_marks.get(element):
        # SIGKILL leaves no trace of why (the out-of-memory killer, or a person): the
        # element is lost, and retried as it was; any other ending is the element's own.
        killed = chunk.returncode == -signal.SIGKILL
        return JobStatus(
            state=JobState.FAILED,
            reason=FailureReason.LOST if killed else FailureReason.EXIT_CODE,
            exit_code=chunk.returncode,
            detail=f"chunk {chunk.chunk_id} {how_it_ended(chunk.returncode)}",
        )
    return JobStatus(
        state=JobState.FAILED,
        reason=FailureReason.LOST,
        exit_code=chunk.returncode,
        detail=f"chunk {chunk.chunk_id} ended (status {chunk.returncode}) before it started",
    )


def log_mark(log_dir: Path, element: int) -> tuple[int, int] | None:
    """Size and mtime of an element's log; a change shows the worker started the element."""
    try:
        stat = (log_dir / log_name(element)).stat()
    except OSError:
        return None
    return stat.st_size, stat.st_mtime_ns


def started_in_log(log_dir: Path | None, element: int, chunk_id: str) -> bool:
    """Whether the element's log shows that chunk ``<batch>.<n>`` started the element.

    The worker opens each element's log with a header naming the batch (``==> reflow:
    task[e] batch B on host at ...``); without it the element never ran in that batch.
    """
    if log_dir is None:
        return False
    marker = f"] batch {chunk_id.rsplit('.', 1)[0]} on ".encode()
    try:
        with (log_dir / log_name(element)).open("rb") as log:
            return any(marker in line for line in log if line.startswith(HEADER.encode()))
    except OSError:
        return False


def parse_job_id(job_id: str) -> tuple[str, int | None]:
    """Split ``B.n.e`` into the chunk id ``B.n`` and the element (None when malformed)."""
    parts = job_id.rsplit(".", 2)
    if len(parts) != 3 or not parts[1].isdigit() or not parts[2].isdigit():
        return job_id, None
    return f"{parts[0]}.{parts[1]}", int(parts[2])
