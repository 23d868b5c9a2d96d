"""Definition: a small, hashable model of the types reflow understands. Pure, no I/O.

``TypeRef`` normalizes ``typing`` annotations into data that can be compared (wiring),
written to JSON (``describe``) and checked against values at run time (the worker).
"""

from __future__ import annotations

import types
import typing
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Any, Literal, get_args, get_origin

_SCALARS: dict[Any, str] = {str: "str", int: "int", float: "float", bool: "bool", Path: "path"}
_SCALAR_TYPES: dict[str, type | tuple[type, ...]] = {
    "str": str,
    "int": int,
    "float": (int, float),
    "bool": bool,
    "path": PurePath,
}
JSONScalar = str | int | float | bool | None


@dataclass(frozen=True, slots=True)
class TypeRef:
    """A normalized type: a kind name, its arguments and, for ``literal``, its values.

    Kinds: ``str``, ``int``, ``float``, ``bool``, ``path``, ``none``, ``any``, ``literal``,
    ``list``, ``dict``, ``tuple``, ``optional``, ``union``.
    """

    kind: str
    args: tuple[TypeRef, ...] = ()
    values: tuple[JSONScalar, ...] = ()

    def __str__(self) -> str:
        if self.kind == "literal":
            return "Literal[" + ", ".join(repr(v) for v in self.values) + "]"
        if self.kind == "optional":
            return f"{self.args[0]} | None"
        if self.kind == "union":
            return " | ".join(str(arg) for arg in self.args)
        if self.kind == "path":
            return "Path"
        if self.kind == "none":
            return "None"
        if self.kind == "any":
            return "Any"
        if self.args:
            return f"{self.kind}[{', '.join(str(arg) for arg in self.args)}]"
        return self.kind

    @property
    def is_list(self) -> bool:
        """True for ``list[T]``."""
        return self.kind == "list"

    @property
    def item(self) -> TypeRef:
        """The element type of a ``list[T]`` (``Any`` for a bare list)."""
        return self.args[0] if self.args else ANY

    def to_json(self) -> Any:
        """Return a JSON form; ``from_json`` reads it back."""
        data: dict[str, Any] = {"kind": self.kind}
        if self.args:
            data["args"] = [arg.to_json() for arg in self.args]
        if self.values:
            data["values"] = list(self.values)
        return data

    @staticmethod
    def from_json(data: Any) -> TypeRef:
        """Rebuild a ``TypeRef`` from ``to_json`` output."""
        return TypeRef(
            kind=str(data["kind"]),
            args=tuple(TypeRef.from_json(arg) for arg in data.get("args", ())),
            values=tuple(data.get("values", ())),
        )


ANY = TypeRef("any")
NONE = TypeRef("none")


class UnsupportedTypeError(TypeError):
    """Raised by ``from_annotation`` for a type reflow cannot carry; callers add context."""


def from_annotation(annotation: Any) -> TypeRef:
    """Normalize a ``typing`` annotation (``Annotated`` already stripped) into a ``TypeRef``."""
    if annotation is Any or annotation is object:
        return ANY
    if annotation is None or annotation is type(None):
        return NONE
    if annotation in _SCALARS:
        return TypeRef(_SCALARS[annotation])
    if isinstance(annotation, type) and issubclass(annotation, PurePath):
        return TypeRef("path")
    origin = get_origin(annotation)
    args = get_args(annotation)
    if origin is Literal:
        if not all(isinstance(v, (str, int, bool)) for v in args):
            raise UnsupportedTypeError("Literal values must be str, int or bool")
        return TypeRef("literal", values=tuple(args))
    if origin in (list, Sequence, typing.Sequence) or annotation is list:
        return TypeRef("list", (from_annotation(args[0]),) if args else (ANY,))
    if origin is tuple or annotation is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return TypeRef("list", (from_annotation(args[0]),))
        return TypeRef("tuple", tuple(from_annotation(a) for a in args))
    if origin is dict or annotation is dict:
        key, value = args if args else (str, Any)
        if key is not str:
            raise UnsupportedTypeError("dict keys must be str to cross a process boundary")
        return TypeRef("dict", (TypeRef("str"), from_annotation(value)))
    if origin is typing.Union or origin is types.UnionType:
        members = [a for a in args if a is not type(None)]
        inner = (
            from_annotation(members[0])
            if len(members) == 1
            else TypeRef("union", tuple(from_annotation(m) for m in members))
        )
        return TypeRef("optional", (inner,)) if len(members) < len(args) else inner
    raise UnsupportedTypeError(f"{annotation!r} is not a type reflow can pass between tasks")


def is_assignable(source: TypeRef, target: TypeRef) -> bool:
    """Return True when a value of type ``source`` may be passed where ``target`` is declared."""
    if source == target or source.kind == "any" or target.kind == "any":
        return True
    if target.kind == "optional":
        return source.kind == "none" or is_assignable(_strip_optional(source), target.args[0])
    if target.kind == "union":
        members = source.args if source.kind == "union" else (source,)
        return all(any(is_assignable(m, t) for t in target.args) for m in members)
    if source.kind == "literal":
        return _literal_fits(source, target)
    if source.kind == "int" and target.kind == "float":
        return True
    if source.kind == target.kind and source.kind in ("list", "dict", "tuple"):
        if source.kind == "tuple" and len(source.args) != len(target.args):
            return False
        return all(is_assignable(s, t) for s, t in zip(source.args, target.args, strict=False))
    return False


def _strip_optional(ref: TypeRef) -> TypeRef:
    return ref.args[0] if ref.kind == "optional" else ref


def _literal_fits(source: TypeRef, target: TypeRef) -> bool:
    if target.kind == "literal":
        return set(source.values) <= set(target.values)
    return all(conforms(value, target) for value in source.values)


def conforms(value: Any, ref: TypeRef) -> bool:
    """Return True when a run-time value matches ``ref`` (lists are checked element-wise)."""
    kind = ref.kind
    if kind == "any":
        return True
    if kind == "none":
        return value is None
    if kind == "optional":
        return value is None or conforms(value, ref.args[0])
    if kind == "union":
        return any(conforms(value, arg) for arg in ref.args)
    if kind == "literal":
        return value in ref.values
    if kind in _SCALAR_TYPES:
        if kind in ("int", "float") and isinstance(value, bool):
            return False
        return isinstance(value, _SCALAR_TYPES[kind])
    if kind == "list":
        return isinstance(value, (list, tuple)) and all(conforms(v, ref.item) for v in value)
    if kind == "tuple":
        return (
            isinstance(value, (list, tuple))
            and len(value) == len(ref.args)
            and all(conforms(v, a) for v, a in zip(value, ref.args, strict=True))
        )
    if kind == "dict":
        return isinstance(value, dict) and all(
            isinstance(k, str) and conforms(v, ref.args[1]) for k, v in value.items()
        )
    return False
