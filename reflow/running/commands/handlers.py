"""Running: the handlers of the command-line commands (submit, status, cancel, retry, ...).

Handlers print to the stream they are given and return an exit code; ``ReflowError``s pass
through to the CLI facade, which prints one line and exits with 2.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path
from typing import IO, Any

from reflow.definition.cli_builder import LATEST
from reflow.definition.diagram import render_dot
from reflow.definition.errors import UsageError
from reflow.definition.graph import Graph
from reflow.running.commands.exits import EXIT_INTERRUPTED
from reflow.running.commands.hints import flow_command, interrupted_line
from reflow.running.commands.progress import wait_for_run
from reflow.running.commands.status import load_status, render_failed, render_status
from reflow.running.config import load_config
from reflow.running.process import run_command as run_process
from reflow.running.rundir.location import resolve_run_dir
from reflow.running.rundir.manifest import SubmittableWorkflow
from reflow.running.store.sqlite import SqliteStore
from reflow.running.store.states import RunState


def run_dir_of(value: Path | None) -> Path:
    """The ``--run-dir`` given, else the configured default."""
    return resolve_run_dir(value, load_config())


def run_command(
    wf: SubmittableWorkflow,
    graph: Graph,
    args: argparse.Namespace,
    params: dict[str, Any],
    *,
    out: IO[str],
    invocation: str = "python flow.py",
) -> int:
    """Run the parsed command ``args.command`` and return the exit code.

    ``invocation`` is how the user ran the flow (``python examples/flow.py``); the printed
    hints start with it.
    """
    command = args.command
    if command == "submit":
        return _submit(wf, args, params, out, invocation)
    if command == "dag":
        return _dag_image(graph, args.format, args.output, out)
    run_id = getattr(args, "run_id", "")
    if (command in _LATEST_BY_DEFAULT and run_id is None) or run_id == LATEST:
        args.run_id = SqliteStore.latest_in(run_dir_of(args.run_dir), wf.name)
    return run_store_command(args, out=out)


_LATEST_BY_DEFAULT = frozenset({"status", "why", "watch", "report"})
"""Commands whose run id defaults to the latest run: a flow file's, of its own workflow."""


def run_store_command(args: argparse.Namespace, *, out: IO[str]) -> int:
    """Commands that need only the run directory: status, cancel, retry, runs, logs, report, ..."""
    root = run_dir_of(args.run_dir)
    command = args.command
    if getattr(args, "run_id", None) == LATEST:  # the console script: of any workflow
        args.run_id = SqliteStore.latest_in(root)
    if command == "watch":
        # lazy: a command loads only what it runs, so status and logs start fast
        from reflow.running.commands.watch import watch_run

        return watch_run(root, args.run_id, out=out)
    if command == "status" and args.watch:
        # lazy: a command loads only what it runs, so status and logs start fast
        from reflow.running.commands.watch import watch_status

        return watch_status(root, args.run_id, out=out)
    if command == "status":
        data = load_status(root, args.run_id)
        if args.json:
            out.write(json.dumps(data, indent=2) + "\n")
        else:
            out.write(render_failed(data) if args.failed else render_status(data))
        return 0
    if command == "cancel":
        # lazy: a command loads only what it runs, so status and logs start fast
        from reflow.running.dispatch.control import cancel_run

        count = cancel_run(root, args.run_id, args.task)
        out.write(f"cancelled {count} instance(s) of run {args.run_id}\n")
        return 0
    if command == "retry":
        # lazy: a command loads only what it runs, so status and logs start fast
        return _retry(root, args, out)
    if command == "runs":
        return _runs(root, args.json, out)
    if command == "logs":
        # lazy: a command loads only what it runs, so status and logs start fast
        from reflow.running.commands.logs import show_logs

        return show_logs(
            root, args.run_id, args.task, args.index, out=out, tail=args.tail, follow=args.follow
        )
    if command == "why":
        # lazy: a command loads only what it runs, so status and logs start fast
        from reflow.running.commands.why import explain, write_why

        write_why(explain(root, args.run_id, args.task), out, as_json=args.json)
        return 0
    if command == "result":
        # lazy: a command loads only what it runs, so status and logs start fast
        from reflow.running.commands.results import write_result

        note = write_result(root, args.run_id, args.task, args.index, as_json=args.json, out=out)
        if note:
            sys.stderr.write(note + "\n")
        return 0
    if command == "report":
        # lazy: a command loads only what it runs, so status and logs start fast
        from reflow.running.commands.report import load_report, write_report

        write_report(load_report(root, args.run_id), out, as_json=args.json)
        return 0
    raise AssertionError(command)


