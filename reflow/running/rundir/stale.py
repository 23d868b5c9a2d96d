"""Running: the run's record of cached outputs found stale (``stale.json``), and why.

Verification adds to it when it throws a cached output away; ``status`` reads it to say how
many outputs of each task were stale and why (file missing, file changed, ``verify=``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from reflow.running.rundir.layout import RunLayout, write_atomic


def add_stale(layout: RunLayout, found: Mapping[str, Mapping[str, int]]) -> None:
    """Add ``task -> reason -> count`` to the run's record of stale outputs."""
    counts = read_stale(layout)
    for task, reasons in found.items():
        mine = counts.setdefault(task, {})
        for reason, count in reasons.items():
            mine[reason] = mine.get(reason, 0) + count
    write_atomic(layout.stale_outputs, json.dumps(counts, sort_keys=True))


def read_stale(layout: RunLayout) -> dict[str, dict[str, int]]:
    """``task -> reason -> count`` of the cached outputs this run found stale and recomputed."""
    try:
        data = json.loads(layout.stale_outputs.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
