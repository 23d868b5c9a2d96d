import enum
import json
import math
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reflow.definition.errors import EncodingError, ReflowError
from reflow.planning.encoding import (
    MAX_DEPTH,
    LocatedEncodingError,
    dumps,
    encode_items,
    from_json,
    loads,
    to_json,
    to_text,
)

# Keys that look like tags are drawn often, so escaping is exercised on most examples.
keys = st.one_of(
    st.text(max_size=6),
    st.text(max_size=6).map(lambda text: "$" + text),
    st.sampled_from(["$path", "$dict", "$", "path", "dict"]),
)
paths = st.text(max_size=12).map(Path)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=10),
    paths,
)
values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(keys, children, max_size=5),
    max_leaves=25,
)


def reorder(value: Any) -> Any:
    """The same value with every dict's insertion order reversed."""
    if isinstance(value, dict):
        return {key: reorder(value[key]) for key in reversed(list(value))}
    if isinstance(value, list):
        return [reorder(item) for item in value]
    return value


def nested_lists(depth: int) -> list[Any]:
    value: list[Any] = ["leaf"]
    for _ in range(depth - 1):
        value = [value, "x"]
    return value


def nested_empty_lists(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth - 1):
        value = [value]
    return value


class Point:
    pass


class Color(str, enum.Enum):
    RED = "red"


class Level(enum.IntEnum):
    HIGH = 3


# Round trips and canonical text


@given(values)
def test_loads_dumps_round_trips_every_supported_value(value: Any) -> None:
    text = dumps(value)
    assert loads(text) == value
    assert dumps(loads(text)) == text


@given(values)
def test_from_json_inverts_to_json(value: Any) -> None:
    data = to_json(value)
    assert from_json(data) == value
    assert json.loads(json.dumps(data)) == data


@given(values)
def test_canonical_text_ignores_dict_order(value: Any) -> None:
    assert dumps(reorder(value)) == dumps(value)


@given(values)
def test_canonical_text_is_sorted_compact_json(value: Any) -> None:
    data = to_json(value)
    expected = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert dumps(value) == expected


def test_canonical_text_keeps_unicode_and_has_no_spaces() -> None:
    assert dumps({"b": [1, 2.5], "a": "é"}) == '{"a":"é","b":[1,2.5]}'


def test_tuple_is_written_as_list_and_read_back_as_list() -> None:
    assert dumps((1, ("a", None))) == dumps([1, ["a", None]])
    assert loads(dumps((1, 2))) == [1, 2]


def test_path_is_tagged_and_read_back_as_path() -> None:
    assert to_json(Path("/data/a.nc")) == {"$path": "/data/a.nc"}
    decoded = loads(dumps([PurePosixPath("rel/b.nc")]))
    assert decoded == [Path("rel/b.nc")]
    assert type(decoded[0]) is type(Path())


def test_bool_stays_bool_and_int_stays_int() -> None:
    decoded = loads(dumps([True, 1, 1.0]))
    assert [type(item) for item in decoded] == [bool, int, float]


def test_enum_and_other_subclasses_of_scalars_encode_as_their_base_value() -> None:
    assert dumps([Color.RED, Level.HIGH]) == dumps(["red", 3])
    assert dumps({Color.RED: 1}) == dumps({"red": 1})
    assert [type(item) for item in loads(dumps([Color.RED, Level.HIGH]))] == [str, int]


def test_to_json_copies_containers_instead_of_aliasing_them() -> None:
    value = {"names": ["a", "b"]}
    data = to_json(value)
    data["names"].append("c")
    assert value == {"names": ["a", "b"]}


# Tags never collide with user data


@given(st.text(max_size=12))
def test_dict_shaped_like_a_path_tag_is_not_a_path(text: str) -> None:
    lookalike = {"$path": text}
    assert dumps(lookalike) != dumps(Path(text))
    assert loads(dumps(lookalike)) == lookalike


@given(st.dictionaries(keys, scalars, max_size=4))
def test_dicts_with_tag_keys_are_escaped_and_decode_exactly(value: dict[str, Any]) -> None:
    data = to_json(value)
    if any(key.startswith("$") for key in value):
        assert list(data) == ["$dict"]
    else:
        assert not any(key.startswith("$") for key in data)
    decoded = loads(dumps(value))
    assert decoded == value
    assert type(decoded) is dict


def test_escaped_dict_pairs_are_sorted_by_key() -> None:
    assert dumps({"b": 1, "$a": 2}) == '{"$dict":[["$a",2],["b",1]]}'


# Errors name the type and where it sits


@pytest.mark.parametrize(
    ("value", "type_name", "location"),
    [
        ({1, 2}, "set", "value"),
        ([0, 1, 2, {"x": {1}}], "set", 'value[3]["x"]'),
        ({"a": b"raw"}, "bytes", 'value["a"]'),
        ({1: "one"}, "int", "value"),
        ({"a": {None: 1}}, "NoneType", 'value["a"]'),
        ([float("nan")], "float", "value[0]"),
        ([1.0, 2, float("inf")], "float", "value[2]"),
        ({"k": [1.5, -math.inf]}, "float", 'value["k"][1]'),
        ((1, object()), "object", "value[1]"),
        ({"$a": [1, frozenset()]}, "frozenset", 'value["$a"][1]'),
        ({"a": [{"b": ["x", bytearray()]}]}, "bytearray", 'value["a"][0]["b"][1]'),
    ],
)
def test_unsupported_value_error_names_type_and_location(
    value: Any, type_name: str, location: str
) -> None:
    with pytest.raises(LocatedEncodingError) as caught:
        dumps(value)
    assert caught.value.type_name == type_name
    assert caught.value.location == location
    assert caught.value.hint


