import hashlib
import inspect
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reflow.planning.encoding import LocatedEncodingError, dumps, to_json
from reflow.planning.identity import (
    INSTANCE_TAG,
    LIST_TAG,
    VALUE_TAG,
    element_hashes,
    instance_identities,
    instance_identity,
    list_hash,
    output_hash,
    value_hash,
)

H1 = output_hash("one")
H2 = output_hash("two")

elements = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=8),
    st.text(max_size=8).map(Path),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=3),
)
param_values = st.one_of(st.integers(0, 2), st.sampled_from(["a", "b"]), st.lists(st.booleans()))
configs = st.fixed_dictionaries(
    {
        "task": st.sampled_from(["prepare", "convert"]),
        "version": st.sampled_from(["", "2"]),
        "params": st.dictionaries(st.sampled_from(["start", "level"]), param_values, max_size=2),
        "inputs": st.dictionaries(st.sampled_from(["nc_file", "paths"]), st.sampled_from([H1, H2])),
    }
)


def canonical_json(data: Any) -> str:
    """An independent writer of canonical text, to check the hand-built instance text."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def is_digest(text: str) -> bool:
    return len(text) == 64 and set(text) <= set("0123456789abcdef")


# Pinned digests. Changing any of them means bumping the format version of that tag
# (VALUE_TAG, LIST_TAG or INSTANCE_TAG): stored identities would otherwise silently stop
# matching and every cached result would be recomputed or, worse, wrongly reused.


def test_value_hash_is_pinned() -> None:
    assert VALUE_TAG == "reflow/value/1"
    assert value_hash('"one"') == (
        "1e3357623f313935496008f7b131dbac93842c342c706ef3bc91cfa71b3f60b1"
    )
    assert output_hash({"b": [1, 2.5, None], "a": Path("/data/x.nc"), "$c": True}) == (
        "46c0b6016a355422f87be7176775891d9d68b1024582b2df9d1d40b0d8061221"
    )


def test_list_hash_is_pinned() -> None:
    assert LIST_TAG == "reflow/list/1"
    assert list_hash([H1, H2]) == (
        "5b2e25995d5b21dc80cbb9d330704497b48c15fa33ac4c77655ab5a17682586b"
    )
    assert list_hash([]) == ("2e383c2957f2e34be4f019cd3eb1df25749ae8af109ac139a9fcf476c62f5204")


def test_instance_identity_is_pinned() -> None:
    assert INSTANCE_TAG == "reflow/instance/1"
    identity = instance_identity(
        task="convert",
        version="2",
        params={"level": 3, "out": Path("/scratch/out")},
        inputs={"nc_file": H1},
    )
    assert identity == "f82188d5815bc12afe16d246c50a877695058248c893acfbfdcf641a1926768b"


# What the hashed structures are


@given(elements)
def test_value_hash_hashes_the_tagged_canonical_text(value: Any) -> None:
    text = dumps(value)
    assert value_hash(text) == sha256_hex(f'["{VALUE_TAG}",{text}]')
    assert output_hash(value) == value_hash(text)
    assert is_digest(output_hash(value))


@given(st.lists(st.sampled_from([H1, H2]), max_size=5))
def test_list_hash_hashes_the_tagged_list_of_hashes(hashes: list[str]) -> None:
    assert list_hash(hashes) == sha256_hex(canonical_json([LIST_TAG, hashes]))


@given(
    st.dictionaries(st.text(max_size=4), elements, max_size=3),
    st.dictionaries(st.text(max_size=4).map(lambda name: "in" + name), st.sampled_from([H1, H2])),
    st.text(max_size=6),
    st.text(max_size=4),
)
def test_instance_identity_hashes_the_tagged_canonical_structure(
    params: dict[str, Any], inputs: dict[str, str], task: str, version: str
) -> None:
    structure = {
        "inputs": inputs,
        "params": {name: to_json(value) for name, value in params.items()},
        "task": task,
        "version": version,
    }
    expected = sha256_hex(canonical_json([INSTANCE_TAG, structure]))
    assert instance_identity(task=task, version=version, params=params, inputs=inputs) == expected


# Element hashes: what a fan-out element consumes


@given(st.lists(elements, max_size=10))
def test_element_hashes_are_the_output_hash_of_each_element(values: list[Any]) -> None:
    assert element_hashes(values) == [output_hash(value) for value in values]


def test_element_hash_does_not_depend_on_index_or_neighbours() -> None:
    assert element_hashes(["a", "b"])[1] == element_hashes(["b"])[0]
    assert element_hashes(["x", "b", "y"])[1] == element_hashes(["b"])[0]


def test_element_hashes_error_names_the_element() -> None:
    with pytest.raises(LocatedEncodingError) as caught:
        element_hashes(["a", {"b"}])
    assert (caught.value.type_name, caught.value.location) == ("set", "value[1]")


# List hash: what a gather consumes


def test_list_hash_depends_on_order() -> None:
    assert list_hash([H1, H2]) != list_hash([H2, H1])
    assert list_hash([H1]) != list_hash([H1, H1])


def test_list_hash_differs_from_the_output_hash_of_the_same_hashes() -> None:
    assert list_hash([H1, H2]) != output_hash([H1, H2])


@pytest.mark.parametrize("bad", [[H1.upper()], [H1[:-1]], [H1 + "0"], [H1[:-1] + "g"], [3]])
def test_list_hash_rejects_anything_but_digests(bad: list[Any]) -> None:
    with pytest.raises(ValueError, match="digest"):
        list_hash(bad)


# Instance identity: what changes it and what does not


@given(configs, configs)
def test_instance_identity_changes_exactly_when_task_version_params_or_inputs_change(
    first: dict[str, Any], second: dict[str, Any]
) -> None:
    same_config = (
        first["task"] == second["task"]
        and first["version"] == second["version"]
        and dumps(first["params"]) == dumps(second["params"])
        and first["inputs"] == second["inputs"]
    )
    assert (instance_identity(**first) == instance_identity(**second)) == same_config


@given(configs)
def test_instance_identity_ignores_param_and_input_order(config: dict[str, Any]) -> None:
    reordered = dict(
        config,
        params=dict(reversed(list(config["params"].items()))),
        inputs=dict(reversed(list(config["inputs"].items()))),
    )
    assert instance_identity(**reordered) == instance_identity(**config)


def test_instance_identity_has_no_room_for_resources_paths_or_run_ids() -> None:
    names = set(inspect.signature(instance_identity).parameters)
    assert names == {"task", "version", "params", "inputs"}


def test_input_hash_and_param_value_with_the_same_text_give_different_identities() -> None:
    as_param = instance_identity(task="t", version="", params={"x": H1}, inputs={})
    as_input = instance_identity(task="t", version="", params={}, inputs={"x": H1})
    assert as_param != as_input


def test_unencodable_param_error_names_task_param_and_location() -> None:
    with pytest.raises(LocatedEncodingError) as caught:
        instance_identity(task="convert", version="", params={"dates": [1, {2}]}, inputs={})
    error = caught.value
    assert (error.task, error.param) == ("convert", "dates")
    assert (error.type_name, error.location) == ("set", "dates[1]")


def test_name_in_both_params_and_inputs_is_rejected() -> None:
    with pytest.raises(ValueError, match="both"):
        instance_identity(task="t", version="", params={"x": 1}, inputs={"x": H1})


def test_input_that_is_not_a_digest_is_rejected() -> None:
    with pytest.raises(ValueError, match="digest"):
        instance_identity(task="t", version="", params={}, inputs={"x": 'a"b'})


@given(
    st.dictionaries(st.sampled_from(["level", "mode"]), param_values),
    st.lists(
        st.dictionaries(st.sampled_from(["nc_file", "grid", 'é"']), st.just(H1) | st.just(H2))
    ),
)
def test_instance_identities_equal_one_identity_per_row(
    params: dict[str, Any], rows: list[dict[str, str]]
) -> None:
    batch = instance_identities(task="convert", version="1", params=params, inputs=rows)
    assert batch == [
        instance_identity(task="convert", version="1", params=params, inputs=row) for row in rows
    ]
