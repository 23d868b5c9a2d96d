"""Markers: Param, Result and RunDir record what the user wrote and refuse nonsense."""

import dataclasses
from pathlib import Path, PurePath
from typing import Annotated, Any

import pytest

from reflow import DefinitionError, Param, Result, RunDir


def test_param_defaults_to_a_global_flag_without_help_or_short():
    param = Param()
    assert (param.help, param.short, param.namespace) == ("", None, "global")


def test_param_records_help_short_and_namespace():
    param = Param(help="Chunk", short="-c", namespace="local")
    assert (param.help, param.short, param.namespace) == ("Chunk", "-c", "local")


def test_param_is_immutable():
    param = Param(help="x")
    with pytest.raises(dataclasses.FrozenInstanceError):
        param.help = "y"  # type: ignore[misc]


@pytest.mark.parametrize("short", ["n", "--n", "-nn", "-1", "-", ""])
def test_param_refuses_a_short_flag_that_is_not_dash_and_one_letter(short):
    (problem,) = Param(short=short).problems
    assert problem.value == short
    assert problem.hint is not None


def test_param_refuses_an_unknown_namespace():
    bad: Any = "shared"
    (problem,) = Param(namespace=bad).problems
    assert problem.value == "shared"


def test_param_refuses_help_that_is_not_a_string():
    bad: Any = 42
    (problem,) = Param(help=bad).problems
    assert "must be a string" in problem.problem


def test_result_with_one_step_has_one_source():
    marker = Result(step="prepare")
    assert marker.sources == ("prepare",)
    assert marker.step == "prepare"


def test_result_with_steps_keeps_their_order():
    marker = Result(steps=["b", "a", "c"])
    assert marker.sources == ("b", "a", "c")
    assert marker.step == "b"


def test_results_with_the_same_sources_are_equal_and_hashable():
    assert Result(step="a") == Result(steps=["a"])
    assert len({Result(step="a"), Result(steps=("a",))}) == 1


@pytest.mark.parametrize("kwargs", [{}, {"step": "a", "steps": ["b"]}], ids=["neither", "both"])
def test_result_needs_exactly_one_of_step_and_steps(kwargs):
    with pytest.raises(DefinitionError) as info:
        Result(**kwargs)
    assert info.value.hint is not None


@pytest.mark.parametrize("steps", ["ab", []], ids=["string", "empty"])
def test_result_steps_must_be_a_non_empty_list(steps):
    with pytest.raises(DefinitionError) as info:
        Result(steps=steps)
    assert info.value.value == steps


@pytest.mark.parametrize("steps", [["a", ""], ["a", 3]], ids=["empty-name", "not-a-string"])
def test_result_refuses_names_that_are_not_task_names(steps):
    with pytest.raises(DefinitionError):
        Result(steps=steps)


def test_result_refuses_a_task_named_twice():
    with pytest.raises(DefinitionError):
        Result(steps=["a", "b", "a"])


def test_run_dir_is_a_real_path():
    run_dir = RunDir()
    assert isinstance(run_dir, Path)
    assert isinstance(run_dir, PurePath)
    assert RunDir("/scratch/run") / "x" == Path("/scratch/run/x")


def test_a_param_marker_problem_is_reported_by_the_decorator_with_task_and_parameter():
    from reflow import Workflow

    wf = Workflow("markers")

    def convert(n: Annotated[int, Param(short="x")] = 1) -> int:
        return n

    with pytest.raises(DefinitionError) as info:
        wf.job()(convert)
    assert (info.value.task, info.value.param, info.value.value) == ("convert", "n", "x")
