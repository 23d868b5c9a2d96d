"""Benchmark 5: the demo's shape with a 100-element fan-out on the local Slurm test cluster.

Wrapper scripts placed first on ``PATH`` log every call of ``sbatch``, ``sacct``, ``squeue``,
``scontrol`` and ``scancel`` (time, caller, program, arguments), then exec the real program.
The jobs that run the dispatcher's later turns inherit ``PATH`` (``sbatch`` exports the
environment), so their calls are logged too. A call comes from a *turn* when its caller is a
``--slurm-turn`` process, or when it is made by the submitting process before that process
submits the first successor turn (the first turn runs inside ``submit``); every later call
of the submitting process is the ``--wait`` follower's.

For comparison, Slurm on its own: one trivial job, and the same shape without reflow
(``python -c pass``, then 100 array tasks of it ``afterok`` that, then one more ``afterok``
the array), each timed from the first ``sbatch`` until ``squeue`` reports the last job
``COMPLETED`` (polled every 50 ms; ``sbatch --wait`` polls too slowly to time this).
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
from benchmarks.measure import (
    PYTHON,
    ROOT,
    BenchmarkError,
    Row,
    Sample,
    paired_ratio,
    run_python,
)
from reflow.running.rundir.layout import RunLayout

TOOLS = ("sbatch", "sacct", "squeue", "scontrol", "scancel")
QUERIES = ("sacct", "squeue", "scontrol")
SIZE = 100
LEVELS = 3
MOST_OVER_ALONE = 1.3
"""The demo's target: at most this many times the same shape as bare Slurm jobs."""
DEMO = "slurm: demo shape, 100-element fan-out"
TRIVIAL = "slurm alone: one trivial job"
SHAPE = "slurm alone: same shape, bare python"
_POLL_S = 0.05
_ACTIVE = ("PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "SUSPENDED", "REQUEUED")


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
    return [Row(group="slurm", name=name, skipped=reason) for name in (DEMO, TRIVIAL, SHAPE)]


def run(repeat: int, scratch: Path) -> list[Row]:
    """Rows: the demo on Slurm (with call counts), one trivial job, the shape without reflow."""
    wrappers = scratch / "slurm-wrappers"
    log = scratch / "slurm-calls.log"
    write_wrappers(wrappers, log)
    demo = Row(group="slurm", name=DEMO, size=SIZE)
    trivial = Row(group="slurm", name=TRIVIAL, size=1)
    shape = Row(group="slurm", name=SHAPE, size=SIZE)
    for attempt in range(max(1, repeat)):
        log.write_text("")
        root = scratch / f"slurm-{attempt}"
        shutil.rmtree(root, ignore_errors=True)
        env = {"REFLOW_MODE": "slurm", "PATH": f"{wrappers}{os.pathsep}{os.environ['PATH']}"}
        args = (FLOW, "submit", "--run-dir", str(root), "--count", str(SIZE), "--wait")
        done = run_python(args, env=env, timeout_s=900)
        calls = count_calls(log) | turn_places(root)
        demo.samples.append(Sample(done.seconds, done.peak_mb, extra=calls))
        trivial.samples.append(Sample(_timed_jobs(scratch, shaped=False)))
        shape.samples.append(Sample(_timed_jobs(scratch, shaped=True)))
    _judge(demo, shape)
    trivial.note = "sbatch --wrap true, until squeue says COMPLETED"
    shape.note = "python -c pass -> array of 100 (afterok) -> one more (afterok)"
    return [demo, trivial, shape]


def write_wrappers(folder: Path, log: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for tool in TOOLS:
        real = shutil.which(tool)
        if real is None:
            raise BenchmarkError(f"{tool} is not on PATH")
        script = folder / tool
        script.write_text(
            "#!/bin/sh\n"
            "caller=$(tr '\\0' ' ' < /proc/$PPID/cmdline 2>/dev/null)\n"
            'case "$caller" in *--slurm-turn*) who=turn ;; *) who=client ;; esac\n'
            f'printf "%s %s {tool} %s\\n" "$(date +%s.%N)" "$who" "$*"'
            f" >> {shlex.quote(str(log))}\n"
            f'exec {shlex.quote(real)} "$@"\n'
        )
        script.chmod(0o755)


def count_calls(log: Path) -> dict[str, int]:
    """Calls by kind: sbatch of arrays and of turns, and queries by turns and by the follower."""
    calls: Counter[str] = Counter()
    follower = False
    for line in log.read_text().splitlines():
        parts = line.split(" ", 3)
        if len(parts) < 3:
            continue
        who, tool = parts[1], parts[2]
        is_turn_job = tool == "sbatch" and "--job-name=dispatch." in line
        by_turn = who == "turn" or not follower
        if tool == "sbatch":
            calls["sbatch_turn_jobs" if is_turn_job else "sbatch_arrays"] += 1
        elif tool in QUERIES:
            calls[f"{'turn' if by_turn else 'follower'}_{tool}"] += 1
        if is_turn_job and who == "client":
            follower = True
    calls["turns"] = 1 + calls["sbatch_turn_jobs"]
    calls["turn_queries"] = sum(calls[f"turn_{tool}"] for tool in QUERIES)
    calls["follower_queries"] = sum(calls[f"follower_{tool}"] for tool in QUERIES)
    return dict(calls)


def turn_places(root: Path) -> dict[str, int]:
    """Where the run's later turns ran, from their logs: in array tasks, or as their own jobs.

    A turn run by a batch's last array task logs to ``dispatcher-<array job>_<index>.log``, a
    dispatcher job to ``dispatcher-<job id>.log``.
    """
    names = [
        job for run in root.glob("runs/*") for job in RunLayout.of_run(run).jobs_that_ran_turns()
    ]
    inline = sum("_" in name for name in names)
    return {"turns_in_array_tasks": inline, "turn_jobs_started": len(names) - inline}


def _judge(demo: Row, shape: Row) -> None:
    counts = [s.extra for s in demo.samples]
    turns = max(c["turns"] for c in counts)
    arrays = max(c.get("sbatch_arrays", 0) for c in counts)
    per_turn = max(c["turn_queries"] / c["turns"] for c in counts)
    kinds = ", ".join(f"{tool} {max(c.get(f'turn_{tool}', 0) for c in counts)}" for tool in QUERIES)
    follower = max(c["follower_queries"] for c in counts)
    over = (demo.median or 0.0) - (shape.median or 0.0)
    ratio = paired_ratio(demo, shape)
    inline = max(c.get("turns_in_array_tasks", 0) for c in counts)
    started = max(c.get("turn_jobs_started", 0) for c in counts)
    demo.note = (
        f"{turns} turns for {LEVELS} levels ({inline} run by the last array task of a level,"
        f" {started} turn jobs started); sbatch: {arrays} arrays + {turns - 1} turn jobs;"
        f" queries by turns: {per_turn:.1f}/turn ({kinds}); by --wait: {follower};"
        f" +{over:.1f} s over Slurm alone, {ratio:.2f} x it (the median of the pairs)"
    )
    demo.target = (
        f"turn jobs started <= levels, <= 1 query/turn, no sbatch per element,"
        f" <= {MOST_OVER_ALONE:g} x alone"
    )
    demo.met = started <= LEVELS and per_turn <= 1.0 and arrays <= LEVELS
    demo.met = demo.met and ratio <= MOST_OVER_ALONE


def _timed_jobs(scratch: Path, *, shaped: bool) -> float:
    """Seconds from the first sbatch to the last job's completion: one job or the shape."""
    command = shlex.join([PYTHON, "-c", "pass"]) if shaped else "true"
    common = ["--parsable", "--output=/dev/null", "--job-name=bench.alone", f"--chdir={scratch}"]
    start = time.perf_counter()
    job = sbatch([*common, "--wrap", command])
    if shaped:
        array = sbatch(
            [*common, f"--array=0-{SIZE - 1}", f"--dependency=afterok:{job}", "--wrap", command]
        )
        job = sbatch([*common, f"--dependency=afterok:{array}", "--wrap", command])
    wait_completed(job)
    return time.perf_counter() - start


def wait_completed(job: str) -> None:
    """Wait until squeue says ``job`` is ``COMPLETED``; raise if it ends otherwise."""
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        done = subprocess.run(
            ["squeue", "-h", "-t", "all", "-j", job, "-o", "%T"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        states = done.stdout.split()
        if states and not any(state in _ACTIVE for state in states):
            if states != ["COMPLETED"]:
                raise BenchmarkError(f"the comparison job ended {states}")
            return
        time.sleep(_POLL_S)
    raise BenchmarkError("the comparison jobs did not finish within 600 s")


def sbatch(args: list[str]) -> str:
    done = subprocess.run(
        ["sbatch", *args], capture_output=True, text=True, timeout=60, check=False
    )
    if done.returncode != 0:
        raise BenchmarkError(f"sbatch failed: {done.stderr.strip()}")
    return done.stdout.strip().split(";")[0]
