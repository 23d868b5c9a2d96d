"""Running: ``RunLayout`` computes every path in a run directory; ``write_atomic`` writes one.

One folder holds everything: the sqlite store shared by all runs (which makes the cache work
across runs) and one subfolder per run with its manifest, inputs, scripts, results and logs::

    <run_dir>/reflow.sqlite
    <run_dir>/reflow.share.lock                          (held while a run claims shared work)
    <run_dir>/runs/<run_id>/manifest.json
    <run_dir>/runs/<run_id>/dispatcher.log               (a local dispatcher's output)
    <run_dir>/runs/<run_id>/dispatcher-<job id>.log      (a Slurm dispatcher turn's output)
    <run_dir>/runs/<run_id>/dispatcher.lock              (held by the one running dispatcher)
    <run_dir>/runs/<run_id>/scripts/dispatcher.sh        (a Slurm dispatcher turn's script)
    <run_dir>/runs/<run_id>/stale.json                   (cached outputs found stale, why)
    <run_dir>/runs/<run_id>/inputs/<task>-<plan>.jsonl   (+ .idx: byte offset per element)
    <run_dir>/runs/<run_id>/batches/<batch>.json         (elements of a batch, in order)
    <run_dir>/runs/<run_id>/batches/<batch>.ends         (one byte per ended array task)
    <run_dir>/runs/<run_id>/scripts/<task>-<batch>.sh     (+ <task>-<batch>.<n>.sh: split arrays)
    <run_dir>/runs/<run_id>/results/<task>/<element>.<batch>.json
    <run_dir>/runs/<run_id>/results/<task>/<batch>.<array task>.jsonl   (a packed array task)
    <run_dir>/runs/<run_id>/logs/<task>/<element>.log
    <run_dir>/runs/<run_id>/logs/<task>/pack-<batch>.<array task>.log  (shared: packed elements)
    <run_dir>/runs/<run_id>/logs/<task>/<task>.<job id>.out     (a Slurm job's own output)
    <run_dir>/runs/<run_id>/logs/<task>/chunk-<batch>.<n>.log   (a local chunk's output, + .pid)

The executors are given a task's log folder and a script path; the names they make inside
them come from the functions below, so every name in a run directory is spelled here.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

STORE_NAME = "reflow.sqlite"


class RunLayout(NamedTuple):
    """Paths of one run inside a run directory."""

    root: Path
    run_id: str

    @property
    def store(self) -> Path:
        """The sqlite store shared by every run in ``root``."""
        return self.root / STORE_NAME

    @property
    def share_lock(self) -> Path:
        """The file a run locks while it decides which work to take from or leave to others."""
        return self.root / "reflow.share.lock"

    @classmethod
    def of_run(cls, run: Path) -> RunLayout:
        """The layout whose ``run`` folder is ``run``."""
        return cls(run.parent.parent, run.name)

    @property
    def run(self) -> Path:
        """This run's own folder."""
        return self.root / "runs" / self.run_id

    @property
    def manifest(self) -> Path:
        """The run's manifest: workflow description, parameters, flow source, interpreter."""
        return self.run / "manifest.json"

    @property
    def dispatcher_log(self) -> Path:
        """Output of the dispatcher's turns."""
        return self.run / "dispatcher.log"

    @property
    def dispatcher_lock(self) -> Path:
        """The file a dispatcher holds a lock on while it runs turns."""
        return self.run / "dispatcher.lock"

    @property
    def slurm_dispatcher_log(self) -> Path:
        """Output of a Slurm dispatcher turn, with ``%j`` for sbatch to fill the job id."""
        return self.slurm_turn_log("%j")

    def slurm_turn_log(self, job_id: str) -> Path:
        """Output of the Slurm dispatcher turn that ran in job ``job_id``."""
        return self.run / f"dispatcher-{job_id}.log"

    def jobs_that_ran_turns(self) -> frozenset[str]:
        """The ids of the Slurm jobs that ran a dispatcher turn, from the turns' logs.

        Array tasks (``<array job>_<index>``, the last of a batch) and turn jobs (``<job>``).
        """
        return frozenset(
            log.stem.removeprefix("dispatcher-") for log in self.run.glob("dispatcher-*.log")
        )

    def array_tasks_that_ran_turns(self) -> frozenset[str]:
        """The ids (``<array job>_<index>``) of the array tasks that ran a dispatcher turn."""
        return frozenset(job for job in self.jobs_that_ran_turns() if "_" in job)

    @property
    def dispatcher_script(self) -> Path:
        """The batch script of a Slurm dispatcher turn."""
        return self.run / "scripts" / "dispatcher.sh"

    @property
    def stale_outputs(self) -> Path:
        """Counts, per task and reason, of the cached outputs this run found stale."""
        return self.run / "stale.json"

    def inputs(self, task: str, plan: str) -> Path:
        """Inputs of every element of ``task`` for one planning of it (JSON lines)."""
        return self.run / "inputs" / f"{task}-{plan}.jsonl"

    def inputs_index(self, task: str, plan: str) -> Path:
        """Byte offsets into ``inputs``: 8 little-endian bytes per element."""
        return self.run / "inputs" / f"{task}-{plan}.idx"

    def batch(self, batch: str) -> Path:
        """The ordered element list of a batch (used to map array indices to elements)."""
        return self.run / "batches" / f"{batch}.json"

    def batch_ends(self, batch: str) -> Path:
        """The count of a batch's ended array tasks on Slurm: one byte appended by each."""
        return self.run / "batches" / f"{batch}.ends"

    def script(self, task: str, batch: str) -> Path:
        """The rendered batch script of a submission, kept for audit."""
        return self.run / "scripts" / f"{task}-{batch}.sh"

    def results_dir(self, task: str) -> Path:
        """Where the workers of ``task`` write their result files."""
        return self.run / "results" / task

    def result(self, task: str, element: int, batch: str) -> Path:
        """The result file of one element run by one batch."""
        return self.results_dir(task) / result_name(element, batch)

    def bundle(self, task: str, batch: str, array_task: int) -> Path:
        """The results of one packed array task (its number within the batch), one per line."""
        return self.results_dir(task) / bundle_name(batch, array_task)

    @property
    def logs(self) -> Path:
        """The folder of every task's log folder."""
        return self.run / "logs"

    def logs_dir(self, task: str) -> Path:
        """Where the logs of ``task``'s elements go."""
        return self.logs / task

    def log(self, task: str, element: int) -> Path:
        """The log of one element (every attempt appends to it)."""
        return self.logs_dir(task) / log_name(element)

    def pack_log(self, task: str, batch: str, array_task: int) -> Path:
        """The output shared by the elements of one packed array task while it runs."""
        return self.logs_dir(task) / pack_log_name(batch, array_task)

    def in_log_dirs(self, name: str) -> list[Path]:
        """The files called ``name`` in any task's log folder, sorted."""
        return sorted(self.logs.glob(f"*/{name}"))


