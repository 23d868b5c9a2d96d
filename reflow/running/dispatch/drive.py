"""Running: start a run and drive its dispatcher turns (``python -m reflow.running.dispatch``).

On the local executor one detached background process runs turns until the run ends, so the
submitting process (a notebook, a shell) returns at once. On Slurm nothing stays on the login
node: each turn runs as a short job that Slurm starts when the jobs it waits for end, and
that submits its own successor. A lock file keeps two dispatchers of one run from overlapping.
"""

from __future__ import annotations

import functools
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any

from reflow.definition.errors import ReflowError, StoreError
from reflow.running.config import load_config
from reflow.running.dispatch.command import dispatcher_command, dispatcher_parser
from reflow.running.dispatch.dispatcher import (
    TERMINAL_RUN_STATES,
    failed_run_message,
    make_dispatcher,
    turn_problem,
)
from reflow.running.dispatch.locks import dispatcher_lock
from reflow.running.dispatch.slurm_chain import run_turn_and_chain
from reflow.running.executors.local import LocalExecutor
from reflow.running.rundir.layout import RunLayout
from reflow.running.rundir.manifest import manifest_stamp, write_manifest
from reflow.running.store.records import DispatcherRecord
from reflow.running.store.sqlite import SqliteStore
from reflow.running.store.states import InstanceState, RunState

_IDLE_WAIT_S = 0.25
_ERROR_WAIT_S = 0.5
"""The pause after a failed local turn, doubled after each further one in a row."""


def start_run(
    layout: RunLayout, manifest: Mapping[str, Any], options: Mapping[str, Any], *, mode: str
) -> None:
    """Record a new run and start its dispatcher.

    A run is recorded whole or not at all: when the manifest or the store cannot be written
    (a full or read-only disk), the run's folder is removed again.

    Raises:
        StoreError: The run could not be recorded, or its dispatcher could not start.
    """
    starting = DispatcherRecord(kind="local", starting=time.time())
    try:
        with SqliteStore.open(layout.root, create=True) as store:
            write_manifest(layout, manifest)
            store.create_run(
                run_id=layout.run_id,
                workflow=str(manifest["workflow"]),
                executor=mode,
                options=options,
                dispatcher=starting if mode == "local" else None,
            )
    except (OSError, StoreError) as err:
        shutil.rmtree(layout.run, ignore_errors=True)
        if isinstance(err, StoreError):
            raise
        raise StoreError(
            f"cannot write the run manifest {layout.manifest}: {err.strerror or err}",
            value=str(layout.manifest),
            hint="free space in the run directory (or make it writable) and submit again",
        ) from err
    try:
        launch(layout, mode)
    except (OSError, StoreError, subprocess.CalledProcessError) as err:
        cause = err.problem if isinstance(err, StoreError) else str(err)
        raise StoreError(
            f"run {layout.run_id} is recorded but its dispatcher did not start: {cause}",
            value=layout.run_id,
            hint="fix that, then continue the run",
            command=("retry", layout.run_id, "--run-dir", str(layout.root)),
        ) from err


def launch(layout: RunLayout, mode: str) -> None:
    """Start the run's dispatcher: a detached local process, or a first Slurm turn."""
    if mode == "slurm":
        run_turn_and_chain(layout)
        return
    layout.run.mkdir(parents=True, exist_ok=True)
    with SqliteStore.open(layout.root) as store:
        store.set_dispatcher(layout.run_id, DispatcherRecord(kind="local", starting=time.time()))
    with layout.dispatcher_log.open("ab") as log:
        # The child forks once more and exits, so the dispatcher is adopted by init and
        # the submitting process (a notebook, a shell) keeps no child to reap.
        subprocess.run(
            dispatcher_command(
                sys.executable, run_dir=layout.root, run_id=layout.run_id, detach=True
            ),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
            close_fds=True,
            check=True,
        )


