"""Types: annotations normalize into TypeRefs that compare, print, round-trip and check values."""

import typing
from collections.abc import Sequence
from pathlib import Path, PurePosixPath
from typing import Any, Literal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reflow.definition.types import (
    ANY,
    NONE,
    TypeRef,
    UnsupportedTypeError,
    conforms,
    from_annotation,
    is_assignable,
)

STR, INT, FLOAT, BOOL, PATH = (TypeRef(k) for k in ("str", "int", "float", "bool", "path"))


def list_of(ref: TypeRef) -> TypeRef:
    return TypeRef("list", (ref,))


class Custom:
    pass


@pytest.mark.parametrize(
    ("annotation", "expected"),
    [
        (str, STR),
        (int, INT),
        (float, FLOAT),
        (bool, BOOL),
        (Path, PATH),
        (PurePosixPath, PATH),
        (None, NONE),
        (type(None), NONE),
        (Any, ANY),
        (object, ANY),
        (list[str], list_of(STR)),
        (list, list_of(ANY)),
        (Sequence[int], list_of(INT)),
        (tuple[Path, ...], list_of(PATH)),
        (list[list[int]], list_of(list_of(INT))),
        (tuple[int, str], TypeRef("tuple", (INT, STR))),
        (dict[str, int], TypeRef("dict", (STR, INT))),
        (dict, TypeRef("dict", (STR, ANY))),
        (Literal["a", "b"], TypeRef("literal", values=("a", "b"))),
        (Literal[1, 2], TypeRef("literal", values=(1, 2))),
        (typing.Optional[int], TypeRef("optional", (INT,))),  # noqa: UP045
        (int | None, TypeRef("optional", (INT,))),
        (int | str, TypeRef("union", (INT, STR))),
        (int | str | None, TypeRef("optional", (TypeRef("union", (INT, STR)),))),
    ],
)
def test_annotation_normalizes_to_type_ref(annotation, expected):
    assert from_annotation(annotation) == expected


@pytest.mark.parametrize(
    "annotation",
    [Custom, dict[int, str], Literal[1.5], list[Custom], set[str], bytes, complex],
    ids=[
        "custom-class",
        "dict-int-keys",
        "float-literal",
        "list-of-custom",
        "set",
        "bytes",
        "complex",
    ],
)
def test_unsupported_annotation_raises(annotation):
    with pytest.raises(UnsupportedTypeError):
        from_annotation(annotation)


@pytest.mark.parametrize(
    ("annotation", "text"),
    [
        (list[str], "list[str]"),
        (Path, "Path"),
        (int | None, "int | None"),
        (int | str, "int | str"),
        (Literal["a", 1], "Literal['a', 1]"),
        (dict[str, list[Path]], "dict[str, list[Path]]"),
        (tuple[int, str], "tuple[int, str]"),
        (None, "None"),
        (Any, "Any"),
    ],
)
def test_type_ref_prints_like_python(annotation, text):
    assert str(from_annotation(annotation)) == text


def _refs() -> st.SearchStrategy[TypeRef]:
    scalars = st.sampled_from([STR, INT, FLOAT, BOOL, PATH, ANY, NONE]) | st.builds(
        lambda values: TypeRef("literal", values=tuple(values)),
        st.lists(st.one_of(st.text(max_size=3), st.integers(), st.booleans()), min_size=1),
    )
    return st.recursive(
        scalars,
        lambda inner: st.one_of(
            inner.map(list_of),
            inner.map(lambda ref: TypeRef("optional", (ref,))),
            st.lists(inner, min_size=1, max_size=3).map(lambda a: TypeRef("tuple", tuple(a))),
            inner.map(lambda ref: TypeRef("dict", (STR, ref))),
        ),
        max_leaves=6,
    )


@settings(database=None, max_examples=200)
@given(_refs())
def test_type_ref_json_round_trips(ref):
    assert TypeRef.from_json(ref.to_json()) == ref


@pytest.mark.parametrize(
    ("source", "target"),
    [
        (STR, STR),
        (INT, FLOAT),
        (list_of(INT), list_of(FLOAT)),
        (ANY, list_of(STR)),
        (list_of(STR), ANY),
        (NONE, TypeRef("optional", (STR,))),
        (STR, TypeRef("optional", (STR,))),
        (TypeRef("optional", (STR,)), TypeRef("optional", (STR,))),
        (TypeRef("literal", values=("a",)), STR),
        (TypeRef("literal", values=("a",)), TypeRef("literal", values=("a", "b"))),
        (INT, TypeRef("union", (INT, STR))),
        (TypeRef("union", (INT, STR)), TypeRef("union", (STR, INT, PATH))),
        (TypeRef("dict", (STR, INT)), TypeRef("dict", (STR, FLOAT))),
    ],
)
def test_is_assignable_accepts(source, target):
    assert is_assignable(source, target)


@pytest.mark.parametrize(
    ("source", "target"),
    [
        (STR, INT),
        (FLOAT, INT),
        (BOOL, INT),
        (STR, PATH),
        (PATH, STR),
        (list_of(STR), STR),
        (STR, list_of(STR)),
        (TypeRef("optional", (STR,)), STR),
        (NONE, STR),
        (TypeRef("literal", values=("a", "c")), TypeRef("literal", values=("a", "b"))),
        (TypeRef("literal", values=(1,)), STR),
        (TypeRef("union", (INT, STR)), INT),
        (TypeRef("tuple", (INT, INT)), TypeRef("tuple", (INT,))),
        (TypeRef("tuple", (INT,)), list_of(INT)),
    ],
)
def test_is_assignable_refuses(source, target):
    assert not is_assignable(source, target)


@pytest.mark.parametrize(
    ("value", "annotation"),
    [
        ("a", str),
        (1, int),
        (1, float),
        (1.5, float),
        (True, bool),
        (Path("x"), Path),
        (None, None),
        (None, int | None),
        (3, int | None),
        ("era5", Literal["era5", "icon"]),
        ([1, 2], list[int]),
        ((1, 2), list[int]),
        ([], list[str]),
        ([[1], [2, 3]], list[list[int]]),
        ((1, "a"), tuple[int, str]),
        ({"a": 1}, dict[str, int]),
        (3, int | str),
        (object(), Any),
    ],
)
def test_conforms_accepts_matching_values(value, annotation):
    assert conforms(value, from_annotation(annotation))


@pytest.mark.parametrize(
    ("value", "annotation"),
    [
        (1, str),
        (True, int),
        (True, float),
        ("x", Path),
        ("1.5", float),
        (0, bool),
        (1, None),
        ("gfs", Literal["era5", "icon"]),
        ([1, "2"], list[int]),
        ("ab", list[str]),
        ((1,), tuple[int, str]),
        ({1: 1}, dict[str, int]),
        ({"a": "b"}, dict[str, int]),
        (1.5, int | str),
    ],
)
def test_conforms_refuses_mismatched_values(value, annotation):
    assert not conforms(value, from_annotation(annotation))


def test_list_item_of_bare_list_is_any():
    assert TypeRef("list").item == ANY
    assert list_of(STR).is_list
    assert not STR.is_list
