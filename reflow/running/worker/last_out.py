"""Running: on Slurm, the last array task of a batch to end runs the run's next dispatcher turn.

A Slurm worker is told how many array tasks its batch has (``--turn-after N``). When its
elements are done it counts its end in the batch's end count (``RunLayout.batch_ends``: one
byte appended under an ``flock``, so the count is the file's size), and the worker that counts
the N-th end starts the next turn at once, in its own allocation: ``python -m
reflow.running.dispatch --slurm-turn`` as a child process, writing to the turn log named by
its array task (``dispatcher-<array job id>_<index>.log``).
That saves the launch of a dispatcher job per level of the flow. The turn is told it runs in
an array task (``--in-array-task``): it waits for a turn still in progress (see
``slurm_chain``).

The turn job the previous turn queued (``afterany`` the batch's jobs) stays the safety net:
when an array task is killed before it counts (a node lost, a time limit), the count stays
short and that job runs the turn once the array has ended; when the turn here ran first, it
cancelled that job. Counting twice (a requeued array task) starts a turn early, which finds
the rest still running and chains as any turn does. Nothing here changes an element's outcome:
a failure to count or to start the turn is one line in the job's output.
"""

from __future__ import annotations

import fcntl
import os
import sys
from pathlib import Path

from reflow.running.dispatch.command import dispatcher_command
from reflow.running.rundir.layout import RunLayout

_ARRAY_ENV = "SLURM_ARRAY_"


def count_end(path: Path) -> int:
    """Append one byte to ``path`` under an exclusive lock; return how many it holds now."""
    with path.open("ab") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            handle.write(b".")
            handle.flush()
            return os.fstat(handle.fileno()).st_size
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def turn_if_last(layout: RunLayout, batch: str, tasks: int) -> None:
    """Count this array task's end; when it is the batch's last, run the next turn here."""
    try:
        if count_end(layout.batch_ends(batch)) != tasks:
            return
        import subprocess  # only the last array task starts one (a worker imports little)

        with layout.slurm_turn_log(_array_task_id()).open("ab") as log:
            argv = dispatcher_command(
                sys.executable,
                run_dir=layout.root,
                run_id=layout.run_id,
                slurm_turn=True,
                in_array_task=True,
            )
            # Not an array task's own variables: the turn job it may submit would inherit them.
            env = {k: v for k, v in os.environ.items() if not k.startswith(_ARRAY_ENV)}
            subprocess.run(
                argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                env=env, check=False,
            )  # fmt: skip
    except OSError as err:
        print(f"reflow: cannot start the next dispatcher turn here: {err}", file=sys.stderr)  # noqa: T201


def _array_task_id() -> str:
    """This array task's id as reflow records it: ``<array job id>_<index>``."""
    return f"{os.environ.get('SLURM_ARRAY_JOB_ID')}_{os.environ.get('SLURM_ARRAY_TASK_ID')}"