def _retry(root: Path, args: argparse.Namespace, out: IO[str]) -> int:
    # lazy: a command loads only what it runs, so status and logs start fast
    from reflow.running.dispatch.control import retry
    from reflow.running.dispatch.option_changes import parse_set

    retried = retry(
        root,
        args.run_id,
        args.task,
        verify=args.verify,
        resources=parse_set(args.overrides),
        label="--set",
        dry_run=args.dry_run,
    )
    for note in retried.notes:
        sys.stderr.write(note + "\n")
    out.writelines(f"{change}\n" for change in retried.changes)
    if args.dry_run:
        out.write(
            f"run {args.run_id}: dry run, nothing changed; {retried.count} failed or cancelled"
            " instance(s) would run again\n"
        )
        return 0
    if not retried.resumed:
        out.write(f"run {args.run_id}: nothing to retry; it succeeded and stays so\n")
        return 0
    out.write(f"run {args.run_id}: {retried.count} instance(s) will run again\n")
    return _follow(root, args.run_id, out) if args.wait else 0


def _submit(
    wf: SubmittableWorkflow,
    args: argparse.Namespace,
    params: dict[str, Any],
    out: IO[str],
    invocation: str,
) -> int:
    # lazy: a command loads only what it runs, so status and logs start fast
    from reflow.running.commands.submission import submit_workflow

    run = submit_workflow(
        wf,
        run_dir=args.run_dir,
        params=params,
        force=args.force,
        force_tasks=args.force_task,
        verify=args.verify,
        by_key=True,
        cache_from=args.cache_from,
        out=out,
    )
    if run.executor == "dry-run":
        return 0
    out.write(
        f"submitted run {run.run_id} (executor: {run.executor})\n"
        f"  status: {flow_command(invocation, 'status', run.run_id, run.run_dir)}\n"
    )
    return _follow(run.run_dir, run.run_id, out) if args.wait else 0


def _follow(root: Path, run_id: str, out: IO[str]) -> int:
    """Show progress until the run ends, then its summary; 0 only if it succeeded.

    Ctrl-C stops following, not the run: one line says so and how to follow or cancel it,
    and the exit code is 130.
    """
    try:
        return 0 if wait_for_run(root, run_id, out=out) == RunState.SUCCEEDED else 1
    except KeyboardInterrupt:
        out.flush()
        after_echo = "\n" if sys.stderr.isatty() else ""  # the terminal echoed ^C
        sys.stderr.write(f"{after_echo}{interrupted_line(run_id, root)}\n")
        return EXIT_INTERRUPTED


def _runs(root: Path, as_json: bool, out: IO[str]) -> int:
    with SqliteStore.open(root) as store:
        runs = store.runs()
        sizes = store.instance_counts()
    rows: list[dict[str, Any]] = [
        {
            "run_id": run.run_id,
            "workflow": run.workflow,
            "state": run.state.value,
            "executor": run.executor,
            "created": run.created,
            "instances": sizes.get(run.run_id, 0),
        }
        for run in runs
    ]
    if as_json:
        out.write(json.dumps(rows, indent=2) + "\n")
        return 0
    out.write(f"{'run id':<40} {'state':<10} {'executor':<8} {'instances':>9}  created\n")
    for row in rows:
        created = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(row["created"]))
        out.write(
            f"{row['run_id']:<40} {row['state']:<10} {row['executor']:<8}"
            f" {row['instances']:>9}  {created}\n"
        )
    return 0


def _dag_image(graph: Graph, fmt: str, output: Path | None, out: IO[str]) -> int:
    dot = shutil.which("dot")
    if dot is None:
        raise UsageError(
            f"dag --format {fmt} needs Graphviz's dot, which is not on PATH",
            hint="install graphviz, or use --format dot / mermaid / text",
        )
    target = output or Path(f"{graph.name}.{fmt}")
    source = target.with_suffix(".dot")
    source.write_text(render_dot(graph))
    result = run_process([dot, f"-T{fmt}", str(source), "-o", str(target)], timeout_s=60)
    source.unlink(missing_ok=True)
    if result.returncode != 0:
        raise UsageError(f"dot failed: {result.stderr.strip()}")
    out.write(f"wrote {target}\n")
    return 0
