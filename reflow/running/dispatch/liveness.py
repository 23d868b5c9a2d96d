"""Running: whether a run's Slurm dispatcher chain is still alive (one ``squeue`` call).

Kept apart from the chain itself so that ``status`` asks it without loading the dispatcher.
"""

from __future__ import annotations

from reflow.running.executors.slurm import SlurmExecutor
from reflow.running.rundir.layout import RunLayout
from reflow.running.store.records import DispatcherRecord
from reflow.running.store.sqlite import SqliteStore
from reflow.running.store.states import RunState


def dispatcher_alive(
    layout: RunLayout, info: DispatcherRecord, executor: SlurmExecutor
) -> bool | None:
    """Whether the run's next Slurm turn is still queued or running (one ``squeue`` call).

    Args:
        layout: The run's paths; its store is read again before the run is called stalled.
        info: The run's dispatcher record (its ``pending_jobs``).
        executor: The executor that asks the scheduler (and counts the call).

    Returns:
        True while a recorded turn is queued or running. None when it cannot be told: no
        turn recorded yet, or squeue does not answer. False when no recorded turn is queued
        and the record, read again, still names the same turns of a running run (a turn that
        ended while this asked has recorded its successor by then).
    """
    pending = list(info.pending_jobs)
    if not pending:
        return None
    queued = executor.queued(pending)
    if queued is None:
        return None
    if queued:
        return True
    with SqliteStore.open(layout.root) as store:
        run = store.run(layout.run_id)
    return run.state is not RunState.RUNNING or run.dispatcher.pending_jobs != info.pending_jobs
