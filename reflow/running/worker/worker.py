"""Running: the worker runs elements of one task and writes one result each. No store.

Entry point (what executors start, on a compute node or as a local process)::

    python -m reflow.running.worker --run-dir D --run-id R --task T --batch B --plan P
        [--elements 0-9,12 | --array-offset N] [--turn-after TASKS]

``--elements`` runs those elements one after another in this process; on Slurm the array
index picks them (``selection.py``: one element, or the elements of a packed array task).
Each element's prints go to its log (for a packed array task, to the array task's shared
output first: ``output.py``), and every outcome, including a flow that cannot be
imported or a setup line of the task's environment that failed (``--setup-failed``, the flow
is then not imported), becomes a result file (for a packed array task, a line of its
bundle): the elements never write the store and never fail silently; an element's failure
never stops the next. On Slurm the last array task of a batch then runs the next turn in
this process (``last_out``).
Exit status: 0 when every element succeeded, 1 when any failed, 2 when the command line
itself is wrong.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import reprlib
import resource
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from reflow.definition.errors import StoreError
from reflow.definition.markers import RunDir
from reflow.definition.options import param_key
from reflow.definition.retry_policy import qualified_name
from reflow.definition.spec import UNSET, TaskSpec
from reflow.definition.types import conforms
from reflow.planning.encoding import LocatedEncodingError, from_json, to_json, to_text
from reflow.planning.identity import value_hash
from reflow.planning.paths import with_fingerprints
from reflow.running.fingerprints import DEFAULT_MODE, fingerprint
from reflow.running.rundir.bundles import Bundle
from reflow.running.rundir.element_logs import footer, header
from reflow.running.rundir.inputs import InputsReader
from reflow.running.rundir.layout import RunLayout
from reflow.running.rundir.manifest import read_manifest
from reflow.running.rundir.results import ResultError, result_text, write_result
from reflow.running.worker.command import setup_failure, worker_parser
from reflow.running.worker.last_out import turn_if_last
from reflow.running.worker.loader import FlowImportError, load_workflow
from reflow.running.worker.output import (
    ElementOutput,
    OwnLogs,
    SharedOutput,
    drop_empty_scheduler_output,
)
from reflow.running.worker.selection import SelectionError, select


# The worker's records are NamedTuples: a frozen dataclass costs about 1 ms of CPU to create
# at import, which every worker process pays (see docs/architecture.md, "The worker's start").
class _Job(NamedTuple):
    """What this process was asked to run."""

    layout: RunLayout
    task: str
    batch: str
    plan: str
    elements: tuple[int, ...]
    host: str
    inputs: InputsReader
    output: ElementOutput
    bundle: Bundle | None = None


class _Outcome(NamedTuple):
    """One element's output (tagged JSON and its hash) or its error."""

    output: Any = None
    output_hash: str | None = None
    error: ResultError | None = None


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    """Run the worker command line and return its exit status (see the module docstring)."""
    args = worker_parser().parse_args(argv)
    layout = RunLayout(Path(args.run_dir).absolute(), args.run_id)
    try:
        selection = select(args, layout, os.environ if environ is None else environ)
    except SelectionError as err:
        print(f"reflow worker: {err}", file=sys.stderr)  # noqa: T201 - the chunk log
        return 2
    packed = selection.array_task
    job = _Job(
        layout=layout,
        task=args.task,
        batch=args.batch,
        plan=args.plan,
        elements=selection.elements,
        host=os.uname().nodename,  # the host name, without importing socket
        inputs=InputsReader(layout, args.task, args.plan),
        output=_output(layout, args.task, args.batch, packed, selection.again),
        bundle=None if packed is None else Bundle(layout.bundle(args.task, args.batch, packed)),
    )
    run: Callable[[int], _Outcome]
    failure = setup_failure(args)  # the task's environment could not be made: nothing runs
    try:
        if failure is not None:
            error = ResultError(type="SetupError", message=failure, traceback=failure + "\n")
            run = functools.partial(_fail, error)
        else:
            run = functools.partial(_call, job, *_prepare(job))
    except Exception as err:  # noqa: BLE001 - the worker boundary: every element reports it
        run = functools.partial(_fail, _error_of(err))
    statuses = [_run_element(job, element, run) for element in job.elements]
    job.output.close()
    job.inputs.close()
    if job.bundle is not None:
        try:
            job.bundle.close()
        except OSError as err:
            print(f"reflow: cannot sync {job.bundle.path}: {err}", file=sys.stderr)  # noqa: T201
    if args.elements is None:
        drop_empty_scheduler_output(layout.logs_dir(args.task))
    if args.turn_after:
        turn_if_last(layout, args.batch, args.turn_after)
    return max(statuses, default=0)


