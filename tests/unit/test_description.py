"""Describe: the JSON manifest rebuilds the same graph and the same command line."""

import argparse
import io
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reflow import StoreError
from reflow.definition.cli_builder import build_parser, collect_params
from reflow.definition.description import (
    FORMAT,
    describe,
    graph_from_description,
    options_from_description,
)
from reflow.definition.errors import UsageError
from reflow.definition.graph import Graph, build_graph
from reflow.definition.options import submit_options
from reflow.definition.resources import Resources
from reflow.definition.spec import UNSET, InputSpec, ParamSpec, TaskSpec
from reflow.definition.types import TypeRef
from tests.flows import all_rules, param_types


def through_json(data: dict[str, Any]) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(json.dumps(data))
    return loaded


def test_manifest_has_the_documented_keys():
    data = describe(all_rules.wf.graph())
    assert set(data) == {"format", "workflow", "tasks", "edges", "options"}
    assert (data["format"], data["workflow"]) == (FORMAT, "all_rules")
    task = data["tasks"][0]
    assert set(task) == {
        "name", "array", "module", "qualname", "version", "cache", "fingerprint", "code", "verify",
            "run_dir_arg",
        "returns", "resources", "setup", "env", "retry", "after", "params", "inputs",
    }  # fmt: skip
    assert (task["name"], task["module"], task["returns"]) == (
        "files",
        "tests.flows.all_rules",
        {"kind": "list", "args": [{"kind": "str"}]},
    )


def test_manifest_edges_carry_the_modes():
    edges = describe(all_rules.wf.graph())["edges"]
    assert {"source": "split", "target": "parts", "param": "part", "mode": "flatten+fan-out"} in (
        edges
    )
    assert {"source": "total", "target": "report", "param": None, "mode": "after"} in edges
    assert len(edges) == len(all_rules.wf.graph().edges)


def test_manifest_params_and_options_carry_defaults_as_json():
    data = through_json(describe(param_types.wf.graph()))
    options = {o["key"]: o for o in data["options"]}
    assert options["output"]["default"] == "out"
    assert options["tags"]["default"] == ["a", "b"]
    assert options["name"]["required"]
    assert "default" not in options["name"]
    assert options["ingest.chunk"] == {
        "key": "ingest.chunk",
        "flag": "--ingest-chunk",
        "type": {"kind": "int"},
        "help": "Chunk size",
        "short": None,
        "required": False,
        "tasks": ["ingest"],
        "output": False,
        "default": 256,
    }
    assert options["output"]["output"] is True


def test_manifest_records_resources_and_task_options():
    graph = build_graph(
        "g",
        {
            "a": TaskSpec(
                name="a",
                returns=TypeRef("str"),
                resources=Resources(cpus=4, mem_mb=1024, extra=("--exclusive",)),
                version="3",
                cache=False,
                has_verify=True,
            )
        },
    )
    (task,) = describe(graph)["tasks"]
    assert task["resources"]["cpus"] == 4
    assert task["resources"]["extra"] == ["--exclusive"]
    assert (task["version"], task["cache"], task["verify"]) == ("3", False, True)


@pytest.mark.parametrize("flow", [all_rules, param_types], ids=["all_rules", "param_types"])
def test_graph_rebuilt_from_the_manifest_is_the_same(flow):
    graph = flow.wf.graph()
    data = through_json(describe(graph))
    rebuilt = graph_from_description(data)
    assert rebuilt == graph
    assert all(task.func is None for task in rebuilt.tasks)
    assert describe(rebuilt) == describe(graph)


def test_all_rules_manifest_matches_golden(golden):
    golden("describe/all_rules.json", json.dumps(describe(all_rules.wf.graph()), indent=2) + "\n")


def test_describe_command_prints_the_manifest():
    out = io.StringIO()
    assert all_rules.wf.cli(["describe"], out=out) == 0
    assert json.loads(out.getvalue()) == through_json(describe(all_rules.wf.graph()))


@pytest.mark.parametrize("data", [{"format": "reflow/describe/0"}, {}, ["x"]], ids=repr)
def test_unknown_manifest_format_is_refused(data):
    with pytest.raises(StoreError) as info:
        graph_from_description(data)
    with pytest.raises(StoreError):
        options_from_description(data)
    expected = data.get("format") if isinstance(data, dict) else "list"
    assert info.value.value == expected


