"""Planning: canonical JSON for values that cross a process boundary. Pure; never pickle.

A value is first turned into its *tagged JSON form* (:func:`to_json`), then written as
*canonical text* (:func:`to_text`): sorted keys, no spaces, UTF-8 characters kept, no NaN.
Equal values always give the same text, which is what :mod:`reflow.planning.identity` hashes.

Supported values: ``None``, ``bool``, ``int``, finite ``float``, ``str``, ``list``, ``tuple``
(written as a list, so it reads back as a list), ``dict`` with ``str`` keys, and
``pathlib.PurePath`` (written as ``{"$path": "..."}``, read back as ``Path``; a worker may add
the file's fingerprint, ``{"$path": "...", "$fp": "stat:..."}``, which is read back as the same
``Path`` and enters the value's hash). A dict with a
key starting with ``$`` is written as ``{"$dict": [[key, value], ...]}`` (sorted by key) so it
never collides with a tag. Everything else raises :class:`LocatedEncodingError`, which names
the Python type and where it sits (``value[3]["x"]``).

The encoder walks containers with an explicit stack (deep values never raise
``RecursionError``) and hands containers that hold only scalars to the C ``json`` code in one
call, so a list of 100,000 strings costs little more than ``json.dumps``.
"""

from __future__ import annotations

import json
import math
import operator
from collections.abc import Callable, Iterator
from json.encoder import encode_basestring
from pathlib import Path, PurePath
from typing import Any, TypeAlias

from reflow.definition.errors import EncodingError

JSON: TypeAlias = Any
"""Data made of ``None``, ``bool``, ``int``, ``float``, ``str``, ``list`` and ``dict``."""

MAX_DEPTH = 512
"""Deepest nesting of containers a value may have."""

PATH_TAG = "$path"
FINGERPRINT_TAG = "$fp"
DICT_TAG = "$dict"

_ENCODER = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
)
_SCALAR_TYPES = frozenset({str, int, bool, type(None)})
_NUMBER_TYPES = _SCALAR_TYPES | {float}
_is_tag_key: Callable[[str], bool] = operator.methodcaller("startswith", "$")
_ABOVE_TAG_KEYS = "%"  # every key that starts with "$" sorts below this one
_RETURN_HINT = "return None, bool, int, float, str, list, tuple, dict with str keys or a Path"
_HINTS = {
    "set": "return a sorted list instead",
    "frozenset": "return a sorted list instead",
    "bytes": "decode it to str, or write it to a file and return its Path",
    "bytearray": "decode it to str, or write it to a file and return its Path",
    "numpy.ndarray": "return array.tolist() instead",
}


class LocatedEncodingError(EncodingError):
    """An :class:`EncodingError` that says which Python type failed and where it sits.

    Attributes:
        type_name: The offending type, e.g. ``"set"`` or ``"mymodule.Point"``.
        location: Where it sits inside the encoded value, e.g. ``value[3]["x"]``.
    """

    def __init__(
        self,
        message: str,
        *,
        type_name: str,
        location: str,
        task: str | None = None,
        param: str | None = None,
        value: Any = None,
        hint: str | None = None,
    ) -> None:
        self.type_name = type_name
        self.location = location
        super().__init__(message, task=task, param=param, value=value, hint=hint)

    def for_task(self, task: str, param: str | None = None) -> LocatedEncodingError:
        """Return the same error naming the task (and parameter) it occurred in."""
        return LocatedEncodingError(
            self.problem,
            type_name=self.type_name,
            location=self.location,
            task=task,
            param=param if param is not None else self.param,
            value=self.value,
            hint=self.hint,
        )


def to_json(value: Any, *, where: str = "value") -> JSON:
    """Return the tagged JSON form of ``value``.

    Args:
        value: The value to encode; see the module docstring for what is supported.
        where: How error locations name the value itself, e.g. ``"nc_file"``.

    Returns:
        Data that ``json`` can write: tuples become lists, paths and dicts with ``$`` keys
        become tagged dicts.

    Raises:
        LocatedEncodingError: A part of ``value`` cannot be encoded.
    """
    if type(value) in _SCALAR_TYPES:
        return value
    return _Walk(where).run(value)


def to_text(data: JSON, *, where: str = "value") -> str:
    """Return the canonical text of data already in tagged JSON form (see :func:`to_json`).

    Raises:
        LocatedEncodingError: The data nests too deeply, holds a non-finite float, an ``int``
            too long to print, or a string that is not valid Unicode (a lone surrogate).
    """
    try:
        text = _ENCODER.encode(data)
    except RecursionError as err:
        raise _error(data, where, "nests too deeply to write as JSON", None) from err
    except (ValueError, TypeError) as err:
        raise _error(data, where, f"cannot be written as JSON ({err})", None) from err
    _require_unicode(text, data, where)
    return text


