"""Running: the interpreter a run's workers and dispatcher turns start, checked where it is set.

``submit`` records it in the run's manifest (the config's ``[executor] python``, else the
interpreter that submitted), and ``retry`` takes the config's again; both refuse one that
cannot run here, naming where it was set.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from reflow.definition.errors import ConfigError
from reflow.running.config import Config


def check_python(config: Config) -> None:
    """Refuse a configured interpreter that cannot run here, naming where it was set.

    Workers and dispatcher turns start it; a path this host cannot see (a compute node's
    own) is let through, since it may exist there.
    """
    python = config.python
    if python is None:
        return
    where = config.source_of("executor.python") or "[executor] python"
    found = shutil.which(python) if "/" not in python else python
    if found is not None and not Path(found).is_absolute():
        found = str(Path(found).absolute())
    if found is None or (Path(found).exists() and not os.access(found, os.X_OK)):
        raise ConfigError(
            f"the interpreter {python!r} (from {where}) "
            + ("cannot be run: it is not executable" if found else "is not on PATH"),
            param="executor.python",
            value=python,
            hint="point it at a python3 with reflow installed, or unset it to use this one",
        )
    if "/" in python and not Path(python).exists() and Path(python).parent.exists():
        raise ConfigError(
            f"the interpreter {python!r} (from {where}) does not exist",
            param="executor.python",
            value=python,
            hint="point it at a python3 with reflow installed, or unset it to use this one",
        )


def config_place(source: str | None) -> str | None:
    """Where a config setting came from, as a person says it.

    ``"/home/u/.config/reflow/config.toml [executor] python"`` reads
    ``"[executor] python in /home/u/.config/reflow/config.toml"``; a variable stays its name.
    """
    if source is None or " [" not in source:
        return source
    file, _, setting = source.rpartition(" [")
    return f"[{setting} in {file}"
