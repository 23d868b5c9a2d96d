"""Running: fingerprints of files and directories, taken where the files are.

A fingerprint says whether a file is still the one a result was made from. Three modes:

- ``stat`` (the default): size and modification time in nanoseconds; for a directory, a hash of
  the sorted relative paths with the size and modification time of every file below it.
  Cheap: one ``stat`` per file.
- ``content``: a streaming BLAKE2b of the bytes (for a directory, of every file's relative path
  and digest). Identical bytes give the same fingerprint, so a task that rewrites a file with
  the same content keeps the tasks downstream cached.
- ``path``: no fingerprint; only the path string counts (for files that change on purpose).

The mode is the fingerprint's prefix, so a fingerprint can be checked again without knowing
which option made it. Workers fingerprint the paths their elements return, ``submit``
fingerprints ``Path`` parameters, and verification re-reads them; the dispatcher never does.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from reflow.definition.spec import FingerprintMode

DEFAULT_MODE: FingerprintMode = "stat"
_CHUNK_BYTES = 1 << 20


def fingerprint(path: Path, mode: FingerprintMode) -> str | None:
    """The fingerprint of the file or directory at ``path``; None in ``path`` mode.

    Raises:
        FileNotFoundError: Nothing exists at ``path`` (in every mode, ``path`` included).
    """
    info = path.stat()
    if mode == "path":
        return None
    is_dir = os.path.isdir(path)  # noqa: PTH112 - follows links like stat()
    if mode == "stat":
        return _stat_tree(path) if is_dir else f"stat:{info.st_size}:{info.st_mtime_ns}"
    return "content:" + (_content_tree(path) if is_dir else _content(path))


def mode_of(recorded: str) -> FingerprintMode:
    """The mode a recorded fingerprint was taken in."""
    return "content" if recorded.startswith("content:") else "stat"


def differs(recorded: str, path: Path) -> str | None:
    """Why ``path`` no longer matches ``recorded`` ("missing", "size", "mtime", "content"), or None.

    Re-reads the file (a ``stat``, or its bytes for a content fingerprint).
    """
    try:
        now = fingerprint(path, mode_of(recorded))
    except OSError:
        return "missing"
    if now == recorded or now is None:
        return None
    return what_changed(recorded, now)


def what_changed(before: str, after: str) -> str:
    """What differs between two fingerprints of one path: "size", "mtime", "content", ...

    "files" for a directory whose files changed, "fingerprint mode" when the two were taken
    in different modes.
    """
    if before.startswith("stat:") and after.startswith("stat:"):
        return "size" if before.split(":")[1] != after.split(":")[1] else "mtime"
    if mode_of(before) != mode_of(after):
        return "fingerprint mode"
    return "content" if mode_of(before) == "content" else "files"


def _files(root: Path) -> list[tuple[str, os.stat_result, str]]:
    """``(relative path, stat, absolute path)`` of every file below ``root``, sorted."""
    found: list[tuple[str, os.stat_result, str]] = []
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        for name in files:
            full = os.path.join(folder, name)  # noqa: PTH118 - hot loop
            found.append((os.path.relpath(full, root), os.stat(full), full))  # noqa: PTH116
    found.sort(key=lambda item: item[0])
    return found


def _stat_tree(root: Path) -> str:
    digest = hashlib.blake2b(digest_size=16)
    files = _files(root)
    for relative, info, _full in files:
        digest.update(f"{relative}\0{info.st_size}\0{info.st_mtime_ns}\n".encode())
    return f"stat-tree:{len(files)}:{digest.hexdigest()}"


def _content(path: Path | str) -> str:
    digest = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as handle:  # noqa: PTH123
        while chunk := handle.read(_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def _content_tree(root: Path) -> str:
    digest = hashlib.blake2b(digest_size=16)
    for relative, _info, full in _files(root):
        digest.update(f"{relative}\0{_content(full)}\n".encode())
    return f"tree:{digest.hexdigest()}"
