"""Running: the one function through which reflow runs a subprocess. Argument lists only.

Every external program (``sbatch``, ``sacct``, ``squeue``, ``scancel``, ``scontrol``, ...)
runs through ``run_command``: never through a shell, always with a timeout, and never with an
exception for the failures a caller must handle anyway. A missing or unrunnable executable
comes back as return code 127 or 126 and a timeout as 124 (the codes a shell would use),
each with a one-line explanation in ``stderr``.
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

NOT_FOUND = 127
NOT_EXECUTABLE = 126
TIMED_OUT = 124


@dataclass(frozen=True, slots=True, kw_only=True)
class CommandResult:
    """What one finished (or abandoned) command produced."""

    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        """Whether the command exited with status 0."""
        return self.returncode == 0


def run_command(
    argv: Sequence[str],
    *,
    timeout_s: float,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> CommandResult:
    """Run ``argv`` without a shell and capture its output as text.

    Args:
        argv: The program and its arguments; the program is looked up on ``PATH``.
        timeout_s: Seconds after which the command is killed and reported as timed out.
        env: The complete environment of the command; ``None`` inherits this process's.
        cwd: The working directory of the command; ``None`` keeps this process's.

    Returns:
        The result; a command killed by a signal has a negative return code, as in
        ``subprocess``. A missing program gives return code 127, one that cannot be executed
        (or a missing ``cwd``) 126, and a timeout 124, each with an explanation in ``stderr``.
        Output that is not valid UTF-8 is decoded with replacement characters.

    Raises:
        ValueError: If ``argv`` is empty (a bug in the caller).
    """
    args = tuple(argv)
    if not args:
        raise ValueError("run_command needs a program to run, got an empty argument list")
    try:
        completed = subprocess.run(
            args,
            capture_output=True,
            timeout=timeout_s,
            env=None if env is None else dict(env),
            cwd=cwd,
            check=False,
        )
    except subprocess.TimeoutExpired as err:
        return CommandResult(
            argv=args,
            returncode=TIMED_OUT,
            stdout=_text(err.stdout),
            stderr=_text(err.stderr) + f"reflow: {args[0]} timed out after {timeout_s:g} s\n",
        )
    except FileNotFoundError as err:
        missing_cwd = cwd is not None and str(err.filename) == str(cwd)
        what = f"working directory {cwd} does not exist" if missing_cwd else "command not found"
        return CommandResult(
            argv=args,
            returncode=NOT_EXECUTABLE if missing_cwd else NOT_FOUND,
            stdout="",
            stderr=f"reflow: cannot run {args[0]}: {what}\n",
        )
    except OSError as err:
        return CommandResult(
            argv=args,
            returncode=NOT_EXECUTABLE,
            stdout="",
            stderr=f"reflow: cannot run {args[0]}: {err.strerror or err}\n",
        )
    return CommandResult(
        argv=args,
        returncode=completed.returncode,
        stdout=_text(completed.stdout),
        stderr=_text(completed.stderr),
    )


def _text(data: bytes | str | None) -> str:
    if data is None:
        return ""
    if isinstance(data, str):
        return data
    return data.decode("utf-8", errors="replace")
