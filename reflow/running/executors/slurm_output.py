"""Running: the line of Slurm's own output file that says why a job failed. Reads file tails.

When a job ends without a result, Slurm (or the batch script's shell) often says why in the
job's output file: ``slurmstepd: error: Detected 1 oom-kill event(s) ...``, ``*** JOB 12
... CANCELLED AT ... DUE TO TIME LIMIT ***``, ``exec: python: not found``. ``quote_output``
adds that line to the detail of each failed job. Only the last ``TAIL_BYTES`` of a file are
read, only for failed jobs, and no scheduler command is run.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Mapping
from pathlib import Path

from reflow.running.executors.base import JobState, JobStatus
from reflow.running.executors.slurm_script import output_path
from reflow.running.rundir.layout import RunLayout

TAIL_BYTES = 16 * 1024
"""How much of the end of an output file is read."""
MAX_QUOTE_CHARS = 300
"""The longest quoted line; a longer one is cut."""

_ELEMENT_JOB = re.compile(r"^\d+_\d+$")
_EXPLAINS = re.compile(
    r"oom-kill|out of memory|memory limit|DUE TO|CANCELLED|not found|no such file"
    r"|permission denied|cannot execute|killed|error",
    re.IGNORECASE,
)


def quote_output(
    statuses: Mapping[str, JobStatus], layout: RunLayout | None
) -> dict[str, JobStatus]:
    """Return ``statuses`` with each failed job's detail followed by its explaining line.

    ``"Slurm job 12_3 ended OUT_OF_MEMORY 0:125: ... (slurmstepd: error: Detected 1
    oom-kill event(s) ...)"``. A job whose output file is missing or explains nothing, and
    every job when ``layout`` is None, keeps its detail.
    """
    quoted = dict(statuses)
    failed = [job for job, status in statuses.items() if status.state is JobState.FAILED]
    if layout is None or not failed:
        return quoted
    folders = _task_folders(layout)
    for job_id in failed:
        line = _explaining_line(folders, job_id)
        if line:
            status = statuses[job_id]
            quoted[job_id] = dataclasses.replace(status, detail=f"{status.detail} ({line})")
    return quoted


def explaining_line(path: Path) -> str | None:
    """The last line near the end of ``path`` that explains a failure, if any."""
    try:
        with path.open("rb") as handle:
            end = handle.seek(0, os.SEEK_END)
            handle.seek(max(0, end - TAIL_BYTES))
            data = handle.read(TAIL_BYTES)
    except OSError:
        return None
    for raw in reversed(data.decode(errors="replace").splitlines()):
        line = " ".join(raw.split())
        if line and _EXPLAINS.search(line):
            return line if len(line) <= MAX_QUOTE_CHARS else line[: MAX_QUOTE_CHARS - 3] + "..."
    return None


def _task_folders(layout: RunLayout) -> list[tuple[str, Path]]:
    """Each task that has a log folder, with that folder."""
    try:
        names = [entry.name for entry in os.scandir(layout.logs) if entry.is_dir()]
    except OSError:
        return []
    return [(name, layout.logs_dir(name)) for name in names]


def _explaining_line(folders: list[tuple[str, Path]], job_id: str) -> str | None:
    """The explaining line of an element's job; its file is in its task's log folder."""
    if not _ELEMENT_JOB.match(job_id):
        return None
    for task, folder in folders:
        path = output_path(folder, task, job_id)
        if path.is_file():
            return explaining_line(path)
    return None