def drive_locally(layout: RunLayout, *, slots: int | None = None) -> RunState:
    """Run turns with a local executor until the run ends; return its final state."""
    with dispatcher_lock(layout) as mine:
        if not mine:
            return RunState.RUNNING
        with SqliteStore.open(layout.root) as store:
            config = load_config()
            executor = _CancelAwareExecutor(
                store, layout.run_id, slots=slots or config.local_slots, run_root=layout.run
            )
            # Rebuilt whenever a retry rewrote the manifest (resources, interpreter).
            build = functools.partial(
                make_dispatcher,
                layout,
                store,
                executor,
                unknown_is_lost=True,
                may_submit=lambda: not executor.has_queued,
            )
            stamp = manifest_stamp(layout)
            dispatcher = build()
            record = DispatcherRecord(
                kind="local", pid=os.getpid(), host=socket.gethostname(), started=time.time()
            )
            store.set_dispatcher(layout.run_id, record)
            errors = 0
            while True:
                now = manifest_stamp(layout)
                if now != stamp:
                    stamp, dispatcher = now, build()
                try:
                    state = dispatcher.turn()
                except (OSError, ReflowError) as err:  # a locked or full store: try again
                    errors += 1
                    state = _failed_turn(store, layout, errors, turn_problem(layout, err))
                    if state is RunState.RUNNING:  # started elements run on meanwhile
                        time.sleep(_ERROR_WAIT_S * 2 ** (errors - 1))
                        continue
                else:
                    errors = 0
                if state in TERMINAL_RUN_STATES:
                    if state is RunState.CANCELLED:
                        executor.cancel(executor.active_job_ids())
                    return state
                # An element held back by a retry's back-off is submitted on time.
                wake = dispatcher.next_start()
                wait_s = _IDLE_WAIT_S if wake is None else wake - time.time()
                executor.wait_for_progress(min(_IDLE_WAIT_S, max(0.0, wait_s)))


def _failed_turn(
    store: SqliteStore, layout: RunLayout, errors: int, problem: ReflowError
) -> RunState:
    """Say why a turn failed; after ``MAX_TURN_ERRORS`` in a row the run fails with it.

    The elements already running go on; ``retry`` takes in their results.
    """
    sys.stderr.write(f"reflow: turn failed ({errors} in a row): {problem}\n")
    message = failed_run_message(errors, problem)
    if message is None:
        return RunState.RUNNING
    store.finish_run(layout.run_id, RunState.FAILED, message)
    return store.run(layout.run_id).state


class _CancelAwareExecutor(LocalExecutor):
    """The local executor of a dispatcher, dropping work cancelled from elsewhere.

    Before it starts queued work it drops (and stops) the chunks whose instances were
    cancelled by another process (``cancel --task``).

    A cancel commits to the store before it stops the processes it can see, so work this
    executor starts later is checked against the store first. One grouped count per poll
    (how many are cancelled, and the latest cancel's time) tells whether anything was
    cancelled since the last look.
    """

    def __init__(self, store: SqliteStore, run_id: str, **options: Any) -> None:
        super().__init__(**options)
        self._store = store
        self._run_id = run_id
        self._cancelled_seen: tuple[int, float | None] | None = None

    def poll(self) -> None:
        """Drop cancelled work, then reap and start as the local executor does."""
        active = self.active_job_ids()
        if active:
            mark = self._store.cancel_mark(self._run_id)
            if mark != self._cancelled_seen:
                self._cancelled_seen = mark
                rows = self._store.instances_in(self._run_id, [InstanceState.CANCELLED])
                ids = {str(row.job_id) for row in rows}
                # Only cancelled instances: a chunk may hold elements already done.
                stale = [job for job in active if job in ids]
                if stale:
                    self.cancel(stale)
        super().poll()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the dispatcher process."""
    args = dispatcher_parser().parse_args(argv)
    if args.detach and os.fork() > 0:
        os._exit(0)
    layout = RunLayout(args.run_dir, args.run_id)
    if args.slurm_turn:
        run_turn_and_chain(layout)
        return 0
    state = drive_locally(layout)
    sys.stdout.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} run {args.run_id} {state}\n")
    return 0
