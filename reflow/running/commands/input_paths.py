"""Running: ``Path`` parameters at submit: made absolute, checked, and fingerprinted.

A relative ``Path`` given to ``submit`` means a path below the folder ``submit`` runs in, so
it is made absolute there, before it is hashed and before a task sees it: the same command
from two folders names two different files, and gets two different identities. A ``Path``
parameter is an input unless it is declared ``Param(output=True)``: it must exist at submit,
and its fingerprint (the config's ``[cache] fingerprint`` mode) is stored with the value, so
editing the file in place changes the identity of the tasks that declare it. A ``str``
parameter whose value names an existing file or folder gets a warning at submit: its
contents never enter an identity.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path, PurePath
from typing import Any

from reflow.definition.errors import UsageError
from reflow.definition.options import SubmitOption
from reflow.definition.spec import FingerprintMode
from reflow.planning.encoding import JSON, to_json
from reflow.planning.paths import with_fingerprints
from reflow.running.fingerprints import fingerprint


def parameter_json(
    option: SubmitOption, value: Any, *, name: str, cwd: Path, mode: FingerprintMode
) -> JSON:
    """The tagged JSON of one parameter value, with absolute and fingerprinted input paths.

    Raises:
        UsageError: An input path does not exist.
    """
    data = to_json(_absolute(value, cwd), where=name)
    if option.is_output:
        return data

    def take(path: str) -> str | None:
        if not os.path.exists(path):  # noqa: PTH110
            raise UsageError(
                f"{option.flag} {path!r}: no such file or directory",
                param=name,
                value=path,
                hint="check the path; if the workflow creates it, declare the parameter "
                "with Param(output=True)",
            )
        return fingerprint(Path(path), mode)

    return with_fingerprints(data, take)


def _absolute(value: Any, cwd: Path) -> Any:
    """``value`` with every path absolute in ``cwd`` and normalised (``a/../b`` is ``b``).

    Symbolic links are kept as they are: the same file reached through a link is another path.
    """
    if isinstance(value, PurePath):
        return Path(os.path.normpath(value if value.is_absolute() else cwd / value))
    if isinstance(value, list):
        return [_absolute(item, cwd) for item in value]
    return value


def str_path_warnings(
    options: Iterable[SubmitOption], values: Mapping[str, Any], *, cwd: Path
) -> list[str]:
    """One line per ``str`` parameter whose value names an existing file or folder.

    Its contents are not fingerprinted, so editing them reruns nothing: a cached result
    made from the old files is reused. Annotated as ``Path``, it would be an input.
    """
    lines = []
    for option in options:
        value = values.get(option.key)
        kind = option.type.args[0].kind if option.type.kind == "optional" else option.type.kind
        if kind != "str" or not isinstance(value, str) or not value.strip():
            continue
        try:  # any string: too long for a file name, ``~nosuchuser``, a folder not readable
            path = Path(value).expanduser()
            path = path if path.is_absolute() else cwd / path
            what = "folder" if path.is_dir() else "file" if path.exists() else None
        except (OSError, RuntimeError, ValueError):
            continue
        if what is not None:
            lines.append(
                f"warning: {option.flag} {value!r} names a {what}, but is a str: changing what"
                " is in it reruns nothing. Annotate the parameter as Path to make it an input"
                " (Path with Param(output=True) where the workflow writes)"
            )
    return lines