def test_error_names_a_user_class_with_its_module() -> None:
    with pytest.raises(LocatedEncodingError) as caught:
        to_json({"p": Point()})
    assert caught.value.type_name == f"{Point.__module__}.Point"
    assert isinstance(caught.value.value, Point)


def test_error_location_starts_at_the_given_name() -> None:
    with pytest.raises(LocatedEncodingError) as caught:
        to_json([{"a": {1}}], where="nc_file")
    assert caught.value.location == 'nc_file[0]["a"]'


def test_error_is_an_encoding_error_and_can_name_its_task() -> None:
    with pytest.raises(EncodingError) as caught:
        dumps([{1}])
    error = caught.value
    assert isinstance(error, ReflowError)
    assert isinstance(error, LocatedEncodingError)
    assert error.task is None
    named = error.for_task("convert", "nc_file")
    assert (named.task, named.param) == ("convert", "nc_file")
    assert (named.type_name, named.location) == ("set", "value[0]")
    assert "convert" in str(named)


def test_value_that_contains_itself_is_an_encoding_error() -> None:
    cycle: list[Any] = [1]
    cycle.append({"again": cycle})
    with pytest.raises(LocatedEncodingError) as caught:
        dumps(cycle)
    assert caught.value.type_name == "list"
    assert caught.value.location == 'value[1]["again"]'


def test_shared_but_acyclic_containers_encode() -> None:
    shared = [[1, {"a": 2}]]
    assert loads(dumps([shared, shared])) == [shared, shared]


def test_string_with_lone_surrogate_is_an_encoding_error() -> None:
    with pytest.raises(EncodingError):
        dumps(["ok", "\ud800"])
    with pytest.raises(EncodingError):
        encode_items(["ok", "\ud800"])


def test_int_too_long_to_print_is_an_encoding_error() -> None:
    with pytest.raises(EncodingError):
        dumps([10**5000])


# Deep values never raise RecursionError


def test_five_hundred_levels_of_nesting_round_trip() -> None:
    for depth in (500, MAX_DEPTH):
        value = nested_lists(depth)
        assert loads(dumps(value)) == value
    deep: dict[str, Any] = {"leaf": [1]}
    for _ in range(499):
        deep = {"next": deep}
    assert loads(dumps(deep)) == deep


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 5_000, 100_000])
def test_nesting_past_the_limit_is_an_encoding_error(depth: int) -> None:
    with pytest.raises(LocatedEncodingError) as caught:
        dumps(nested_lists(depth))
    assert caught.value.type_name == "list"
    assert caught.value.location.startswith("value[0][0]")


def test_deep_escaped_dicts_encode_or_fail_with_an_encoding_error() -> None:
    deep: dict[str, Any] = {"$leaf": 1}
    for _ in range(499):
        deep = {"$next": deep}
    try:
        text = dumps(deep)
    except EncodingError:
        return  # Each escape adds three JSON levels, which may pass json's own limit.
    assert loads(text) == deep


def test_loads_of_five_hundred_levels_returns_the_value() -> None:
    assert loads("[" * 500 + "]" * 500) == nested_empty_lists(500)


def test_loads_of_text_nested_past_json_limits_is_an_encoding_error() -> None:
    with pytest.raises(EncodingError):
        loads("[" * 100_000 + "]" * 100_000)


# Reading malformed text


@pytest.mark.parametrize(
    "text",
    [
        '{"$unknown": 1}',
        '{"$path": 3}',
        '{"$path": "a", "b": 1}',
        '{"$dict": [["a", 1], ["a", 2]]}',
        '{"$dict": [["a"]]}',
        '{"$dict": [[1, 2]]}',
        '{"$dict": {"a": 1}}',
    ],
)
def test_malformed_tag_is_an_encoding_error(text: str) -> None:
    with pytest.raises(LocatedEncodingError) as caught:
        loads(text)
    assert caught.value.type_name == "dict"
    assert caught.value.location == "value"


@pytest.mark.parametrize("text", ["[NaN]", "[Infinity]", "[-Infinity]", "[1,", "", "{'a': 1}"])
def test_text_that_is_not_canonical_json_is_an_encoding_error(text: str) -> None:
    with pytest.raises(EncodingError):
        loads(text)


def test_from_json_resolves_tags_and_rejects_non_json_data() -> None:
    assert from_json({"a": {"$path": "x"}}) == {"a": Path("x")}
    assert from_json({"$dict": [["$a", 1]]}) == {"$a": 1}
    with pytest.raises(EncodingError):
        from_json({"a": {1, 2}})
    with pytest.raises(EncodingError):
        from_json([float("nan")])


def test_to_text_writes_already_tagged_data_without_tagging_again() -> None:
    assert to_text({"$path": "a"}) == '{"$path":"a"}'


# encode_items


@given(st.lists(values, max_size=8))
def test_encode_items_gives_the_text_of_each_element(items: list[Any]) -> None:
    assert encode_items(items) == [dumps(item) for item in items]


def test_encode_items_of_strings_uses_json_string_syntax() -> None:
    assert encode_items(["a", 'q"uote', "é\n"]) == ['"a"', '"q\\"uote"', '"é\\n"']
    assert encode_items([]) == []


def test_encode_items_error_names_the_element_index() -> None:
    with pytest.raises(LocatedEncodingError) as caught:
        encode_items(["a", "b", {"x": {1}}], where="files")
    assert caught.value.location == 'files[2]["x"]'