def result_name(element: int, batch: str) -> str:
    """The name of an element's result file in its task's results folder."""
    return f"{element}.{batch}.json"


def bundle_name(batch: str, array_task: int) -> str:
    """The name of a packed array task's result bundle in its task's results folder."""
    return f"{batch}.{array_task}.jsonl"


def log_name(element: int) -> str:
    """The name of an element's log in its task's log folder."""
    return f"{element}.log"


def pack_log_name(batch: str, array_task: int) -> str:
    """The name of a packed array task's shared output in its task's log folder."""
    return f"pack-{batch}.{array_task}.log"


def cut_record(pack_log: Path) -> Path:
    """Beside a packed array task's shared output: how far a cancel copied its last segment."""
    return pack_log.with_name(pack_log.name.removesuffix(".log") + ".cut")


def chunk_log_name(chunk_id: str) -> str:
    """The name of a local chunk's (``<batch>.<n>``) output file in its task's log folder."""
    return f"chunk-{chunk_id}.log"


def chunk_pid_name(chunk_id: str) -> str:
    """The name of a local chunk's pid file, beside its output file."""
    return f"chunk-{chunk_id}.pid"


def scheduler_output_name(task: str, job_id: str) -> str:
    """The name of a Slurm job's output file (``job_id`` ``"123_4"``, or sbatch's ``%A_%a``)."""
    return f"{task}.{job_id}.out"


def script_part(script: Path, index: int) -> Path:
    """The script of part ``index`` of a submission split into several arrays."""
    return script.with_name(f"{script.stem}.{index}{script.suffix}")


def open_append(path: Path, *, readable: bool = False) -> int:
    """Open ``path`` to append (creating it and, the first time, its folder); return the fd."""
    flags = (os.O_RDWR if readable else os.O_WRONLY) | os.O_APPEND | os.O_CREAT
    try:
        return os.open(path, flags, 0o644)
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        return os.open(path, flags, 0o644)


@contextlib.contextmanager
def locked(fd: int) -> Iterator[None]:
    """Hold an exclusive ``flock`` on the open file ``fd`` inside the block (waiting for it).

    The kernel releases it when the holder dies; processes on other nodes see it where the
    shared file system supports ``flock``.
    """
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)


def write_all(fd: int, data: bytes) -> None:
    """Write all of ``data`` to ``fd``, however many calls it takes."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def write_atomic(path: Path, data: str | bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename: all or nothing."""
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = data.encode() if isinstance(data, str) else data
    # A name of its own (no ``tempfile``: a worker imports it for nothing else); the file
    # gets the mode the umask gives, as the rename makes it the run directory's own file.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(6).hex()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(raw)
            handle.flush()
            os.fsync(handle.fileno())
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
