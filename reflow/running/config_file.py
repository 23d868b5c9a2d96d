"""Running: reading the user's config file: its bytes and its TOML, nothing more.

What the keys mean and whether their values are valid is ``config``'s; this module only turns
a file into a document, or a reading or syntax problem into a one-line ``ConfigError`` that
names the file and the line.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

from reflow.definition.errors import ConfigError

_TOML_LINE = re.compile(r"\s*\(at line (?P<line>\d+), column \d+\)\s*$")


def read_toml(file: Path, asked_by: str | None) -> dict[str, Any] | None:
    """Parse the config file ``file``; None when it does not exist and nobody named it.

    Args:
        file: The config file.
        asked_by: Who named it (``"REFLOW_CONFIG"``, ``"path"``), or None for the default
            location, where a missing file means an empty config.

    Raises:
        ConfigError: It is missing though named, unreadable, not UTF-8, or not valid TOML.
    """
    if sys.version_info >= (3, 11):
        import tomllib  # lazy: read only when a config file exists
    else:  # pragma: no cover - exercised on Python 3.10 only
        import tomli as tomllib  # type: ignore[import-not-found, unused-ignore]

    param = "REFLOW_CONFIG" if asked_by == "REFLOW_CONFIG" else None
    try:
        text = file.read_bytes().decode("utf-8")
    except FileNotFoundError:
        if asked_by is None:
            return None
        raise ConfigError(
            f"config file {file} does not exist",
            param=param,
            value=str(file),
            hint="create it, or name a file that exists",
        ) from None
    except (OSError, UnicodeDecodeError) as err:
        reason = err.strerror if isinstance(err, OSError) else "it is not UTF-8 text"
        raise ConfigError(
            f"cannot read config file {file}: {reason}",
            param=param,
            value=str(file),
            hint="check its permissions" if isinstance(err, OSError) else "save it as UTF-8",
        ) from err
    try:
        document: dict[str, Any] = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise _toml_error(file, err, param) from err
    return document


def _toml_error(file: Path, err: ValueError, param: str | None) -> ConfigError:
    reason = str(err)
    line = getattr(err, "lineno", None)
    match = _TOML_LINE.search(reason)
    if match:
        reason = reason[: match.start()]
        line = line or int(match.group("line"))
    where = f"{file}, line {line}" if line else str(file)
    return ConfigError(
        f"{where} is not valid TOML: {reason}",
        param=param,
        value=str(file),
        hint="fix the syntax there (strings need quotes, one key = value per line)",
    )
