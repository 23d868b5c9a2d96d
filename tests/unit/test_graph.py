"""Graph: references, cycles, array sources, edges and a deterministic topological order."""

import itertools
from typing import Annotated

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reflow import DefinitionError, FlowDefinitionError, Result, Workflow
from reflow.definition.graph import Edge, build_graph
from reflow.definition.spec import InputSpec, TaskSpec
from reflow.definition.types import TypeRef
from reflow.definition.wiring import EdgeMode
from tests.flows import all_rules

STR = TypeRef("str")


def job(name: str, *, reads: tuple[str, ...] = (), after: tuple[str, ...] = ()) -> TaskSpec:
    """A job returning str, reading each of ``reads`` as a direct str input."""
    inputs = tuple(InputSpec(name=f"in_{source}", type=STR, sources=(source,)) for source in reads)
    return TaskSpec(name=name, returns=STR, inputs=inputs, after=after)


def graph_error(*tasks: TaskSpec) -> DefinitionError:
    with pytest.raises(DefinitionError) as info:
        build_graph("g", {t.name: t for t in tasks})
    return info.value


def test_order_is_topological_with_ties_in_registration_order():
    graph = build_graph(
        "g",
        {
            "d": job("d", reads=("b",)),
            "c": job("c"),
            "b": job("b", reads=("a",)),
            "a": job("a"),
        },
    )
    assert [t.name for t in graph.tasks] == ["c", "a", "b", "d"]


def test_all_rules_order_and_edges_follow_the_data():
    graph = all_rules.wf.graph()
    order = [t.name for t in graph.tasks]
    assert order == [
        "files", "label", "convert", "check", "split", "parts", "collect", "flat", "total",
        "both", "bundle", "report",
    ]  # fmt: skip
    assert all(order.index(e.source) < order.index(e.target) for e in graph.edges)


def test_edges_are_grouped_by_target_in_parameter_order_then_after():
    wf = Workflow("w")

    @wf.job()
    def a() -> list[str]:
        return []

    @wf.job()
    def b() -> list[str]:
        return []

    @wf.job(after=["b", "a"])
    def c(
        x: Annotated[list[str], Result(step="b")],
        y: Annotated[list[str], Result(steps=["a", "b"])],
    ) -> str:
        return ""

    assert wf.graph().incoming("c") == (
        Edge(source="b", target="c", param="x", mode=EdgeMode.DIRECT),
        Edge(source="a", target="c", param="y", mode=EdgeMode.DIRECT),
        Edge(source="b", target="c", param="y", mode=EdgeMode.DIRECT),
    )


def test_after_adds_an_ordering_edge_without_data():
    graph = build_graph("g", {"a": job("a"), "b": job("b", after=("a",))})
    (edge,) = graph.edges
    assert (edge.source, edge.target, edge.param, edge.mode, edge.is_data) == (
        "a",
        "b",
        None,
        None,
        False,
    )


def test_after_on_a_data_source_adds_no_second_edge():
    graph = build_graph("g", {"a": job("a"), "b": job("b", reads=("a",), after=("a",))})
    (edge,) = graph.edges
    assert edge.is_data


def test_task_lookup_and_downstream():
    graph = all_rules.wf.graph()
    assert graph.task("parts").is_array
    with pytest.raises(KeyError):
        graph.task("nope")
    assert graph.downstream({"collect"}) == {"total", "report"}
    assert graph.downstream({"split"}) == {"parts", "flat", "bundle"}
    assert graph.downstream({"report"}) == set()


def test_unknown_step_is_refused_with_a_suggestion():
    error = graph_error(job("prepare"), job("convert", reads=("prepar",)))
    assert (error.task, error.param, error.value, error.suggestion) == (
        "convert",
        "in_prepar",
        "prepar",
        "prepare",
    )


