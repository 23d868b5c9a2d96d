"""Running: the Slurm dispatcher chain: one turn, then a successor job that waits for work.

No process stays on the login node. ``submit`` runs the first turn itself; each turn then
submits its successor with ``--dependency=afterany:<the run's jobs still queued>``, so Slurm
starts the next turn when that work has ended (when the submit budget holds instances back,
when the oldest of those jobs has ended, so the queue refills early). While a 1:1 chain has
elements waiting for upstream elements still in flight, a second, timed successor
(``--begin=now+<dispatcher_interval_s>``, 60 s by default) waits beside it, so the chain
advances element by element; whichever starts first cancels the other. The pending
successors' ids are recorded in the run's dispatcher record (``pending_jobs``), so ``cancel``
removes them too, and a turn that finds its run cancelled or finished submits nothing.

A turn that the scheduler or the store cannot serve (sacct down, a locked store) is tried
again by a delayed successor, at most ``MAX_TURN_ERRORS`` times in a row (``dispatcher``); a
successor that cannot be submitted at all ends the run as failed with sbatch's message, never
leaving it ``running`` without a dispatcher.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import socket
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from reflow.definition.errors import ReflowError, SubmissionError, SubmissionLimitError
from reflow.definition.resources import format_mem, format_time
from reflow.running.config import Config, load_config
from reflow.running.dispatch.budget import AskedBudget, submit_budget
from reflow.running.dispatch.command import dispatcher_command
from reflow.running.dispatch.dispatcher import (
    TERMINAL_RUN_STATES,
    Dispatcher,
    failed_run_message,
    make_dispatcher,
    turn_problem,
)
from reflow.running.dispatch.locks import dispatcher_lock
from reflow.running.executors.base import JobState
from reflow.running.executors.slurm import SlurmExecutor
from reflow.running.executors.slurm_script import job_comment, job_name
from reflow.running.rundir.layout import RunLayout, write_atomic
from reflow.running.store.records import DispatcherRecord
from reflow.running.store.sqlite import SqliteStore
from reflow.running.store.states import InstanceState, RunState

ARRAY_TASK_LOCK_WAIT_S = 10
"""How long a turn in an array task waits for a turn in progress, in the task's allocation."""
_IDLE_DELAY_S = 15
_TICK_S = 60
_ERROR_DELAY_S = 60
_DISPATCHER_TIME_S = 15 * 60
_DISPATCHER_MEM_MB = 1024
_ACTIVE = (JobState.PENDING, JobState.RUNNING)


def run_turn_and_chain(layout: RunLayout, *, in_array_task: bool = False) -> RunState:
    """Run one dispatcher turn on Slurm and, while the run goes on, submit the next one.

    A turn already in progress keeps the run: this one returns at once. A turn run by the
    last array task of a batch (``in_array_task``) first waits up to ``ARRAY_TASK_LOCK_WAIT_S``
    for it (a batch can end before the turn that submitted it has). A turn that runs in a job
    (an array task's, or its own) counts that job against the submit budget, as Slurm counts
    it until the turn ends.
    """
    wait_s = ARRAY_TASK_LOCK_WAIT_S if in_array_task else 0.0
    with dispatcher_lock(layout, wait_s=wait_s) as mine:
        if not mine:
            return RunState.RUNNING
        config = load_config()
        with SqliteStore.open(layout.root) as store:
            return _turn(layout, store, config)