def dumps(value: Any, *, where: str = "value") -> str:
    """Return the canonical text of ``value``: ``to_text(to_json(value))``.

    Raises:
        LocatedEncodingError: A part of ``value`` cannot be encoded.
    """
    return to_text(to_json(value, where=where), where=where)


def encode_items(values: list[Any], *, where: str = "value") -> list[str]:
    """Return the canonical text of each element of ``values``, in order.

    ``encode_items(values)[i] == dumps(values[i])``; a list of strings is encoded in one pass
    of C code.

    Raises:
        LocatedEncodingError: An element cannot be encoded; the location names its index.
    """
    if set(map(type, values)) <= {str}:
        texts = list(map(encode_basestring, values))
    else:
        texts = [to_text(item, where=where) for item in to_json(values, where=where)]
    _require_unicode("".join(texts), values, where)
    return texts


def from_json(data: JSON, *, where: str = "value") -> Any:
    """Return the value whose tagged JSON form is ``data`` (the inverse of :func:`to_json`).

    Raises:
        LocatedEncodingError: ``data`` is not JSON or holds a malformed tag.
    """
    return loads(to_text(data, where=where), where=where)


def loads(text: str, *, where: str = "value") -> Any:
    """Return the value whose canonical text is ``text`` (the inverse of :func:`dumps`).

    Tags are resolved by a hook of the C parser, bottom-up, without Python recursion.

    Raises:
        LocatedEncodingError: ``text`` is not JSON, holds NaN or infinity, nests too deeply,
            or holds a malformed tag.
    """

    def reject_constant(name: str) -> Any:
        raise LocatedEncodingError(
            f"{where} holds {name}, which is not JSON",
            type_name="float",
            location=where,
            hint="write it with reflow's encoder",
        )

    def untag(obj: dict[str, Any]) -> Any:
        # min() runs in C and clears the common dict whose keys all sort after "$..."
        return obj if not obj or min(obj) >= _ABOVE_TAG_KEYS else _untag(obj, where)

    try:
        return json.loads(text, object_hook=untag, parse_constant=reject_constant)
    except RecursionError as err:
        raise _error(text, where, "nests too deeply to read", None) from err
    except ValueError as err:
        raise _error(text, where, f"is not valid JSON ({err})", None) from err


def _untag(obj: dict[str, Any], where: str) -> Any:
    """Resolve one decoded JSON object: a tag becomes its value, a plain dict stays."""
    if not any(map(_is_tag_key, obj)):
        return obj
    if len(obj) == 2 and type(obj.get(PATH_TAG)) is str and type(obj.get(FINGERPRINT_TAG)) is str:
        return Path(obj[PATH_TAG])
    if len(obj) == 1:
        ((tag, content),) = obj.items()
        if tag == PATH_TAG and type(content) is str:
            return Path(content)
        if tag == DICT_TAG and type(content) is list:
            pairs: list[Any] = content
            if all(type(p) is list and len(p) == 2 and type(p[0]) is str for p in pairs):
                result = dict(pairs)
                if len(result) == len(pairs):
                    return result
    raise LocatedEncodingError(
        f"{where} holds a malformed tagged object with keys {sorted(obj)}",
        type_name="dict",
        location=where,
        value=obj,
        hint=f"write dicts with $ keys through reflow's encoder ({DICT_TAG} escapes them)",
    )


class _Frame:
    """One open container of the walk: its pending items and where their encodings go."""

    __slots__ = ("items", "key", "source_id", "store")

    def __init__(
        self,
        items: Iterator[tuple[Any, Any]],
        store: Callable[[Any, JSON], None],
        key: Any,
        source_id: int,
    ) -> None:
        self.items = items
        self.store = store
        self.key = key
        self.source_id = source_id