def test_unknown_step_far_from_every_name_has_no_suggestion():
    error = graph_error(job("prepare"), job("convert", reads=("zzz",)))
    assert (error.value, error.suggestion) == ("zzz", None)


def test_unknown_step_is_found_by_validate_not_at_registration():
    wf = Workflow("w")

    @wf.job()
    def prepare() -> list[str]:
        return []

    @wf.array_job()
    def convert(item: Annotated[str, Result(step="prepre")]) -> str:
        return item

    with pytest.raises(DefinitionError) as info:
        wf.validate()
    assert (info.value.task, info.value.param, info.value.value, info.value.suggestion) == (
        "convert",
        "item",
        "prepre",
        "prepare",
    )


def test_unknown_after_is_refused_with_a_suggestion():
    error = graph_error(job("cleanup"), job("prepare", after=("clean_up",)))
    assert (error.task, error.param, error.value, error.suggestion) == (
        "prepare",
        "after",
        "clean_up",
        "cleanup",
    )


def test_after_naming_the_task_itself_is_refused():
    error = graph_error(job("prepare", after=("prepare",)))
    assert (error.task, error.param, error.value) == ("prepare", "after", "prepare")


def _assert_is_cycle(value: object, members: set[str], tasks: dict[str, TaskSpec]) -> None:
    assert isinstance(value, list)
    assert value[0] == value[-1]
    assert set(value) == members
    assert len(value) == len(members) + 1
    for up, down in itertools.pairwise(value):
        assert up in tasks[down].upstream, (up, down)


@pytest.mark.parametrize(
    "tasks",
    [
        [job("a", reads=("b",)), job("b", reads=("a",))],
        [job("a", reads=("c",)), job("b", reads=("a",)), job("c", reads=("b",))],
        [job("a", after=("c",)), job("b", reads=("a",)), job("c", reads=("b",))],
    ],
    ids=["two", "three", "through-after"],
)
def test_cycle_is_refused_naming_the_whole_cycle(tasks):
    by_name = {t.name: t for t in tasks}
    error = graph_error(*tasks)
    _assert_is_cycle(error.value, set(by_name), by_name)
    assert error.task in by_name


def test_cycle_report_leaves_out_tasks_that_only_hang_off_it():
    tasks = [
        job("start"),
        job("a", reads=("start", "c")),
        job("b", reads=("a",)),
        job("c", reads=("b",)),
        job("tail", reads=("c",)),
    ]
    by_name = {t.name: t for t in tasks}
    error = graph_error(*tasks)
    _assert_is_cycle(error.value, {"a", "b", "c"}, by_name)


def test_cycle_through_the_decorators_is_found_by_validate():
    wf = Workflow("w")

    @wf.job()
    def a(x: Annotated[str, Result(step="b")]) -> str:
        return x

    @wf.job()
    def b(x: Annotated[str, Result(step="a")]) -> str:
        return x

    with pytest.raises(DefinitionError) as info:
        wf.validate()
    cycle = info.value.value
    assert cycle in (["a", "b", "a"], ["b", "a", "b"])
    assert info.value.task == cycle[0]


def test_array_task_without_inputs_is_refused():
    wf = Workflow("w")

    @wf.array_job()
    def convert() -> str:
        return ""

    with pytest.raises(DefinitionError) as info:
        wf.validate()
    assert (info.value.task, info.value.param) == ("convert", None)


def test_array_task_fed_only_by_a_broadcast_is_refused():
    wf = Workflow("w")

    @wf.job()
    def label() -> str:
        return ""

    @wf.array_job()
    def convert(tag: Annotated[str, Result(step="label")]) -> str:
        return tag

    with pytest.raises(DefinitionError) as info:
        wf.validate()
    assert info.value.task == "convert"
    assert info.value.hint


def test_array_task_fed_only_by_after_is_refused():
    error = graph_error(job("a"), TaskSpec(name="b", is_array=True, after=("a",)))
    assert error.task == "b"


