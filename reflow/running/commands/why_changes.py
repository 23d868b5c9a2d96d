"""Running: what changed between two runs' recorded values, as ``why`` names it. No store.

Compares what two runs recorded (parameter values, code hashes, upstream outputs with the
fingerprints of their files) and says what differs. A change that names files keeps them apart
from its label, so ``why`` can group ten thousand elements whose files changed into one line
with a count and a few examples.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from reflow.definition.wiring import EdgeMode
from reflow.planning.encoding import loads
from reflow.planning.paths import tagged_paths
from reflow.running.fingerprints import what_changed

Files = tuple[tuple[str, str], ...]
"""``(path, what changed)`` pairs: ``("/runs/out/f0.txt", "size")``."""

Reason = tuple[str, str, Files]
"""``(reason, detail, files)``: with files, the detail is their label (``convert``)."""

_NAMED = 5  # files named in full; more are a count and the first _EXAMPLES
_EXAMPLES = 3


def listing(label: str, files: Mapping[str, str]) -> str:
    """``label: a (size), b (mtime)``; past a few files, their count and a few examples."""
    shown = [f"{path} ({files[path]})" for path in sorted(files)]
    if len(shown) <= _NAMED:
        return f"{label}: " + ", ".join(shown)
    return f"{label}: {len(shown)} files, e.g. " + ", ".join(shown[:_EXAMPLES])


def chain_sources(description: Mapping[str, Any]) -> dict[str, frozenset[str]]:
    """``task -> upstream tasks`` whose element ``i`` alone feeds the task's element ``i``.

    Read from the wiring the run recorded (the edges' modes the planner used): a chain edge
    that is the only edge into its parameter. Any other edge (a gather, a fan-out, a flatten,
    sources concatenated into one parameter) feeds every element from all of its source.
    """
    edges = [e for e in description.get("edges", []) if e.get("param") is not None]
    per_param = Counter((e["target"], e["param"]) for e in edges)
    chained: dict[str, set[str]] = {}
    other: set[tuple[str, str]] = set()
    for edge in edges:
        pair = (edge["target"], edge["source"])
        if edge["mode"] == EdgeMode.CHAIN.value and per_param[(pair[0], edge["param"])] == 1:
            chained.setdefault(pair[0], set()).add(pair[1])
        else:
            other.add(pair)
    return {
        target: frozenset(s for s in sources if (target, s) not in other)
        for target, sources in chained.items()
    }


def output_changes(
    source: str, new: Sequence[tuple[str, str]], old: Sequence[tuple[str, str]]
) -> list[Reason]:
    """How ``source``'s outputs ``(value, hash)`` a consumer reads differ from the earlier ones.

    Files are compared by path over all of them, so a gather names each file that changed,
    appeared or is no longer read, wherever it sits in the list.
    """
    if [digest for _value, digest in new] == [digest for _value, digest in old]:
        return []
    files = file_changes([value for value, _digest in old], [value for value, _digest in new])
    if files:
        return [("upstream file", source, files)]
    return [("upstream output", f"{source}'s output changed", ())]


def file_changes(old_texts: Sequence[str], new_texts: Sequence[str]) -> Files:
    """``(path, what changed)`` of the files whose fingerprint differs between two sets of values.

    A path only in the new values is "new", one only in the old values "no longer read"; a
    path without a fingerprint (``fingerprint="path"``) is not compared.
    """
    old, new = _paths(old_texts), _paths(new_texts)
    if old is None or new is None:
        return ()
    found = []
    for path, fingerprint in new.items():
        before = old.get(path, "")
        if fingerprint is None or before is None or before == fingerprint:
            continue
        found.append((path, what_changed(before, fingerprint) if before else "new"))
    found.extend((path, "no longer read") for path in old.keys() - new.keys())
    return tuple(sorted(found))


def _paths(texts: Sequence[str]) -> dict[str, str | None] | None:
    found: dict[str, str | None] = {}
    try:
        for text in texts:
            found.update(tagged_paths(json.loads(text)))
    except ValueError:
        return None
    return found


def code_change(spec: Mapping[str, Any], old: Mapping[str, Any]) -> list[Reason]:
    """The code hash in the identity (``on_code_change = "rerun"`` only), if it changed."""
    new_code, old_code = spec.get("code") or "", old.get("code") or ""
    if new_code == old_code:
        return []
    if new_code and old_code:
        name = spec.get("qualname") or spec["name"]
        return [("code", f"the code of {name}() changed (its body or its code_deps)", ())]
    if new_code:
        return [("code", 'on_code_change = "rerun" put the code hash into the identity', ())]
    return [("code", "the code hash no longer enters the identity", ())]


def param_changes(
    flags: list[tuple[str, str]], now: Mapping[str, Any], before: Mapping[str, Any]
) -> list[Reason]:
    """The task's own flags whose values differ; an input file that changed in place by name."""
    found: list[Reason] = []
    for key, flag in flags:
        new, old = now.get(key), before.get(key)
        if new == old:
            continue
        if _without_fingerprints(old) == _without_fingerprints(new):
            files = file_changes([json.dumps(old)], [json.dumps(new)])
            if files:
                found.append(("input file", flag, files))
                continue
        found.append(("parameter", f"{flag}: {_show(old)} -> {_show(new)}", ()))
    return found


def _without_fingerprints(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_fingerprints(v) for k, v in value.items() if k != "$fp"}
    if isinstance(value, list):
        return [_without_fingerprints(v) for v in value]
    return value


def _show(value: Any) -> str:
    if value is None:
        return "(not set)"
    try:
        shown = loads(json.dumps(value))
    except ValueError:
        shown = value
    return str(shown) if isinstance(shown, Path) else repr(shown)
