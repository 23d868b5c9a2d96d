"""Running: the local executor: up to ``slots`` worker processes here. Never the store.

``submit`` cuts a batch into chunks (about ``ceil(n / (4 * slots))`` elements, 1 to 1000) and
queues them; ``poll`` starts queued chunks while slots are free and reaps finished ones,
never blocking; ``wait_for_progress`` sleeps until a process ends. Each chunk is one
``request.command + ["--elements", SPEC]`` process leading its own process group, with its
output in ``<log_dir>/chunk-<batch>.<n>.log`` and a pid file beside it, so another process
(a resumed dispatcher, ``cancel`` from the command line) can see and stop it. A task with
setup lines or variables is started through ``bash -c`` with the lines of ``launch.py``, as
in a Slurm batch script.

Job ids: element ``e`` of chunk ``n`` of batch ``B`` is ``B.n.e``; the chunk is ``B.n``. A
chunk's exit status covers all its elements: after a non-zero exit, elements whose log
changed since the chunk started are ``FAILED``/``EXIT_CODE`` (also those that succeeded, so
read result files first) and the rest ``FAILED``/``LOST``. Job ids of another executor
instance are looked up through pid files under ``run_root/logs/*/`` (or, for a chunk with a
log but no pid file, by its command line): ``RUNNING`` while the process lives, else
``UNKNOWN``, with reason ``LOST`` when the element's log shows it never started in that chunk
(say its dispatcher ended before starting the chunk). The executor never reads result files
and never touches the store.
"""

from __future__ import annotations

import math
import os
import select
import shutil
import signal
import subprocess
import time
from collections import deque
from collections.abc import Sequence
from pathlib import Path

from reflow.definition.errors import SubmissionError
from reflow.running.executors.base import (
    BatchRequest,
    FailureReason,
    JobState,
    JobStatus,
    Submission,
)
from reflow.running.executors.launch import launch_lines
from reflow.running.executors.local_chunks import (
    RUNNING,
    Chunk,
    element_status,
    log_mark,
    parse_job_id,
    started_in_log,
)
from reflow.running.executors.local_pids import (
    ChunkProcess,
    find_worker,
    is_alive,
    read_pid_file,
    signal_group,
    stop_groups,
    write_pid_file,
)
from reflow.running.rundir.layout import RunLayout, chunk_log_name, chunk_pid_name
from reflow.running.worker.command import with_elements

MAX_CHUNK = 1000
CHUNKS_PER_SLOT = 4


