"""Measuring: run a Python command in a fresh process (wall time and its own peak RSS), rows.

Every fresh process runs through ``benchmarks/peak.py``, which reports the process's own peak
resident set (``VmHWM``) at exit; see that module for why ``ru_maxrss`` cannot be used. The
wrapper imports only ``sys`` and ``atexit`` before the command, and the bare start-up row runs
through it too, so differences to bare start-up do not contain it.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
"""The project's top folder (where ``examples/`` and ``benchmarks/`` are)."""
PYTHON = sys.executable
PEAK_WRAPPER = ROOT / "benchmarks" / "peak.py"
PYCACHE = Path(tempfile.gettempdir()) / "reflow-bench-pycache"


def paired_ratio(row: Row, alone: Row) -> float:
    """The median of ``row``'s time over ``alone``'s, sample by sample.

    The two are measured in turns, so each pair shares the machine's state of the moment: on
    a busy or shared machine, whose speed drifts by half between minutes, the ratio of the
    pairs is steadier than the ratio of the two medians.
    """
    pairs = zip(row.samples, alone.samples, strict=False)
    return statistics.median(a.seconds / b.seconds for a, b in pairs if b.seconds > 0)


class BenchmarkError(Exception):
    """A measured command failed; the suite reports it in the row instead of a number."""


@dataclass(frozen=True, slots=True)
class Sample:
    """One measurement: wall seconds, peak memory in MB (None if unknown), extra numbers."""

    seconds: float
    peak_mb: float | None = None
    cpu_s: float | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(slots=True, kw_only=True)
class Row:
    """One line of the table: a benchmark at one size, its samples, its target and notes."""

    group: str
    name: str
    size: int | None = None
    samples: list[Sample] = field(default_factory=list)
    target: str = ""
    met: bool | None = None
    note: str = ""
    skipped: str = ""
    error: str = ""

    @property
    def times(self) -> list[float]:
        return [s.seconds for s in self.samples]

    @property
    def median(self) -> float | None:
        return statistics.median(self.times) if self.samples else None

    @property
    def cpu_s(self) -> float | None:
        cpu = [s.cpu_s for s in self.samples if s.cpu_s is not None]
        return statistics.median(cpu) if cpu else None

    @property
    def peak_mb(self) -> float | None:
        peaks = [s.peak_mb for s in self.samples if s.peak_mb is not None]
        return max(peaks) if peaks else None

    def to_json(self) -> dict[str, Any]:
        times = self.times
        return {
            "group": self.group,
            "name": self.name,
            "size": self.size,
            "seconds": times,
            "median_s": self.median,
            "min_s": min(times) if times else None,
            "max_s": max(times) if times else None,
            "cpu_median_s": self.cpu_s,
            "peak_mb": self.peak_mb,
            "target": self.target,
            "met": self.met,
            "note": self.note,
            "skipped": self.skipped,
            "error": self.error,
            "extra": [dict(s.extra) for s in self.samples],
        }


@dataclass(frozen=True, slots=True)
class Finished:
    """A fresh process that ended: wall and CPU seconds, peak RSS, exit status and output.

    ``cpu_s`` is the user + system time of the process and of the children it waited for;
    on a busy machine it varies much less than the wall time.
    """

    seconds: float
    cpu_s: float
    peak_mb: float | None
    returncode: int
    stdout: str
    stderr: str


def child_env(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of measured processes: ours, with ``env`` on top, and bytecode caching.

    An installed package has its ``.pyc`` files; ``PYTHONDONTWRITEBYTECODE`` (set in some
    development shells) would make every start compile reflow's sources again. The cache goes
    to a private folder (``PYTHONPYCACHEPREFIX``), never into the source tree.
    """
    merged = {**os.environ, "PYTHONPYCACHEPREFIX": str(PYCACHE), **(env or {})}
    merged.pop("PYTHONDONTWRITEBYTECODE", None)
    return merged


def run_python(
    args: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path = ROOT,
    timeout_s: float = 600.0,
    check: bool = True,
    bytecode: bool = True,
) -> Finished:
    """Run ``python *args`` in a new process; return its times, peak RSS and output.

    Args:
        args: The arguments after ``python``.
        env: Variables to set on top of :func:`child_env`.
        cwd: The working directory.
        timeout_s: The process is killed after this long.
        check: Raise when the process exits non-zero.
        bytecode: False runs without a bytecode cache (every module compiled at import).

    Raises:
        BenchmarkError: ``check`` is set and the command exited non-zero, or it timed out.
    """
    full_env = child_env(env)
    if not bytecode:
        full_env["PYTHONDONTWRITEBYTECODE"] = "1"
        full_env["PYTHONPYCACHEPREFIX"] = str(PYCACHE.with_name("pycache-unused"))
    shown = " ".join(args[:3])
    with tempfile.TemporaryDirectory(prefix="reflow-bench-") as folder:
        report = Path(folder) / "peak"
        argv = [PYTHON, str(PEAK_WRAPPER), str(report), *args]
        with (Path(folder) / "out").open("w+b") as out, (Path(folder) / "err").open("w+b") as err:
            start = time.perf_counter()
            process = subprocess.Popen(
                argv, cwd=cwd, env=full_env, stdin=subprocess.DEVNULL, stdout=out, stderr=err
            )
            status, usage = _wait(process, timeout_s, shown)
            seconds = time.perf_counter() - start
            out.seek(0)
            err.seek(0)
            stdout = out.read().decode(errors="replace")
            stderr = err.read().decode(errors="replace")
        peak = int(report.read_text()) / 1024 if report.exists() else None
    code = os.waitstatus_to_exitcode(status)
    if check and code != 0:
        tail = " | ".join((stderr.strip() or stdout.strip()).splitlines()[-4:])
        raise BenchmarkError(f"python {shown} ... exited {code}: {tail}")
    cpu_s = usage.ru_utime + usage.ru_stime
    return Finished(seconds, cpu_s, peak, code, stdout, stderr)


def _wait(process: subprocess.Popen[bytes], timeout_s: float, shown: str) -> tuple[int, Any]:
    """Wait for ``process`` with ``wait4`` (its own resource usage); kill it after a timeout."""
    killed = threading.Event()

    def kill() -> None:
        killed.set()
        process.kill()

    timer = threading.Timer(timeout_s, kill)
    timer.start()
    try:
        _pid, status, usage = os.wait4(process.pid, 0)
    finally:
        timer.cancel()
    process.returncode = os.waitstatus_to_exitcode(status)
    if killed.is_set():
        raise BenchmarkError(f"python {shown} ... ran over {timeout_s:g} s")
    return status, usage
