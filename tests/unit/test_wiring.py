"""Wiring: the mode of every edge follows the spec's table from the two ends' kinds and types."""

import types
from pathlib import Path
from typing import Annotated, Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from reflow import DefinitionError, Result, Workflow
from reflow.definition.spec import InputSpec, TaskSpec
from reflow.definition.types import from_annotation
from reflow.definition.wiring import EdgeMode, check_sources, infer_mode
from tests.flows import all_rules


def task(name: str, *, array: bool, returns: Any = None, wants: Any = None) -> TaskSpec:
    inputs: tuple[InputSpec, ...] = ()
    if wants is not None:
        inputs = (InputSpec(name="x", type=from_annotation(wants), sources=("up",)),)
    return TaskSpec(
        name=name,
        is_array=array,
        returns=None if returns is None else from_annotation(returns),
        inputs=inputs,
    )


def mode_of(up_array: bool, returns: Any, down_array: bool, wants: Any) -> EdgeMode:
    source = task("up", array=up_array, returns=returns)
    target = task("down", array=down_array, wants=wants)
    return infer_mode(source, target, target.inputs[0])


# (upstream kind, returns, downstream kind, wants) -> mode: the spec's table, plus broadcast.
SPEC_TABLE = [
    ("job", list[str], "array_job", str, EdgeMode.FAN_OUT),
    ("array_job", str, "job", list[str], EdgeMode.GATHER),
    ("array_job", str, "array_job", str, EdgeMode.CHAIN),
    ("array_job", list[str], "array_job", str, EdgeMode.FLATTEN_FAN_OUT),
    ("array_job", list[str], "job", list[str], EdgeMode.GATHER_FLATTEN),
    ("job", str, "job", str, EdgeMode.DIRECT),
    ("job", str, "array_job", str, EdgeMode.BROADCAST),
]


@pytest.mark.parametrize(
    ("up", "returns", "down", "wants", "mode"), SPEC_TABLE, ids=[r[4].value for r in SPEC_TABLE]
)
def test_spec_table_row(up, returns, down, wants, mode):
    assert mode_of(up == "array_job", returns, down == "array_job", wants) is mode


@pytest.mark.parametrize(
    ("up", "returns", "down", "wants", "mode"),
    [
        ("job", list[list[str]], "array_job", list[str], EdgeMode.FAN_OUT),
        ("job", list[str], "array_job", list[str], EdgeMode.BROADCAST),
        ("array_job", list[str], "job", list[list[str]], EdgeMode.GATHER),
        ("array_job", list[str], "array_job", list[str], EdgeMode.CHAIN),
        ("job", list[str], "job", list[str], EdgeMode.DIRECT),
        ("job", int, "job", float, EdgeMode.DIRECT),
        ("job", list[int], "array_job", float, EdgeMode.FAN_OUT),
        ("array_job", int, "job", list[float], EdgeMode.GATHER),
        ("job", Any, "job", str, EdgeMode.DIRECT),
        ("job", list[Any], "array_job", Path, EdgeMode.FAN_OUT),
        ("job", str, "job", str | None, EdgeMode.DIRECT),
    ],
    ids=[
        "fan-out-of-lists",
        "list-broadcast",
        "gather-of-lists",
        "chain-of-lists",
        "direct-list",
        "int-into-float",
        "fan-out-int-into-float",
        "gather-int-into-float",
        "any-return",
        "list-of-any",
        "into-optional",
    ],
)
def test_most_specific_mode_wins(up, returns, down, wants, mode):
    assert mode_of(up == "array_job", returns, down == "array_job", wants) is mode


@pytest.mark.parametrize(
    ("up", "returns", "down", "wants"),
    [
        ("job", list[str], "array_job", int),
        ("job", str, "array_job", int),
        ("array_job", str, "job", str),
        ("array_job", str, "job", list[int]),
        ("array_job", list[str], "array_job", int),
        ("array_job", list[str], "job", list[int]),
        ("job", str, "job", int),
        ("job", str, "job", list[str]),
        ("job", list[str], "job", str),
        ("job", float, "job", int),
        ("job", str | None, "job", str),
        ("job", str, "job", Path),
    ],
)
def test_incompatible_types_are_refused_with_fields(up, returns, down, wants):
    source = task("up", array=up == "array_job", returns=returns)
    target = task("down", array=down == "array_job", wants=wants)
    with pytest.raises(DefinitionError) as info:
        infer_mode(source, target, target.inputs[0])
    error = info.value
    assert (error.task, error.param, error.value) == ("down", "x", str(from_annotation(returns)))
    assert error.hint


