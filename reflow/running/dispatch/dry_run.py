"""Running: ``REFLOW_MODE=dry-run``: plan a run and show what would be submitted.

The run is planned against a copy of the run directory's store in a temporary folder, so
cache hits are real; nothing runs, nothing is submitted, and nothing is written to the run
directory. The temporary folder is removed afterwards. Where Slurm is available (``sbatch``
on ``PATH``) the batch scripts are printed as ``submit`` would write them (one
``scontrol show config`` reads ``MaxArraySize``, and one ``sinfo`` the partition's time
limit that bounds a packed task), followed by the sbatch options of the
dispatcher turn that would come next; paths are shown inside the real run directory. When
Slurm does not answer (no controller from this machine), the scripts are shown with
Slurm's defaults, and one line says so.
"""

from __future__ import annotations

import dataclasses
import shlex
import shutil
import sqlite3
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from reflow.definition.errors import SubmissionError
from reflow.running.config import load_config
from reflow.running.dispatch.dispatcher import make_dispatcher
from reflow.running.dispatch.slurm_chain import successor_options
from reflow.running.executors.base import BatchRequest, JobStatus, PartitionLimits, Submission
from reflow.running.executors.dry_run import DryRunExecutor
from reflow.running.executors.slurm import SlurmExecutor
from reflow.running.executors.slurm_query import DEFAULT_MAX_ARRAY_SIZE
from reflow.running.rundir.layout import STORE_NAME, RunLayout
from reflow.running.rundir.manifest import write_manifest
from reflow.running.store.schema import check_version, store_problem
from reflow.running.store.sqlite import SqliteStore
from reflow.running.store.states import InstanceState, RunState


def dry_run(
    root: Path, manifest: Mapping[str, Any], options: Mapping[str, Any], *, out: IO[str]
) -> None:
    """Print the batches the first dispatcher turn would submit, and what waits."""
    with tempfile.TemporaryDirectory(prefix="reflow-dry-run-") as scratch:
        copy = Path(scratch)
        if (root / STORE_NAME).exists():
            _copy_store(root / STORE_NAME, copy / STORE_NAME)
        layout = RunLayout(copy, str(manifest["run_id"]))
        with SqliteStore.open(copy, create=True) as store:
            _record_run(layout, store, manifest, options)
            is_slurm = shutil.which("sbatch") is not None
            out.write(
                f"dry run of {manifest['workflow']}: nothing is submitted"
                f"{' (batch scripts as Slurm would get them)' if is_slurm else ''}\n"
            )
            slurm, answers = _slurm(out) if is_slurm else (None, False)
            printer = DryRunExecutor(out=out, render=_slurm_render(slurm) if slurm else None)
            executor = _Rebased(printer, old=copy, new=root, slurm=slurm if answers else None)
            dispatcher = make_dispatcher(layout, store, executor)
            state = dispatcher.turn()
            _write_summary(out, store, layout.run_id, dispatcher.graph.tasks)
            if is_slurm and state is RunState.RUNNING:
                _write_successor(out, RunLayout(root, layout.run_id), manifest, executor.ids)


def _slurm(out: IO[str]) -> tuple[SlurmExecutor, bool]:
    """The executor that renders the scripts, and whether Slurm answers to be asked more.

    As the config says, or with Slurm's defaults when ``scontrol`` gets no answer; then
    nothing else is asked. Each command is called once: a dry run does not wait out the
    back-off of a turn.
    """
    slurm = SlurmExecutor(max_array_size=load_config().max_array_size, max_attempts=1)
    try:
        slurm.max_array_size()
    except SubmissionError as err:
        out.write(
            f"[dry-run] Slurm does not answer ({err}); the scripts assume its default"
            f" MaxArraySize {DEFAULT_MAX_ARRAY_SIZE} and no partition limits\n"
        )
        return SlurmExecutor(max_array_size=DEFAULT_MAX_ARRAY_SIZE, max_attempts=1), False
    return slurm, True