def _turn(layout: RunLayout, store: SqliteStore, config: Config) -> RunState:
    run = store.run(layout.run_id)
    if run.state in TERMINAL_RUN_STATES:
        return run.state
    info = run.dispatcher if run.dispatcher.kind == "slurm" else DispatcherRecord()
    own_job = os.environ.get("SLURM_JOB_ID")
    # A turn started by hand (retry, resume) while a successor waits would fork the chain.
    stale = [job for job in info.pending_jobs if job != own_job]
    executor = SlurmExecutor.configured(layout, config)
    budget = submit_budget(config, info, executor)
    info = info.replace(
        kind="slurm",
        submit_budget=budget if isinstance(budget, int) else None,
        turns=info.turns + 1,
        host=socket.gethostname(),
        job_id=own_job,
        turn_at=time.time(),
    )
    dispatcher = make_dispatcher(
        layout,
        store,
        executor,
        submit_budget=budget,
        held_jobs=int(own_job is not None),
        unknown_is_lost=True,
    )
    started = time.perf_counter()
    problem: ReflowError | None = None
    try:
        state = dispatcher.turn()
    except (OSError, ReflowError) as err:
        problem = turn_problem(layout, err)
    if isinstance(budget, AskedBudget):  # kept for later turns, which ask nothing
        info = info.replace(submit_budget=budget.answer())
    if problem is not None:
        return _retry_later(layout, store, config, executor, dispatcher, info, problem)
    info = info.replace(errors=0, last_error=None)
    took = time.perf_counter() - started
    if own_job is not None:  # into the job's turn log, not the terminal of submit or retry
        sys.stderr.write(
            f"reflow: turn {info.turns} on {info.host}: ingest {dispatcher.ingest_s:.2f} s,"
            f" whole turn {took:.2f} s; run {state.value}\n"
        )
    if state is not RunState.RUNNING:
        store.set_dispatcher(layout.run_id, info.replace(pending_jobs=()))
        # Cancelled while this turn ran: that cancel may not have seen this turn's jobs.
        cancelled = dispatcher.submitted_jobs if state is RunState.CANCELLED else []
        _cancel_quietly(executor, [*stale, *cancelled])
        return state
    after, delay_s = waits_for(store, layout.run_id, executor, dispatcher)
    tick_s = None
    if after and chain_waits(store, layout.run_id):
        tick_s = config.dispatcher_interval_s or _TICK_S
    state = _chain(layout, store, config, executor, dispatcher, info, after, delay_s, tick_s)
    _cancel_quietly(executor, stale)
    return state


def chain_waits(store: SqliteStore, run_id: str) -> bool:
    """True when a 1:1 chain has elements waiting for upstream elements still in flight."""
    counts = store.state_counts(run_id)
    return any(
        not error and sum(counts.get(task, {}).values()) < size
        for task, (_plan, size, error) in store.planned_tasks(run_id).items()
    )


def _cancel_quietly(executor: SlurmExecutor, job_ids: Sequence[str]) -> None:
    # A stale successor left queued only costs a turn that finds nothing to do.
    with contextlib.suppress(SubmissionError):
        executor.cancel(job_ids)


def _chain(
    layout: RunLayout,
    store: SqliteStore,
    config: Config,
    executor: SlurmExecutor,
    dispatcher: Dispatcher,
    info: DispatcherRecord,
    after: Sequence[str],
    delay_s: int | None,
    tick_s: int | None = None,
) -> RunState:
    """Submit the successor and record it; undo this turn's jobs if the run ended meanwhile.

    With ``tick_s`` a second successor starts that many seconds later whatever the jobs do;
    the one that runs first cancels the other, so a chain advances element by element while
    its upstream arrays run, at most one timed turn per ``tick_s``.
    """
    successors: list[str] = []
    try:
        for waits, delay in [(after, delay_s), *([((), tick_s)] if tick_s else [])]:
            try:
                successors.append(
                    submit_successor(
                        executor, layout, dispatcher.manifest, config, after=waits, delay_s=delay
                    )
                )
            except SubmissionLimitError:
                if not successors:
                    raise
                break  # the timed successor only speeds a chain up: the first one carries it
    except SubmissionError as err:
        _cancel_quietly(executor, successors)
        message = f"cannot submit the next dispatcher turn: {err}; fix it, then retry the run"
        store.set_dispatcher(layout.run_id, info.replace(pending_jobs=()))
        store.finish_run(layout.run_id, RunState.FAILED, message)
        return store.run(layout.run_id).state
    store.set_dispatcher(
        layout.run_id, info.replace(pending_jobs=tuple(successors), waits_for=len(after))
    )
    state = store.run(layout.run_id).state
    if state is not RunState.RUNNING:
        # Cancelled while this turn ran: its cancel may not have seen what this turn submitted.
        _cancel_quietly(executor, [*successors, *dispatcher.submitted_jobs])
    return state


