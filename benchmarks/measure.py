"""Measuring: run a command in a fresh process (wall time and its own peak RSS), and rows.

A child's peak memory comes from ``os.wait4``, which returns the resource usage of exactly
that child (and the descendants it waited for), so one measurement never leaks into the next
the way the cumulative ``RUSAGE_CHILDREN`` maximum would.
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


class BenchmarkError(Exception):
    """A measured command failed; the suite reports it in the row instead of a number."""


@dataclass(frozen=True, slots=True)
class Sample:
    """One measurement: wall seconds, peak memory in MB (None if unknown), extra numbers."""

    seconds: float
    peak_mb: float | None = None
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
    """A fresh process that ended: its wall time, peak RSS, exit status and output."""

    seconds: float
    peak_mb: float
    returncode: int
    stdout: str
    stderr: str


def run_fresh(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path = ROOT,
    timeout_s: float = 600.0,
    check: bool = True,
) -> Finished:
    """Run ``argv`` in a new process; return its wall time, peak RSS and output.

    Raises:
        BenchmarkError: ``check`` is set and the command exited non-zero, or it timed out.
    """
    full_env = {**os.environ, **(env or {})}
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        process = subprocess.Popen(
            list(argv), cwd=cwd, env=full_env, stdin=subprocess.DEVNULL, stdout=out, stderr=err
        )
        status, usage = _wait(process, timeout_s)
        seconds = time.perf_counter() - start
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode(errors="replace")
        stderr = err.read().decode(errors="replace")
    code = os.waitstatus_to_exitcode(status)
    if check and code != 0:
        tail = " ".join(stderr.strip().splitlines()[-3:])
        raise BenchmarkError(f"{' '.join(argv[:4])} ... exited {code}: {tail}")
    return Finished(seconds, peak_mb(usage.ru_maxrss), code, stdout, stderr)


def _wait(process: subprocess.Popen[bytes], timeout_s: float) -> tuple[int, Any]:
    """Wait for ``process`` with ``wait4`` (its own rusage), killing it after ``timeout_s``."""
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
        raise BenchmarkError(f"{process.args!r} did not finish within {timeout_s:g} s")
    return status, usage


def peak_mb(maxrss: int) -> float:
    """``ru_maxrss`` in MB (Linux reports kilobytes, macOS bytes)."""
    return maxrss / (1024 * 1024) if sys.platform == "darwin" else maxrss / 1024


def python_argv(*args: str) -> list[str]:
    """``[python, *args]`` with this interpreter."""
    return [PYTHON, *args]
