"""Running: the commands that messages suggest, quoted so that they can be pasted into a shell.

A hint names the ``reflow`` console script (it works from any folder) or the flow file as the
user ran it, and quotes every value with ``shlex.quote`` (``command_line``). An error keeps a
suggested command as its words (``command=``, ``console_words``); the command line that prints
it puts its own program in front (``ReflowError.message``).
"""

from __future__ import annotations

from pathlib import Path

from reflow.definition.errors import DEFAULT_PROGRAM, UsageError, command_line
from reflow.running.store.states import RunState


def console_words(verb: str, run_id: str, run_dir: str | Path, *extra: str) -> tuple[str, ...]:
    """``VERB RUN_ID [EXTRA...] --run-dir DIR``: a run-directory command without its program."""
    return (verb, run_id, *extra, "--run-dir", str(run_dir))


def console_command(verb: str, run_id: str, run_dir: str | Path, *extra: str) -> str:
    """``reflow VERB RUN_ID [EXTRA...] --run-dir DIR``, every value quoted for the shell."""
    return command_line(DEFAULT_PROGRAM, console_words(verb, run_id, run_dir, *extra))


def flow_command(invocation: str, verb: str, run_id: str, run_dir: str | Path) -> str:
    """``python flow.py VERB RUN_ID --run-dir DIR`` after ``invocation`` (already quoted)."""
    return command_line(invocation, console_words(verb, run_id, run_dir))


def interrupted_line(run_id: str, run_dir: str | Path) -> str:
    """What Ctrl-C while following a run prints: the run goes on; how to follow or stop it."""
    return (
        f"stopped following run {run_id}; it goes on in the background."
        f" follow it: {console_command('watch', run_id, run_dir)};"
        f" cancel it: {console_command('cancel', run_id, run_dir)}"
    )


def not_planned(
    task: str, run_id: str, run_dir: str | Path, *, ended: RunState | None
) -> UsageError:
    """The error for a task of the run that has no instances: it waits, or never will.

    ``ended`` is the run's final state, None while it runs.
    """
    if ended == RunState.SUCCEEDED:
        return UsageError(
            f"{task} has no elements in run {run_id}: the list it fans out over was empty",
            value=task,
            hint="see the run",
            command=console_words("status", run_id, run_dir),
        )
    if ended == RunState.CANCELLED:
        return UsageError(
            f"{task} never started in run {run_id}: the run was cancelled before it",
            value=task,
            hint="run the rest",
            command=console_words("retry", run_id, run_dir),
        )
    if ended is not None:
        return UsageError(
            f"{task} never started in run {run_id}, which ended {ended}: a task upstream of it"
            " did not succeed",
            value=task,
            hint="see what failed",
            command=console_words("status", run_id, run_dir, "--failed"),
        )
    return UsageError(
        f"{task} has not been planned in run {run_id} yet: it waits for the tasks upstream",
        value=task,
        hint="follow the run",
        command=console_words("watch", run_id, run_dir),
    )
