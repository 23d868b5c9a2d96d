"""Running: the executor protocol. Executors start work and report on it; nothing else.

An executor receives a ``BatchRequest`` (one task, the elements to run, resources, the worker's
command), starts it, and returns job ids. It cancels job ids and reports their states.
Executors return data: they never call back into the dispatcher and never touch the store.
"""

from __future__ import annotations

import enum
import signal
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from reflow.definition.environment import Environment
from reflow.definition.resources import Resources


class JobState(enum.Enum):
    """Where one element's job is, as the scheduler sees it."""

    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    UNKNOWN = "unknown"


class FailureReason(enum.Enum):
    """Why a job ended without success, in the scheduler's terms."""

    EXIT_CODE = "exit_code"
    EXCEPTION = "exception"
    OUT_OF_MEMORY = "out_of_memory"
    TIMEOUT = "timeout"
    NODE_FAIL = "node_fail"
    CANCELLED = "cancelled"
    PREEMPTED = "preempted"
    BOOT_FAIL = "boot_fail"
    SUBMISSION = "submission"
    LOST = "lost"


@dataclass(frozen=True, slots=True, kw_only=True)
class JobStatus:
    """The state of one job id, with the reason and exit code once it has failed.

    ``UNKNOWN`` with reason ``LOST`` means the executor knows the job never started (a local
    chunk queued by a dispatcher that ended): it is run again without counting an attempt.
    ``ended`` is when an ended job ended, in seconds since the epoch, where the scheduler's
    accounting says.
    """

    state: JobState
    reason: FailureReason | None = None
    exit_code: int | None = None
    detail: str = ""
    ended: float | None = None


def how_it_ended(returncode: int) -> str:
    """``exited with status 3``, or the signal that killed the process (a negative status).

    SIGKILL is what the kernel's out-of-memory killer sends, so its line says so:
    ``killed by SIGKILL (out of memory?)``. Every executor words a signal so (``logs``
    repeats the ``killed by ...`` part).
    """
    if returncode >= 0:
        return f"exited with status {returncode}"
    try:
        name = signal.Signals(-returncode).name
    except ValueError:
        name = f"signal {-returncode}"
    return f"killed by {name}" + (" (out of memory?)" if name == "SIGKILL" else "")


@dataclass(frozen=True, slots=True, kw_only=True)
class PartitionLimits:
    """The most a partition gives one element: memory per node and time limit (None: no cap).

    An executor that can tell them has ``partition_limits(partition)``; automatic retries
    raise memory and time no further.
    """

    mem_mb: int | None = None
    time_s: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class BatchRequest:
    """One task's elements to start in one go.

    ``elements`` are the element indices to run; an executor that uses array indices maps
    array index ``i`` to ``elements[i]`` (the dispatcher stores this map in ``map_path``).
    ``command`` is the worker's argument list; the executor adds how the worker finds its
    elements (``--elements`` for local processes, the array index on Slurm). ``pack`` is how
    many elements one Slurm array task runs (the batch file records it too); executors that
    run elements in their own processes ignore it.
    ``environment`` is what the worker runs in: the config's and the task's setup lines and
    variables, merged.
    ``begin_s`` asks the scheduler not to start the batch before that many seconds from now
    (automatic retries back off so); only an executor with ``begins_later = True`` is given one.
    """

    run_id: str
    workflow: str
    task: str
    batch_id: str
    elements: tuple[int, ...]
    resources: Resources
    command: tuple[str, ...]
    workdir: Path
    log_dir: Path
    script_path: Path
    environment: Environment = field(default_factory=Environment)
    pack: int = 1
    begin_s: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class Submission:
    """What an executor started: one job id per element, in the order of ``elements``."""

    job_ids: tuple[str, ...]
    scheduler_ids: tuple[str, ...]


class Executor(Protocol):
    """Starts batches, cancels jobs and reports their states.

    ``result_grace`` is how many seconds after a job ended its result file may still become
    visible to the dispatcher: 0 where jobs run on the dispatcher's own host, the config's
    ``[executor] result_grace`` where they run on other hosts of a shared file system.
    """

    name: str
    result_grace: float

    def submit(self, request: BatchRequest, /) -> Submission:
        """Start ``request`` and return the job ids; raise ``SubmissionError`` if refused."""
        ...

    def cancel(self, job_ids: Sequence[str], /) -> None:
        """Cancel these jobs; ids that already ended are ignored."""
        ...

    def states(self, job_ids: Sequence[str], /) -> dict[str, JobStatus]:
        """Report the state of each job id (ids the executor cannot see are ``UNKNOWN``)."""
        ...
