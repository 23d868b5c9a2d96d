"""Benchmark 5: the demo's shape with a 100-element fan-out on the local Slurm test cluster.

Wrapper scripts placed first on ``PATH`` log every call of ``sbatch``, ``sacct``, ``squeue``,
``scontrol`` and ``scancel`` (time, program, arguments) and then exec the real program. The
jobs that run the dispatcher's later turns inherit ``PATH`` (``sbatch`` exports the
environment), so their calls are logged too. From the log: the ``sbatch`` calls (array jobs
vs dispatcher turns), the scheduler queries, and the turns (the first runs in ``submit``;
every later one is a ``.dispatch`` job). For comparison, Slurm's own latency: one trivial job
(``sbatch --wait --wrap true``) and a chain of three that wait for each other (``afterok``),
the shape of the demo's three levels.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import time
from collections import Counter
from pathlib import Path

from benchmarks.dispatch import FLOW
from benchmarks.measure import ROOT, BenchmarkError, Row, Sample, run_python

TOOLS = ("sbatch", "sacct", "squeue", "scontrol", "scancel")
QUERIES = ("sacct", "squeue", "scontrol")
SIZE = 100
LEVELS = 3


def cluster_problem() -> str | None:
    """None when ``scripts/slurm-cluster status`` says ready, else why not."""
    script = ROOT / "scripts" / "slurm-cluster"
    try:
        done = subprocess.run(
            [str(script), "status"], capture_output=True, text=True, timeout=60, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as err:
        return f"scripts/slurm-cluster status failed: {err}"
    if done.returncode == 0 and done.stdout.strip() == "ready":
        return None
    return " ".join(f"{done.stdout} {done.stderr}".split()) or f"exit {done.returncode}"


def skipped_rows(reason: str) -> list[Row]:
    names = ("slurm: demo shape, 100-element fan-out", "slurm: trivial job", "slurm: 3 chained")
    return [Row(group="slurm", name=name, skipped=reason) for name in names]


def run(repeat: int, scratch: Path) -> list[Row]:
    """Rows: the demo on Slurm (with call counts), a trivial job, and a chain of three."""
    wrappers = scratch / "slurm-wrappers"
    log = scratch / "slurm-calls.log"
    _write_wrappers(wrappers, log)
    demo = Row(group="slurm", name="slurm: demo shape, 100-element fan-out", size=SIZE)
    for attempt in range(max(1, repeat)):
        log.write_text("")
        root = scratch / f"slurm-{attempt}"
        shutil.rmtree(root, ignore_errors=True)
        env = {"REFLOW_MODE": "slurm", "PATH": f"{wrappers}{os.pathsep}{os.environ['PATH']}"}
        args = (FLOW, "submit", "--run-dir", str(root), "--count", str(SIZE), "--wait")
        done = run_python(args, env=env, timeout_s=900)
        demo.samples.append(Sample(done.seconds, done.peak_mb, _count_calls(log)))
    trivial = Row(group="slurm", name="slurm: trivial job", size=1)
    chain = Row(group="slurm", name="slurm: 3 chained", size=LEVELS)
    for _ in range(max(1, repeat)):
        trivial.samples.append(Sample(_trivial_chain(1)))
        chain.samples.append(Sample(_trivial_chain(LEVELS)))
    _judge(demo, chain)
    trivial.note = "sbatch --wait --wrap true: submit to end"
    chain.note = "3 trivial jobs, each afterok the previous: Slurm's floor for 3 levels"
    return [demo, trivial, chain]


def _write_wrappers(folder: Path, log: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for tool in TOOLS:
        real = shutil.which(tool)
        if real is None:
            raise BenchmarkError(f"{tool} is not on PATH")
        script = folder / tool
        script.write_text(
            "#!/bin/sh\n"
            f'printf "%s {tool} %s\\n" "$(date +%s.%N)" "$*" >> {shlex.quote(str(log))}\n'
            f'exec {shlex.quote(real)} "$@"\n'
        )
        script.chmod(0o755)


def _count_calls(log: Path) -> dict[str, int]:
    calls: Counter[str] = Counter()
    for line in log.read_text().splitlines():
        parts = line.split(" ", 2)
        if len(parts) < 2:
            continue
        tool = parts[1]
        if tool == "sbatch" and ".dispatch" in line:
            calls["sbatch_dispatcher"] += 1
        elif tool == "sbatch":
            calls["sbatch_array"] += 1
        calls[tool] += 1
    calls["queries"] = sum(calls[tool] for tool in QUERIES)
    calls["turns"] = 1 + calls["sbatch_dispatcher"]
    return dict(calls)


def _judge(demo: Row, chain: Row) -> None:
    counts = [s.extra for s in demo.samples]
    turns = max(c["turns"] for c in counts)
    arrays = max(c.get("sbatch_array", 0) for c in counts)
    queries = max(c["queries"] for c in counts)
    per_turn = queries / turns
    over = (demo.median or 0.0) - (chain.median or 0.0)
    parts = Counter[str]()
    for c in counts:
        parts.update({tool: c.get(tool, 0) for tool in QUERIES})
    shown = ", ".join(f"{tool} {parts[tool] / len(counts):g}" for tool in QUERIES)
    demo.note = (
        f"{turns} turns for {LEVELS} levels; sbatch: {arrays} array + {turns - 1} turn jobs;"
        f" {queries} queries ({shown}) = {per_turn:.1f}/turn; +{over:.1f} s over 3 chained"
    )
    demo.target = "turns <= levels, <= 1 query/turn, no sbatch per element"
    demo.met = turns <= LEVELS and per_turn <= 1.0 and arrays <= LEVELS


def _trivial_chain(length: int) -> float:
    """Seconds from the first sbatch to the end of the last of ``length`` chained jobs."""
    start = time.perf_counter()
    previous = ""
    for position in range(length):
        argv = ["sbatch", "--parsable", "--output=/dev/null", "--job-name=bench.trivial"]
        if previous:
            argv.append(f"--dependency=afterok:{previous}")
        if position == length - 1:
            argv.append("--wait")
        done = subprocess.run(
            [*argv, "--wrap", "true"], capture_output=True, text=True, timeout=600, check=False
        )
        if done.returncode != 0:
            raise BenchmarkError(f"sbatch failed: {done.stderr.strip()}")
        previous = done.stdout.strip().split(";")[0]
    return time.perf_counter() - start
