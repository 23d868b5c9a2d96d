"""Running: on Slurm, the last array task of a batch to end runs the run's next dispatcher turn.

A Slurm worker is told how many array tasks its batch has (``--turn-after N``). When its
elements are done it counts its end in the batch's end count (``RunLayout.batch_ends``: one
byte appended under an ``flock``, so the count is the file's size), and the worker that counts
the N-th end runs the next turn at once, in its own process and allocation, writing to the
turn log named by its array task (``dispatcher-<array job id>_<index>.log``). Only that worker
loads the dispatcher; no second interpreter starts (on a shared file system, starting one and
importing reflow again can take longer than the turn). That saves the launch of a dispatcher
job per level of the flow. The turn waits for a turn still in progress (see ``slurm_chain``).

The turn job the previous turn queued (``afterany`` the batch's jobs) stays the safety net:
when an array task is killed before it counts (a node lost, a time limit), the count stays
short and that job runs the turn once the array has ended; when the turn here ran first, it
cancelled that job. Counting twice (a requeued array task) starts a turn early, which finds
the rest still running and chains as any turn does. Nothing here changes an element's outcome
or the worker's exit status: a failure to count or of the turn is told in the job's output or
the turn's log.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from reflow.running.rundir.layout import RunLayout, locked
from reflow.running.worker.output import pointed_at

_ARRAY_ENV = "SLURM_ARRAY_"


def count_end(path: Path) -> int:
    """Append one byte to ``path`` under an exclusive lock; return how many it holds now."""
    with path.open("ab") as handle, locked(handle.fileno()):
        handle.write(b".")
        handle.flush()
        return os.fstat(handle.fileno()).st_size


def turn_if_last(layout: RunLayout, batch: str, tasks: int) -> None:
    """Count this array task's end; when it is the batch's last, run the next turn here."""
    try:
        if count_end(layout.batch_ends(batch)) != tasks:
            return
        log = layout.slurm_turn_log(_array_task_id())
        # Not an array task's own variables: the turn job the turn may submit inherits them.
        for name in [name for name in os.environ if name.startswith(_ARRAY_ENV)]:
            del os.environ[name]
        with log.open("ab") as handle, pointed_at(handle.fileno()):
            _run_turn(layout)
    except OSError as err:
        print(f"reflow: cannot run the next dispatcher turn here: {err}", file=sys.stderr)  # noqa: T201


def _run_turn(layout: RunLayout) -> None:
    """Run the turn; a turn that fails leaves its traceback in its log, nothing else."""
    try:
        # Only the batch's last array task loads the dispatcher: a worker imports little.
        from reflow.running.dispatch.slurm_chain import run_turn_and_chain

        run_turn_and_chain(layout, in_array_task=True)
    except (Exception, SystemExit):  # noqa: BLE001 - the worker's own outcome stays
        import traceback  # only for a failed turn

        traceback.print_exc()


def _array_task_id() -> str:
    """This array task's id as reflow records it: ``<array job id>_<index>``."""
    return f"{os.environ.get('SLURM_ARRAY_JOB_ID')}_{os.environ.get('SLURM_ARRAY_TASK_ID')}"