def _submit_parser(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            found: argparse.ArgumentParser = action.choices["submit"]
            return found
    raise AssertionError("no subcommands")


ARGVS = [
    ["submit", "-n", "x", "--years", "2020"],
    ["submit", "-n", "x", "--years", "2020", "2021", "--count", "4", "--ratio", "1.5", "--dry",
     "--output", "/o", "-m", "icon", "--level", "2", "--tags", "t", "--seed", "7",
     "--ingest-chunk", "9", "--run-dir", "d", "--force"],
]  # fmt: skip


@pytest.mark.parametrize("flow", [all_rules, param_types], ids=["all_rules", "param_types"])
def test_submit_parser_rebuilt_from_describe_is_the_same(flow):
    original_options = submit_options(flow.wf.graph().tasks)
    rebuilt_options = options_from_description(through_json(describe(flow.wf.graph())))
    assert rebuilt_options == original_options
    original = build_parser("flow.py", flow.wf.name, original_options)
    rebuilt = build_parser("flow.py", flow.wf.name, rebuilt_options)
    assert _submit_parser(rebuilt).format_help() == _submit_parser(original).format_help()
    assert rebuilt.format_help() == original.format_help()


@pytest.mark.parametrize("argv", ARGVS, ids=["defaults", "everything"])
def test_rebuilt_submit_parser_parses_the_same(argv):
    original_options = submit_options(param_types.wf.graph().tasks)
    rebuilt_options = options_from_description(through_json(describe(param_types.wf.graph())))
    original = build_parser("flow.py", "param_types", original_options).parse_args(argv)
    rebuilt = build_parser("flow.py", "param_types", rebuilt_options).parse_args(argv)
    assert vars(rebuilt) == vars(original)
    assert collect_params(rebuilt, rebuilt_options) == collect_params(original, original_options)


def test_rebuilt_submit_parser_refuses_the_same_bad_argv():
    rebuilt_options = options_from_description(through_json(describe(param_types.wf.graph())))
    parser = build_parser("flow.py", "param_types", rebuilt_options)
    with pytest.raises(UsageError, match="invalid choice: 'gfs'"):
        parser.parse_args(["submit", "-n", "x", "--years", "2020", "--model", "gfs"])


# Random graphs with random parameters for the round trip.
PARAM_TYPES: list[tuple[TypeRef, st.SearchStrategy[Any]]] = [
    (TypeRef("str"), st.text(max_size=5)),
    (TypeRef("int"), st.integers()),
    (TypeRef("float"), st.floats(allow_nan=False, allow_infinity=False)),
    (TypeRef("bool"), st.booleans()),
    (TypeRef("path"), st.sampled_from([Path("out"), Path("/scratch/x")])),
    (TypeRef("literal", values=("a", "b")), st.sampled_from(["a", "b"])),
    (TypeRef("list", (TypeRef("int"),)), st.lists(st.integers(), max_size=3)),
    (TypeRef("list", (TypeRef("path"),)), st.lists(st.just(Path("p")), max_size=2)),
    (TypeRef("optional", (TypeRef("int"),)), st.none() | st.integers()),
]
RETURNS = [TypeRef("str"), TypeRef("list", (TypeRef("str"),))]


@st.composite
def param_specs(draw: st.DrawFn, task: str) -> tuple[ParamSpec, ...]:
    names = draw(st.lists(st.sampled_from(["alpha", "beta", "gamma"]), unique=True, max_size=3))
    params = []
    for name in names:
        ref, values = draw(st.sampled_from(PARAM_TYPES))
        default = draw(st.just(UNSET) | values)
        params.append(
            ParamSpec(
                name=f"{task}_{name}",
                type=ref,
                help=draw(st.text(max_size=8)),
                short=None,
                namespace=draw(st.sampled_from(["global", "local"])),
                default=list(default) if isinstance(default, list) else default,
            )
        )
    return tuple(params)


@st.composite
def graphs(draw: st.DrawFn) -> Graph:
    count = draw(st.integers(min_value=1, max_value=6))
    tasks: dict[str, TaskSpec] = {}
    for i in range(count):
        name = f"t{i}"
        sources = draw(st.lists(st.sampled_from(list(tasks)), unique=True, max_size=2)) if i else []
        inputs = tuple(
            InputSpec(name=f"in_{s}", type=tasks[s].returns or TypeRef("any"), sources=(s,))
            for s in sources
        )
        tasks[name] = TaskSpec(
            name=name,
            params=draw(param_specs(name)),
            inputs=inputs,
            returns=draw(st.sampled_from(RETURNS)),
            resources=Resources(cpus=draw(st.none() | st.integers(1, 64))),
            version=draw(st.sampled_from(["1", "2"])),
            cache=draw(st.booleans()),
            module="m",
            qualname=name,
        )
    return build_graph("random", tasks)


@settings(database=None, max_examples=100, deadline=None)
@given(graphs())
def test_describe_round_trips(graph):
    data = through_json(describe(graph))
    rebuilt = graph_from_description(data)
    assert through_json(describe(rebuilt)) == data
    assert rebuilt == graph
    assert options_from_description(data) == submit_options(graph.tasks)