def test_gather_mismatch_suggests_a_list_parameter():
    source = task("up", array=True, returns=str)
    target = task("down", array=False, wants=str)
    with pytest.raises(DefinitionError) as info:
        infer_mode(source, target, target.inputs[0])
    assert info.value.hint == "declare the parameter as list[str] to gather the elements"


def test_consumer_of_a_task_without_return_annotation_is_refused():
    source = task("up", array=False, returns=None)
    target = task("down", array=True, wants=str)
    with pytest.raises(DefinitionError) as info:
        infer_mode(source, target, target.inputs[0])
    assert (info.value.task, info.value.param, info.value.value) == ("down", "x", "up")


def test_consumer_of_a_task_without_return_annotation_is_refused_at_registration():
    wf = Workflow("w")

    @wf.job()
    def prepare():
        return ["a"]

    def convert(item: Annotated[str, Result(step="prepare")]) -> str:
        return item

    with pytest.raises(DefinitionError) as info:
        wf.array_job()(convert)
    assert (info.value.task, info.value.param, info.value.value) == ("convert", "item", "prepare")
    assert "convert" not in wf.tasks


def test_every_rule_in_the_all_rules_flow():
    graph = all_rules.wf.graph()
    modes = {(e.source, e.target, e.param): e.mode for e in graph.edges}
    assert modes == {
        ("files", "convert", "name"): EdgeMode.FAN_OUT,
        ("label", "convert", "tag"): EdgeMode.BROADCAST,
        ("convert", "check", "item"): EdgeMode.CHAIN,
        ("check", "split", "item"): EdgeMode.CHAIN,
        ("split", "parts", "part"): EdgeMode.FLATTEN_FAN_OUT,
        ("check", "collect", "items"): EdgeMode.GATHER,
        ("split", "flat", "items"): EdgeMode.GATHER_FLATTEN,
        ("collect", "total", "count"): EdgeMode.DIRECT,
        ("files", "both", "item"): EdgeMode.FAN_OUT,
        ("convert", "both", "item"): EdgeMode.CHAIN,
        ("files", "bundle", "items"): EdgeMode.DIRECT,
        ("parts", "bundle", "items"): EdgeMode.GATHER,
        ("total", "report", None): None,
    }


def test_elementwise_modes_are_exactly_fan_out_chain_and_flatten():
    elementwise = {mode for mode in EdgeMode if mode.is_elementwise}
    assert elementwise == {EdgeMode.FAN_OUT, EdgeMode.CHAIN, EdgeMode.FLATTEN_FAN_OUT}


def test_multi_source_into_an_array_concatenates_elements():
    wf = Workflow("w")

    @wf.job()
    def prepare_a() -> list[str]:
        return ["a"]

    @wf.array_job()
    def prepare_b(item: Annotated[str, Result(step="prepare_a")]) -> list[str]:
        return [item]

    @wf.array_job()
    def merge(item: Annotated[str, Result(steps=["prepare_a", "prepare_b"])]) -> str:
        return item

    modes = [e.mode for e in wf.graph().incoming("merge")]
    assert modes == [EdgeMode.FAN_OUT, EdgeMode.FLATTEN_FAN_OUT]


def test_multi_source_into_a_job_concatenates_lists():
    wf = Workflow("w")

    @wf.job()
    def listing() -> list[str]:
        return []

    @wf.array_job()
    def each(item: Annotated[str, Result(step="listing")]) -> str:
        return item

    @wf.job()
    def merge(items: Annotated[list[str], Result(steps=["each", "listing"])]) -> str:
        return ""

    modes = [(e.source, e.mode) for e in wf.graph().incoming("merge")]
    assert modes == [("each", EdgeMode.GATHER), ("listing", EdgeMode.DIRECT)]