def test_empty_workflow_is_refused():
    with pytest.raises(DefinitionError) as info:
        Workflow("empty").validate()
    assert info.value.hint


@st.composite
def dags(draw: st.DrawFn) -> tuple[list[TaskSpec], list[tuple[str, str]]]:
    """Random DAGs: task i may read from or run after any task before it; shuffled."""
    count = draw(st.integers(min_value=1, max_value=12))
    names = [f"t{i}" for i in range(count)]
    tasks: list[TaskSpec] = []
    edges: list[tuple[str, str]] = []
    for i, name in enumerate(names):
        ups = draw(st.lists(st.sampled_from(names[:i]), unique=True)) if i else []
        split = draw(st.integers(min_value=0, max_value=len(ups)))
        reads, after = tuple(ups[:split]), tuple(ups[split:])
        tasks.append(job(name, reads=reads, after=after))
        edges.extend((up, name) for up in ups)
    return draw(st.permutations(tasks)), edges


@settings(database=None, max_examples=200, deadline=None)
@given(dags())
def test_topological_order_respects_every_edge(dag):
    tasks, expected_edges = dag
    graph = build_graph("g", {t.name: t for t in tasks})
    position = {t.name: i for i, t in enumerate(graph.tasks)}
    assert sorted(position) == sorted(t.name for t in tasks)
    assert sorted((e.source, e.target) for e in graph.edges) == sorted(expected_edges)
    for edge in graph.edges:
        assert position[edge.source] < position[edge.target]


@settings(database=None, max_examples=100, deadline=None)
@given(dags())
def test_order_does_not_depend_on_anything_but_registration_order(dag):
    tasks, _ = dag
    first = build_graph("g", {t.name: t for t in tasks})
    again = build_graph("g", {t.name: t for t in tasks})
    assert first == again
    rebuilt = build_graph("g", {t.name: t for t in first.tasks})
    assert rebuilt.tasks == first.tasks


def test_every_graph_problem_is_reported_together_with_its_fields():
    error = graph_error(
        job("a", reads=("b",)),
        job("b", reads=("a",)),
        job("c", reads=("prepar",)),
        job("d", after=("setup",)),
    )
    assert isinstance(error, FlowDefinitionError)
    assert [(e.task, e.param, e.value) for e in error.errors] == [
        ("c", "in_prepar", "prepar"),
        ("d", "after", "setup"),
        ("b", None, ["b", "a", "b"]),
    ]
    lines = str(error).splitlines()
    assert lines[0] == "3 errors in workflow 'g':"
    assert lines[1].startswith('  1. c(in_prepar): Result(step="prepar") names no task')
    assert lines[3].startswith("  3. b: tasks form a cycle: b -> a -> b")


def test_a_reference_to_a_task_that_could_not_be_declared_is_not_reported_again():
    tasks = {"c": job("c", reads=("prepare",))}
    recorded = (DefinitionError("bad", task="prepare"),)
    with pytest.raises(DefinitionError) as info:
        build_graph("g", tasks, broken={"prepare": None}, recorded=recorded)
    assert not isinstance(info.value, FlowDefinitionError)
    assert info.value.task == "prepare"


def test_the_references_of_a_task_whose_options_failed_are_still_checked():
    tasks = {"c": job("c", reads=())}
    recorded = (DefinitionError("bad mem", task="b"),)
    with pytest.raises(FlowDefinitionError) as info:
        build_graph("g", tasks, broken={"b": job("b", reads=("aa",))}, recorded=recorded)
    assert [(e.task, str(e).split(";")[0]) for e in info.value.errors] == [
        ("b", "b: bad mem"),
        ("b", 'b(in_aa): Result(step="aa") names no task'),
    ]


def test_a_single_graph_problem_is_raised_as_it_is():
    error = graph_error(job("c", reads=("prepar",)))
    assert not isinstance(error, FlowDefinitionError)
    assert error.suggestion is None