class _Walk:
    """Depth-first encoding of one value with an explicit stack of open containers."""

    def __init__(self, where: str) -> None:
        self.where = where
        self.frames: list[_Frame] = []
        self.open_ids: set[int] = set()

    def run(self, value: Any) -> JSON:
        out: list[JSON] = []
        self.frames.append(_Frame(iter(((None, value),)), _store_in_list(out), None, 0))
        frames = self.frames
        while frames:
            frame = frames[-1]
            for key, item in frame.items:
                kind = type(item)
                if kind in _SCALAR_TYPES:
                    frame.store(key, item)
                    continue
                if kind is float and math.isfinite(item):
                    frame.store(key, item)
                    continue
                child = self._open(key, item, frame.store)
                if child is not None:
                    self._push(child, key, item)
                    break
            else:
                frames.pop()
                self.open_ids.discard(frame.source_id)
        return out[0]

    def _open(self, key: Any, item: Any, store: Callable[[Any, JSON], None]) -> _Frame | None:
        """Store the encoding of ``item``; return a frame when its items still need a walk."""
        if isinstance(item, (list, tuple, dict)) and len(self.frames) > MAX_DEPTH:
            message = f"cannot encode containers nested more than {MAX_DEPTH} deep"
            raise self._fail(key, item, message, "flatten the value")
        if isinstance(item, (list, tuple)):
            if _holds_only_numbers(item):
                store(key, list(item))
                return None
            encoded: list[JSON] = []
            store(key, encoded)
            return _Frame(enumerate(item), _store_in_list(encoded), key, id(item))
        if isinstance(item, dict):
            return self._open_dict(key, item, store)
        if isinstance(item, PurePath):
            store(key, {PATH_TAG: item.as_posix()})
        elif isinstance(item, str):
            store(key, str.__str__(item))
        elif isinstance(item, int):
            store(key, int.__int__(item))
        elif isinstance(item, float) and math.isfinite(item):
            store(key, float.__float__(item))
        elif isinstance(item, float):
            raise self._fail(key, item, f"cannot encode float {item!r}", "use None for no value")
        else:
            raise self._fail(key, item, f"cannot encode {_type_name(item)}")
        return None

    def _open_dict(
        self, key: Any, item: dict[Any, Any], store: Callable[[Any, JSON], None]
    ) -> _Frame | None:
        source_id = id(item)
        if not set(map(type, item)) <= {str}:
            for name in item:
                if not isinstance(name, str):
                    message = f"cannot encode dict key {name!r} of type {_type_name(name)}"
                    raise self._fail(key, name, message, "use str keys, e.g. str(key)")
            item = {str.__str__(name): entry for name, entry in item.items()}
        if item and min(item) < _ABOVE_TAG_KEYS and any(map(_is_tag_key, item)):
            pairs: list[list[JSON]] = []
            store(key, {DICT_TAG: pairs})
            return _Frame(iter(sorted(item.items())), _store_in_pairs(pairs), key, source_id)
        if _holds_only_numbers(item.values()):
            store(key, dict(item))
            return None
        encoded: dict[str, JSON] = {}
        store(key, encoded)
        return _Frame(iter(item.items()), encoded.__setitem__, key, source_id)

    def _push(self, child: _Frame, key: Any, item: Any) -> None:
        if child.source_id in self.open_ids:
            message = f"cannot encode a {_type_name(item)} that contains itself"
            raise self._fail(key, item, message, "return a copy without the cycle")
        self.open_ids.add(child.source_id)
        self.frames.append(child)

    def _fail(
        self, key: Any, item: Any, message: str, hint: str | None = _RETURN_HINT
    ) -> LocatedEncodingError:
        # The first key is the root's own (None); the rest lead from the root to ``item``.
        keys = [frame.key for frame in self.frames[1:]] + [key]
        location = self.where + "".join(map(_render_key, keys[1:]))
        type_name = _type_name(item)
        return LocatedEncodingError(
            f"{location}: {message}",
            type_name=type_name,
            location=location,
            value=item,
            hint=_HINTS.get(type_name, hint),
        )


def _store_in_list(target: list[JSON]) -> Callable[[Any, JSON], None]:
    return lambda _key, encoded: target.append(encoded)


def _store_in_pairs(target: list[list[JSON]]) -> Callable[[Any, JSON], None]:
    return lambda key, encoded: target.append([key, encoded])


def _holds_only_numbers(items: Any) -> bool:
    """Whether ``items`` are all scalars or finite floats, checked in C where possible."""
    kinds = set(map(type, items))
    if kinds <= _SCALAR_TYPES:
        return True
    if kinds <= _NUMBER_TYPES:
        return all(math.isfinite(item) for item in items if type(item) is float)
    return False


def _render_key(key: Any) -> str:
    return f"[{encode_basestring(key)}]" if isinstance(key, str) else f"[{key}]"


def _type_name(item: Any) -> str:
    kind = type(item)
    module = kind.__module__
    return kind.__qualname__ if module == "builtins" else f"{module}.{kind.__qualname__}"


def _require_unicode(text: str, value: Any, where: str) -> None:
    """Reject lone surrogates, which UTF-8 (files, sqlite, hashes) cannot hold."""
    if text.isascii():
        return
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as err:
        raise _error(value, where, "holds a string with a lone surrogate", None) from err


def _error(value: Any, where: str, message: str, hint: str | None) -> LocatedEncodingError:
    return LocatedEncodingError(
        f"{where} {message}",
        type_name=_type_name(value),
        location=where,
        value=value,
        hint=hint,
    )
