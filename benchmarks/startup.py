"""Benchmark 1: start-up of the command line, each command in a fresh process.

Commands run round-robin (one repetition of each, then the next), after one untimed warm-up
of each, so a slow moment of the machine hits all of them alike. Each row reports its median
over bare ``python -c pass``, in wall time and in CPU time (user + system, steadier on a busy
machine). One extra row imports reflow with no bytecode cache, as on a read-only install or
with ``PYTHONDONTWRITEBYTECODE=1``: every module is compiled at import.
"""

from __future__ import annotations

from dataclasses import dataclass

from benchmarks.measure import Row, Sample, run_python

BARE = "python -c pass"


@dataclass(frozen=True, slots=True)
class Command:
    name: str
    args: tuple[str, ...]
    target_s: float | None = None
    bytecode: bool = True


COMMANDS = (
    Command(BARE, ("-c", "pass")),
    Command("python -c 'import reflow'", ("-c", "import reflow")),
    Command("demo_flow.py --help", ("examples/demo_flow.py", "--help"), 0.05),
    Command("demo_flow.py dag", ("examples/demo_flow.py", "dag"), 0.05),
    Command("demo_flow.py submit --help", ("examples/demo_flow.py", "submit", "--help")),
    Command("import reflow, no .pyc cache", ("-c", "import reflow"), bytecode=False),
)
"""The commands; ``target_s`` is the most they may take over bare start-up."""


def run(repeat: int) -> list[Row]:
    rows = [Row(group="startup", name=command.name) for command in COMMANDS]
    for command in COMMANDS:
        run_python(command.args, bytecode=command.bytecode)
    for _ in range(max(1, repeat)):
        for row, command in zip(rows, COMMANDS, strict=True):
            done = run_python(command.args, bytecode=command.bytecode)
            row.samples.append(Sample(done.seconds, done.peak_mb, done.cpu_s))
    bare, bare_cpu = rows[0].median or 0.0, rows[0].cpu_s or 0.0
    for row, command in zip(rows[1:], COMMANDS[1:], strict=True):
        median, cpu = row.median or 0.0, row.cpu_s or 0.0
        over = median - bare
        row.note = f"+{over:.3f} s over bare python (CPU +{cpu - bare_cpu:.3f} s)"
        if command.target_s is not None:
            row.target = f"<= +{command.target_s:.2f} s"
            row.met = over <= command.target_s
    rows[0].note = "bare interpreter start-up"
    return rows
