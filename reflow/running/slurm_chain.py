"""Running: the Slurm dispatcher chain: one turn, then a successor job that waits for work.

No process stays on the login node. ``submit`` runs the first turn itself; each turn then
submits its successor with ``--dependency=afterany:<the run's jobs in flight>``, so Slurm
starts the next turn when that work has ended. The pending successor's id is recorded, so
``cancel`` removes it too and a cancelled run stays cancelled.
"""

from __future__ import annotations

import shlex
import socket
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from reflow.definition.errors import SubmissionError
from reflow.definition.resources import format_mem, format_time
from reflow.running.config import Config, load_config
from reflow.running.layout import RunLayout, write_atomic
from reflow.running.process import run_command
from reflow.running.store import SqliteStore

DEFAULT_SUBMIT_BUDGET = 5000
"""Most instances a run keeps queued at once when the config does not say."""
_IDLE_DELAY_S = 15
_DISPATCHER_TIME_S = 15 * 60
_DISPATCHER_MEM_MB = 1024


def run_turn_and_chain(layout: RunLayout) -> str:
    """Run one dispatcher turn on Slurm and, while the run goes on, submit the next one."""
    from reflow.running.drive import dispatcher_lock, make_dispatcher
    from reflow.running.executors.slurm import SlurmExecutor

    with dispatcher_lock(layout) as mine:
        if not mine:
            return "running"
        config = load_config()
        store = SqliteStore.open(layout.root)
        try:
            executor = SlurmExecutor(max_array_size=config.max_array_size)
            dispatcher = make_dispatcher(
                layout,
                store,
                executor,
                submit_budget=config.submit_budget or DEFAULT_SUBMIT_BUDGET,
            )
            state = dispatcher.turn()
            if state != "running":
                store.set_run(layout.run_id, dispatcher={"kind": "slurm", "pending_jobs": []})
                return state
            in_flight = sorted(
                {
                    str(row.job_id).split("_")[0]
                    for row in store.instances_in(layout.run_id, ["submitted"])
                    if row.job_id
                }
            )
            successor = submit_successor(layout, dispatcher.manifest, in_flight, config)
            store.set_run(
                layout.run_id,
                dispatcher={
                    "kind": "slurm",
                    "pending_jobs": [successor],
                    "host": socket.gethostname(),
                    "turn_at": time.time(),
                    "waits_for": len(in_flight),
                },
            )
            if store.run(layout.run_id).state != "running":
                executor.cancel([successor])
            return state
        finally:
            store.close()


def submit_successor(
    layout: RunLayout, manifest: Mapping[str, Any], after: list[str], config: Config
) -> str:
    """Submit the next dispatcher turn as a small job; return its job id."""
    python = str(manifest.get("python") or "python3")
    script = (
        "#!/bin/bash\n"
        "exec "
        + shlex.join(
            [
                python,
                "-m",
                "reflow.running.drive",
                "--run-dir",
                str(layout.root),
                "--run-id",
                layout.run_id,
                "--slurm-turn",
            ]
        )
        + "\n"
    )
    path = layout.run / "scripts" / "dispatcher.sh"
    write_atomic(path, script)
    resources = config.dispatcher
    argv = [
        "sbatch",
        "--parsable",
        f"--job-name={manifest['workflow']}.dispatch",
        "--cpus-per-task=1",
        f"--mem={format_mem(resources.mem_mb or _DISPATCHER_MEM_MB)}",
        f"--time={format_time(resources.time_s or _DISPATCHER_TIME_S)}",
        f"--output={layout.run / 'dispatcher-%j.log'}",
        f"--chdir={manifest.get('cwd') or Path.cwd()}",
    ]
    if resources.partition:
        argv.append(f"--partition={resources.partition}")
    if config.resources.account:
        argv.append(f"--account={config.resources.account}")
    if after:
        argv.append("--dependency=afterany:" + ":".join(after))
    else:
        argv.append(f"--begin=now+{_IDLE_DELAY_S}")
    argv.append(str(path))
    result = run_command(argv, timeout_s=60)
    if result.returncode != 0:
        raise SubmissionError(
            f"sbatch refused the dispatcher job: {result.stderr.strip()}",
            hint="check [executor] dispatcher_partition/dispatcher_time and the account",
        )
    return result.stdout.strip().split(";")[0]
