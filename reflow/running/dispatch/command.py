"""Running: the dispatcher's command line, built and parsed in this one module. Pure.

``python -m reflow.running.dispatch --run-dir D --run-id R`` drives a local run until it
ends (``--detach`` forks into the background first); with ``--slurm-turn`` it runs one Slurm
turn and submits its successor (a turn job; the last array task of a batch runs its turn in
its own process, see ``worker.last_out``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

DISPATCHER_MODULE = "reflow.running.dispatch"
"""What ``python -m`` runs; also how a dispatcher process is recognised in ``/proc``."""


def dispatcher_command(
    python: str,
    *,
    run_dir: Path,
    run_id: str,
    slurm_turn: bool = False,
    detach: bool = False,
) -> list[str]:
    """The argument list of a dispatcher process for one run."""
    argv = [python, "-m", DISPATCHER_MODULE, "--run-dir", str(run_dir), "--run-id", run_id]
    if slurm_turn:
        argv.append("--slurm-turn")
    if detach:
        argv.append("--detach")
    return argv


def dispatcher_parser() -> argparse.ArgumentParser:
    """The parser of ``python -m reflow.running.dispatch``."""
    parser = argparse.ArgumentParser(prog=f"python -m {DISPATCHER_MODULE}", allow_abbrev=False)
    parser.add_argument("--run-dir", type=Path, required=True)
    parser.add_argument("--run-id", required=True)
    parser.add_argument("--slurm-turn", action="store_true", help="one turn, then chain")
    parser.add_argument("--detach", action="store_true", help="fork into the background")
    return parser
