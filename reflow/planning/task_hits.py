"""Planning: a whole task taken from the cache at once (a task hit), and its outputs. No I/O.

A task's key (``identity.task_key``) says what all its identities are computed from. When an
earlier planning of the task in the run directory had the same key, its identities are the
ones this planning would compute, element by element; when every one of them still has an
output in the store, every element is a cache hit, exactly as the per-element lookup would
find. The planner then asks nothing per element: the dispatcher copies the earlier
instances as cached ones, and the task's outputs are read from the store only when a
consumer needs them: their hashes for a gather's identity, their values when inputs are
written. Anything else (a miss, a forced task, a check of cached files) takes the
per-element path.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import overload

from reflow.definition.errors import StoreError
from reflow.planning.finished import Finished
from reflow.planning.identity import list_hash


class StoredOutputs(Sequence[Finished]):
    """A task hit's outputs in element order, read from the store only as far as needed.

    The list hash of their hashes (``digest``) may be known without the hashes, and the
    hashes without the values: each is read when first asked for, through the callables
    the dispatcher gives.
    """

    __slots__ = ("_digest", "_hashes", "_outputs", "_read", "_read_hashes", "_size")

    def __init__(
        self,
        size: int,
        *,
        hashes: list[str] | None = None,
        digest: str | None = None,
        read_hashes: Callable[[], list[str]],
        read: Callable[[], list[Finished]],
    ) -> None:
        self._size = size
        self._hashes = hashes
        self._digest = digest
        self._read_hashes = read_hashes
        self._read = read
        self._outputs: list[Finished] | None = None

    def hashes(self) -> list[str]:
        """Each element's output hash, in order, without reading any value."""
        if self._hashes is None:
            hashes = self._read_hashes()
            self._check(hashes)
            self._hashes = hashes
        return self._hashes

    def digest(self) -> str:
        """The list hash of the output hashes (``identity.list_hash``)."""
        if self._digest is None:
            self._digest = list_hash(self.hashes())
        return self._digest

    def _check(self, hashes: list[str]) -> None:
        known = self._hashes
        same = hashes == known if known is not None else len(hashes) == self._size
        if same and known is None and self._digest is not None:
            same = list_hash(hashes) == self._digest
        if not same:
            # Another run replaced them meanwhile: a Slurm turn is tried again (a store error).
            raise StoreError("the cached outputs changed while this turn planned; plan again")

    def _all(self) -> list[Finished]:
        if self._outputs is None:
            outputs = self._read()
            self._check([f.hash for f in outputs])
            self._outputs = outputs
        return self._outputs

    def __len__(self) -> int:
        return self._size

    @overload
    def __getitem__(self, index: int) -> Finished: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[Finished]: ...

    def __getitem__(self, index: int | slice) -> Finished | Sequence[Finished]:
        return self._all()[index]

    def __iter__(self) -> Iterator[Finished]:
        return iter(self._all())


class ByElement(Mapping[int, Finished]):
    """``element -> output`` over outputs in element order, read only when one is used."""

    __slots__ = ("_outputs",)

    def __init__(self, outputs: Sequence[Finished]) -> None:
        self._outputs = outputs

    def __getitem__(self, element: int) -> Finished:
        if not 0 <= element < len(self._outputs):
            raise KeyError(element)
        return self._outputs[element]

    def __contains__(self, element: object) -> bool:
        return isinstance(element, int) and 0 <= element < len(self._outputs)

    def __len__(self) -> int:
        return len(self._outputs)

    def __iter__(self) -> Iterator[int]:
        return iter(range(len(self._outputs)))


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskHit:
    """Every element of a task is cached: the identities of an earlier planning with its key.

    ``source`` names that planning for the store (the run it belongs to); the planner only
    passes it on.
    """

    source: str
    outputs: StoredOutputs

    @property
    def size(self) -> int:
        """How many elements the task has."""
        return len(self.outputs)


TaskLookup = Callable[[str, str], "TaskHit | None"]
"""Task-level cache lookup: ``(task, key) -> TaskHit`` when every element is cached."""


def output_hashes(outputs: Sequence[Finished]) -> list[str]:
    """The hash of each output, in order; a task hit's without reading its values."""
    if isinstance(outputs, StoredOutputs):
        return outputs.hashes()
    return [f.hash for f in outputs]


def output_digest(outputs: Sequence[Finished]) -> str:
    """The list hash of the outputs' hashes; a task hit's read only when not known."""
    if isinstance(outputs, StoredOutputs):
        return outputs.digest()
    return list_hash([f.hash for f in outputs])


def stored_outputs(
    size: int,
    *,
    hashes: list[str] | None,
    digest: str | None,
    read_hashes: Callable[[], list[str]],
    read: Callable[[], Sequence[tuple[str, str]]],
) -> StoredOutputs:
    """``StoredOutputs`` whose values come from ``read``: ``(text, hash)`` in element order."""
    return StoredOutputs(
        size,
        hashes=hashes,
        digest=digest,
        read_hashes=read_hashes,
        read=lambda: [Finished.from_text(t, h) for t, h in read()],
    )
