"""CLI builder: submit options become argparse flags that parse every parameter type."""

import argparse
from pathlib import Path
from typing import Any, Literal

import pytest

from reflow.definition.cli_builder import (
    COMMANDS,
    CommandParser,
    build_parser,
    collect_params,
    parse_command_line,
)
from reflow.definition.errors import UsageError
from reflow.definition.options import SubmitOption, submit_options
from reflow.definition.spec import UNSET
from reflow.definition.types import from_annotation
from tests.flows import param_types

OPTIONS = submit_options(param_types.wf.graph().tasks)
REQUIRED = ["-n", "run1", "--years", "2020"]


def parser_for(options: tuple[SubmitOption, ...] = OPTIONS) -> argparse.ArgumentParser:
    return build_parser("flow.py", "param_types", options)


def submit(*argv: str) -> dict[str, Any]:
    args = parser_for().parse_args(["submit", *REQUIRED, *argv])
    return collect_params(args, OPTIONS)


def option(annotation: Any, *, default: Any = UNSET, **fields: Any) -> SubmitOption:
    return SubmitOption(key="x", flag="--x", type=from_annotation(annotation), default=default,
                        **fields)  # fmt: skip


def test_defaults_fill_every_parameter_not_given():
    assert submit() == {
        "name": "run1",
        "years": [2020],
        "count": 3,
        "ratio": 0.5,
        "dry": False,
        "output": Path("out"),
        "model": "era5",
        "level": 1,
        "tags": ["a", "b"],
        "seed": None,
        "ingest.chunk": 256,
    }


def test_str_with_long_and_short_flag():
    assert submit("--name", "long")["name"] == "long"
    assert submit("-n", "short")["name"] == "short"


def test_int_is_converted():
    assert submit("--count", "7")["count"] == 7


def test_float_is_converted():
    assert submit("--ratio", "2.5")["ratio"] == 2.5


@pytest.mark.parametrize(("argv", "value"), [(["--dry"], True), (["--no-dry"], False)])
def test_bool_has_a_flag_and_its_negation(argv, value):
    assert submit(*argv)["dry"] is value


def test_path_is_converted():
    assert submit("--output", "/scratch/x")["output"] == Path("/scratch/x")


@pytest.mark.parametrize("argv", [["--model", "icon"], ["-m", "icon"]])
def test_literal_of_str_is_a_choice(argv):
    assert submit(*argv)["model"] == "icon"


def test_literal_of_int_converts_to_the_int_choice():
    assert submit("--level", "3")["level"] == 3


def test_list_takes_one_or_more_values_of_its_item_type():
    values = submit("--years", "2020", "2021", "--tags", "x")
    assert (values["years"], values["tags"]) == ([2020, 2021], ["x"])


def test_optional_is_none_by_default_and_converted_when_given():
    assert submit("--seed", "42")["seed"] == 42


def test_local_parameter_has_a_task_prefixed_flag_and_key():
    assert submit("--ingest-chunk", "8")["ingest.chunk"] == 8


@pytest.mark.parametrize(
    "argv",
    [
        ["--count", "x"],
        ["--ratio", "abc"],
        ["--model", "gfs"],
        ["--level", "4"],
        ["--years"],
        ["--years", "soon"],
        ["--dry", "yes"],
        ["--unknown", "1"],
        ["--chunk", "8"],
    ],
    ids=repr,
)
def test_bad_values_are_one_usage_error_naming_the_submit_help(argv):
    with pytest.raises(UsageError) as info:
        parse_command_line(parser_for(), ["submit", *REQUIRED, *argv])
    assert info.value.hint == "see: flow.py submit --help"
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("missing", "flag"), [(["--years", "2020"], "-n/--name"), (["-n", "x"], "--years")]
)
def test_required_parameters_must_be_given(missing, flag):
    with pytest.raises(UsageError, match="required") as info:
        parser_for().parse_args(["submit", *missing])
    assert flag in str(info.value)


def test_required_bool_needs_one_of_its_flags():
    options = (option(bool),)
    parser = build_parser("p", "w", options)
    assert collect_params(parser.parse_args(["submit", "--no-x"]), options) == {"x": False}
    with pytest.raises(UsageError, match="--x/--no-x"):
        parser.parse_args(["submit"])


def test_optional_list_of_paths():
    options = (option(list[Path] | None, default=None),)
    parser = build_parser("p", "w", options)
    assert collect_params(parser.parse_args(["submit"]), options) == {"x": None}
    parsed = collect_params(parser.parse_args(["submit", "--x", "a", "b"]), options)
    assert parsed == {"x": [Path("a"), Path("b")]}


