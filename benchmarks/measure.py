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
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
"""The project's top folder (where ``examples/`` and ``benchmarks/`` are)."""
PYTHON = sys.executable
PEAK_WRAPPER = ROOT / "benchmarks" / "peak.py"


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
    peak_mb: float | None
    returncode: int
    stdout: str
    stderr: str


def run_python(
    args: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path = ROOT,
    timeout_s: float = 600.0,
    check: bool = True,
) -> Finished:
    """Run ``python *args`` in a new process; return its wall time, peak RSS and output.

    Raises:
        BenchmarkError: ``check`` is set and the command exited non-zero, or it timed out.
    """
    full_env = {**os.environ, **(env or {})}
    with tempfile.TemporaryDirectory(prefix="reflow-bench-peak-") as folder:
        report = Path(folder) / "peak"
        argv = [PYTHON, str(PEAK_WRAPPER), str(report), *args]
        start = time.perf_counter()
        try:
            done = subprocess.run(
                argv,
                cwd=cwd,
                env=full_env,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=timeout_s,
                check=False,
            )
        except subprocess.TimeoutExpired as err:
            raise BenchmarkError(f"python {' '.join(args[:3])} ... ran over {timeout_s:g} s") from err
        seconds = time.perf_counter() - start
        peak = int(report.read_text()) / 1024 if report.exists() else None
    stdout = done.stdout.decode(errors="replace")
    stderr = done.stderr.decode(errors="replace")
    if check and done.returncode != 0:
        tail = " | ".join((stderr.strip() or stdout.strip()).splitlines()[-4:])
        raise BenchmarkError(f"python {' '.join(args[:3])} ... exited {done.returncode}: {tail}")
    return Finished(seconds, peak, done.returncode, stdout, stderr)
