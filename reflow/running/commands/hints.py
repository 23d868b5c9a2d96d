"""Running: the commands that messages suggest, quoted so that they can be pasted into a shell.

A hint names the ``reflow`` console script (it works from any folder) or the flow file as the
user ran it, and quotes every value with ``shlex.quote``.
"""

from __future__ import annotations

import shlex
from pathlib import Path


def console_command(verb: str, run_id: str, run_dir: str | Path, *extra: str) -> str:
    """``reflow VERB RUN_ID [EXTRA...] --run-dir DIR``, every value quoted for the shell."""
    words = [verb, run_id, *extra, "--run-dir", str(run_dir)]
    return "reflow " + " ".join(shlex.quote(word) for word in words)


def flow_command(invocation: str, verb: str, run_id: str, run_dir: str | Path) -> str:
    """``python flow.py VERB RUN_ID --run-dir DIR`` after ``invocation`` (already quoted)."""
    words = [verb, run_id, "--run-dir", str(run_dir)]
    return invocation + " " + " ".join(shlex.quote(word) for word in words)


def interrupted_line(run_id: str, run_dir: str | Path) -> str:
    """What Ctrl-C while following a run prints: the run goes on; how to follow or stop it."""
    return (
        f"stopped following run {run_id}; it goes on in the background."
        f" follow it: {console_command('watch', run_id, run_dir)};"
        f" cancel it: {console_command('cancel', run_id, run_dir)}"
    )