def _output(
    layout: RunLayout, task: str, batch: str, packed: int | None, again: frozenset[int]
) -> ElementOutput:
    """A packed array task's shared output, else (or when it cannot be made) own logs."""
    logs = layout.logs_dir(task)
    if packed is not None:
        shared = layout.pack_log(task, batch, packed)
        try:
            return SharedOutput(shared, logs, again)
        except OSError as err:
            print(f"reflow: cannot open {shared}: {err}", file=sys.stderr)  # noqa: T201
    return OwnLogs(logs)


def _fail(error: ResultError, element: int) -> _Outcome:
    """Fail an element with an error found before any element could run."""
    print(error.traceback, end="", file=sys.stderr)  # noqa: T201 - the element's log
    return _Outcome(error=error)


def _prepare(job: _Job) -> tuple[TaskSpec, dict[str, Any]]:
    """Import the flow and decode the task's parameters, once for all elements."""
    manifest = read_manifest(job.layout)
    workflow = load_workflow(manifest)
    spec = workflow.tasks.get(job.task)
    if spec is None:
        raise FlowImportError(
            f"workflow {workflow.name!r} has no task {job.task!r}; it has {sorted(workflow.tasks)}",
            cause_type="FlowImportError",
            hint="was the flow file edited after submit? submit the run again",
        )
    if spec.func is None:
        raise FlowImportError(
            f"task {job.task!r} has no function to call", cause_type="FlowImportError"
        )
    cache = manifest.get("cache") or {}
    spec = dataclasses.replace(
        spec, fingerprint=spec.fingerprint or cache.get("fingerprint") or DEFAULT_MODE
    )
    stored = manifest.get("params") or {}
    params: dict[str, Any] = {}
    for param in spec.params:
        key = param_key(spec.name, param)
        if key in stored:
            params[param.name] = from_json(stored[key], where=key)
        elif param.default is not UNSET:
            params[param.name] = param.default
        else:
            raise StoreError(
                f"the run manifest has no value for parameter {key!r}",
                task=spec.name,
                param=param.name,
            )
    return spec, params


def _call(job: _Job, spec: TaskSpec, params: Mapping[str, Any], element: int) -> _Outcome:
    """Call the task for one element; any exception it raises is this element's failure."""
    assert spec.func is not None
    try:
        kwargs = {**params, **_inputs(job, spec, element)}
    except StoreError as err:
        print(f"reflow: {err}", file=sys.stderr)  # noqa: T201 - the element's log
        return _Outcome(error=_error_of(err))
    if spec.run_dir_arg is not None:
        kwargs[spec.run_dir_arg] = RunDir(job.layout.root)
    try:
        value = spec.func(**kwargs)
    except (Exception, SystemExit) as err:  # noqa: BLE001 - the worker boundary
        failure = _error_of(err, skip_frames=1)  # the traceback starts in the task
        print(failure.traceback, end="", file=sys.stderr)  # noqa: T201 - the element's log
        return _Outcome(error=failure)
    return _encode(spec, value)


