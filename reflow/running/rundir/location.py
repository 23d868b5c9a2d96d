"""Running: which run directory a command works in: the one given, else the config's default."""

from __future__ import annotations

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
    path = _above_root_dropped(Path(chosen).expanduser().absolute())
    if path.exists() and not path.is_dir():
        raise UsageError(
            f"run directory {str(path)!r} is a file",
            param="run_dir",
            value=str(path),
            hint="choose a directory",
        )
    return path


def _above_root_dropped(path: Path) -> Path:
    """``path`` without the ``..`` right after its root (``/../tmp`` is ``/tmp``).

    The root's parent is the root itself; sqlite cannot open a store named through it. Any
    other ``..`` stays: after a symbolic link it means the link target's parent.
    """
    parts = path.parts
    while len(parts) > 1 and parts[1] == "..":
        parts = (parts[0], *parts[2:])
    return Path(*parts)
