"""Planning a 1:1 chain element by element, and what a failed element blocks."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated

from reflow import Flow, Result
from reflow.planning.identity import output_hash
from reflow.planning.planner import Finished, TaskProgress, plan

flow = Flow("chains")


@flow.job()
def prepare() -> list[str]:
    return []


@flow.array_job()
def convert(item: Annotated[str, Result(step="prepare")]) -> str:
    return item


@flow.array_job()
def check(path: Annotated[str, Result(step="convert")]) -> str:
    return path


@flow.array_job()
def verify(path: Annotated[str, Result(step="check")]) -> str:
    return path


@flow.job()
def publish(paths: Annotated[list[str], Result(step="verify")]) -> str:
    return ",".join(paths)


GRAPH = flow.graph()


def no_cache(task: str, identities: Sequence[str]) -> Mapping[str, Finished]:
    return {}


def out(value: str) -> Finished:
    return Finished(value, output_hash(value))


def complete(*values: str) -> TaskProgress:
    outputs = [out(v) for v in values]
    return TaskProgress(size=len(values), counts={"done": len(values)}, outputs=outputs)


def partly(size: int, finished: dict[int, str], stopped: dict[int, str]) -> TaskProgress:
    counts = {"done": len(finished), "failed": len(stopped)}
    counts["submitted"] = size - len(finished) - len(stopped)
    return TaskProgress(
        size=size,
        counts=counts,
        finished={e: out(v) for e, v in finished.items()},
        stopped=stopped,
    )


def test_chain_elements_are_planned_as_their_upstream_elements_end() -> None:
    progress = {
        "prepare": complete(),
        "convert": partly(4, {0: "a", 2: "c"}, {1: "convert[1] failed"}),
    }
    result = plan(GRAPH, {}, progress, no_cache)
    by_task = {t.task: t for t in result.tasks}
    check_plan = by_task["check"]
    assert check_plan.elements == (0, 2)
    assert check_plan.runnable == [0, 2]
    assert check_plan.blocked == {1: "upstream convert[1] failed"}
    assert check_plan.element_count == 4
    assert check_plan.inputs == ({"path": "a"}, {}, {"path": "c"}, {})
    # verify is planned too (its size is known); only the blocked element is decided
    assert by_task["verify"].elements == ()
    assert by_task["verify"].blocked == {1: "upstream convert[1] failed"}
    assert result.waiting == ("publish",)


def test_an_element_planned_alone_has_the_identity_of_the_whole_task() -> None:
    alone = plan(
        GRAPH, {}, {"prepare": complete(), "convert": partly(2, {1: "b"}, {})}, no_cache
    ).tasks[0]
    whole = plan(GRAPH, {}, {"prepare": complete(), "convert": complete("a", "b")}, no_cache)
    assert alone.identity_of()[1] == whole.tasks[0].identities[1]


def check_after(check_progress: TaskProgress):
    progress = {
        "prepare": complete(),
        "convert": partly(3, {0: "a", 1: "b"}, {}),
        "check": check_progress,
    }
    (check_plan, *_rest) = plan(GRAPH, {}, progress, no_cache).tasks
    assert check_plan.task == "check"
    return check_plan


def test_a_planned_chain_plans_only_elements_it_had_not() -> None:
    check_plan = check_after(TaskProgress(size=3, counts={"submitted": 1}, resolved=frozenset({0})))
    assert check_plan.elements == (1,)
    assert check_plan.inputs == ({}, {"path": "b"}, {})


def test_the_inputs_file_keeps_elements_that_wait_to_be_submitted() -> None:
    check_plan = check_after(
        TaskProgress(size=3, counts={"ready": 1}, resolved=frozenset({0}), held=1)
    )
    assert check_plan.elements == (1,)
    assert check_plan.inputs == ({"path": "a"}, {"path": "b"}, {})


def test_a_fully_cached_chain_plans_to_the_end_in_one_call() -> None:
    def everything(task: str, wanted: Sequence[str]) -> Mapping[str, Finished]:
        return {i: out(f"out-{i[:6]}") for i in wanted}

    items = ["x", "y"]
    prepared = TaskProgress(
        size=1, counts={"done": 1}, outputs=[Finished(items, output_hash(items))]
    )
    result = plan(GRAPH, {}, {"prepare": prepared}, everything)
    assert [t.task for t in result.tasks] == ["convert", "check", "verify", "publish"]


def test_a_gather_names_the_failure_behind_a_blocked_input() -> None:
    blocked = TaskProgress(
        size=3,
        counts={"done": 2, "blocked": 1},
        finished={0: out("a"), 2: out("c")},
        stopped={1: "convert[1] failed"},
    )
    progress = {
        "prepare": complete(),
        "convert": partly(3, {0: "a", 2: "c"}, {1: "convert[1] failed"}),
        "check": complete("a", "b", "c"),
        "verify": blocked,
    }
    (task_plan,) = plan(GRAPH, {}, progress, no_cache).tasks
    assert task_plan.error == "1 of 3 inputs failed: verify[1] (upstream convert[1] failed)"
