"""Definition: how data flows along an edge, inferred from the two ends' types. Pure.

The six rules (upstream kind and return type -> downstream kind and parameter type):

===========  ==========  ==========  ==========  =================
upstream     returns     downstream  wants       mode
===========  ==========  ==========  ==========  =================
job          list[T]     array_job   T           fan-out
array_job    T           job         list[T]     gather
array_job    T           array_job   T           chain (1:1)
array_job    list[T]     array_job   T           flatten + fan-out
array_job    list[T]     job         list[T]     gather + flatten
job          T           job         T           direct
===========  ==========  ==========  ==========  =================

One more is natural: a job's ``T`` feeding an array's ``T`` is the same value for every
element (broadcast). ``Result(steps=[...])`` concatenates the sources, so each of its edges
must yield elements (into an array) or a list (into a job).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence

from reflow.definition.errors import DefinitionError
from reflow.definition.spec import InputSpec, TaskSpec
from reflow.definition.types import TypeRef, is_assignable


class EdgeMode(enum.Enum):
    """How one upstream task's output reaches one downstream parameter."""

    FAN_OUT = "fan-out"
    GATHER = "gather"
    CHAIN = "chain"
    FLATTEN_FAN_OUT = "flatten+fan-out"
    GATHER_FLATTEN = "gather+flatten"
    DIRECT = "direct"
    BROADCAST = "broadcast"

    @property
    def is_elementwise(self) -> bool:
        """True when the downstream array gets one item per element from this edge."""
        return self in (EdgeMode.FAN_OUT, EdgeMode.CHAIN, EdgeMode.FLATTEN_FAN_OUT)


def _kind(spec: TaskSpec) -> str:
    return "array_job" if spec.is_array else "job"


def infer_mode(source: TaskSpec, target: TaskSpec, inp: InputSpec) -> EdgeMode:
    """Return the wiring mode of ``source -> target(inp)``; raise when the types do not fit."""
    produced = source.returns
    if produced is None:
        raise DefinitionError(
            f'reads Result(step="{source.name}"), but {source.name}() has no return annotation',
            task=target.name,
            param=inp.name,
            value=source.name,
            hint=f"annotate what {source.name}() returns, e.g. -> list[str]",
        )
    wanted = inp.type
    for mode, upstream, downstream in _candidates(source, target, produced, wanted):
        if is_assignable(upstream, downstream):
            return mode
    raise DefinitionError(
        f"{_kind(source)} {source.name}() returns {produced}, which cannot feed "
        f"{wanted} in {_kind(target)} {target.name}()",
        task=target.name,
        param=inp.name,
        value=str(produced),
        hint=_fix_hint(source, target, produced),
    )


def _candidates(
    source: TaskSpec, target: TaskSpec, produced: TypeRef, wanted: TypeRef
) -> list[tuple[EdgeMode, TypeRef, TypeRef]]:
    """The modes that the two task kinds allow, most specific first, with types to compare."""
    if not source.is_array and target.is_array:
        pairs = [(EdgeMode.BROADCAST, produced, wanted)]
        if produced.is_list:
            pairs.insert(0, (EdgeMode.FAN_OUT, produced.item, wanted))
        return pairs
    if source.is_array and not target.is_array:
        pairs = []
        if wanted.is_list:
            pairs.append((EdgeMode.GATHER, produced, wanted.item))
            if produced.is_list:
                pairs.append((EdgeMode.GATHER_FLATTEN, produced.item, wanted.item))
        return pairs
    if source.is_array and target.is_array:
        pairs = [(EdgeMode.CHAIN, produced, wanted)]
        if produced.is_list:
            pairs.append((EdgeMode.FLATTEN_FAN_OUT, produced.item, wanted))
        return pairs
    return [(EdgeMode.DIRECT, produced, wanted)]


def _fix_hint(source: TaskSpec, target: TaskSpec, produced: TypeRef) -> str:
    if source.is_array and not target.is_array:
        return f"declare the parameter as list[{produced}] to gather the elements"
    if not source.is_array and target.is_array and not produced.is_list:
        return f"return list[{produced}] from {source.name}() to fan out over it"
    if produced.is_list and target.is_array:
        return f"declare the parameter as {produced.item} to get one item per element"
    return f"declare the parameter as {produced}"


def check_sources(
    target: TaskSpec,
    inp: InputSpec,
    modes: list[EdgeMode],
    produced: Sequence[TypeRef | None] = (),
) -> None:
    """Check that the modes of a multi-source ``Result(steps=[...])`` can be concatenated.

    ``produced`` holds the sources' return types, in the order of ``modes``: a source wired
    directly into a job's list must itself return a list, or it would be split into items.
    """
    if len(modes) < 2:
        return
    if target.is_array:
        ok = all(mode.is_elementwise for mode in modes)
        fix = "every source must give one item per element (fan-out or chain)"
    else:
        direct_lists = all(
            ref is not None and ref.is_list
            for mode, ref in zip(modes, produced, strict=False)
            if mode is EdgeMode.DIRECT
        )
        ok = inp.type.is_list and direct_lists
        fix = "declare the parameter as a list; every source must return a list"
    if not ok:
        raise DefinitionError(
            f"concatenates {', '.join(inp.sources)} with modes "
            f"{', '.join(m.value for m in modes)}, which do not combine",
            task=target.name,
            param=inp.name,
            value=list(inp.sources),
            hint=fix,
        )