def test_help_lists_every_flag_with_help_and_default():
    text = " ".join(_submit_help(parser_for()).split())  # column widths follow the terminal
    for expected in [
        "-n NAME, --name NAME Run name (required)",
        "--years YEARS [YEARS ...] Years to process (required)",
        "--count COUNT How many (default: 3)",
        "--ratio RATIO (default: 0.5)",
        "--dry, --no-dry Only pretend (default: False)",
        "--output OUTPUT Output folder (default: 'out')",
        "-m {era5,icon}, --model {era5,icon} Model (default: 'era5')",
        "--level {1,2,3} (default: 1)",
        "--tags TAGS [TAGS ...] (default: ['a', 'b'])",
        "--seed SEED (default: None; pass none for None)",
        "--ingest-chunk INGEST_CHUNK Chunk size (default: 256)",
    ]:
        assert expected in text, expected
    assert text.count("default: False") == 1


def test_percent_in_help_is_shown_literally():
    options = (option(int, default=5, help="Share in %"),)
    text = " ".join(_submit_help(build_parser("p", "w", options)).split())
    assert "Share in % (default: 5)" in text


def _submit_help(parser: argparse.ArgumentParser) -> str:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            submit_parser: argparse.ArgumentParser = action.choices["submit"]
            return submit_parser.format_help()
    raise AssertionError("no subcommands")


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["submit", *REQUIRED, "--run-dir", "d", "--force", "--force-task", "a",
          "--force-task", "b", "--verify", "--wait"],
         {"command": "submit", "run_dir": Path("d"), "force": True, "force_task": ["a", "b"],
          "verify": True, "wait": True}),
        (["status"], {"command": "status", "run_id": None, "json": False}),
        (["status", "demo-1", "--json", "--run-dir", "d"],
         {"command": "status", "run_id": "demo-1", "json": True, "run_dir": Path("d")}),
        (["cancel", "demo-1", "--task", "convert"],
         {"command": "cancel", "run_id": "demo-1", "task": "convert"}),
        (["retry", "demo-1", "--no-verify", "--wait"],
         {"command": "retry", "run_id": "demo-1", "verify": False, "wait": True}),
        (["retry", "demo-1"], {"command": "retry", "verify": True, "task": None}),
        (["runs", "--run-dir", "d", "--json"], {"command": "runs", "json": True}),
        (["logs", "demo-1", "convert", "3"],
         {"command": "logs", "run_id": "demo-1", "task": "convert", "index": 3}),
        (["dag"], {"command": "dag", "format": "text", "output": None}),
        (["dag", "--format", "dot", "-o", "g.dot"],
         {"command": "dag", "format": "dot", "output": Path("g.dot")}),
        (["describe"], {"command": "describe"}),
    ],
    ids=lambda v: v[0] if isinstance(v, list) else None,
)  # fmt: skip
def test_every_command_parses(argv, expected):
    args = vars(parser_for().parse_args(argv))
    assert {key: args[key] for key in expected} == expected


def test_every_command_is_a_subcommand():
    for action in parser_for()._actions:
        if isinstance(action, argparse._SubParsersAction):
            assert tuple(action.choices) == COMMANDS


def test_a_command_is_required():
    with pytest.raises(UsageError, match="COMMAND") as info:
        parser_for().parse_args([])
    assert info.value.hint == "see: flow.py --help"


def test_collect_params_keeps_only_option_keys():
    args = parser_for().parse_args(["submit", *REQUIRED, "--force"])
    assert "force" not in collect_params(args, OPTIONS)
    assert set(collect_params(args, OPTIONS)) == {o.key for o in OPTIONS}


def test_literal_int_refuses_text_that_is_no_choice():
    parser = build_parser("p", "w", (option(Literal[1, 2], default=1),))
    assert parser.parse_args(["submit", "--x", "2"]).x == 2
    with pytest.raises(UsageError, match="invalid choice: 'one'"):
        parser.parse_args(["submit", "--x", "one"])


@pytest.mark.parametrize(
    ("argv", "command"),
    [
        (["submit", *REQUIRED, "--min-qual", "3"], "submit"),
        (["submit", *REQUIRED, "--wai"], "submit"),
        (["submit", *REQUIRED, "--cou", "3"], "submit"),
        (["status", "--run", "d"], "status"),
        (["retry", "r1", "--no-ver"], "retry"),
    ],
    ids=repr,
)
def test_abbreviated_flags_are_refused_with_the_subcommand_help(argv, command):
    with pytest.raises(UsageError, match="unrecognized arguments") as info:
        parse_command_line(parser_for(), argv)
    assert info.value.hint == f"see: flow.py {command} --help"