def _retry_later(
    layout: RunLayout,
    store: SqliteStore,
    config: Config,
    executor: SlurmExecutor,
    dispatcher: Dispatcher,
    info: DispatcherRecord,
    err: ReflowError,
) -> RunState:
    """A turn failed on scheduler or store trouble: try again later, or give up."""
    errors = info.errors + 1
    info = info.replace(errors=errors, last_error=str(err))
    message = failed_run_message(errors, err)
    if message is not None:
        store.set_dispatcher(layout.run_id, info.replace(pending_jobs=()))
        store.finish_run(layout.run_id, RunState.FAILED, message)
        return store.run(layout.run_id).state
    after = list(dispatcher.submitted_jobs)
    return _chain(
        layout, store, config, executor, dispatcher, info, after, None if after else _ERROR_DELAY_S
    )


def waits_for(
    store: SqliteStore, run_id: str, executor: SlurmExecutor, dispatcher: Dispatcher
) -> tuple[list[str], int | None]:
    """The jobs the successor depends on, or the delay to start it after when there are none.

    Only jobs still queued count (a dependency on an ended job is met at once): those
    submitted in this turn, and those the turn's reconcile saw pending or running. When
    instances wait for room in the submit budget, the oldest such job suffices.
    """
    fresh = set(dispatcher.submitted_jobs)
    queued: set[str] = set()
    for row in store.instances_in(run_id, [InstanceState.SUBMITTED]):
        if not row.job_id:
            continue
        parent = str(row.job_id).partition("_")[0]
        status = executor.last_states.get(str(row.job_id))
        if parent in fresh or (status is not None and status.state in _ACTIVE):
            queued.add(parent)
    if not queued:
        return [], _IDLE_DELAY_S
    ordered = sorted(queued, key=lambda job: (len(job), job))
    held_back = any(c.get(InstanceState.READY, 0) for c in store.state_counts(run_id).values())
    return (ordered[:1] if held_back else ordered), None


def successor_options(
    layout: RunLayout,
    manifest: Mapping[str, Any],
    config: Config,
    *,
    after: Sequence[str],
    delay_s: int | None,
) -> list[str]:
    """The sbatch options of the next dispatcher turn: a small job that waits for ``after``.

    It is named ``dispatch.<workflow>`` and carries the run's comment, as the task jobs do.
    """
    resources = config.dispatcher
    options = [
        f"--job-name={job_name(manifest['workflow'], 'dispatch')}",
        f"--comment={job_comment(layout.run_id)}",
        "--cpus-per-task=1",
        f"--mem={format_mem(resources.mem_mb or _DISPATCHER_MEM_MB)}",
        f"--time={format_time(resources.time_s or _DISPATCHER_TIME_S)}",
        f"--output={layout.slurm_dispatcher_log}",
        f"--chdir={manifest.get('cwd') or Path.cwd()}",
    ]
    if resources.partition:
        options.append(f"--partition={resources.partition}")
    if config.resources.account:
        options.append(f"--account={config.resources.account}")
    if after:
        options.append("--dependency=afterany:" + ":".join(after))
    if delay_s is not None:
        options.append(f"--begin=now+{delay_s}")
    return options


def successor_script(layout: RunLayout, manifest: Mapping[str, Any]) -> str:
    """The script of a dispatcher turn: ``python -m reflow.running.dispatch ... --slurm-turn``."""
    argv = dispatcher_command(
        str(manifest.get("python") or "python3"),
        run_dir=layout.root,
        run_id=layout.run_id,
        slurm_turn=True,
    )
    return "#!/bin/bash\nexec " + shlex.join(argv) + "\n"


def submit_successor(
    executor: SlurmExecutor,
    layout: RunLayout,
    manifest: Mapping[str, Any],
    config: Config,
    *,
    after: Sequence[str],
    delay_s: int | None,
) -> str:
    """Submit the next dispatcher turn (transient sbatch failures retried); return its id.

    Raises:
        SubmissionError: If sbatch refuses the job, with sbatch's message.
    """
    path = layout.dispatcher_script
    write_atomic(path, successor_script(layout, manifest))
    options = successor_options(layout, manifest, config, after=after, delay_s=delay_s)
    return executor.sbatch(path, options)
