"""Running: the dry-run executor prints what would be submitted; it starts and writes nothing.

``submit`` prints the task, its elements as ranges (and, when packed, the elements per array
task), the resources and the worker command (or the rendered batch script, given a
``render`` function; or, for a task with setup lines or variables, the lines the local
executor runs through ``bash -c``) to a stream, and returns fake job
ids ``dry-<batch>.<element>``. Every job stays ``PENDING``; ``cancel`` does nothing.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Sequence
from dataclasses import fields
from typing import IO

from reflow.definition.resources import Resources, format_mem, format_time
from reflow.running.executors.base import BatchRequest, JobState, JobStatus, Submission
from reflow.running.executors.launch import launch_lines
from reflow.running.ranges import compress

_PENDING = JobStatus(state=JobState.PENDING, detail="dry run: nothing was submitted")


class DryRunExecutor:
    """Prints batches instead of running them.

    Args:
        out: Where the description of each batch goes.
        render: Turns a request into its batch script (e.g. the Slurm renderer); without it
            the worker command line is printed.
    """

    name = "dry-run"
    result_grace = 0.0  # results are written on this host before the job ends

    def __init__(
        self, out: IO[str], *, render: Callable[[BatchRequest], str] | None = None
    ) -> None:
        self.out = out
        self.render = render

    def submit(self, request: BatchRequest, /) -> Submission:
        """Print ``request`` and return one fake job id per element (nothing for no elements)."""
        if not request.elements:
            return Submission(job_ids=(), scheduler_ids=())
        spec = compress(request.elements)
        count = len(request.elements)
        packing = ""
        if request.pack > 1:
            tasks = -(-count // request.pack)
            packing = f", {request.pack} per array task: {tasks} array tasks"
        lines = [
            f"[dry-run] would submit {request.task}[{spec}] "
            f"({count} element{'s' if count != 1 else ''}{packing}) as batch {request.batch_id}",
            f"  resources: {describe_resources(request.resources)}",
        ]
        if self.render is not None:
            lines.append(f"  script {request.script_path}:")
            lines.extend(f"    {line}" for line in self.render(request).splitlines())
        elif not request.environment.is_empty:
            lines.append("  run by bash -c:")
            found = launch_lines(request.environment, request.command, task=request.task)
            lines.extend(f"    {line}" if line else "" for line in found)
        else:
            lines.append(f"  command: {shlex.join(request.command)}")
        self.out.write("\n".join(lines) + "\n")
        return Submission(
            job_ids=tuple(f"dry-{request.batch_id}.{e}" for e in request.elements),
            scheduler_ids=(f"dry-{request.batch_id}",),
        )

    def cancel(self, job_ids: Sequence[str], /) -> None:
        """Do nothing: a dry run has no jobs."""

    def states(self, job_ids: Sequence[str], /) -> dict[str, JobStatus]:
        """Report every job as ``PENDING``: nothing ever runs."""
        return dict.fromkeys(job_ids, _PENDING)


def describe_resources(resources: Resources) -> str:
    """One line naming the resources that are set, e.g. ``cpus=4 mem=4G time=00:10:00``."""
    parts: list[str] = []
    for item in fields(resources):
        value = getattr(resources, item.name)
        if value is None or value == ():
            continue
        if item.name == "mem_mb":
            parts.append(f"mem={format_mem(value)}")
        elif item.name == "time_s":
            parts.append(f"time={format_time(value)}")
        elif item.name == "extra":
            parts.append(f"extra={shlex.join(value)}")
        else:
            parts.append(f"{item.name}={value}")
    return " ".join(parts) or "defaults"
