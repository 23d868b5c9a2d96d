"""A dispatcher process for the chaos test, which kills it with SIGKILL from outside.

    python -m tests.reliability.chaos_driver --run-dir D --run-id R --mode drive|turns

``drive`` runs ``drive_locally`` (the local background dispatcher's loop); ``turns`` runs
``Dispatcher.turn()`` in a tight loop with its own local executor. Both print ``ready`` once
everything is imported, so the test's random kill delay measures dispatcher work, not
Python's start-up. The package has no test hooks: the kill comes from outside.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from reflow.running.dispatch.dispatcher import TERMINAL_RUN_STATES, make_dispatcher
from reflow.running.dispatch.drive import drive_locally
from reflow.running.dispatch.locks import dispatcher_lock
from reflow.running.executors.local import LocalExecutor
from reflow.running.rundir.layout import RunLayout
from reflow.running.store.sqlite import SqliteStore


def run_turns(layout: RunLayout, slots: int) -> str:
    """Run single turns until the run ends, polling the executor between them."""
    with dispatcher_lock(layout) as mine:
        if not mine:
            return "locked"
        store = SqliteStore.open(layout.root)
        try:
            executor = LocalExecutor(slots=slots, run_root=layout.run)
            dispatcher = make_dispatcher(layout, store, executor, unknown_is_lost=True)
            while True:
                state = dispatcher.turn()
                if state in TERMINAL_RUN_STATES:
                    return state
                executor.poll()
                time.sleep(0.01)
        finally:
            store.close()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--run-dir", type=Path, required=True)
    parser.add_argument("--run-id", required=True)
    parser.add_argument("--mode", choices=("drive", "turns"), required=True)
    parser.add_argument("--slots", type=int, default=2)
    args = parser.parse_args()
    layout = RunLayout(args.run_dir, args.run_id)
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    if args.mode == "drive":
        state: str = drive_locally(layout, slots=args.slots).value
    else:
        state = run_turns(layout, args.slots)
    sys.stdout.write(f"{state}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
