"""Benchmark 1: start-up of the command line, each command in a fresh process.

Commands run round-robin (one repetition of each, then the next), after one untimed warm-up
of each, so a slow moment of the machine hits all of them alike. Each row reports its
median over bare ``python -c pass``.
"""

from __future__ import annotations

from benchmarks.measure import Row, Sample, run_python

BARE = "python -c pass"
COMMANDS: tuple[tuple[str, tuple[str, ...], float | None], ...] = (
    (BARE, ("-c", "pass"), None),
    ("python -c 'import reflow'", ("-c", "import reflow"), None),
    ("demo_flow.py --help", ("examples/demo_flow.py", "--help"), 0.05),
    ("demo_flow.py dag", ("examples/demo_flow.py", "dag"), 0.05),
    ("demo_flow.py submit --help", ("examples/demo_flow.py", "submit", "--help"), None),
)
"""(row name, arguments to python, target in seconds over bare start-up or None)."""


def run(repeat: int) -> list[Row]:
    rows = [Row(group="startup", name=name) for name, _args, _target in COMMANDS]
    for _name, args, _target in COMMANDS:
        run_python(args)
    for _ in range(max(1, repeat)):
        for row, (_name, args, _target) in zip(rows, COMMANDS, strict=True):
            done = run_python(args)
            row.samples.append(Sample(done.seconds, done.peak_mb))
    bare = rows[0].median
    assert bare is not None
    for row, (_name, _args, target) in zip(rows[1:], COMMANDS[1:], strict=True):
        median = row.median
        assert median is not None
        over = median - bare
        row.note = f"+{over:.3f} s over bare python"
        if target is not None:
            row.target = f"<= +{target:.2f} s"
            row.met = over <= target
    rows[0].note = "bare interpreter start-up"
    return rows
