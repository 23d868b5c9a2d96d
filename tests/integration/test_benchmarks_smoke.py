"""The benchmark suite's smoke version runs and reports every row (timings are not checked)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HEADER = ("benchmark", "N", "median", "min", "max", "CPU", "peak MB", "target", "met", "note")
ROWS = (
    "python -c pass",
    "python -c 'import reflow'",
    "demo_flow.py --help",
    "demo_flow.py dag",
    "demo_flow.py submit --help",
    "import reflow, no .pyc cache",
    "turn: plan+persist fan-out",
    "turn: plan+persist+submit",
    "turn: cached resubmit",
    "status (table)",
    "status --json",
    "migrate a 100,000-instance v1 store",
    "fingerprint files (stat)",
    "fingerprint 1 GiB (content)",
    "why: every element reran",
    "turn: ingest packed elements",
    "local executor: fan-out run",
    "local executor: spec demo",
    "slurm: demo shape, 100-element fan-out",
    "slurm alone: one trivial job",
    "slurm alone: same shape, bare python",
    "slurm: 10,000 elements, pack=500",
    "slurm alone: same packed shape",
    "slurm: 100,000 elements, pack=500",
)
DEADLINE_S = 300


def test_quick_suite_prints_the_table_with_every_row(tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "config")}
    env.pop("REFLOW_MODE", None)
    argv = [sys.executable, "-m", "benchmarks", "--quick", "--json", str(report)]
    done = subprocess.run(
        [*argv, "--work-dir", str(tmp_path / "work")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=DEADLINE_S,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    header = next(line for line in lines if line.startswith("benchmark "))
    assert header.split() == [word for cell in HEADER for word in cell.split()]
    table = lines[lines.index(header) + 1 :]
    for name in ROWS:
        assert any(line.startswith(name + " ") for line in table), f"no row {name!r}"
    assert not any("ERROR" in line for line in table), done.stdout
    rows = json.loads(report.read_text())["rows"]
    assert {row["name"] for row in rows} == set(ROWS)
    for row in rows:
        assert row["skipped"] or len(row["seconds"]) == 1, row
    assert all(row["skipped"] == "--quick" for row in rows if row["name"].startswith("slurm"))