def test_multi_source_with_a_broadcast_into_an_array_is_refused():
    wf = Workflow("w")

    @wf.job()
    def files() -> list[str]:
        return []

    @wf.job()
    def label() -> str:
        return ""

    def merge(item: Annotated[str, Result(steps=["files", "label"])]) -> str:
        return item

    with pytest.raises(DefinitionError) as info:
        wf.array_job()(merge)
    error = info.value
    assert (error.task, error.param, error.value) == ("merge", "item", ["files", "label"])


def test_multi_source_into_a_job_scalar_is_refused():
    wf = Workflow("w")

    @wf.job()
    def a() -> str:
        return ""

    @wf.job()
    def b() -> str:
        return ""

    def merge(item: Annotated[str, Result(steps=["a", "b"])]) -> str:
        return item

    with pytest.raises(DefinitionError) as info:
        wf.job()(merge)
    assert (info.value.task, info.value.param, info.value.value) == ("merge", "item", ["a", "b"])


def test_multi_source_is_checked_when_its_last_source_registers():
    wf = Workflow("w")

    @wf.job()
    def files() -> list[str]:
        return []

    @wf.array_job()
    def merge(item: Annotated[str, Result(steps=["files", "label"])]) -> str:
        return item

    def label() -> str:
        return ""

    with pytest.raises(DefinitionError) as info:
        wf.job()(label)
    assert (info.value.task, info.value.param) == ("merge", "item")
    assert "label" not in wf.tasks


def test_check_sources_accepts_a_single_source_of_any_mode():
    target = task("down", array=True, wants=str)
    check_sources(target, target.inputs[0], [EdgeMode.BROADCAST])


# Element types: str, int, float, Path and lists of them, nested.
ELEMENT_TYPES = st.recursive(
    st.sampled_from([str, int, float, Path]),
    lambda inner: inner.map(lambda t: types.GenericAlias(list, (t,))),
    max_leaves=3,
)


def _list(t: Any) -> Any:
    return types.GenericAlias(list, (t,))


@settings(database=None, max_examples=150, deadline=None)
@given(ELEMENT_TYPES)
def test_inferred_mode_agrees_with_the_spec_table_for_every_element_type(t):
    table = [
        (False, _list(t), True, t, EdgeMode.FAN_OUT),
        (True, t, False, _list(t), EdgeMode.GATHER),
        (True, t, True, t, EdgeMode.CHAIN),
        (True, _list(t), True, t, EdgeMode.FLATTEN_FAN_OUT),
        (True, _list(t), False, _list(t), EdgeMode.GATHER_FLATTEN),
        (False, t, False, t, EdgeMode.DIRECT),
    ]
    for up_array, returns, down_array, wants, mode in table:
        assert mode_of(up_array, returns, down_array, wants) is mode, (returns, wants)


SCALARS = [str, int, Path, bool]


@settings(database=None, max_examples=50, deadline=None)
@given(st.sampled_from(SCALARS), st.sampled_from(SCALARS))
def test_every_spec_row_refuses_mismatched_element_types(t, u):
    assume(t is not u)
    rows = [
        (False, _list(t), True, u),
        (True, t, False, _list(u)),
        (True, t, True, u),
        (True, _list(t), True, u),
        (True, _list(t), False, _list(u)),
        (False, t, False, u),
    ]
    for up_array, returns, down_array, wants in rows:
        with pytest.raises(DefinitionError) as info:
            mode_of(up_array, returns, down_array, wants)
        assert info.value.value == str(from_annotation(returns))


def test_concatenation_refuses_a_direct_source_that_does_not_return_a_list():
    wf = Workflow("f")

    @wf.job()
    def a() -> Any:
        return "hello"

    @wf.job()
    def b() -> list[str]:
        return ["x"]

    with pytest.raises(DefinitionError) as caught:

        @wf.job()
        def joined(items: Annotated[list[str], Result(steps=["a", "b"])]) -> int:
            return len(items)

    assert (caught.value.task, caught.value.param) == ("joined", "items")
