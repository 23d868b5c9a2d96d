"""Packing: elements per Slurm array task, the array jobs they become, budget and MaxTime."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reflow.definition.errors import DefinitionError
from reflow.definition.resources import Resources, build_resources
from reflow.running.dispatch.packing import choose_pack, fit_budget, pack_for, packed_resources
from reflow.running.executors.base import BatchRequest
from reflow.running.executors.slurm_arrays import array_plans, array_tasks

HOUR_S = 3600


def request(elements: tuple[int, ...], pack: int, array_limit: int | None = None) -> BatchRequest:
    return BatchRequest(
        run_id="r1",
        workflow="demo",
        task="convert",
        batch_id="b1",
        elements=elements,
        resources=Resources(array_limit=array_limit),
        command=("python", "-m", "reflow.running.worker"),
        workdir=Path("/work"),
        log_dir=Path("/work/logs"),
        script_path=Path("/work/scripts/convert-b1.sh"),
        pack=pack,
    )


def worker_elements(elements: tuple[int, ...], pack: int, offset: int, index: int) -> list[int]:
    """What the worker runs for array index ``index`` of a chunk (``worker/selection.py``)."""
    start = (offset + index) * pack
    return list(elements[start : start + pack])


def test_array_tasks_when_the_pack_does_not_divide_the_count() -> None:
    tasks = array_tasks(23, 5)
    assert [list(t) for t in tasks] == [
        [0, 1, 2, 3, 4],
        [5, 6, 7, 8, 9],
        [10, 11, 12, 13, 14],
        [15, 16, 17, 18, 19],
        [20, 21, 22],
    ]
    assert array_tasks(4, 5) == [range(4)]
    assert array_tasks(0, 5) == []


def test_a_packed_batch_is_one_array_of_its_tasks_and_elements_share_their_tasks_index() -> None:
    elements = tuple(range(100, 123))
    [plan] = array_plans(request(elements, pack=5), max_array_size=1001)
    assert plan.array == "0-4"
    assert plan.worker_args == ("--array-offset", "0", "--turn-after", "5")
    assert plan.indices == (0,) * 5 + (1,) * 5 + (2,) * 5 + (3,) * 5 + (4,) * 3
    assert worker_elements(elements, 5, 0, 4) == [120, 121, 122]


def test_max_array_size_limits_array_tasks_not_elements() -> None:
    elements = tuple(range(23))
    plans = array_plans(request(elements, pack=5), max_array_size=2)
    assert [p.array for p in plans] == ["0-1", "0-1", "0-0"]
    # Every array task counts its end against the batch's 5 array tasks, whatever its chunk.
    assert [p.worker_args for p in plans] == [
        ("--array-offset", "0", "--turn-after", "5"),
        ("--array-offset", "2", "--turn-after", "5"),
        ("--array-offset", "4", "--turn-after", "5"),
    ]
    assert [p.script_path.name for p in plans] == [
        "convert-b1.0.sh",
        "convert-b1.1.sh",
        "convert-b1.2.sh",
    ]
    assert [len(p.indices) for p in plans] == [10, 10, 3]
    # 23 elements would need 3 arrays of 10 unpacked; packed, 5 tasks fit in 3 arrays of 2.
    assert len(array_plans(request(elements, pack=1), max_array_size=10)) == 3


@given(
    elements=st.lists(st.integers(0, 5000), min_size=1, max_size=300, unique=True),
    pack=st.integers(1, 40),
    max_array_size=st.integers(1, 60),
)
def test_every_element_runs_in_the_array_task_whose_job_id_it_gets(
    elements: list[int], pack: int, max_array_size: int
) -> None:
    batch = tuple(elements)
    plans = array_plans(request(batch, pack=pack), max_array_size=max_array_size)
    ran: list[tuple[int, int, int]] = []  # (chunk, array index, element)
    recorded: list[tuple[int, int, int]] = []
    position = 0
    for chunk, plan in enumerate(plans):
        args = dict(zip(plan.worker_args[::2], plan.worker_args[1::2], strict=True))
        if "--array-offset" in args:  # array index -> array task -> elements of the batch file
            offset = int(args["--array-offset"])
            for index in sorted(set(plan.indices)):
                ran += [(chunk, index, e) for e in worker_elements(batch, pack, offset, index)]
        else:  # unpacked and small: the array index is the element
            ran += [(chunk, e, e) for e in plan.indices]
        for index in plan.indices:
            recorded.append((chunk, index, batch[position]))
            position += 1
    assert sorted(ran) == sorted(recorded)
    assert [element for _c, _i, element in recorded] == list(batch)
    offset_free = [p for p in plans if "--array-offset" not in p.worker_args]
    assert all(len(set(p.indices)) <= max_array_size for p in plans if p not in offset_free)
    # The last array task of the whole batch to end runs the next turn: each knows how many.
    tasks = sum(len(set(p.indices)) for p in plans)
    assert {p.worker_args[-2:] for p in plans} == {("--turn-after", str(tasks))}


def test_the_budget_counts_array_tasks_and_max_array_size_then_cuts_them() -> None:
    # A budget of 3 jobs with pack=5 takes 15 of 23 elements, as 3 array tasks...
    assert fit_budget(23, 5, room=3) == (15, 3)
    # ... which an array limit of 2 submits as two sbatch calls: 2 tasks, then 1.
    plans = array_plans(request(tuple(range(15)), pack=5), max_array_size=2)
    assert [len(set(p.indices)) for p in plans] == [2, 1]
    assert fit_budget(23, 5, room=None) == (23, 5)
    assert fit_budget(23, 5, room=0) == (0, 0)
    assert fit_budget(23, 1, room=7) == (7, 7)
    assert fit_budget(4, 5, room=1) == (4, 1)


def test_pack_auto_without_history_does_not_pack_and_asks_no_partition() -> None:
    asked: list[str | None] = []

    def max_time(partition: str | None) -> int | None:
        asked.append(partition)
        return HOUR_S

    pack = pack_for(
        Resources(pack="auto"), count=1000, history=list, max_time_s=max_time, min_task_s=600
    )
    assert pack == 1
    assert asked == []


def test_pack_auto_takes_the_median_of_the_history_to_reach_min_task_time() -> None:
    history = [2.0, 3.0, 1000.0, 1.0, 2.5]  # median 2.5 s: an outlier does not count
    pack = pack_for(
        Resources(pack="auto"),
        count=10_000,
        history=lambda: history,
        max_time_s=None,
        min_task_s=600,
    )
    assert pack == 240
    few = pack_for(
        Resources(pack="auto"), count=7, history=lambda: history, max_time_s=None, min_task_s=600
    )
    assert few == 7


def test_pack_auto_is_bounded_by_the_partitions_max_time() -> None:
    asked: list[str | None] = []

    def max_time(partition: str | None) -> int | None:
        asked.append(partition)
        return 300

    auto = Resources(pack="auto", partition="short")
    pack = pack_for(auto, count=10_000, history=lambda: [2.0], max_time_s=max_time, min_task_s=600)
    assert pack == 150  # 300 s of MaxTime hold 150 elements of 2 s
    assert asked == ["short"]
    timed = Resources(pack="auto", time_s=60)
    pack = pack_for(timed, count=10_000, history=lambda: [2.0], max_time_s=max_time, min_task_s=600)
    assert pack == 5  # the declared 60 s per element bound it: 5 x 60 s = MaxTime


def test_a_fixed_pack_is_reduced_to_fit_max_time_and_asks_for_n_times_the_time() -> None:
    assert choose_pack(50, count=1000, time_s=600, median_s=None, min_task_s=600,
                       max_time_s=4 * HOUR_S) == 24  # fmt: skip
    assert choose_pack(50, count=1000, time_s=None, median_s=None, min_task_s=600,
                       max_time_s=HOUR_S) == 50  # fmt: skip
    assert choose_pack(50, count=1000, time_s=2 * HOUR_S, median_s=None, min_task_s=600,
                       max_time_s=HOUR_S) == 1  # fmt: skip
    assert choose_pack(50, count=30, time_s=None, median_s=None, min_task_s=600,
                       max_time_s=None) == 30  # fmt: skip
    assert choose_pack(None, count=30, time_s=None, median_s=1.0, min_task_s=600,
                       max_time_s=None) == 1  # fmt: skip
    assert packed_resources(Resources(time_s=600), 24).time_s == 24 * 600
    assert packed_resources(Resources(), 24).time_s is None
    assert packed_resources(Resources(time_s=600), 1).time_s == 600


def test_a_fixed_pack_reads_no_history() -> None:
    def history() -> list[float]:
        raise AssertionError("read the history for a fixed pack")

    pack = pack_for(Resources(pack=8), count=100, history=history, max_time_s=None, min_task_s=1)
    assert pack == 8


@pytest.mark.parametrize("value", [0, -1, True, "all", 2.5])
def test_pack_must_be_a_positive_int_or_auto(value: object) -> None:
    with pytest.raises(DefinitionError) as info:
        build_resources(task="convert", pack=value)  # type: ignore[arg-type]
    assert info.value.param == "pack"
    assert info.value.value == value


def test_pack_is_kept_and_taken_from_defaults_like_other_resources() -> None:
    assert build_resources(pack="auto").pack == "auto"
    assert build_resources(pack=7).pack == 7
    assert Resources().over(Resources(pack=3)).pack == 3
    assert Resources(pack=5).over(Resources(pack=3)).pack == 5
