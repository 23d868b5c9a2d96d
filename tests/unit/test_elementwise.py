"""Planning a 1:1 chain element by element, and what a failed element blocks."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated

from hypothesis import given
from hypothesis import strategies as st

from reflow import Flow, Result
from reflow.planning.identity import output_hash
from reflow.planning.planner import Finished, TaskPlan, TaskProgress, plan

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


def test_a_gather_whose_input_was_cancelled_does_not_call_it_failed() -> None:
    verify = TaskProgress(
        size=3,
        counts={"done": 2, "cancelled": 1},
        finished={0: out("a"), 2: out("c")},
        stopped={1: "verify[1] was cancelled"},
    )
    progress = {
        "prepare": complete(),
        "convert": complete("a", "b", "c"),
        "check": complete("a", "b", "c"),
        "verify": verify,
    }
    (task_plan,) = plan(GRAPH, {}, progress, no_cache).tasks
    assert task_plan.error == "1 of 3 inputs did not succeed: verify[1] was cancelled"


mixed = Flow("mixed")


@mixed.job()
def listing() -> list[str]:
    return []


@mixed.job()
def suffix() -> str:
    return ""


@mixed.array_job()
def parse(item: Annotated[str, Result(step="listing")]) -> str:
    return item


@mixed.array_job()
def label(
    value: Annotated[str, Result(step="parse")],
    item: Annotated[str, Result(step="listing")],
    tag: Annotated[str, Result(step="suffix")],
) -> str:
    return value + item + tag


@mixed.array_job()
def merge(value: Annotated[str, Result(steps=["parse", "listing"])]) -> str:
    return value


@mixed.array_job()
def prepend(value: Annotated[str, Result(steps=["listing", "parse", "label"])]) -> str:
    return value


MIXED = mixed.graph()
ITEMS = ["a", "b", "c", "d"]
WHOLE = {
    "listing": TaskProgress(
        size=1, counts={"done": 1}, outputs=[Finished(ITEMS, output_hash(ITEMS))]
    ),
    "suffix": complete("!"),
    "parse": complete(*(f"p{i}" for i in ITEMS)),
    "label": complete(*(f"l{i}" for i in ITEMS)),
}


def element_wise(
    finished: set[int], stopped: dict[int, str], labelled: set[int] | None = None
) -> dict[str, TaskPlan]:
    progress = {
        **{task: WHOLE[task] for task in ("listing", "suffix")},
        "parse": partly(4, {e: f"p{ITEMS[e]}" for e in finished}, stopped),
    }
    if labelled:
        progress["label"] = partly(4, {e: f"l{ITEMS[e]}" for e in labelled}, {})
    return {t.task: t for t in plan(MIXED, {}, progress, no_cache).tasks}


def test_a_chain_beside_a_fan_out_is_planned_element_by_element() -> None:
    by_task = element_wise({0, 2}, {1: "parse[1] failed"})
    assert by_task["label"].elements == (0, 2)
    assert by_task["label"].blocked == {1: "upstream parse[1] failed"}
    assert by_task["label"].inputs[2] == {"value": "pc", "item": "c", "tag": "!"}
    # merge: parse's elements are 0-3, listing's items 4-7, which wait for nothing
    assert by_task["merge"].elements == (0, 2, 4, 5, 6, 7)
    assert by_task["merge"].blocked == {1: "upstream parse[1] failed"}
    assert [by_task["merge"].inputs[e] for e in (2, 5)] == [{"value": "pc"}, {"value": "b"}]
    # prepend: listing's items first, then parse's elements, then label's, which still run
    assert by_task["prepend"].elements == (0, 1, 2, 3, 4, 6)
    cause = "upstream parse[1] failed"
    assert by_task["prepend"].blocked == {5: cause, 9: cause}


@given(st.sets(st.integers(0, 3)), st.data())
def test_elements_planned_alone_get_the_identities_and_inputs_of_the_whole_task(
    parsed: set[int], data: st.DataObject
) -> None:
    labelled = data.draw(st.sets(st.sampled_from(sorted(parsed)))) if parsed else set()
    alone = element_wise(parsed, {}, labelled)
    unlabelled = {task: p for task, p in WHOLE.items() if task != "label"}
    whole = {t.task: t for t in plan(MIXED, {}, unlabelled, no_cache).tasks}
    whole["prepend"] = next(
        t for t in plan(MIXED, {}, WHOLE, no_cache).tasks if t.task == "prepend"
    )
    compared = 0
    for task in ("label", "merge", "prepend"):
        if task not in alone:
            continue
        assert whole[task].elements is None  # planned whole
        rows = whole[task].inputs
        for element, identity in alone[task].identity_of().items():
            assert identity == whole[task].identities[element], (task, element)
            assert alone[task].inputs[element] == rows[element], (task, element)
            compared += 1
    label = 0 if labelled else len(parsed)  # a label in progress is not planned again
    assert compared == label + (len(parsed) + 4) + (4 + len(parsed) + len(labelled))
