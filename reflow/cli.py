"""Facade: the command line of a workflow file. Parses, then delegates to a command handler.

A ``ReflowError`` (a bad flag included) becomes one line on stderr and exit code 2, a command
it suggests starting with the flow as the user ran it (``python examples/flow.py``); a closed
pipe on stdout (``| head -1``) ends quietly with exit code 141, as a program killed by
SIGPIPE does; Ctrl-C ends with 130. ``dag``, ``describe`` and ``--help`` import nothing from
the running layer.
"""

from __future__ import annotations

import os
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from reflow.definition.cli_builder import build_parser, collect_params, parse_command_line
from reflow.definition.diagram import RENDERERS
from reflow.definition.errors import ReflowError
from reflow.definition.options import submit_options
from reflow.run import WaitInterrupted

if TYPE_CHECKING:
    from reflow.workflow import Workflow


def install_error_hook() -> None:
    """Report a ``ReflowError`` that escapes a flow script as one line and exit code 2.

    A ``DefinitionError`` can escape while the flow file is still being executed, before
    ``cli()`` can catch it (a bad flow name, ``include()``, or ``wf.submit()`` called by the
    script); this hook reports it as ``cli()`` does. Ctrl-C in ``run.wait()`` ends the
    script with exit code 130 and the line ``wait`` printed, without a traceback (except
    under ``python -i``, whose prompt comes next). Other exceptions keep Python's traceback.
    """
    previous = sys.excepthook
    if getattr(previous, "_reflow", False):
        return

    def hook(kind: type[BaseException], error: BaseException, trace: Any) -> None:
        if isinstance(error, ReflowError):
            sys.stdout.flush()
            sys.stderr.write(f"error: {error}\n")
            sys.stderr.flush()
            os._exit(2)
        if isinstance(error, WaitInterrupted) and not sys.flags.interactive:
            # A SystemExit raised by the hook ends Python with its code, after a normal exit.
            raise SystemExit(130)  # 128 + SIGINT, as reflow.running.commands.exits
        previous(kind, error, trace)

    hook._reflow = True  # type: ignore[attr-defined]
    sys.excepthook = hook


def invocation(wf: Workflow, argv: Sequence[str] | None) -> str:
    """How the user ran the flow, to start copy-pasteable hints: ``python examples/flow.py``.

    From the real command line it is ``sys.argv[0]`` exactly as given (relative or
    absolute), or ``python -m package.flow`` for a flow run as a module; for ``cli(argv)``
    called from Python it is the flow file's name.
    """
    if argv is None and wf.defined_in == "__main__" and wf.defined_as:
        return f"python -m {wf.defined_as}"
    if argv is None and sys.argv and sys.argv[0]:
        return f"python {shlex.quote(sys.argv[0])}"
    if wf.defined_file:
        return f"python {shlex.quote(Path(wf.defined_file).name)}"
    return wf.name


def run_cli(wf: Workflow, argv: Sequence[str] | None, *, out: IO[str] | None = None) -> int:
    """Parse ``argv`` for ``wf`` and run the command; return the exit code."""
    stream = out if out is not None else sys.stdout
    prog = invocation(wf, argv)
    try:
        code = _run(wf, argv, stream, prog)
        stream.flush()
    except ReflowError as err:
        sys.stderr.write(f"error: {err.message(prog)}\n")
        return 2
    except BrokenPipeError:
        # lazy: only a closed pipe needs it
        from reflow.running.commands.exits import pipe_closed

        return pipe_closed(stream)
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return 130  # 128 + SIGINT, as reflow.running.commands.exits.EXIT_INTERRUPTED
    return code


def _run(wf: Workflow, argv: Sequence[str] | None, stream: IO[str], prog: str) -> int:
    graph = wf.graph()
    options = submit_options(graph.tasks)
    parser = build_parser(prog, wf.name, options)
    try:
        args = parse_command_line(parser, argv)
    except SystemExit as stop:  # --help
        return int(stop.code or 0)
    if args.command == "describe":
        # lazy: only describe needs JSON and the description
        import json

        from reflow.definition.description import describe

        stream.write(json.dumps(describe(graph), indent=2) + "\n")
        return 0
    if args.command == "dag" and args.format in RENDERERS:
        stream.write(RENDERERS[args.format](graph))
        return 0
    # lazy: keeps --help, dag and describe fast
    from reflow.running.commands.handlers import run_command

    params = collect_params(args, options) if args.command == "submit" else {}
    return run_command(wf, graph, args, params, out=stream, invocation=prog)