def _inputs(job: _Job, spec: TaskSpec, element: int) -> dict[str, Any]:
    if not spec.inputs:
        return {}
    inputs = job.inputs.read(element)
    wanted = {inp.name for inp in spec.inputs}
    if set(inputs) != wanted:
        raise StoreError(
            f"the inputs file gives {sorted(inputs)} but the task takes {sorted(wanted)}",
            task=spec.name,
            hint="plan the task again",
        )
    return inputs


def _encode(spec: TaskSpec, value: Any) -> _Outcome:
    """Check the return value against the annotation and encode it."""
    if spec.returns is not None and not conforms(value, spec.returns):
        message = (
            f"{spec.name} returned {reprlib.repr(value)} ({type(value).__name__}), "
            f"annotated {spec.returns}"
        )
        print(f"reflow: {message}", file=sys.stderr)  # noqa: T201 - the element's log
        return _Outcome(error=ResultError(type="TypeError", message=message))
    try:
        data = to_json(value, where="return value")
    except LocatedEncodingError as err:
        located = err.for_task(spec.name)
        print(f"reflow: {located}", file=sys.stderr)  # noqa: T201 - the element's log
        return _Outcome(error=ResultError(type=type(located).__name__, message=str(located)))
    mode = spec.fingerprint or DEFAULT_MODE
    try:
        data = with_fingerprints(data, lambda path: fingerprint(Path(path), mode))
    except OSError as err:
        message = (
            f"{spec.name} returned the path {err.filename!r}, but nothing is there "
            f"({err.strerror}); write the file before returning its Path"
        )
        print(f"reflow: {message}", file=sys.stderr)  # noqa: T201 - the element's log
        return _Outcome(error=ResultError(type="MissingOutputError", message=message))
    return _Outcome(output=data, output_hash=value_hash(to_text(data, where="return value")))


def _run_element(job: _Job, element: int, run: Callable[[int], _Outcome]) -> int:
    """Run one element with its output in its log, write its result; return 0 or 1."""
    started = time.time()
    cpu_before = _cpu_s()
    with job.output.element(element, header(job.task, element, job.batch, job.host)) as attempt:
        outcome = run(element)
        ended = time.time()
        cpu_s = max(0.0, _cpu_s() - cpu_before)  # the element's own, not the footer's and result's
        attempt.ran(failed=outcome.error is not None)
        print(footer(job.task, element, outcome.error, ended - started))  # noqa: T201 - the log
    text = result_text(
        run_id=job.layout.run_id,
        task=job.task,
        element=element,
        batch=job.batch,
        output=outcome.output,
        output_hash=outcome.output_hash,
        error=outcome.error,
        started=started,
        ended=ended,
        host=job.host,
        pid=os.getpid(),
        peak_rss_mb=_peak_rss_mb(),
        cpu_s=cpu_s,
    )
    try:
        if job.bundle is not None:
            job.bundle.append(text)
        else:
            write_result(job.layout.result(job.task, element, job.batch), text)
    except OSError as err:
        # No result file: the executor reports this element by the worker's exit status.
        message = f"reflow: cannot write the result of {job.task}[{element}]: {err}"
        print(message, file=sys.stderr)  # noqa: T201 - the chunk's log
        return 1
    attempt.settled()
    return 0 if outcome.error is None else 1


def _error_of(err: BaseException, *, skip_frames: int = 0) -> ResultError:
    import traceback  # only for a failure: most workers never format one

    kind = err.cause_type if isinstance(err, FlowImportError) else type(err).__name__
    frames = err.__traceback__
    for _ in range(skip_frames):
        frames = frames.tb_next if frames is not None and frames.tb_next else frames
    text = "".join(traceback.format_exception(type(err), err, frames))
    classes = tuple(qualified_name(cls) for cls in type(err).__mro__)
    return ResultError(type=kind, message=str(err), traceback=text, classes=classes)


def _peak_rss_mb() -> float:
    """The largest resident set of this process or its finished children, in MB."""
    peak = max(
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
    )
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def _cpu_s() -> float:
    """CPU time (user + system) of this process and its finished children so far, in s."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


if __name__ == "__main__":
    raise SystemExit(main())
