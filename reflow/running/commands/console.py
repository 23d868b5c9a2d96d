"""Running: the ``reflow`` console script, for the commands that need no flow file.

``reflow runs|status|cancel|retry|logs|result|why|report --run-dir D ...`` works from the run
directory alone: the store holds every run's state and each run's manifest holds its
workflow description, so nothing imports user code here, except ``retry``, which reads the
flow file once for the resources fixed since submit (as the run's workers import it). The
subcommands are copied from a flow file's own command line (``build_parser``), so their
flags cannot drift apart; the handlers are the same ``run_store_command``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import cast

from reflow.definition.cli_builder import CommandParser, build_parser, parse_command_line
from reflow.definition.errors import ReflowError
from reflow.running.commands.exits import EXIT_INTERRUPTED, EXIT_USAGE, pipe_closed
from reflow.running.commands.handlers import run_store_command

STORE_COMMANDS = (
    "runs", "status", "cancel", "retry", "logs", "result", "why", "watch", "report",
)  # fmt: skip
"""The commands of a flow file's CLI that the console script offers."""


def build_console_parser() -> argparse.ArgumentParser:
    """Return the parser of ``reflow``: the run-directory commands of a flow file's CLI."""
    source = _subcommands(build_parser("reflow", "", ()))
    parser = CommandParser(
        prog="reflow",
        description="Inspect and steer the runs in a run directory, without the flow file.",
        epilog="Submitting, dag and describe belong to the flow file: python flow.py --help",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in STORE_COMMANDS:
        sub, help_text = source[name]
        # The copied actions include the source's -h, so the new parser adds no second one.
        commands.add_parser(
            name,
            parents=[cast(CommandParser, sub)],
            add_help=False,
            help=help_text,
            description=sub.description,
        )
    return parser


def _subcommands(
    parser: argparse.ArgumentParser,
) -> dict[str, tuple[argparse.ArgumentParser, str | None]]:
    """Each subcommand's parser and help line (argparse keeps both only on private fields)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help for choice in action._choices_actions}
            return {name: (sub, helps.get(name)) for name, sub in action.choices.items()}
    raise AssertionError("build_parser made a parser without subcommands")


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``reflow COMMAND ...`` and return the exit code (see ``exits``).

    A ``ReflowError`` (a bad flag included) is one line on stderr and exit code 2.
    """
    parser = build_console_parser()
    try:
        args = parse_command_line(parser, argv)
        code = run_store_command(args, out=sys.stdout)
        sys.stdout.flush()
    except SystemExit as stop:  # --help
        return stop.code if isinstance(stop.code, int) else EXIT_USAGE
    except ReflowError as err:
        sys.stderr.write(f"error: {err.message('reflow')}\n")
        return EXIT_USAGE
    except BrokenPipeError:
        return pipe_closed(sys.stdout)
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return EXIT_INTERRUPTED
    return code


if __name__ == "__main__":
    raise SystemExit(main())
