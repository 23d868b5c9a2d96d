"""Running: what ended Slurm jobs asked for and used, read from accounting (``sacct``).

``USAGE_FORMAT`` is asked with ``--units=M`` and without ``-X``, so each element comes as its
allocation row (elapsed time, CPU time, request) and its step rows (``123_4.batch``), where
``MaxRSS`` is. ``parse_usage`` merges them into one ``JobUsage`` per element; it is pure. The
executor runs the query (``SlurmExecutor.usage``): one ``sacct`` call, a few more only when the
list of array jobs is very long (``MAX_JOBS_PER_QUERY``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from reflow.running.executors.slurm_query import parent_ids
from reflow.running.process import CommandResult

USAGE_FORMAT = "JobID,State,ElapsedRaw,TotalCPU,MaxRSS,ReqMem,AllocCPUS,TimelimitRaw"
"""The ``sacct --format`` that ``parse_usage`` reads (with ``-n -P --units=M``)."""
MAX_JOBS_PER_QUERY = 2000
"""Array jobs named in one ``sacct -j``; longer lists are asked in several calls."""

_SIZE = re.compile(r"^(?P<num>\d+(?:\.\d+)?)(?P<unit>[KMGTP]?)(?P<per>[nc]?)$")
_FACTOR_MB = {"K": 1 / 1024, "": 1.0, "M": 1.0, "G": 1024.0, "T": 1024.0**2, "P": 1024.0**3}
_ELEMENT = re.compile(r"^\d+(?:_\d+)?$")


@dataclass(frozen=True, slots=True, kw_only=True)
class JobUsage:
    """One element's job as accounting recorded it; ``None`` where it recorded nothing."""

    state: str
    elapsed_s: float | None = None
    cpu_s: float | None = None
    peak_rss_mb: float | None = None
    mem_mb: float | None = None
    cpus: int | None = None
    time_s: float | None = None


def parse_usage(text: str) -> dict[str, JobUsage]:
    """Read ``sacct -n -P --units=M --format=<USAGE_FORMAT>`` output: one usage per job id.

    Jobs that never started (collapsed ``123_[5-9]`` rows) are left out.
    """
    rows: dict[str, dict[str, str]] = {}
    peaks: dict[str, float] = {}
    step_cpu: dict[str, float] = {}
    names = USAGE_FORMAT.split(",")
    for line in text.splitlines():
        fields = line.strip().split("|")
        if len(fields) < len(names):
            continue
        row = dict(zip(names, fields, strict=False))
        job_id, _, step = row["JobID"].partition(".")
        if not _ELEMENT.match(job_id):
            continue
        if not step:
            rows[job_id] = row
            continue
        peak = _size_mb(row["MaxRSS"])
        if peak is not None:
            peaks[job_id] = max(peak, peaks.get(job_id, 0.0))
        step_cpu[job_id] = step_cpu.get(job_id, 0.0) + (cpu_seconds(row["TotalCPU"]) or 0.0)
    return {
        job_id: _usage(row, peaks.get(job_id), step_cpu.get(job_id)) for job_id, row in rows.items()
    }


def query_usage(
    run: Callable[[list[str]], CommandResult], job_ids: Sequence[str]
) -> tuple[dict[str, JobUsage], str | None]:
    """Ask accounting about ``job_ids`` through ``run`` (the executor's counted call).

    Returns:
        The usage of each job id sacct knows, and sacct's message when a call failed.
    """
    parents = parent_ids(job_ids).split(",") if job_ids else []
    found: dict[str, JobUsage] = {}
    for start in range(0, len(parents), MAX_JOBS_PER_QUERY):
        chunk = ",".join(parents[start : start + MAX_JOBS_PER_QUERY])
        argv = ["sacct", "-n", "-P", "--units=M", f"--format={USAGE_FORMAT}", "-j", chunk]
        result = run(argv)
        if not result.ok:
            return found, " ".join((result.stderr or result.stdout).split()) or "sacct failed"
        found.update(parse_usage(result.stdout))
    return found, None


def cpu_seconds(text: str) -> float | None:
    """Read sacct's ``TotalCPU`` (``MM:SS.mmm``, ``HH:MM:SS``, ``D-HH:MM:SS``) as seconds."""
    text = text.strip()
    if not text:
        return None
    days, _, clock = text.rpartition("-")
    try:
        parts = [float(part) for part in clock.split(":")]
        seconds = sum(value * 60.0**power for power, value in enumerate(reversed(parts)))
        return seconds + (int(days) * 86400 if days else 0)
    except ValueError:
        return None


def _usage(row: dict[str, str], peak: float | None, step_cpu: float | None) -> JobUsage:
    cpus = int(row["AllocCPUS"]) if row["AllocCPUS"].isdigit() else None
    mem = _size_mb(row["ReqMem"])
    if mem is not None and row["ReqMem"].endswith("c") and cpus:
        mem *= cpus  # per CPU (older Slurm)
    cpu = cpu_seconds(row["TotalCPU"])
    limit = row["TimelimitRaw"]
    return JobUsage(
        state=row["State"].split(" ")[0],
        elapsed_s=float(row["ElapsedRaw"]) if row["ElapsedRaw"].isdigit() else None,
        cpu_s=max(cpu or 0.0, step_cpu or 0.0) if cpu is not None or step_cpu else None,
        peak_rss_mb=peak,
        mem_mb=mem,
        cpus=cpus,
        time_s=int(limit) * 60.0 if limit.isdigit() else None,
    )


def _size_mb(text: str) -> float | None:
    match = _SIZE.match(text.strip())
    if not match:
        return None
    return float(match.group("num")) * _FACTOR_MB[match.group("unit")]