class LocalExecutor:
    """Runs batches as local worker processes, ``slots`` at a time.

    Args:
        slots: How many slots run at once (default: the number of CPUs); a chunk of a task
            with ``cpus=c`` takes ``min(c, slots)`` slots.
        run_root: The run's folder (``RunLayout.run``), where pid files of chunks started by
            another instance are found; without it such ids are ``UNKNOWN``.
        cancel_grace_s: How long ``cancel`` waits after SIGTERM before SIGKILL.
    """

    name = "local"
    result_grace = 0.0  # results are written on this host before the job ends

    def __init__(
        self,
        *,
        slots: int | None = None,
        run_root: Path | None = None,
        cancel_grace_s: float = 3.0,
    ) -> None:
        self.slots = max(1, slots if slots is not None else (os.cpu_count() or 1))
        self.run_root = run_root
        self.cancel_grace_s = cancel_grace_s
        self._chunks: dict[str, Chunk] = {}
        self._queue: deque[Chunk] = deque()
        self._running: list[Chunk] = []

    def submit(self, request: BatchRequest, /) -> Submission:
        """Queue ``request`` in chunks; processes start on ``poll``.

        Raises:
            SubmissionError: The working directory or the worker program does not exist.
        """
        elements = list(request.elements)
        if len(set(elements)) != len(elements) or (elements and min(elements) < 0):
            raise ValueError("batch elements must be distinct and not negative")
        if not elements:
            return Submission(job_ids=(), scheduler_ids=())
        if f"{request.batch_id}.0" in self._chunks:
            raise ValueError(f"batch {request.batch_id!r} was already submitted")
        _check_runnable(request)
        size = min(MAX_CHUNK, max(1, math.ceil(len(elements) / (self.slots * CHUNKS_PER_SLOT))))
        slots = min(self.slots, max(1, request.resources.cpus or 1))
        job_ids: list[str] = []
        chunk_ids: list[str] = []
        for number, start in enumerate(range(0, len(elements), size)):
            piece = elements[start : start + size]
            chunk = Chunk(
                chunk_id=f"{request.batch_id}.{number}",
                request=request,
                elements=piece,
                members=frozenset(piece),
                slots=slots,
            )
            self._chunks[chunk.chunk_id] = chunk
            self._queue.append(chunk)
            chunk_ids.append(chunk.chunk_id)
            job_ids += [f"{chunk.chunk_id}.{e}" for e in piece]
        return Submission(job_ids=tuple(job_ids), scheduler_ids=tuple(chunk_ids))

    def poll(self) -> None:
        """Reap finished processes and start queued chunks while slots are free; never blocks."""
        self._reap()
        free = self.slots - sum(chunk.slots for chunk in self._running)
        for chunk in list(self._queue):
            if chunk.slots > free:
                break
            self._queue.remove(chunk)
            self._start(chunk)
            free -= chunk.slots

    def wait_for_progress(self, timeout_s: float) -> None:
        """Block until a process ends or ``timeout_s`` passes, then ``poll``."""
        self.poll()
        deadline = time.monotonic() + max(0.0, timeout_s)
        if not self._running:
            time.sleep(max(0.0, timeout_s))
            return
        fds = [chunk.pidfd for chunk in self._running if chunk.pidfd is not None]
        if len(fds) == len(self._running):
            poller = select.poll()
            for fd in fds:
                poller.register(fd, select.POLLIN)
            poller.poll(max(0.0, timeout_s) * 1000)
        else:
            while time.monotonic() < deadline:
                if any(c.process and c.process.poll() is not None for c in self._running):
                    break
                time.sleep(min(0.02, max(0.0, deadline - time.monotonic())))
        self.poll()

    @property
    def has_queued(self) -> bool:
        """True when some chunk waits for a free slot."""
        return bool(self._queue)

    @property
    def is_idle(self) -> bool:
        """True when nothing is queued or running."""
        self._reap()
        return not self._queue and not self._running

    def active_job_ids(self) -> list[str]:
        """The job ids of elements queued or running in this instance."""
        return [
            f"{chunk.chunk_id}.{e}"
            for chunk in (*self._queue, *self._running)
            for e in chunk.elements
            if e not in chunk.cancelled
        ]

    def states(self, job_ids: Sequence[str], /) -> dict[str, JobStatus]:
        """Report each job id's state (see the module docstring)."""
        self._reap()
        found: dict[str, JobStatus] = {}
        foreign: dict[str, tuple[Path | None, bool]] = {}  # one process lookup per chunk
        for job_id in job_ids:
            chunk_id, element = parse_job_id(job_id)
            chunk = self._chunks.get(chunk_id)
            if element is None:
                found[job_id] = JobStatus(state=JobState.UNKNOWN, detail="not a local job id")
            elif chunk is not None and element in chunk.members:
                found[job_id] = element_status(chunk, element)
            else:
                if chunk_id not in foreign:
                    foreign[chunk_id] = self._foreign_chunk(chunk_id, element)
                found[job_id] = self._foreign_status(chunk_id, element, *foreign[chunk_id])
        return found

    def cancel(self, job_ids: Sequence[str], /) -> None:
        """Cancel these jobs: queued elements are dropped, running chunks stopped whole.

        A running chunk is the unit of cancellation: cancelling any of its elements stops
        its process group (SIGTERM, then SIGKILL after ``cancel_grace_s``), and all its
        unfinished elements report ``CANCELLED``. Chunks of other instances are found
        through their pid files. Ids that already ended are ignored.
        """
        self._reap()
        by_chunk: dict[str, set[int]] = {}
        for job_id in job_ids:
            chunk_id, element = parse_job_id(job_id)
            if element is not None:
                by_chunk.setdefault(chunk_id, set()).add(element)
        stopping: list[Chunk] = []
        foreign: list[ChunkProcess] = []
        for chunk_id, elements in by_chunk.items():
            chunk = self._chunks.get(chunk_id)
            if chunk is None:
                record = self._find_pid_file(chunk_id, min(elements))
                if record is not None:
                    foreign.append(record)
            elif chunk in self._queue:
                chunk.cancelled |= elements & set(chunk.elements)
                chunk.elements = [e for e in chunk.elements if e not in elements]
                if not chunk.elements and chunk in self._queue:
                    self._queue.remove(chunk)
            elif chunk.is_running:
                chunk.cancelled |= set(chunk.elements)
                stopping.append(chunk)
        self._stop(stopping)
        stop_groups(foreign, grace_s=self.cancel_grace_s)

    def _start(self, chunk: Chunk) -> None:
        request = chunk.request
        log_dir = request.log_dir
        argv = _launcher(request, with_elements(request.command, chunk.elements))
        try:
            log_dir.mkdir(parents=True, exist_ok=True)
            chunk.log_marks = {e: log_mark(log_dir, e) for e in chunk.elements}
            with (log_dir / chunk_log_name(chunk.chunk_id)).open("ab") as log:
                chunk.started = time.time()
                chunk.process = subprocess.Popen(
                    argv,
                    cwd=request.workdir,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
        except OSError as err:
            detail = f"cannot start {argv[0]}: {err.strerror or err}"
            chunk.failure = JobStatus(
                state=JobState.FAILED, reason=FailureReason.SUBMISSION, detail=detail
            )
            return
        chunk.pidfd = _pidfd(chunk.process.pid)
        self._running.append(chunk)
        write_pid_file(log_dir / chunk_pid_name(chunk.chunk_id), chunk.process.pid, chunk.started)

    def _reap(self) -> None:
        for chunk in list(self._running):
            assert chunk.process is not None
            returncode = chunk.process.poll()
            if returncode is None:
                continue
            chunk.returncode = returncode
            self._running.remove(chunk)
            if chunk.pidfd is not None:
                os.close(chunk.pidfd)
                chunk.pidfd = None

    def _stop(self, chunks: list[Chunk]) -> None:
        for chunk in chunks:
            assert chunk.process is not None
            signal_group(chunk.process.pid, signal.SIGTERM)
        deadline = time.monotonic() + self.cancel_grace_s
        for chunk in chunks:
            assert chunk.process is not None
            try:
                chunk.process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                signal_group(chunk.process.pid, signal.SIGKILL)
                chunk.process.wait()
        self._reap()

    def _find_pid_file(self, chunk_id: str, element: int) -> ChunkProcess | None:
        """The chunk's process from its pid file, or found by its command line."""
        if self.run_root is None:
            return None
        layout = RunLayout.of_run(self.run_root)
        paths = layout.in_log_dirs(chunk_pid_name(chunk_id))
        if paths:
            return read_pid_file(paths[0])
        logs = layout.in_log_dirs(chunk_log_name(chunk_id))
        if not logs:
            return None
        # Its dispatcher ended between starting the process and writing the pid file.
        batch = chunk_id.rsplit(".", 1)[0]
        record = find_worker(run_id=self.run_root.name, batch=batch, element=element)
        if record is not None:
            write_pid_file(logs[0].with_name(chunk_pid_name(chunk_id)), record.pid, time.time())
        return record

    def _foreign_chunk(self, chunk_id: str, element: int) -> tuple[Path | None, bool]:
        """Another instance's chunk: its log folder (None: never started), and if it runs."""
        record = self._find_pid_file(chunk_id, element)
        name = chunk_log_name(chunk_id)
        logs = RunLayout.of_run(self.run_root).in_log_dirs(name) if self.run_root else []
        return (logs[0].parent if logs else None), record is not None and is_alive(record)

    def _foreign_status(
        self, chunk_id: str, element: int, log_dir: Path | None, is_running: bool
    ) -> JobStatus:
        if is_running:
            return RUNNING
        if self.run_root is not None and not started_in_log(log_dir, element, chunk_id):
            # Queued by a dispatcher that ended before it could start it, or left unstarted
            # by a chunk process that ended early.
            detail = f"element {element} never started in chunk {chunk_id}"
            return JobStatus(state=JobState.UNKNOWN, reason=FailureReason.LOST, detail=detail)
        return JobStatus(state=JobState.UNKNOWN, detail=f"chunk {chunk_id} ended or is gone")


def _launcher(request: BatchRequest, argv: list[str]) -> list[str]:
    """``argv``, or ``bash -c`` with the lines that make the task's environment first."""
    if request.environment.is_empty:
        return argv
    return ["bash", "-c", "\n".join(launch_lines(request.environment, argv, task=request.task))]


def _check_runnable(request: BatchRequest) -> None:
    if not request.command:
        raise ValueError("the batch has no worker command")
    launch_lines(request.environment, request.command, task=request.task)  # refuses a NUL
    if not request.workdir.is_dir():
        raise SubmissionError(
            f"working directory {request.workdir} does not exist",
            task=request.task,
            value=str(request.workdir),
        )
    if shutil.which(request.command[0]) is None:
        raise SubmissionError(
            f"cannot run {request.command[0]!r}: no such program",
            task=request.task,
            value=request.command[0],
            hint="check the python setting in the reflow config",
        )


def _pidfd(pid: int) -> int | None:
    """A descriptor that becomes readable when ``pid`` ends (Linux), or None."""
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):
        return None
