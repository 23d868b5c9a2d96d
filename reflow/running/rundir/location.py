"""Running: which run directory a command works in: the one given, else the config's default."""

from __future__ import annotations

import os
from pathlib import Path, PurePath

from reflow.definition.errors import UsageError
from reflow.running.config import Config


def resolve_run_dir(run_dir: str | Path | PurePath | None, config: Config) -> Path:
    """The run directory: the argument, else the config's default; absolute."""
    chosen = run_dir if run_dir is not None else config.run_dir
    if chosen is None:
        raise UsageError(
            "no run directory given",
            param="run_dir",
            hint="pass --run-dir DIR (or run_dir=...), or set [defaults] run_dir in the config",
        )
    if not str(chosen).strip():  # Path("") is the current folder: never meant that way
        raise UsageError(
            "the run directory is empty",
            param="run_dir",
            value=str(chosen),
            hint="give a folder's path ('.' for this folder)",
        )
    path = Path(chosen).expanduser()
    if path.exists() and not path.is_dir():
        raise UsageError(
            f"run directory {str(path)!r} is a file",
            param="run_dir",
            value=str(path),
            hint="choose a directory",
        )
    return Path(os.path.abspath(path))  # noqa: PTH100 - ".." resolved, symlinks kept
