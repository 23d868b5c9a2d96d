"""The planner: pure planning from a graph, parameters and a store snapshot."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated

from hypothesis import given
from hypothesis import strategies as st

from reflow import Flow, Param, Result
from reflow.planning.identity import output_hash
from reflow.planning.planner import Finished, TaskProgress, plan

flow = Flow("demo")


@flow.job()
def prepare(start: Annotated[str, Param(help="start")] = "a") -> list[str]:
    return [start]


@flow.array_job()
def convert(item: Annotated[str, Result(step="prepare")], bucket: str = "b") -> str:
    return item


@flow.job()
def publish(paths: Annotated[list[str], Result(step="convert")]) -> str:
    return ",".join(paths)


GRAPH = flow.graph()


def no_cache(task: str, identities: Sequence[str]) -> Mapping[str, Finished]:
    return {}


def done(*values: object) -> TaskProgress:
    outputs = [Finished(v, output_hash(v)) for v in values]
    return TaskProgress(size=len(outputs), counts={"done": len(outputs)}, outputs=outputs)


def convert_plan(items: list[str], params: dict[str, object] | None = None):
    progress = {"prepare": done(items)}
    result = plan(GRAPH, params or {"start": "a", "convert.bucket": "b"}, progress, no_cache)
    (task_plan,) = result.tasks
    assert task_plan.task == "convert"
    return task_plan


def test_nothing_planned_yet_plans_only_the_first_task() -> None:
    result = plan(GRAPH, {"start": "a"}, {}, no_cache)
    assert [t.task for t in result.tasks] == ["prepare"]
    assert result.waiting == ("convert", "publish")
    assert result.tasks[0].runnable == [0]


def test_fan_out_gives_one_element_per_item_with_its_input() -> None:
    task_plan = convert_plan(["x", "y", "z"])
    assert [row["item"] for row in task_plan.inputs] == ["x", "y", "z"]
    assert task_plan.runnable == [0, 1, 2]
    assert len(set(task_plan.identities)) == 3


def test_one_more_item_keeps_the_other_identities() -> None:
    before = convert_plan(["x", "y"]).identities
    after = convert_plan(["x", "y", "z"]).identities
    assert after[:2] == before


def test_a_param_of_the_task_changes_every_identity() -> None:
    before = convert_plan(["x", "y"], {"start": "a", "bucket": "b"}).identities
    after = convert_plan(["x", "y"], {"start": "a", "bucket": "other"}).identities
    assert not set(before) & set(after)


def test_cache_hits_finish_at_once_and_the_rest_runs() -> None:
    identities = convert_plan(["x", "y", "z"]).identities
    hit = Finished("x.zarr", output_hash("x.zarr"))

    def lookup(task: str, wanted: Sequence[str]) -> Mapping[str, Finished]:
        return {identities[0]: hit} if task == "convert" else {}

    result = plan(GRAPH, {}, {"prepare": done(["x", "y", "z"])}, lookup)
    (task_plan,) = result.tasks
    assert task_plan.cached == {0: hit}
    assert task_plan.runnable == [1, 2]


def test_fully_cached_graph_plans_to_the_end_in_one_call() -> None:
    def everything(task: str, wanted: Sequence[str]) -> Mapping[str, Finished]:
        return {i: Finished(f"out-{i[:6]}", output_hash(f"out-{i[:6]}")) for i in wanted}

    result = plan(GRAPH, {}, {"prepare": done(["x", "y"])}, everything)
    assert [t.task for t in result.tasks] == ["convert", "publish"]
    assert all(not t.runnable for t in result.tasks)


def test_forced_task_ignores_its_cache() -> None:
    def everything(task: str, wanted: Sequence[str]) -> Mapping[str, Finished]:
        return {i: Finished("v", output_hash("v")) for i in wanted}

    result = plan(GRAPH, {}, {"prepare": done(["x"])}, everything, force_tasks=["convert"])
    assert result.tasks[0].runnable == [0]


def test_a_gather_over_failed_elements_cannot_be_planned_and_names_them() -> None:
    failed = TaskProgress(size=2, counts={"done": 1, "failed": 1}, stopped={1: "convert[1] failed"})
    result = plan(GRAPH, {}, {"prepare": done(["x", "y"]), "convert": failed}, no_cache)
    (task_plan,) = result.tasks
    assert (task_plan.task, task_plan.error) == ("publish", "1 of 2 inputs failed: convert[1]")
    assert result.blocked == ("publish",)


def test_a_gather_waits_while_its_input_still_runs() -> None:
    running = TaskProgress(
        size=2, counts={"submitted": 1, "failed": 1}, stopped={1: "convert[1] failed"}
    )
    result = plan(GRAPH, {}, {"prepare": done(["x", "y"]), "convert": running}, no_cache)
    assert result.tasks == ()
    assert result.waiting == ("publish",)


def test_gather_consumes_the_outputs_in_element_order() -> None:
    outputs = done("a.zarr", "b.zarr")
    result = plan(GRAPH, {}, {"prepare": done(["a", "b"]), "convert": outputs}, no_cache)
    (task_plan,) = result.tasks
    assert task_plan.inputs == ({"paths": ["a.zarr", "b.zarr"]},)


def test_gather_identity_changes_exactly_when_an_upstream_output_changes() -> None:
    def publish_identity(*values: str) -> str:
        progress = {"prepare": done(["a", "b"]), "convert": done(*values)}
        return plan(GRAPH, {}, progress, no_cache).tasks[0].identities[0]

    assert publish_identity("a.zarr", "b.zarr") == publish_identity("a.zarr", "b.zarr")
    assert publish_identity("a.zarr", "b.zarr") != publish_identity("a.zarr", "c.zarr")
    assert publish_identity("a.zarr", "b.zarr") != publish_identity("b.zarr", "a.zarr")


@given(st.lists(st.text(max_size=5), max_size=8), st.text(max_size=5))
def test_planning_the_same_snapshot_twice_gives_the_same_plan(
    items: list[str], bucket: str
) -> None:
    params = {"start": "a", "bucket": bucket}
    progress = {"prepare": done(items)}
    assert plan(GRAPH, params, progress, no_cache) == plan(GRAPH, params, progress, no_cache)


@given(st.lists(st.text(max_size=4), min_size=1, max_size=6), st.data())
def test_an_element_identity_changes_exactly_when_its_own_item_changes(
    items: list[str], data: st.DataObject
) -> None:
    index = data.draw(st.integers(0, len(items) - 1))
    replacement = data.draw(st.text(max_size=4))
    changed = [*items[:index], replacement, *items[index + 1 :]]
    before = convert_plan(items).identities
    after = convert_plan(changed).identities
    for element in range(len(items)):
        same_item = items[element] == changed[element]
        assert (before[element] == after[element]) == same_item


def test_a_finished_list_output_can_be_hashed_and_compared() -> None:
    first = Finished(["a", "b"], output_hash(["a", "b"]))
    again = Finished(["a", "b"], output_hash(["a", "b"]))
    assert first == again
    assert len({first, again}) == 1
