"""A task's compute-node environment: ``setup=`` and ``env=`` checked at decoration time, the
config's ``[executor] setup`` and ``env`` checked on load, and how the two merge."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from reflow import Workflow
from reflow.definition.description import describe, graph_from_description
from reflow.definition.environment import Environment, build_environment
from reflow.definition.errors import ConfigError, DefinitionError, FlowDefinitionError
from reflow.running.config import load_config


def errors_of(**options: Any) -> list[DefinitionError]:
    wf = Workflow("env")
    with pytest.raises(DefinitionError) as caught:

        @wf.job(**options)
        def task() -> int:
            return 1

    err = caught.value
    return list(err.errors) if isinstance(err, FlowDefinitionError) else [err]


def test_setup_and_env_are_read_into_the_spec_with_numbers_as_text() -> None:
    wf = Workflow("env")

    @wf.job(setup="module load cdo", env={"B": "x y", "A": 3, "F": 0.5})
    def task() -> int:
        return 1

    assert wf.tasks["task"].environment == Environment(
        setup=("module load cdo",), env=(("A", "3"), ("B", "x y"), ("F", "0.5"))
    )


@pytest.mark.parametrize(
    ("options", "param", "says"),
    [
        ({"setup": ["ok", "a\nb"]}, "setup", "setup line 2 'a\\nb' contains a line break"),
        ({"setup": "a\rb"}, "setup", "contains a line break"),
        ({"setup": ["a\x00"]}, "setup", "setup line 1 'a\\x00' contains a NUL"),
        ({"setup": [3]}, "setup", "setup line 1 is 3, not a string"),
        ({"setup": 3}, "setup", "must be a string or a list of strings"),
        ({"env": ["A=1"]}, "env", "must be a mapping of variable names to values"),
        ({"env": {"1A": "x"}}, "env", "env name '1A' is not a shell variable name"),
        ({"env": {"A-B": "x"}}, "env", "env name 'A-B' is not a shell variable name"),
        ({"env": {"SLURM_ARRAY_TASK_ID": "3"}}, "env", "is set by Slurm"),
        ({"env": {"A": True}}, "env", "env A=True is not a string or a number"),
        ({"env": {"A": None}}, "env", "env A=None is not a string or a number"),
        ({"env": {"A": "x\x00"}}, "env", "contains a NUL"),
    ],
)
def test_each_bad_value_is_one_line_naming_the_task_and_option(
    options: dict[str, object], param: str, says: str
) -> None:
    (err,) = errors_of(**options)
    assert (err.task, err.param) == ("task", param)
    assert says in str(err)
    assert "\n" not in str(err)
    assert err.hint


def test_every_problem_of_setup_env_and_the_signature_is_reported_together() -> None:
    found = errors_of(setup=["a\nb", "c\x00"], env={"1A": "x", "B": True}, mem="lots")
    assert sorted(e.param or "" for e in found) == ["env", "env", "mem", "setup", "setup"]


def test_the_configs_setup_runs_first_and_a_tasks_variable_wins() -> None:
    config = build_environment(["module load a"], {"A": "config", "C": "config"})
    task = build_environment("source venv", {"A": "task", "B": "task"})
    assert task.over(config) == Environment(
        setup=("module load a", "source venv"),
        env=(("A", "task"), ("B", "task"), ("C", "config")),
    )


def test_setup_and_env_survive_the_describe_manifest() -> None:
    wf = Workflow("env")

    @wf.job(setup=["module load cdo"], env={"A": "1"})
    def task(x: int = 1) -> int:
        return x

    rebuilt = graph_from_description(describe(wf.graph()))
    assert rebuilt.task("task").environment == wf.tasks["task"].environment
    assert rebuilt.task("task").environment.setup == ("module load cdo",)


def test_config_reads_setup_as_a_string_or_list_and_env_as_a_table(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[executor]\nsetup = "module load cdo"\n[executor.env]\nN = 4\nS = "a b"\n')
    config = load_config(env={}, path=path)
    assert config.environment == Environment(
        setup=("module load cdo",), env=(("N", "4"), ("S", "a b"))
    )
    path.write_text('[executor]\nsetup = ["a", "b"]\n')
    assert load_config(env={}, path=path).environment.setup == ("a", "b")


@pytest.mark.parametrize(
    ("text", "param", "says"),
    [
        ('setup = ["a\\nb"]', "executor.setup", "contains a line break"),
        ("setup = 3", "executor.setup", "must be a string or a list of strings"),
        ('env = {"1A" = "x"}', "executor.env", "env name '1A' is not a shell variable name"),
        ("env = {A = true}", "executor.env", "env A=True is not a string or a number"),
        ('env = "A=1"', "executor.env", "must be a mapping"),
    ],
)
def test_a_bad_config_environment_names_the_key_and_the_file(
    tmp_path: Path, text: str, param: str, says: str
) -> None:
    path = tmp_path / "config.toml"
    path.write_text(f"[executor]\n{text}\n")
    with pytest.raises(ConfigError) as caught:
        load_config(env={}, path=path)
    assert caught.value.param == param
    assert says in str(caught.value)
    assert str(path) in str(caught.value)
