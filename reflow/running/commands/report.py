"""Running: the ``report`` command: what each task asked for against what its elements used.

Per task it gives the request (cpus, memory, time), the elements' peak memory, elapsed and CPU
time (p50, p95, max), CPU and memory efficiency, core-hours and a suggested ``cpus=``/``mem=``/
``time=`` (``sizing``). The figures of a Slurm run come from accounting, in one ``sacct`` call
through the executor; those of a local run as the workers recorded them (``usage``). The
elements of a packed array task share its job, so accounting gives only their request; what
each used is its worker's figure (``element_usages``); so is what the element of an array
task used that ran a dispatcher turn after it (accounting counts the turn in).
Elements taken from the cache ran elsewhere and are left out, and counted.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from reflow.definition.errors import SubmissionError
from reflow.running.commands.sizing import ElementUsage
from reflow.running.commands.usage import RAN, from_workers, task_requests, tasks_figures
from reflow.running.dispatch.result_finder import ResultFinder
from reflow.running.executors.slurm import SlurmExecutor
from reflow.running.executors.slurm_usage import JobUsage
from reflow.running.rundir.layout import RunLayout
from reflow.running.store.records import InstanceRow
from reflow.running.store.sqlite import SqliteStore
from reflow.running.store.states import InstanceState

_HEADER = (
    "task", "n", "cpus", "cpu eff", "mem", "peak p95", "mem eff", "time", "elapsed p95",
    "core-h used/alloc", "suggest",
)  # fmt: skip


def load_report(
    root: Path, run_id: str | None, *, executor: SlurmExecutor | None = None
) -> dict[str, Any]:
    """The right-sizing report of ``run_id`` (the latest run when None), as data.

    Args:
        root: The run directory.
        run_id: The run; None takes the latest.
        executor: The Slurm executor that asks accounting (a new one when None); used only
            for a Slurm run, for one ``sacct`` call. When sacct fails (a cluster without
            accounting), the workers' own figures are used and ``note`` says why.

    Raises:
        UsageError: No such run.
    """
    with SqliteStore.open(root) as store:
        run_id = run_id or store.latest_run_id()
        run = store.run(run_id)
        rows = store.instances(run_id)
    layout = RunLayout(root, run_id)
    requests = task_requests(layout)
    ran = [row for row in rows if row.state in RAN]
    note = None
    if run.executor == "slurm":
        try:
            accounting = executor or SlurmExecutor()
            usages, source = _from_accounting(layout, ran, accounting), "sacct"
        except SubmissionError as err:
            note = f"{err}; the figures are the workers' own"
    if run.executor != "slurm" or note is not None:
        usages, source = from_workers(layout, ran, cpu=True), "worker"
    return {
        "run_id": run_id,
        "run_dir": str(root),
        "executor": run.executor,
        "source": source,
        "note": note,
        "from_cache": sum(row.state is InstanceState.CACHED for row in rows),
        "tasks": tasks_figures(requests, rows, usages),
    }


def write_report(data: Mapping[str, Any], out: IO[str], *, as_json: bool) -> None:
    """Print the report as JSON, or as a compact table."""
    if as_json:
        out.write(json.dumps(data, indent=2) + "\n")
        return
    where = "Slurm accounting" if data["source"] == "sacct" else "the workers"
    cached = f"; {data['from_cache']} cached element(s) left out" if data["from_cache"] else ""
    lines = [f"run {data['run_id']}: figures from {where}{cached}"]
    if data["note"]:
        lines.append(f"  ({data['note']})")
    tasks = [task for task in data["tasks"] if task["elements"]]
    if not tasks:
        earlier = "; cached elements ran in an earlier run" if data["from_cache"] else " yet"
        lines.append(f"  no element of this run has finished{earlier}")
        out.write("\n".join(lines) + "\n")
        return
    table = [_HEADER, *(_row(task) for task in tasks)]
    widths = [max(len(row[i]) for row in table) for i in range(len(_HEADER) - 1)]
    for row in table:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        lines.append("  " + "  ".join([*cells, row[-1]]).rstrip())
    out.write("\n".join(lines) + "\n")


def group_by_job(rows: Sequence[InstanceRow]) -> dict[str, list[InstanceRow]]:
    """The elements of each job id (several for a packed array task); rows without one out."""
    jobs: dict[str, list[InstanceRow]] = defaultdict(list)
    for row in rows:
        if row.job_id:
            jobs[row.job_id].append(row)
    return dict(jobs)


def element_usages(
    jobs: Mapping[str, Sequence[InstanceRow]],
    accounted: Mapping[str, JobUsage],
    *,
    workers: Mapping[tuple[str, int], ElementUsage],
    packs: Mapping[str, int],
    turned: Collection[str] = (),
) -> dict[str, list[ElementUsage]]:
    """Each accounted element's usage, per task. Pure.

    A job of one element gives it the job's figures. Those of a job of several (a packed
    array task, whose elements run one after another) are the array task's, so each element
    takes what it used from its worker (``workers``, by task and element), as does the
    element of a job that ran a dispatcher turn after it (``turned``). The request is the
    job's cpus and memory, and its time divided by the batch's pack (``packs``, by batch;
    the job's elements when unknown), as ``packing`` multiplied it. Elements of a job that
    accounting does not know are left out.
    """
    usages: dict[str, list[ElementUsage]] = defaultdict(list)
    for job_id, rows in jobs.items():
        job = accounted.get(job_id)
        if job is None:
            continue
        pack = packs.get(rows[0].batch or "") or len(rows)
        time_s = job.time_s if job.time_s is None or pack == 1 else job.time_s / pack
        for row in rows:
            own = len(rows) == 1 and job_id not in turned
            used = job if own else workers.get((row.task, row.element))
            if used is not None:
                usages[row.task].append(_usage(row.element, used, job, time_s))
    return usages


def _usage(
    element: int, used: ElementUsage | JobUsage, job: JobUsage, time_s: float | None
) -> ElementUsage:
    """What ``used`` records of the element's use, with ``job``'s cpus and memory."""
    return ElementUsage(
        element=element,
        elapsed_s=used.elapsed_s,
        cpu_s=used.cpu_s,
        peak_rss_mb=used.peak_rss_mb,
        cpus=job.cpus,
        mem_mb=job.mem_mb,
        time_s=time_s,
    )


def _from_accounting(
    layout: RunLayout, rows: Sequence[InstanceRow], executor: SlurmExecutor
) -> dict[str, list[ElementUsage]]:
    """Every figure from one ``sacct`` call, but those of packed elements from their workers."""
    jobs = group_by_job(rows)
    accounted = executor.usage(list(jobs)) if jobs else {}
    turned = layout.array_tasks_that_ran_turns()
    shared = [
        row for job, group in jobs.items() if len(group) > 1 or job in turned for row in group
    ]
    results = ResultFinder(layout, layout.run_id)  # reads each batch file once, for both
    workers = {
        (task, usage.element): usage
        for task, found in from_workers(layout, shared, cpu=True, results=results).items()
        for usage in found
    }
    batches = {row.batch for row in rows if row.batch is not None}
    packs = {batch: pack for batch in batches if (pack := results.pack(batch)) is not None}
    return element_usages(jobs, accounted, workers=workers, packs=packs, turned=turned)


def _row(task: Mapping[str, Any]) -> tuple[str, ...]:
    requested, used = task["requested"], task["used"]
    cpu_eff, mem_eff = task["cpu_efficiency"], task["mem_efficiency"]
    hours = task["core_hours"]
    used_hours = "-" if hours["used"] is None else _hours(hours["used"])
    advice = " ".join(f"{key}={value!r}" for key, value in task["suggestion"].items())
    return (
        task["task"],
        str(task["elements"]),
        str(requested["cpus"] or "-"),
        _share(cpu_eff and cpu_eff["p50"]),
        _mb(requested["mem_mb"]),
        _mb(used["peak_rss_mb"] and used["peak_rss_mb"]["p95"]),
        _share(mem_eff and mem_eff["p95"]),
        _seconds(requested["time_s"]),
        _seconds(used["elapsed_s"] and used["elapsed_s"]["p95"]),
        f"{used_hours}/{_hours(hours['allocated'])}",
        advice,
    )


def _hours(value: float) -> str:
    return f"{value:.2f}" if value >= 1 else f"{value:.4f}"


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def _mb(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value / 1024:.1f}G" if value >= 1024 else f"{value:.0f}M"


def _seconds(value: float | None) -> str:
    if value is None:
        return "-"
    minutes, seconds = divmod(round(value), 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    if days:
        return f"{days}-{hours:02d}:{minutes:02d}:{seconds:02d}"
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"
