r"""Running: the sbatch script of one array job, rendered from a ``BatchRequest``. Pure text.

``render`` returns the script and does nothing else: no file is written, nothing is run.
Two parsers read the script, and every interpolated value is quoted for the one that reads it:

- ``#SBATCH`` lines are read by sbatch, which groups characters with single or double quotes,
  takes a backslash as an escape (also inside quotes) and treats an unquoted ``#`` as the
  start of a comment. Values that need it are written in double quotes with ``\`` and ``"``
  escaped. sbatch reads the script line by line, so a newline in such a value is refused.
- The body is read by bash: the task's ``env=`` variables, its ``setup=`` lines and the
  worker's ``exec`` line (``executors/launch.py``). Every value and argument goes through
  ``shlex.quote`` (single quotes keep newlines, ``$(...)`` and backticks literal); a carriage
  return is written as ``$'\r'``, because sbatch refuses any script containing ``\r\n``.
  Setup lines are the user's shell code and run as written.

Jobs are named task first, ``<task>.<workflow>``, so that the 8 characters ``squeue`` shows by
default tell tasks apart, and carry ``--comment=reflow:<run id>`` (``COMMENT_PREFIX``), so that
``squeue`` and ``sacct`` tell runs apart. Each array task writes one scheduler output file,
``<log_dir>/<task>.<job id>.out`` (``%A_%a`` in sbatch's filename pattern) with stderr joined
into it: a retry never overwrites the file of an earlier attempt, and ``output_path`` finds it
from the job id alone. The worker's own output goes to the element's log, so this file holds
what Slurm itself reports (a memory kill, a time limit) and the worker removes it when it ends
empty.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from reflow.definition.errors import SubmissionError
from reflow.definition.resources import format_mem, format_time
from reflow.running.executors.base import BatchRequest
from reflow.running.executors.launch import launch_lines
from reflow.running.rundir.layout import scheduler_output_name

COMMENT_PREFIX = "reflow:"
"""Starts the ``--comment`` of every job reflow submits; the run id follows."""

_SBATCH_SAFE = re.compile(r"""^[^\s"'\\#]+$""")
_ARRAY_SPEC = re.compile(r"^\d+(?:-\d+(?::\d+)?)?(?:,\d+(?:-\d+(?::\d+)?)?)*$")


def render(request: BatchRequest, *, array: str, worker_args: Sequence[str] = ()) -> str:
    """Render the sbatch script that runs ``request`` as one array job.

    Args:
        request: The batch: names, resources, paths, environment (setup lines, variables),
            command.
        array: The array index spec without throttle (``"0-99,120"``); the ``%N`` throttle
            comes from ``request.resources.array_limit``.
        worker_args: Arguments appended to ``request.command`` on the ``exec`` line.

    Returns:
        The script text, ending in a newline.

    Raises:
        SubmissionError: If a value cannot be written safely: a newline or NUL in an
            ``#SBATCH`` value, a backslash in the log directory or task name (sbatch then
            stops expanding ``%A``/``%a``), a NUL in an argument, variable or setup line, or
            an empty command.
        ValueError: If ``array`` is not an index spec (a bug in the caller).
    """
    if not _ARRAY_SPEC.match(array):
        raise ValueError(f"not an sbatch array index spec: {array!r}")
    argv = (*request.command, *worker_args)
    if not argv:
        raise SubmissionError("has no command to run", task=request.task, param="command")
    lines = ["#!/bin/bash"]
    lines += [_directive(request, option, value) for option, value in _options(request, array)]
    lines.append("")
    lines += launch_lines(request.environment, argv, task=request.task)
    return "\n".join(lines) + "\n"


def output_path(log_dir: Path, task: str, job_id: str) -> Path:
    """Return the scheduler output file of one element's job id (``"123_4"``)."""
    return log_dir / scheduler_output_name(task, job_id)


def job_name(workflow: str, task: str) -> str:
    """The job name of a task's array jobs: task first, so ``squeue`` tells tasks apart."""
    return f"{task}.{workflow}"


def job_comment(run_id: str) -> str:
    """The ``--comment`` of every job of a run, which ``squeue`` and ``sacct`` can show."""
    return f"{COMMENT_PREFIX}{run_id}"


def _options(request: BatchRequest, array: str) -> list[tuple[str, str | None]]:
    res = request.resources
    throttle = f"%{res.array_limit}" if res.array_limit is not None else ""
    options: list[tuple[str, str | None]] = [
        ("--job-name", job_name(request.workflow, request.task)),
        ("--comment", job_comment(request.run_id)),
        ("--array", array + throttle),
    ]
    wanted: list[tuple[str, object]] = [
        ("--cpus-per-task", res.cpus),
        ("--mem", None if res.mem_mb is None else format_mem(res.mem_mb)),
        ("--time", None if res.time_s is None else format_time(res.time_s)),
        ("--gpus", res.gpus),
        ("--partition", res.partition),
        ("--account", res.account),
        ("--qos", res.qos),
        ("--constraint", res.constraint),
        ("--begin", f"now+{request.begin_s}" if request.begin_s > 0 else None),
    ]
    options += [(option, str(value)) for option, value in wanted if value is not None]
    options += [(extra, None) for extra in res.extra]
    pattern = _log_pattern(request)
    options += [
        ("--output", pattern),
        ("--chdir", str(request.workdir)),
    ]
    return options


def _log_pattern(request: BatchRequest) -> str:
    for param, text in (("log_dir", str(request.log_dir)), ("task", request.task)):
        if "\\" in text:
            raise SubmissionError(
                f"{text!r} contains a backslash, which stops sbatch from naming logs per element",
                task=request.task,
                param=param,
                value=text,
                hint="use a path and task name without backslashes",
            )
    folder, task = (text.replace("%", "%%") for text in (str(request.log_dir), request.task))
    return f"{folder}/{scheduler_output_name(task, '%A_%a')}"


def _directive(request: BatchRequest, option: str, value: str | None) -> str:
    """One ``#SBATCH`` line; ``value`` None means ``option`` is a complete argument."""
    text = option if value is None else f"{option}={value}"
    if "\n" in text or "\x00" in text:
        raise SubmissionError(
            f"{option} value {text!r} contains a newline or NUL, which sbatch cannot read",
            task=request.task,
            param=option.lstrip("-"),
            value=text,
        )
    if value is None:
        return f"#SBATCH {_sbatch_quote(option)}"
    return f"#SBATCH {option}={_sbatch_quote(value)}"


def _sbatch_quote(text: str) -> str:
    if _SBATCH_SAFE.match(text):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
