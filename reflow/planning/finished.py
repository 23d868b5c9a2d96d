"""Planning: ``Finished``, a finished element's output as the planner reads it. No I/O."""

from __future__ import annotations

import json
from typing import Any


class Finished:
    """A finished element's output: its tagged JSON value and its hash.

    Built from the value, or with :meth:`from_text` from the canonical text the store keeps;
    then the text is parsed only when ``value`` is first read. Planning reads the values of
    a fan-out's source and of the inputs it writes, never those of cache hits it only counts,
    so resubmitting a fully cached fan-out of 100,000 elements parses none of their outputs.
    Immutable, like a frozen dataclass.
    """

    __slots__ = ("_text", "_value", "hash")
    __match_args__ = ("value", "hash")

    _text: str | None
    _value: Any
    hash: str

    def __init__(self, value: Any, hash: str) -> None:  # noqa: A002 - the field's name
        _set_text(self, None)
        _set_value(self, value)
        _set_hash(self, hash)

    @classmethod
    def from_text(cls, text: str, hash: str) -> Finished:  # noqa: A002
        """A finished output whose value is parsed from ``text`` when first read."""
        finished: Finished = object.__new__(cls)
        _set_text(finished, text)
        _set_value(finished, None)
        _set_hash(finished, hash)
        return finished

    @property
    def value(self) -> Any:
        """The output in tagged JSON form (``encoding.to_json``)."""
        text = self._text
        if text is not None:
            _set_value(self, json.loads(text))
            _set_text(self, None)
        return self._value

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"Finished is immutable; cannot set {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"Finished is immutable; cannot delete {name!r}")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Finished):
            return NotImplemented
        return self.hash == other.hash and self.value == other.value

    def __hash__(self) -> int:
        return hash(self.hash)  # equal outputs have equal hashes; values may be lists

    def __repr__(self) -> str:
        return f"Finished(value={self.value!r}, hash={self.hash!r})"


# The slots' own setters: immutable from outside, cheap to fill for 100,000 cache hits.
_set_text = Finished.__dict__["_text"].__set__
_set_value = Finished.__dict__["_value"].__set__
_set_hash = Finished.__dict__["hash"].__set__
