"""``ReflowError``: one line built from fields; a suggested command run by the user's program."""

from __future__ import annotations

import shlex

from reflow.definition.errors import (
    DefinitionError,
    FlowDefinitionError,
    UsageError,
    command_line,
)


def test_a_suggested_command_names_the_console_script_unless_told_the_program():
    error = UsageError(
        "no run 'x' in /runs", suggestion="r1", hint="list the runs",
        command=("runs", "--run-dir", "/runs"),
    )  # fmt: skip
    assert str(error) == (
        "no run 'x' in /runs; did you mean \"r1\"?; list the runs: reflow runs --run-dir /runs"
    )
    assert error.message("python 'my flows/flow.py'") == (
        "no run 'x' in /runs; did you mean \"r1\"?; list the runs:"
        " python 'my flows/flow.py' runs --run-dir /runs"
    )


def test_every_word_of_a_suggested_command_is_quoted_and_keeps_its_spaces():
    error = UsageError("stuck", command=("retry", "r1", "--run-dir", "/a  b/it's"))
    assert str(error) == "stuck; reflow retry r1 --run-dir '/a  b/it'\"'\"'s'"
    assert shlex.split(str(error).split("; ", 1)[1])[-1] == "/a  b/it's"


def test_command_line_quotes_the_words_not_the_program():
    assert command_line("python flow.py", ("status", "a b")) == "python flow.py status 'a b'"
    assert command_line("reflow", ()) == "reflow"


def test_numbered_definition_errors_take_the_program_too():
    errors = [
        DefinitionError("bad", hint="fix it", command=("dag",)),
        DefinitionError("worse"),
    ]
    combined = FlowDefinitionError(errors, where="flow.py")
    assert combined.message("python flow.py").splitlines() == [
        "2 errors in flow.py:",
        "  1. bad; fix it: python flow.py dag",
        "  2. worse",
    ]
