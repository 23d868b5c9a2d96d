"""Planning: the paths inside a value's tagged JSON form, and their fingerprints. Pure.

A worker adds the fingerprint of every file its element returns (``{"$path": ..., "$fp":
...}``), so the output's hash, and with it every identity downstream, changes when a file is
rewritten; verification reads the recorded fingerprints back. The fingerprints themselves are
taken by ``reflow.running.fingerprints``: this module only walks values.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from reflow.planning.encoding import FINGERPRINT_TAG, JSON, PATH_TAG


def tagged_paths(data: JSON) -> Iterator[tuple[str, str | None]]:
    """Every ``(path, fingerprint or None)`` inside the tagged JSON form ``data``."""
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            path = item.get(PATH_TAG)
            if type(path) is str and len(item) <= 2:
                fingerprint = item.get(FINGERPRINT_TAG)
                yield path, fingerprint if type(fingerprint) is str else None
            else:
                stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def with_fingerprints(data: JSON, fingerprint: Callable[[str], str | None]) -> JSON:
    """A copy of ``data`` whose paths carry ``fingerprint(path)`` (none where it gives None)."""

    def add(item: JSON) -> JSON:
        if isinstance(item, list):
            return [add(inner) for inner in item]
        if isinstance(item, dict):
            path = item.get(PATH_TAG)
            if type(path) is str and len(item) <= 2:
                found = fingerprint(path)
                if found is None:
                    return {PATH_TAG: path}
                return {PATH_TAG: path, FINGERPRINT_TAG: found}
            return {key: add(value) for key, value in item.items()}
        return item

    return add(data) if any(True for _ in tagged_paths(data)) else data
