r"""Running: the shell lines that make a task's environment and start its worker. Pure text.

Both executors start the worker through these lines: the Slurm executor as the body of its
batch script, the local executor through ``bash -c`` when the task has an environment. In
order:

1. ``export NAME=VALUE`` for each variable, the value through ``shlex.quote`` (a carriage
   return as ``$'\r'``, which sbatch needs), so it reaches the worker exactly;
2. the setup lines, listed in a bash array and run one by one with ``eval`` in this shell (so
   ``module load`` and ``source`` change the worker's environment, and a syntax error is that
   line's failure, not the script's). Each line's output is kept in a temporary file and then
   copied to the job's stderr (the scheduler output file, or the local chunk's log). The first
   line that fails ends the setup, and so does a line that runs ``exit`` (an ``EXIT`` trap):
   the worker is then started with ``--setup-failed=NUMBER:STATUS``, ``--setup-line=...``
   and ``--setup-output=...`` (the last 4000 bytes of its output), and it writes a failed
   result for every element, whose reason names the line (its number among the merged lines,
   and its text), its exit status and its output. A signal (a cancel) during the setup ends
   the job without a result;
3. ``exec`` of the worker, every argument through ``shlex.quote`` (with setup lines, once in
   the array ``reflow_worker``).

Without an environment, the lines are the ``exec`` line alone.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence

from reflow.definition.environment import Environment
from reflow.definition.errors import SubmissionError
from reflow.running.worker.command import SETUP_FAILED_FLAG, SETUP_LINE_FLAG, SETUP_OUTPUT_FLAG

SETUP_OUTPUT_BYTES = 4000
"""How much of a failed setup line's output (its end) becomes the elements' reason."""

_RUN_SETUP = f"""\
exec 3>&1 4>&2
reflow_setup_log=$(mktemp) || reflow_setup_log=/dev/null
reflow_setup_failed() {{  # setup line $reflow_line ended with status $1: the worker says so
    exec 1>&3 2>&4 3>&- 4>&-
    trap - EXIT TERM INT HUP
    local output
    output=$(tail -c {SETUP_OUTPUT_BYTES} -- "$reflow_setup_log")
    cat -- "$reflow_setup_log" >&2
    [ "$reflow_setup_log" = /dev/null ] || rm -f -- "$reflow_setup_log"
    exec -- "${{reflow_worker[@]}}" {SETUP_FAILED_FLAG}="$((reflow_line + 1)):$1" \\
        {SETUP_LINE_FLAG}="${{reflow_setup[reflow_line]}}" {SETUP_OUTPUT_FLAG}="$output"
}}
trap 'reflow_setup_failed "$?"' EXIT  # a line that ran exit
trap 'trap - EXIT; exit 143' TERM INT HUP  # cancelled: no result
for reflow_line in "${{!reflow_setup[@]}}"; do
    {{ eval "${{reflow_setup[reflow_line]}}"; }} >"$reflow_setup_log" 2>&1 ||
        reflow_setup_failed "$?"
    cat -- "$reflow_setup_log" >&2
done
trap - EXIT TERM INT HUP
exec 3>&- 4>&-
[ "$reflow_setup_log" = /dev/null ] || rm -f -- "$reflow_setup_log"
"""


def launch_lines(environment: Environment, argv: Sequence[str], *, task: str) -> list[str]:
    """The lines that set ``environment`` up and ``exec`` the worker ``argv``.

    Raises:
        SubmissionError: A value, setup line or argument contains a NUL, which no program
            can receive.
    """
    for text in (*argv, *environment.setup, *(value for _, value in environment.env)):
        _refuse_nul(task, text)
    command = " ".join(shell_quote(arg) for arg in argv)
    lines = [f"export {name}={shell_quote(value)}" for name, value in environment.env]
    if not environment.setup:
        return [*lines, "", f"exec -- {command}"] if lines else [f"exec -- {command}"]
    if lines:
        lines.append("")
    lines.append("# setup lines, run in this shell in order; the first that fails is reported")
    lines.append("reflow_setup=(")
    lines += [f"    {shell_quote(line)}" for line in environment.setup]
    lines.append(")")
    lines.append(f"reflow_worker=({command})")
    lines += [*_RUN_SETUP.splitlines(), ""]
    return [*lines, 'exec -- "${reflow_worker[@]}"']


def shell_quote(text: str) -> str:
    r"""``shlex.quote``, with carriage returns written as ``$'\r'``.

    sbatch refuses a script that contains ``\r\n`` anywhere, even inside quotes.
    """
    if "\r" not in text:
        return shlex.quote(text)
    return "$'\\r'".join(shlex.quote(part) for part in text.split("\r"))


def _refuse_nul(task: str, text: str) -> None:
    if "\x00" in text:
        raise SubmissionError(
            f"{text!r} contains a NUL character, which no program can receive",
            task=task,
            param="command",
            value=text,
        )
