"""The generated command line of the example flows, run as real subprocesses.

Only the definition commands (dag, describe, --help) and argument errors: nothing is submitted.
"""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "examples" / "demo_flow.py"
INCLUDE = ROOT / "examples" / "include_flow.py"


def run(*args: str | Path, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def ok(*args: str | Path) -> str:
    result = run(*args)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    return result.stdout


def test_demo_dag_shows_tasks_edges_and_modes():
    assert ok(DEMO, "dag").splitlines() == [
        "workflow demo: 3 tasks ([] marks an array task)",
        "  prepare -> list[str]",
        "  convert[] -> str",
        "    nc_file <- prepare (fan-out)",
        "  finalize -> str",
        "    paths <- convert (gather)",
    ]


def test_demo_dag_mermaid():
    out = ok(DEMO, "dag", "--format", "mermaid")
    assert out.splitlines()[0] == "flowchart TD"
    assert '    convert[["convert []"]]' in out
    assert "    prepare -->|fan-out| convert" in out
    assert "    convert -->|gather| finalize" in out


def test_demo_dag_dot():
    out = ok(DEMO, "dag", "--format", "dot")
    assert out.startswith('digraph "demo" {')
    assert '"prepare" -> "convert" [label="fan-out"];' in out
    assert '"convert" -> "finalize" [label="gather"];' in out
    assert '"convert" [label="convert[]", peripheries=2];' in out


def test_demo_describe_is_the_json_manifest():
    data = json.loads(ok(DEMO, "describe"))
    assert set(data) == {"format", "workflow", "tasks", "edges", "options"}
    assert (data["format"], data["workflow"]) == ("reflow/describe/1", "demo")
    assert [t["name"] for t in data["tasks"]] == ["prepare", "convert", "finalize"]
    assert [(e["source"], e["target"], e["mode"]) for e in data["edges"]] == [
        ("prepare", "convert", "fan-out"),
        ("convert", "finalize", "gather"),
    ]
    convert = data["tasks"][1]
    assert (convert["array"], convert["resources"]["cpus"], convert["resources"]["time_s"]) == (
        True,
        4,
        600,
    )
    assert convert["run_dir_arg"] == "run_dir"
    options = {o["flag"]: o for o in data["options"]}
    assert list(options) == ["--start", "--end", "--model", "--bucket"]
    assert options["--model"]["type"] == {"kind": "literal", "values": ["era5", "icon"]}
    assert options["--model"]["default"] == "era5"
    assert options["--start"]["required"]


def test_demo_submit_help_lists_the_workflow_flags():
    out = ok("examples/demo_flow.py", "submit", "--help")
    assert out.startswith("usage: python examples/demo_flow.py submit")
    words = " ".join(out.split())  # column widths follow the terminal
    for expected in [
        "--run-dir DIR",
        "--start START Start date, ISO-8601 (required)",
        "--end END End date, ISO-8601 (required)",
        "--model {era5,icon} Model (default: 'era5')",
        "--bucket BUCKET S3 bucket (required)",
        "--force",
        "--force-task TASK",
    ]:
        assert expected in words, expected
    parameters = out.split("workflow parameters:")[1]
    assert "run" not in parameters  # RunDir is injected, never a flag


def test_include_dag_shows_prefixed_tasks_and_the_merge():
    assert ok(INCLUDE, "dag").splitlines() == [
        "workflow combined: 5 tasks ([] marks an array task)",
        "  era5_prepare -> list[str]",
        "  era5_convert[] -> str",
        "    nc_file <- era5_prepare (fan-out)",
        "  icon_prepare -> list[str]",
        "  icon_convert[] -> str",
        "    nc_file <- icon_prepare (fan-out)",
        "  merge -> str",
        "    era5 <- era5_convert (gather)",
        "    icon <- icon_convert (gather)",
    ]


@pytest.mark.parametrize(
    ("fmt", "edge"),
    [
        ("mermaid", "    era5_convert -->|gather| merge"),
        ("dot", '"icon_prepare" -> "icon_convert" [label="fan-out"];'),
    ],
)
def test_include_dag_formats(fmt, edge):
    assert edge in ok(INCLUDE, "dag", "--format", fmt)


def test_include_describe():
    data = json.loads(ok(INCLUDE, "describe"))
    assert data["workflow"] == "combined"
    assert [t["name"] for t in data["tasks"]] == [
        "era5_prepare", "era5_convert", "icon_prepare", "icon_convert", "merge",
    ]  # fmt: skip
    assert {(e["source"], e["target"], e["param"], e["mode"]) for e in data["edges"]} == {
        ("era5_prepare", "era5_convert", "nc_file", "fan-out"),
        ("icon_prepare", "icon_convert", "nc_file", "fan-out"),
        ("era5_convert", "merge", "era5", "gather"),
        ("icon_convert", "merge", "icon", "gather"),
    }
    assert [(o["key"], o["flag"]) for o in data["options"]] == [
        ("era5_prepare.count", "--era5-prepare-count"),
        ("icon_prepare.count", "--icon-prepare-count"),
    ]
    assert data["tasks"][0]["qualname"] == "prepare"


def test_include_submit_help():
    words = " ".join(ok(INCLUDE, "submit", "--help").split())
    assert "--era5-prepare-count ERA5_PREPARE_COUNT Number of files to convert (default: 2)" in (
        words
    )
    assert "--icon-prepare-count ICON_PREPARE_COUNT Number of files to convert (default: 2)" in (
        words
    )


@pytest.mark.parametrize(
    ("argv", "command"),
    [
        (["frobnicate"], ""),
        ([], ""),
        (["dag", "--format", "png2"], " dag"),
        (["submit", "--start", "2025-01-01", "--end", "x", "--bucket", "b", "--model", "gfs"],
         " submit"),
        (["submit", "--end", "x", "--bucket", "b"], " submit"),
        (["submit", "--start", "a", "--end", "b", "--bucket", "c", "--count", "3"], " submit"),
        (["submit", "--start", "a", "--end", "b", "--buck", "c"], " submit"),
        (["status", "--run", "d"], " status"),
    ],
    ids=["unknown-command", "no-command", "bad-format", "bad-choice", "missing", "unknown-flag",
         "abbreviated-flag", "abbreviated-status-flag"],
)  # fmt: skip
def test_bad_argv_is_one_error_line_with_the_commands_help(argv, command):
    result = run("examples/demo_flow.py", *argv)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith("error: ")
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.endswith(f"; see: python examples/demo_flow.py{command} --help\n")


BROKEN_FLOWS = {
    "unknown-step": """
        @wf.job()
        def prepare() -> list[str]:
            return []

        @wf.array_job()
        def convert(item: Annotated[str, Result(step="prepar")]) -> str:
            return item
    """,
    "cycle": """
        @wf.job()
        def a(x: Annotated[str, Result(step="b")]) -> str:
            return x

        @wf.job()
        def b(x: Annotated[str, Result(step="a")]) -> str:
            return x
    """,
    "bad-time-at-decoration": """
        @wf.job(time="1:00")
        def a() -> str:
            return ""
    """,
    "misspelled-step-at-decoration": """
        @wf.job()
        def prepare() -> list[str]:
            return []

        @wf.array_job()
        def convert(item: Annotated[int, Result(step="prepare")]) -> str:
            return ""
    """,
    "global-param-conflict": """
        @wf.job()
        def a(chunk: int = 1) -> str:
            return ""

        @wf.job()
        def b(chunk: str = "1") -> str:
            return ""
    """,
}


@pytest.mark.parametrize("body", BROKEN_FLOWS.values(), ids=list(BROKEN_FLOWS))
@pytest.mark.parametrize("command", [["dag"], ["describe"], ["submit", "--help"]])
def test_definition_error_is_one_line_and_exit_2(tmp_path, body, command):
    flow = tmp_path / "broken_flow.py"
    header = """
        from typing import Annotated

        from reflow import Result, Workflow

        wf = Workflow("broken")
    """
    footer = """
        if __name__ == "__main__":
            raise SystemExit(wf.cli())
    """
    flow.write_text(textwrap.dedent(header) + textwrap.dedent(body) + textwrap.dedent(footer))
    result = run(flow, *command, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert "Traceback" not in result.stderr


THREE_MISTAKES = """
    from typing import Annotated

    from reflow import Result, Workflow

    wf = Workflow("broken")


    @wf.job(mem="4GG")
    def prepare(count: int = None) -> list[str]:
        return []


    @wf.array_job()
    def convert(item: Annotated[str, Result(step="prepare")], level=3) -> str:
        return item


    @wf.job()
    def publish(paths: Annotated[list[str], Result(step="convrt")]) -> str:
        return ""


    if __name__ == "__main__":
        raise SystemExit(wf.cli())
"""


@pytest.mark.parametrize("command", [["dag"], ["submit", "--help"]])
def test_every_definition_error_of_a_flow_file_is_reported_at_once(tmp_path, command):
    flow = tmp_path / "three_mistakes.py"
    flow.write_text(textwrap.dedent(THREE_MISTAKES))
    result = run(flow, *command, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert lines[0] == "error: 4 errors in three_mistakes.py:"
    assert lines[1].startswith("  1. prepare(mem): mem='4GG' is not a memory size;")
    assert lines[2] == (
        "  2. prepare(count): has default None, but its type int does not allow None;"
        " write count: int | None = None"
    )
    assert lines[3] == (
        "  3. convert(level): has no type annotation, which its command-line flag needs;"
        " annotate it, e.g. level: int = 3"
    )
    assert lines[4].startswith('  4. publish(paths): Result(step="convrt") names no task;')
    assert 'did you mean "convert"' in lines[4]
    assert len(lines) == 5


def test_a_flow_imported_as_a_module_stops_at_its_first_broken_task(tmp_path):
    (tmp_path / "three_mistakes.py").write_text(textwrap.dedent(THREE_MISTAKES))
    result = run("-c", "import three_mistakes", cwd=tmp_path)
    assert result.returncode == 1
    tail = result.stderr.splitlines()[-3:]
    assert tail[0].endswith("FlowDefinitionError: 2 errors in task 'prepare':")
    assert tail[1].startswith("  1. prepare(mem): mem='4GG'")
    assert tail[2].startswith("  2. prepare(count): has default None")


def test_marker_and_every_resource_problem_come_out_together(tmp_path):
    flow = tmp_path / "markers_flow.py"
    flow.write_text(
        textwrap.dedent(
            """
            from typing import Annotated
            from reflow import Param, Workflow

            wf = Workflow("multi")

            @wf.job(mem="lots", time="forever", cpus=0)
            def a(x: Annotated[int, Param(short="x")] = 1) -> int:
                return x

            if __name__ == "__main__":
                raise SystemExit(wf.cli())
            """
        )
    )
    done = run(flow, "dag", cwd=tmp_path)
    assert done.returncode == 2
    assert "4 errors in markers_flow.py" in done.stderr
    for where in ("a(cpus)", "a(mem)", "a(time)", "a(x): Param(short='x')"):
        assert where in done.stderr
    assert "Traceback" not in done.stderr


def test_a_task_with_a_bad_option_still_has_its_references_checked(tmp_path):
    flow = tmp_path / "two_in_one.py"
    flow.write_text(
        textwrap.dedent(
            """
            from typing import Annotated
            from reflow import Result, Workflow

            wf = Workflow("two")

            @wf.job()
            def prepare() -> list[str]:
                return []

            @wf.job(mem="4GG")
            def publish(paths: Annotated[list[str], Result(step="prepar")]) -> str:
                return ""

            if __name__ == "__main__":
                raise SystemExit(wf.cli())
            """
        )
    )
    done = run(flow, "dag", cwd=tmp_path)
    assert done.returncode == 2
    lines = done.stderr.splitlines()
    assert lines[0] == "error: 2 errors in two_in_one.py:"
    assert lines[1].startswith("  1. publish(mem): mem='4GG' is not a memory size;")
    assert lines[2].startswith('  2. publish(paths): Result(step="prepar") names no task;')
    assert 'did you mean "prepare"' in lines[2]
    assert len(lines) == 3
