"""The docs cannot drift from the code: every command, flag, config key and manifest field.

``docs/cli.md`` is checked against the parser that ``build_parser`` really builds (and the
``reflow`` console script's), ``docs/configuration.md`` against the config schema, and
``docs/describe.md`` against what ``describe`` really writes.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import pytest

from reflow import Param, Result, RunDir, Workflow
from reflow.definition.cli_builder import COMMANDS, build_parser
from reflow.definition.description import describe
from reflow.running import config
from reflow.running.commands.console import STORE_COMMANDS, build_console_parser

DOCS = Path(__file__).resolve().parents[2] / "docs"


def sections(page: str, level: str = "##") -> dict[str, str]:
    """The text under each heading of ``level`` in a docs page, by heading title."""
    text = (DOCS / page).read_text()
    parts = re.split(rf"^{level} (.+)$", text, flags=re.M)
    return {title.strip(): body for title, body in zip(parts[1::2], parts[2::2], strict=True)}


def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    (action,) = (a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def documented_words(parser: argparse.ArgumentParser) -> list[str]:
    """Option strings and positional metavars that a command's section must name."""
    words: list[str] = []
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        if action.option_strings:
            words += action.option_strings
        else:
            words.append(str(action.metavar or action.dest))
    return words


FLOW_COMMANDS = subcommands(build_parser("flow.py", "demo", ()))


def test_every_command_of_the_real_parser_is_listed() -> None:
    assert set(FLOW_COMMANDS) == set(COMMANDS)
    page = sections("cli.md")
    assert set(COMMANDS) <= set(page)


@pytest.mark.parametrize("command", COMMANDS)
def test_every_flag_and_argument_is_documented_in_its_section(command: str) -> None:
    body = sections("cli.md")[command]
    missing = [w for w in documented_words(FLOW_COMMANDS[command]) if f"`{w}" not in body]
    assert missing == [], f"docs/cli.md, section {command}, does not name {missing}"


def test_every_choice_of_dag_format_is_documented() -> None:
    body = sections("cli.md")["dag"]
    (fmt,) = (a for a in FLOW_COMMANDS["dag"]._actions if "--format" in a.option_strings)
    assert fmt.choices
    assert [c for c in fmt.choices if f"`{c}`" not in body] == []


def test_the_console_scripts_commands_are_documented() -> None:
    body = sections("cli.md")["The `reflow` console script"]
    console = subcommands(build_console_parser())
    assert list(console) == list(STORE_COMMANDS)
    for name in console:
        assert re.search(rf"^  {name} ", body, re.M), name


def test_every_config_key_is_documented_in_its_section() -> None:
    page = sections("configuration.md", "###")
    for section, keys in config._SCHEMA.items():
        body = page[f"`[{section}]`"]
        missing = [key for key in keys if not re.search(rf"^\| `{key}` \|", body, re.M)]
        assert missing == [], f"docs/configuration.md [{section}] lacks {missing}"


def test_every_reflow_variable_is_documented_next_to_its_key() -> None:
    text = (DOCS / "configuration.md").read_text()
    for variable, key in config._ENV.items():
        name = key.split(".")[1]
        row = re.search(rf"^\| `{name}` \| `{variable}` \|", text, re.M)
        assert row, f"docs/configuration.md: no row `{name}` | `{variable}`"
    assert "`REFLOW_CONFIG`" in text


def keys_of(value: Any) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in keys_of(v)}
    if isinstance(value, list):
        return {k for v in value for k in keys_of(v)}
    return set()


def test_every_field_of_the_describe_manifest_is_documented() -> None:
    wf = Workflow("fields")

    @wf.job(mem="1G")
    def prepare(
        model: Annotated[Literal["a", "b"], Param(help="Model", short="-m")] = "a",
        count: Annotated[int, Param(namespace="local")] = 2,
        run_dir: RunDir = RunDir(),
    ) -> list[str]:
        return [model] * count

    @wf.array_job(after=["prepare"])
    def convert(item: Annotated[str, Result(step="prepare")], bucket: str) -> str:
        return item + bucket

    text = (DOCS / "describe.md").read_text()
    manifest = describe(wf.graph())
    assert manifest["format"] in text
    missing = sorted(k for k in keys_of(manifest) if f"`{k}`" not in text)
    assert missing == []