def test_an_unknown_flag_suggests_the_near_one():
    with pytest.raises(UsageError) as info:
        parse_command_line(parser_for(), ["submit", *REQUIRED, "--modle", "icon"])
    assert info.value.suggestion == "--model"


@pytest.mark.parametrize("annotation", [int | None, float | None, str | None, Path | None])
def test_none_passes_none_to_an_optional_parameter(annotation):
    options = (option(annotation, default=None),)
    args = build_parser("p", "w", options).parse_args(["submit", "--x", "none"])
    assert collect_params(args, options) == {"x": None}


def test_an_optional_int_still_converts_numbers():
    options = (option(int | None, default=None),)
    args = build_parser("p", "w", options).parse_args(["submit", "--x", "7"])
    assert collect_params(args, options) == {"x": 7}


def test_none_is_refused_where_none_is_not_allowed():
    with pytest.raises(UsageError, match="invalid int value: 'none'"):
        build_parser("p", "w", (option(int, default=1),)).parse_args(["submit", "--x", "none"])


@pytest.mark.parametrize("text", ["nan", "inf", "-inf", "NaN", "1e400"])
@pytest.mark.parametrize("annotation", [float, float | None])
def test_non_finite_floats_are_refused_at_parse_time(text, annotation):
    parser = build_parser("p", "w", (option(annotation, default=1.0),))
    with pytest.raises(UsageError, match="not a finite number") as info:
        parser.parse_args(["submit", f"--x={text}"])
    assert repr(text) in str(info.value)


@pytest.mark.parametrize("text", ["-inf", "-nan", "-Infinity"])
def test_a_negative_non_finite_float_after_a_space_is_read_as_a_value(text):
    parser = build_parser("p", "w", (option(float, default=1.0),))
    with pytest.raises(UsageError, match="not a finite number"):
        parser.parse_args(["submit", "--x", text])
    assert parser.parse_args(["submit", "--x", "-1.5"]).x == -1.5


@pytest.mark.parametrize(
    "argv",
    [["submit", "--bogus"], ["submit", "--bogus", "--years", "2020"], ["cancel", "--bogus"]],
    ids=repr,
)
def test_an_unknown_flag_is_reported_before_missing_required_arguments(argv):
    with pytest.raises(UsageError) as info:
        parse_command_line(parser_for(), argv)
    assert info.value.problem == "unrecognized arguments: --bogus"
    assert info.value.hint == f"see: flow.py {argv[0]} --help"


def test_looking_for_unknown_flags_leaves_the_parser_requiring_what_it_did():
    parser = parser_for()
    with pytest.raises(UsageError, match="unrecognized"):
        parse_command_line(parser, ["submit", "--bogus"])
    with pytest.raises(UsageError, match="required: -n/--name, --years"):
        parse_command_line(parser, ["submit"])


def test_a_malformed_value_is_reported_even_beside_missing_arguments():
    with pytest.raises(UsageError, match="invalid int value: 'x'") as info:
        parse_command_line(parser_for(), ["submit", "--count", "x"])
    assert info.value.hint == "see: flow.py submit --help"


@pytest.mark.parametrize(("text", "lines"), [("0", 0), ("3", 3)])
def test_logs_tail_takes_a_count_of_lines(text, lines):
    assert parse_command_line(parser_for(), ["logs", "r1", "t", "--tail", text]).tail == lines


def test_logs_tail_refuses_a_negative_count():
    with pytest.raises(UsageError) as info:
        parse_command_line(parser_for(), ["logs", "r1", "t", "--tail", "-3"])
    assert info.value.problem == "argument --tail: '-3' is not a number of lines (give 0 or more)"
    assert info.value.hint == "see: flow.py logs --help"


@pytest.mark.parametrize(
    "message",
    [
        "argument COMMAND: invalid choice: 'sumbit' (choose from 'submit', 'status')",
        "argument COMMAND: invalid choice: 'sumbit' (choose from submit, status)",
        "argument COMMAND: invalid choice: sumbit (choose from submit, status)",
    ],
)
def test_a_mistyped_choice_is_answered_with_the_closest_however_argparse_quotes(
    message: str,
) -> None:
    with pytest.raises(UsageError) as raised:
        CommandParser(prog="flow.py").error(message)
    assert raised.value.suggestion == "submit"
