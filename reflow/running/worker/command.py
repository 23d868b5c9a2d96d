"""Running: the worker's command line, built and parsed in this one module. Pure.

The dispatcher builds the base command (which task, batch and planning); the executor adds
how the worker finds its elements: ``--elements 0-9,12`` for a local process, or
``--array-offset N`` on Slurm, where the element is entry ``N + $SLURM_ARRAY_TASK_ID`` of
the batch file (with neither, the element is ``$SLURM_ARRAY_TASK_ID`` itself); there it also
adds ``--turn-after N``, the number of the batch's array tasks, so that the last of them to end
runs the run's next dispatcher turn (``last_out.py``). When a
setup line of the task's environment failed, the launcher adds ``--setup-failed=N:STATUS``,
``--setup-line=TEXT`` and ``--setup-output=TEXT``, and the worker fails its elements with that
reason instead of running them.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from reflow.running.ranges import compress

WORKER_MODULE = "reflow.running.worker"
"""What ``python -m`` runs; also how a worker process is recognised in ``/proc``."""
ELEMENTS_FLAG = "--elements"
ARRAY_OFFSET_FLAG = "--array-offset"
TURN_AFTER_FLAG = "--turn-after"
SETUP_FAILED_FLAG = "--setup-failed"
SETUP_LINE_FLAG = "--setup-line"
SETUP_OUTPUT_FLAG = "--setup-output"


def worker_command(
    python: str, *, run_dir: Path, run_id: str, task: str, batch: str, plan: str
) -> tuple[str, ...]:
    """The worker's argument list for one batch, before the executor says which elements."""
    return (
        python,
        "-m",
        WORKER_MODULE,
        "--run-dir",
        str(run_dir),
        "--run-id",
        run_id,
        "--task",
        task,
        "--batch",
        batch,
        "--plan",
        plan,
    )


def with_elements(command: Sequence[str], elements: Sequence[int]) -> list[str]:
    """``command`` running ``elements`` one after another in one process."""
    return [*command, ELEMENTS_FLAG, compress(elements)]


def array_offset_args(offset: int) -> tuple[str, str]:
    """The arguments that shift ``$SLURM_ARRAY_TASK_ID`` by ``offset`` into the batch."""
    return (ARRAY_OFFSET_FLAG, str(offset))


def turn_after_args(tasks: int) -> tuple[str, str]:
    """The arguments that make the last of a batch's ``tasks`` array tasks run the next turn."""
    return (TURN_AFTER_FLAG, str(tasks))


def worker_parser() -> argparse.ArgumentParser:
    """The parser of ``python -m reflow.running.worker``."""
    parser = argparse.ArgumentParser(
        prog=f"python -m {WORKER_MODULE}",
        description="Run elements of one reflow task.",
        allow_abbrev=False,
    )
    for flag in ("--run-dir", "--run-id", "--task", "--batch", "--plan"):
        parser.add_argument(flag, required=True)
    which = parser.add_mutually_exclusive_group()
    which.add_argument(ELEMENTS_FLAG, help="elements to run in this process, e.g. 0-9,12")
    which.add_argument(ARRAY_OFFSET_FLAG, type=int, help="index into the batch's elements")
    parser.add_argument(
        TURN_AFTER_FLAG, type=int, metavar="TASKS", help="the last of TASKS runs the next turn"
    )
    parser.add_argument(SETUP_FAILED_FLAG, metavar="LINE:STATUS", help="a setup line failed")
    parser.add_argument(SETUP_LINE_FLAG, default="", help="the setup line that failed")
    parser.add_argument(SETUP_OUTPUT_FLAG, default="", help="what the failed setup line printed")
    return parser


def setup_failure(args: argparse.Namespace) -> str | None:
    """``setup line 2 'module load cdo' failed (exit 127): <its output>``, or None."""
    if args.setup_failed is None:
        return None
    number, _, status = str(args.setup_failed).partition(":")
    output = str(args.setup_output).strip()
    failed = f"setup line {number} {args.setup_line!r} failed (exit {status})"
    return failed + (f": {output}" if output else "")
