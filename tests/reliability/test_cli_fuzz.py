"""The command line under generated argv: exit code 0 or 2, and never a traceback.

Argument lists mix the real commands and flags of a flow file with arbitrary text, and run
in-process through ``run_cli`` (and the ``reflow`` console) against a real run directory,
with ``REFLOW_MODE=dry-run`` so that a valid ``submit`` only prints its plan. The run's id
is never generated, so ``cancel`` and ``retry`` cannot touch it, and the run directory is
checked to be unchanged afterwards.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reflow.cli import run_cli
from reflow.running.commands import console
from tests.flows.demo_steps import wf as demo_wf
from tests.flows.param_types import wf as params_wf
from tests.reliability.processes import wait_for_workers

COMMANDS = (
    "submit",
    "status",
    "cancel",
    "retry",
    "runs",
    "logs",
    "result",
    "why",
    "report",
    "dag",
    "describe",
)
FLAGS = (
    "--run-dir", "--count", "--name", "-n", "--years", "--model", "-m", "--level", "--ratio",
    "--dry", "--no-dry", "--seed", "--tags", "--output", "-o", "--ingest-chunk", "--force",
    "--force-task", "--verify", "--no-verify", "--wait", "--json", "--task", "--format",
    "--help", "-h", "--", "-",
)  # fmt: skip
WORDS = (
    "RUN_DIR", "era5", "icon", "1", "-1", "2020", "0.5", "nan", "1e999", "text", "dot", "svg",
    "mermaid", "configure", "ingest", "=", "--count=3", "--name=", "-n=x", "--years=2020",
)  # fmt: skip
TEXT = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=10)
TOKEN = st.sampled_from(FLAGS) | st.sampled_from(WORDS) | TEXT
NOISE = st.tuples(st.sampled_from(COMMANDS) | TOKEN, st.lists(TOKEN, max_size=8)).map(
    lambda parts: [parts[0], *parts[1]]
)
# Nearly valid command lines, so that generated argv also reach the handlers and dry runs.
HEADS = (
    ["submit", "--run-dir", "RUN_DIR", "--years", "2020"],
    ["status", "--run-dir", "RUN_DIR"],
    ["runs", "--run-dir", "RUN_DIR"],
    ["logs", "--run-dir", "RUN_DIR"],
    ["cancel", "--run-dir", "RUN_DIR"],
)
NEARLY = st.tuples(st.sampled_from(HEADS), TEXT, st.lists(TOKEN, max_size=5)).map(
    lambda parts: [
        *parts[0],
        f"--name={parts[1]}" if parts[0][0] == "submit" else parts[1],
        *parts[2],
    ]
)
ARGV = NOISE | NEARLY
FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run directory holding one finished run of the demo flow."""
    root = tmp_path_factory.mktemp("fuzz") / "runs"
    with pytest.MonkeyPatch.context() as env:
        env.setenv("REFLOW_MODE", "local")
        env.setenv("XDG_CONFIG_HOME", str(root.parent / "config"))
        run = demo_wf.submit(run_dir=root, count=2)
        assert run.wait(timeout=120) == "succeeded"
    wait_for_workers(root)
    return root


@pytest.fixture(autouse=True)
def dry_run(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("REFLOW_MODE", "dry-run")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.delenv("REFLOW_RUN_DIR", raising=False)
    monkeypatch.chdir(tmp_path)  # where a fuzzed relative path lands


def digest(folder: Path) -> str:
    files = sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.endswith("-shm"))
    return hashlib.sha256(b"".join(p.read_bytes() for p in files)).hexdigest()


def check(code: object, stderr: str, argv: list[str]) -> None:
    assert code in (0, 2), (argv, code, stderr)
    assert "Traceback" not in stderr, (argv, stderr)


@FUZZ
@given(argv=ARGV)
def test_flow_cli_never_prints_a_traceback(
    argv: list[str], run_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = digest(run_dir)
    argv = [str(run_dir) if token == "RUN_DIR" else token for token in argv]
    capsys.readouterr()
    code = run_cli(params_wf, argv, out=io.StringIO())
    check(code, capsys.readouterr().err, argv)
    assert digest(run_dir) == before


@FUZZ
@given(argv=ARGV)
def test_console_never_prints_a_traceback(
    argv: list[str], run_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = digest(run_dir)
    argv = [str(run_dir) if token == "RUN_DIR" else token for token in argv]
    capsys.readouterr()
    code = console.main(argv)
    check(code, capsys.readouterr().err, argv)
    assert digest(run_dir) == before