def _copy_store(source_path: Path, target_path: Path) -> None:
    source = sqlite3.connect(source_path)
    target = sqlite3.connect(target_path)
    try:
        check_version(source, source_path)  # errors name the user's store, not the copy
        source.backup(target)
    except sqlite3.Error as err:
        problem = store_problem(source_path, err)
        if problem is None:
            raise
        raise problem from err
    finally:
        source.close()
        target.close()


def _record_run(
    layout: RunLayout, store: SqliteStore, manifest: Mapping[str, Any], options: Mapping[str, Any]
) -> None:
    write_manifest(layout, manifest)
    store.create_run(
        run_id=layout.run_id,
        workflow=str(manifest["workflow"]),
        executor="dry-run",
        options=options,
    )


def _write_summary(out: IO[str], store: SqliteStore, run_id: str, specs: Sequence[Any]) -> None:
    counts = store.state_counts(run_id)
    for spec in specs:
        task_counts = counts.get(spec.name)
        if task_counts is None:
            out.write(f"  {spec.name}: waits for {', '.join(spec.upstream)}\n")
        else:
            shown = ", ".join(f"{n} {s}" for s, n in sorted(task_counts.items()))
            out.write(f"  {spec.name}: {shown}{_why_failed(store, run_id, spec.name)}\n")


def _why_failed(store: SqliteStore, run_id: str, task: str) -> str:
    """`` (first failure's reason)`` when an instance of ``task`` failed in the dry run."""
    for row in store.instances(run_id, task):
        if row.state is InstanceState.FAILED:
            return f" ({row.reason}: {row.error})" if row.error else f" ({row.reason})"
    return ""


def _write_successor(
    out: IO[str], layout: RunLayout, manifest: Mapping[str, Any], after: Sequence[str]
) -> None:
    options = successor_options(
        layout, manifest, load_config(), after=after, delay_s=None if after else 15
    )
    script = layout.dispatcher_script
    out.write(
        "[dry-run] then the next dispatcher turn: "
        + shlex.join(["sbatch", "--parsable", *options, str(script)])
        + "\n"
    )


def _slurm_render(slurm: SlurmExecutor) -> Callable[[BatchRequest], str]:
    """Render a request as the Slurm executor would (one array per ``MaxArraySize`` chunk)."""

    def render(request: BatchRequest) -> str:
        scripts = slurm.scripts(request)
        if len(scripts) == 1:
            return scripts[0][1]
        return "\n".join(f"# {path}\n{text}" for path, text in scripts)

    return render


class _Rebased:
    """Shows requests with paths in the real run directory instead of the scratch copy."""

    name = "dry-run"

    def __init__(
        self, inner: DryRunExecutor, *, old: Path, new: Path, slurm: SlurmExecutor | None
    ) -> None:
        self.inner = inner
        self.slurm = slurm
        self.old = str(old)
        self.new = str(new)
        self.ids: list[str] = []

    def submit(self, request: BatchRequest, /) -> Submission:
        """Print ``request`` with its paths moved into the real run directory."""
        moved = dataclasses.replace(
            request,
            command=tuple(self._move(arg) for arg in request.command),
            log_dir=Path(self._move(str(request.log_dir))),
            script_path=Path(self._move(str(request.script_path))),
        )
        submission = self.inner.submit(moved)
        self.ids += submission.scheduler_ids
        return submission

    def cancel(self, job_ids: Sequence[str], /) -> None:
        """Do nothing: a dry run has no jobs."""
        self.inner.cancel(job_ids)

    def partition_limits(self, partition: str | None) -> PartitionLimits:
        """The partition's limits where Slurm is there to ask, so packing is shown true."""
        return PartitionLimits() if self.slurm is None else self.slurm.partition_limits(partition)

    def states(self, job_ids: Sequence[str], /) -> dict[str, JobStatus]:
        """Every job is pending."""
        return self.inner.states(job_ids)

    def _move(self, text: str) -> str:
        if text == self.old or text.startswith(self.old + "/"):
            return self.new + text[len(self.old) :]
        return text
