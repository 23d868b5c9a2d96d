"""The right-sizing figures: percentiles, suggestions the decorators accept, underused requests."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reflow.definition.resources import build_resources, parse_mem, parse_time
from reflow.running.commands.sizing import (
    HEADROOM,
    ElementUsage,
    Request,
    percentiles,
    request_of,
    suggest_cpus,
    suggest_mem,
    suggest_time,
    task_figures,
)


def test_percentiles_take_the_nearest_rank() -> None:
    assert percentiles([]) is None
    assert percentiles([5.0]) == {"p50": 5.0, "p95": 5.0, "max": 5.0}
    values = [float(v) for v in range(1, 101)]
    assert percentiles(values) == {"p50": 50.0, "p95": 95.0, "max": 100.0}


@given(st.floats(min_value=0.0, max_value=10_000_000.0))
def test_a_memory_suggestion_is_valid_mem_and_keeps_the_headroom(peak_mb: float) -> None:
    text = suggest_mem(peak_mb)
    assert parse_mem(text) >= peak_mb * HEADROOM
    assert build_resources(mem=text).mem_mb == parse_mem(text)


@given(st.floats(min_value=0.0, max_value=30 * 86400.0))
def test_a_time_suggestion_is_valid_time_in_whole_minutes(elapsed_s: float) -> None:
    text = suggest_time(elapsed_s)
    seconds = parse_time(text)
    assert seconds >= elapsed_s * HEADROOM
    assert seconds % 60 == 0
    assert seconds >= 60


@pytest.mark.parametrize(
    ("cores", "cpus"), [(0.0, 1), (0.4, 1), (1.0, 1), (1.3, 2), (3.9, 5), (8.0, 10)]
)
def test_a_cpus_suggestion_is_the_busy_cores_plus_headroom_to_the_nearest(
    cores: float, cpus: int
) -> None:
    assert suggest_cpus(cores) == cpus


def test_the_scheduler_recorded_request_wins_over_the_task_resources() -> None:
    usages = [
        ElementUsage(element=0, elapsed_s=1, cpu_s=1, peak_rss_mb=1, cpus=2, mem_mb=100),
        ElementUsage(element=1, elapsed_s=1, cpu_s=1, peak_rss_mb=1, cpus=2, mem_mb=200),
    ]
    default = Request(cpus=1, mem_mb=50, time_s=60)
    assert request_of(usages, default) == Request(cpus=2, mem_mb=200, time_s=60)
    assert request_of([], default) == default


def test_figures_of_a_task_that_asked_for_far_too_much() -> None:
    usages = [
        ElementUsage(element=i, elapsed_s=10.0, cpu_s=5.0, peak_rss_mb=100.0 + i) for i in range(20)
    ]
    figures = task_figures("t", usages, Request(cpus=2, mem_mb=1024, time_s=3600), from_cache=3)
    assert (figures["elements"], figures["from_cache"]) == (20, 3)
    assert figures["used"]["peak_rss_mb"] == {"p50": 109.0, "p95": 118.0, "max": 119.0}
    assert figures["cpu_efficiency"]["p50"] == pytest.approx(0.25)
    assert figures["mem_efficiency"]["max"] == pytest.approx(119 / 1024)
    assert figures["core_hours"] == {
        "allocated": pytest.approx(20 * 10 * 2 / 3600),
        "limit": pytest.approx(20 * 2.0),
        "used": pytest.approx(20 * 5 / 3600),
    }
    assert figures["suggestion"] == {"cpus": 1, "mem": "192M", "time": "00:01:00"}
    assert figures["underused"] == ["mem", "time"]


def test_a_task_near_its_request_or_without_one_is_not_underused() -> None:
    usages = [ElementUsage(element=0, elapsed_s=50.0, cpu_s=None, peak_rss_mb=400.0)]
    near = task_figures("t", usages, Request(cpus=None, mem_mb=1000, time_s=120), from_cache=0)
    assert near["underused"] == []
    assert near["cpu_efficiency"] is None
    assert "cpus" not in near["suggestion"]
    none = task_figures("t", usages, Request(cpus=None, mem_mb=None, time_s=None), from_cache=0)
    assert (none["underused"], none["mem_efficiency"]) == ([], None)


def test_elements_shorter_than_a_second_say_nothing_of_how_busy_the_cores_were() -> None:
    # A trivial element: its CPU time, counted in clock ticks, can exceed its elapsed time.
    usages = [
        ElementUsage(element=i, elapsed_s=0.004, cpu_s=0.005, peak_rss_mb=20.0) for i in range(9)
    ]
    figures = task_figures("t", usages, Request(cpus=1, mem_mb=1024, time_s=60), from_cache=0)
    assert figures["cpu_efficiency"] is None
    assert "cpus" not in figures["suggestion"]
    longer = [*usages, ElementUsage(element=9, elapsed_s=2.0, cpu_s=1.0, peak_rss_mb=20.0)]
    figures = task_figures("t", longer, Request(cpus=1, mem_mb=1024, time_s=60), from_cache=0)
    assert figures["cpu_efficiency"]["max"] == pytest.approx(0.5)
    assert figures["suggestion"]["cpus"] == 1


def test_no_element_counts_more_busy_cores_than_it_was_given() -> None:
    # sacct's elapsed time is whole seconds: 1.9 s of CPU in "1 s" on one core.
    usages = [ElementUsage(element=0, elapsed_s=1.0, cpu_s=1.9, peak_rss_mb=20.0)]
    figures = task_figures("t", usages, Request(cpus=1, mem_mb=1024, time_s=60), from_cache=0)
    assert figures["cpu_efficiency"]["max"] == pytest.approx(1.0)
    assert figures["suggestion"]["cpus"] == 1
