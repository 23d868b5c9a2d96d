"""Running: array index lists as Slurm range specs ("0-99,120,200-250"), and chunking. Pure.

``compress`` writes the spec ``sbatch --array`` reads; ``expand`` reads the specs Slurm
prints (``squeue``, ``sacct``), including ``:step`` ranges and a ``%N`` throttle suffix;
``chunk`` splits a list into pieces no longer than a scheduler limit.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

_PART = re.compile(r"^(?P<lo>\d+)(?:-(?P<hi>\d+)(?::(?P<step>\d+))?)?$")


def compress(indices: Iterable[int]) -> str:
    """Write non-negative indices as a sorted, deduplicated range spec.

    Args:
        indices: Array indices in any order, duplicates allowed.

    Returns:
        The spec, e.g. ``"0-99,120,200-250"`` (an empty string for no indices).

    Raises:
        ValueError: If an index is negative.

    Example:
        >>> compress([7, 0, 3, 8, 9, 3])
        '0,3,7-9'
    """
    ordered = sorted(set(indices))
    if ordered and ordered[0] < 0:
        raise ValueError(f"array indices must not be negative, got {ordered[0]}")
    parts: list[str] = []
    start = 0
    for pos in range(1, len(ordered) + 1):
        if pos == len(ordered) or ordered[pos] != ordered[pos - 1] + 1:
            lo, hi = ordered[start], ordered[pos - 1]
            parts.append(str(lo) if lo == hi else f"{lo}-{hi}")
            start = pos
    return ",".join(parts)


def expand(spec: str) -> list[int]:
    """Read a range spec as Slurm prints it into sorted, deduplicated indices.

    Accepts ``"0-3,7"``, the bracketed form of job ids (``"[0-3,7%2]"``), steps
    (``"0-10:5"``) and a throttle suffix (``"0-9%2"``, ignored).

    Args:
        spec: The spec; blank means no indices.

    Returns:
        The indices in ascending order.

    Raises:
        ValueError: If the spec is malformed.

    Example:
        >>> expand("[1-7:3,9%2]")
        [1, 4, 7, 9]
    """
    text = spec.strip()
    if text.startswith("["):
        if not text.endswith("]"):
            raise ValueError(f"array spec {spec!r} has an unclosed bracket")
        text = text[1:-1]
    text, percent, throttle = text.partition("%")
    if percent and not throttle.isdigit():
        raise ValueError(f"array spec {spec!r} has a malformed %N throttle")
    if not text:
        return []
    found: set[int] = set()
    for part in text.split(","):
        match = _PART.match(part.strip())
        if not match:
            raise ValueError(f"array spec {spec!r} has a malformed part {part!r}")
        lo = int(match.group("lo"))
        hi = int(match.group("hi") or lo)
        step = int(match.group("step") or 1)
        if hi < lo or step < 1:
            raise ValueError(f"array spec {spec!r} has an empty range {part!r}")
        found.update(range(lo, hi + 1, step))
    return sorted(found)


def chunk(indices: Sequence[int], max_size: int) -> list[tuple[int, ...]]:
    """Split ``indices`` in order into consecutive pieces of at most ``max_size`` items.

    Args:
        indices: The items to split; order is kept.
        max_size: The largest piece allowed.

    Returns:
        The pieces; none is empty, and their concatenation is ``indices``.

    Raises:
        ValueError: If ``max_size`` is not positive.
    """
    if max_size < 1:
        raise ValueError(f"chunk size must be positive, got {max_size}")
    items = tuple(indices)
    return [items[start : start + max_size] for start in range(0, len(items), max_size)]
