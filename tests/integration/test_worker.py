"""The worker as a real subprocess on a real run directory (flow file, manifest, inputs)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reflow.definition.description import describe
from reflow.definition.errors import StoreError, UsageError
from reflow.planning.encoding import to_json
from reflow.planning.identity import output_hash
from reflow.running.rundir.bundles import read_bundle
from reflow.running.rundir.element_logs import running_text
from reflow.running.rundir.inputs import write_inputs
from reflow.running.rundir.layout import RunLayout, write_atomic
from reflow.running.rundir.manifest import read_manifest
from reflow.running.rundir.results import ResultProblem, ResultRecord, read_result
from reflow.running.worker.loader import FlowImportError, load_workflow

RUN_ID = "wtest-1"
FLOW = """
import subprocess
import sys
import time
from pathlib import Path
from typing import Annotated

from reflow import Param, Result, RunDir, Workflow

wf = Workflow("wtest")


@wf.job()
def prepare(count: Annotated[int, Param(help="How many")] = 4) -> list[str]:
    return [f"item{i}" for i in range(count)]


@wf.array_job()
def convert(
    item: Annotated[str, Result(step="prepare")],
    suffix: Annotated[str, Param(help="Suffix")],
    tag: Annotated[str, Param(namespace="local")] = "t0",
    run_dir: RunDir = RunDir(),
) -> str:
    print(f"converting {item}")
    subprocess.run([sys.executable, "-c", f"print('child says {item}')"], check=True)
    if item == "item2":
        raise ValueError(f"cannot convert {item}")
    (run_dir / f"{item}.touched").write_text(f"{type(run_dir).__name__} {run_dir}")
    return f"{item}{suffix}-{tag}"


@wf.array_job()
def as_set(item: Annotated[str, Result(step="prepare")]):
    return {item}


@wf.array_job()
def wrong(item: Annotated[str, Result(step="prepare")]) -> int:
    return item


@wf.array_job()
def quits(item: Annotated[str, Result(step="prepare")]) -> None:
    if item == "item0":
        sys.exit(3)


@wf.array_job()
def waits(item: Annotated[str, Result(step="prepare")]) -> str:
    print(f"waiting in {item}", flush=True)
    release = Path(f"release-{item}")
    while not release.exists():
        time.sleep(0.02)
    print(f"released {item}")
    return item


if __name__ == "__main__":
    Path(__file__).with_name("MAIN_RAN").write_text("the CLI block ran")
"""


@pytest.fixture
def isolated_imports() -> Iterator[None]:
    """Undo what importing flow files in this process does to sys.path and sys.modules."""
    path, modules = list(sys.path), set(sys.modules)
    yield
    sys.path[:] = path
    for name in set(sys.modules) - modules:
        del sys.modules[name]


class RunFixture:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.layout = RunLayout(root / "rundir", RUN_ID)
        self.flow = root / "flow.py"
        self.flow.write_text(FLOW)
        self.source = {"module": "__main__", "file": str(self.flow), "sys_path": []}
        workflow = load_workflow({"workflow": "wtest", "source": self.source})
        manifest = {
            "format": "reflow/run/1",
            "run_id": RUN_ID,
            "workflow": "wtest",
            "description": describe(workflow.graph()),
            "params": {"count": 3, "suffix": ".zarr", "convert.tag": to_json("v2")},
            "source": self.source,
            "python": sys.executable,
            "cwd": str(root),
        }
        self.write_manifest(manifest)
        rows = [{"item": to_json(f"item{e}")} for e in range(4)]
        for task in ("convert", "as_set", "wrong", "quits", "waits"):
            write_inputs(self.layout, task, "p1", rows)

    def write_manifest(self, manifest: dict[str, Any]) -> None:
        write_atomic(self.layout.manifest, json.dumps(manifest, indent=1))

    def run(
        self,
        task: str,
        *args: str,
        batch: str = "b1",
        env: dict[str, str] | None = None,
        output: Path | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run the worker; ``output`` takes its stdout and stderr as sbatch's ``--output`` does."""
        argv = [
            sys.executable,
            "-m",
            "reflow.running.worker",
            "--run-dir",
            str(self.layout.root),
            "--run-id",
            RUN_ID,
            "--task",
            task,
            "--batch",
            batch,
            "--plan",
            "p1",
            *args,
        ]
        environ = {k: v for k, v in os.environ.items() if k != "SLURM_ARRAY_TASK_ID"}
        if output is None:
            return subprocess.run(
                argv,
                cwd=self.root,
                env={**environ, **(env or {})},
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
        output.parent.mkdir(parents=True, exist_ok=True)
        with output.open("a") as sink:
            return subprocess.run(
                argv,
                cwd=self.root,
                env={**environ, **(env or {})},
                stdout=sink,
                stderr=subprocess.STDOUT,
                text=True,
                timeout=120,
                check=False,
            )

    def result(self, task: str, element: int, batch: str = "b1") -> ResultRecord:
        record = self.read(task, element, batch)
        assert isinstance(record, ResultRecord), record
        return record

    def read(self, task: str, element: int, batch: str = "b1") -> ResultRecord | ResultProblem:
        path = self.layout.result(task, element, batch)
        return read_result(path, run_id=RUN_ID, task=task, element=element, batch=batch)

    def log(self, task: str, element: int) -> str:
        return self.layout.log(task, element).read_text()


@pytest.fixture
def run(tmp_path: Path, isolated_imports: None) -> RunFixture:
    return RunFixture(tmp_path)


def test_chunk_runs_every_element_and_isolates_the_failing_one(run: RunFixture) -> None:
    proc = run.run("convert", "--elements", "0-3")
    assert proc.returncode == 1, proc.stderr
    for element in (0, 1, 3):
        record = run.result("convert", element)
        assert record.ok
        assert record.output == f"item{element}.zarr-v2"
        assert record.output_hash == output_hash(f"item{element}.zarr-v2")
        assert record.pid > 0
        assert record.peak_rss_mb > 1
        assert record.started <= record.ended
    failed = run.result("convert", 2)
    assert not failed.ok
    assert failed.error_type == "ValueError"
    assert failed.error_message == "cannot convert item2"
    assert failed.traceback is not None
    assert 'raise ValueError(f"cannot convert {item}")' in failed.traceback
    assert not (run.root / "MAIN_RAN").exists()


def test_prints_and_subprocess_output_land_in_the_elements_log(run: RunFixture) -> None:
    run.run("convert", "--elements", "0-3")
    run.run("convert", "--elements", "1", batch="b2")
    first = run.log("convert", 0)
    assert first.startswith("==> reflow: convert[0] batch b1 on ")
    assert "converting item0\n" in first
    assert "child says item0\n" in first
    assert "item1" not in first
    assert "<== reflow: element 0 of convert ended: done in " in first
    retried = run.log("convert", 1)
    assert retried.count("==> reflow: convert[1]") == 2
    assert "batch b2" in retried
    assert "ValueError: cannot convert item2" in run.log("convert", 2)


def test_run_dir_is_injected_as_a_run_dir_path(run: RunFixture) -> None:
    run.run("convert", "--elements", "0")
    touched = (run.layout.root / "item0.touched").read_text()
    assert touched == f"RunDir {run.layout.root}"


def test_all_succeeding_elements_exit_zero(run: RunFixture) -> None:
    proc = run.run("convert", "--elements", "0,1,3")
    assert proc.returncode == 0, proc.stderr
    assert run.read("convert", 2).kind == "missing"  # type: ignore[union-attr]


def test_parameters_come_from_the_manifest_or_their_default(run: RunFixture) -> None:
    proc = run.run("prepare", "--elements", "0")
    assert proc.returncode == 0, proc.stderr
    assert run.result("prepare", 0).output == ["item0", "item1", "item2"]


def test_unencodable_return_fails_naming_task_and_type(run: RunFixture) -> None:
    proc = run.run("as_set", "--elements", "0-1")
    assert proc.returncode == 1
    record = run.result("as_set", 1)
    assert not record.ok
    assert record.error_type == "LocatedEncodingError"
    assert record.error_message is not None
    assert "as_set" in record.error_message
    assert "set" in record.error_message.replace("as_set", "")
    assert "cannot encode set" in run.log("as_set", 1)


def test_return_value_not_matching_the_annotation_fails(run: RunFixture) -> None:
    run.run("wrong", "--elements", "0")
    record = run.result("wrong", 0)
    assert not record.ok
    assert record.error_type == "TypeError"
    assert record.error_message == "wrong returned 'item0' (str), annotated int"


def test_sys_exit_in_a_task_fails_only_that_element(run: RunFixture) -> None:
    proc = run.run("quits", "--elements", "0-1")
    assert proc.returncode == 1
    assert run.result("quits", 0).error_type == "SystemExit"
    assert run.result("quits", 1).ok


def test_flow_that_raises_on_import_fails_every_element(run: RunFixture) -> None:
    broken = run.root / "broken_flow.py"
    broken.write_text("raise RuntimeError('no database today')\n")
    manifest = json.loads(run.layout.manifest.read_text())
    manifest["source"] = {"module": "__main__", "file": str(broken), "sys_path": []}
    run.write_manifest(manifest)
    proc = run.run("convert", "--elements", "0-2")
    assert proc.returncode == 1
    for element in range(3):
        record = run.result("convert", element)
        assert not record.ok
        assert record.error_type == "RuntimeError"
        assert record.error_message is not None
        assert "no database today" in record.error_message
        assert record.traceback is not None
        assert "broken_flow.py" in record.traceback
        assert "no database today" in run.log("convert", element)


def test_missing_module_fails_every_element(run: RunFixture) -> None:
    manifest = json.loads(run.layout.manifest.read_text())
    manifest["source"] = {"module": "no_such_flow_module_xyz", "file": None, "sys_path": []}
    run.write_manifest(manifest)
    assert run.run("convert", "--elements", "0-1").returncode == 1
    record = run.result("convert", 1)
    assert record.error_type == "ModuleNotFoundError"
    assert "no_such_flow_module_xyz" in str(record.error_message)


def test_task_missing_from_the_flow_fails_with_a_clear_error(run: RunFixture) -> None:
    assert run.run("convrt", "--elements", "0").returncode == 1
    record = run.result("convrt", 0)
    assert record.error_type == "FlowImportError"
    assert "no task 'convrt'" in str(record.error_message)


def test_missing_manifest_fails_every_element(run: RunFixture) -> None:
    run.layout.manifest.unlink()
    assert run.run("convert", "--elements", "0-1").returncode == 1
    assert run.result("convert", 0).error_type == "StoreError"


def test_a_silent_successful_element_leaves_no_log_and_a_failed_one_keeps_it(
    run: RunFixture,
) -> None:
    proc = run.run("quits", "--elements", "0-1")
    assert proc.returncode == 1
    assert run.result("quits", 1).ok
    assert not run.layout.log("quits", 1).exists()
    failed = run.log("quits", 0)
    assert failed.startswith("==> reflow: quits[0] batch b1 on ")
    assert "<== reflow: element 0 of quits ended: failed after " in failed
    assert failed.rstrip().endswith(": SystemExit: 3")


def test_a_silent_success_after_a_logged_attempt_appends_to_the_log(run: RunFixture) -> None:
    run.layout.log("quits", 1).parent.mkdir(parents=True)
    run.layout.log("quits", 1).write_text("earlier attempt\n")
    assert run.run("quits", "--elements", "1").returncode == 0
    log = run.log("quits", 1)
    assert log.startswith("earlier attempt\n==> reflow: quits[1] batch b1 on ")
    assert "<== reflow: element 1 of quits ended: done in " in log


def test_an_array_task_removes_its_scheduler_output_file_when_it_stays_empty(
    run: RunFixture,
) -> None:
    slurm_output = run.layout.logs_dir("quits") / "quits.77_1.out"
    proc = run.run("quits", env={"SLURM_ARRAY_TASK_ID": "1"}, output=slurm_output)
    assert proc.returncode == 0
    assert run.result("quits", 1).ok
    assert not slurm_output.exists()
    assert list(run.layout.logs_dir("quits").iterdir()) == []


def test_an_array_task_keeps_a_scheduler_output_file_with_text_or_outside_its_logs(
    run: RunFixture,
) -> None:
    written = run.layout.logs_dir("quits") / "quits.77_0.out"
    written.parent.mkdir(parents=True)
    written.write_text("slurmstepd: error: something\n")
    assert run.run("quits", env={"SLURM_ARRAY_TASK_ID": "1"}, output=written).returncode == 0
    assert written.read_text() == "slurmstepd: error: something\n"
    elsewhere = run.root / "elsewhere.out"
    assert run.run("quits", env={"SLURM_ARRAY_TASK_ID": "1"}, output=elsewhere).returncode == 0
    assert elsewhere.read_text() == ""


def test_element_from_the_slurm_array_index(run: RunFixture) -> None:
    proc = run.run("convert", env={"SLURM_ARRAY_TASK_ID": "3"})
    assert proc.returncode == 0, proc.stderr
    assert run.result("convert", 3).output == "item3.zarr-v2"


def test_array_offset_maps_through_the_batch_file(run: RunFixture) -> None:
    write_atomic(run.layout.batch("b1"), json.dumps({"task": "convert", "elements": [1, 3]}))
    proc = run.run("convert", "--array-offset", "1", env={"SLURM_ARRAY_TASK_ID": "0"})
    assert proc.returncode == 0, proc.stderr
    assert run.result("convert", 3).ok
    assert run.read("convert", 1).kind == "missing"  # type: ignore[union-attr]


def test_a_packed_array_task_runs_its_elements_into_one_bundle_and_isolates_a_failure(
    run: RunFixture,
) -> None:
    batch = {"task": "convert", "elements": [3, 1, 2, 0], "pack": 3}
    write_atomic(run.layout.batch("b1"), json.dumps(batch))
    proc = run.run("convert", "--array-offset", "0", env={"SLURM_ARRAY_TASK_ID": "0"})
    assert proc.returncode == 1, proc.stderr  # element 2 raised
    bundle = read_bundle(run.layout.bundle("convert", "b1", 0), run_id=RUN_ID, task="convert",
                         batch="b1")  # fmt: skip
    assert isinstance(bundle, dict)
    assert list(bundle) == [3, 1, 2]  # in the batch's order, one line each
    assert [bundle[e].ok for e in (3, 1, 2)] == [True, True, False]
    assert bundle[1].output == "item1.zarr-v2"
    assert bundle[2].error_type == "ValueError"
    assert "converting item1\nchild says item1\n" in run.log("convert", 1)
    assert "ValueError: cannot convert item2" in run.log("convert", 2)
    assert sorted(p.name for p in run.layout.results_dir("convert").iterdir()) == ["b1.0.jsonl"]

    proc = run.run("convert", "--array-offset", "0", env={"SLURM_ARRAY_TASK_ID": "1"})
    assert proc.returncode == 0, proc.stderr
    last = read_bundle(run.layout.bundle("convert", "b1", 1), run_id=RUN_ID, task="convert",
                       batch="b1")  # fmt: skip
    assert isinstance(last, dict)
    assert list(last) == [0]


def test_a_packed_array_task_keeps_logs_only_of_elements_that_printed_failed_or_had_one(
    run: RunFixture,
) -> None:
    write_atomic(run.layout.batch("b1"), json.dumps({"task": "quits", "elements": [1, 0, 2, 3],
                                                     "pack": 4, "again": [2, 3]}))  # fmt: skip
    logs = run.layout.logs_dir("quits")
    logs.mkdir(parents=True)
    (logs / "3.log").write_text("earlier attempt\n")  # 2 ran before, and left no log
    proc = run.run("quits", "--array-offset", "0", env={"SLURM_ARRAY_TASK_ID": "0"})
    assert proc.returncode == 1, proc.stderr  # element 0 exits 3
    bundle = read_bundle(run.layout.bundle("quits", "b1", 0), run_id=RUN_ID, task="quits",
                         batch="b1")  # fmt: skip
    assert isinstance(bundle, dict)
    assert [bundle[e].ok for e in (1, 0, 2, 3)] == [True, False, True, True]
    # 1 printed nothing: no log; 2 and 3 ran before (the batch file says so): the attempt
    # is in their logs; the array task's shared output is gone
    assert sorted(p.name for p in logs.iterdir()) == ["0.log", "2.log", "3.log"]
    assert run.log("quits", 2).startswith("==> reflow: quits[2] batch b1 on ")
    failed = run.log("quits", 0)
    assert failed.startswith("==> reflow: quits[0] batch b1 on ")
    assert failed.count("==> reflow: ") == 1  # its own segment, not its neighbours'
    assert failed.rstrip().endswith("<== reflow: element 0 of quits ended: failed after 0.0 s:"
                                    " SystemExit: 3")  # fmt: skip
    again = run.log("quits", 3)
    assert again.startswith("earlier attempt\n==> reflow: quits[3] batch b1 on ")
    assert again.rstrip().endswith("<== reflow: element 3 of quits ended: done in 0.0 s")


def test_a_packed_array_task_whose_shared_output_cannot_be_made_writes_each_elements_log(
    run: RunFixture,
) -> None:
    write_atomic(run.layout.batch("b1"), json.dumps({"task": "convert", "elements": [0, 1],
                                                     "pack": 2}))  # fmt: skip
    run.layout.pack_log("convert", "b1", 0).mkdir(parents=True)  # a folder in its place
    proc = run.run("convert", "--array-offset", "0", env={"SLURM_ARRAY_TASK_ID": "0"})
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.startswith("reflow: cannot open ")
    assert run.log("convert", 1).startswith("==> reflow: convert[1] batch b1 on ")
    assert "converting item1\nchild says item1\n" in run.log("convert", 1)


def test_a_running_packed_elements_output_is_read_from_its_array_tasks_shared_output(
    run: RunFixture,
) -> None:
    write_atomic(run.layout.batch("b1"), json.dumps({"task": "waits", "elements": [2, 1],
                                                     "pack": 2}))  # fmt: skip
    argv = [sys.executable, "-m", "reflow.running.worker", "--run-dir", str(run.layout.root),
            "--run-id", RUN_ID, "--task", "waits", "--batch", "b1", "--plan", "p1",
            "--array-offset", "0"]  # fmt: skip
    env = {**os.environ, "SLURM_ARRAY_TASK_ID": "0"}
    worker = subprocess.Popen(argv, cwd=run.root, env=env)
    try:
        deadline = time.monotonic() + 60
        while b"waiting in item1" not in running_text(run.layout, "waits", 1, "b1"):
            assert time.monotonic() < deadline, "element 1 never printed"
            if b"waiting in item2" in running_text(run.layout, "waits", 2, "b1"):
                (run.root / "release-item2").write_text("")
            time.sleep(0.05)
        text = running_text(run.layout, "waits", 1, "b1").decode()
        assert text.startswith("==> reflow: waits[1] batch b1 on ")
        assert text.endswith("waiting in item1\n")
        assert running_text(run.layout, "waits", 2, "b1") == b""  # ended: in its own log
        assert "released item2\n<== reflow: element 2 of waits ended: done" in run.log("waits", 2)
        assert not run.layout.log("waits", 1).exists()
        (run.root / "release-item1").write_text("")
        assert worker.wait(timeout=60) == 0
    finally:
        worker.kill()
    assert running_text(run.layout, "waits", 1, "b1") == b""
    assert run.log("waits", 1).startswith(text + "released item1\n<== reflow: element 1 ")
    assert sorted(p.name for p in run.layout.logs_dir("waits").iterdir()) == ["1.log", "2.log"]


def test_no_element_selection_is_a_usage_error(run: RunFixture) -> None:
    proc = run.run("convert")
    assert proc.returncode == 2
    assert "SLURM_ARRAY_TASK_ID" in proc.stderr
    assert not run.layout.results_dir("convert").exists()


def test_element_without_inputs_fails_with_a_store_error(run: RunFixture) -> None:
    assert run.run("convert", "--elements", "7").returncode == 1
    record = run.result("convert", 7)
    assert record.error_type == "StoreError"
    assert "element 7" in str(record.error_message)


def test_flow_imported_by_module_name_from_sys_path(run: RunFixture, tmp_path: Path) -> None:
    package = tmp_path / "pkgroot" / "mypkg"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "helpers.py").write_text("SUFFIX = '!'\n")
    flow = FLOW.replace("from reflow import", "from .helpers import SUFFIX\nfrom reflow import")
    (package / "flows.py").write_text(
        flow.replace('return f"{item}{suffix}-{tag}"', "return SUFFIX")
    )
    manifest = json.loads(run.layout.manifest.read_text())
    manifest["source"] = {
        "module": "mypkg.flows",
        "file": None,
        "sys_path": [str(tmp_path / "pkgroot")],
    }
    run.write_manifest(manifest)
    assert run.run("convert", "--elements", "0").returncode == 0
    assert run.result("convert", 0).output == "!"


def test_loader_names_the_workflows_a_module_does_define(
    tmp_path: Path, isolated_imports: None
) -> None:
    flow = tmp_path / "other_flow.py"
    flow.write_text(FLOW)
    source = {"module": "__main__", "file": str(flow), "sys_path": []}
    with pytest.raises(FlowImportError, match="no Workflow named 'nope'; it defines \\['wtest'\\]"):
        load_workflow({"workflow": "nope", "source": source})


def test_loader_refuses_a_workflow_from_an_interactive_session(isolated_imports: None) -> None:
    source: dict[str, Any] = {"module": "__main__", "file": None, "sys_path": []}
    with pytest.raises(FlowImportError, match="interactive session") as info:
        load_workflow({"workflow": "w", "source": source})
    assert isinstance(info.value, UsageError)


def test_flow_file_with_dataclasses_imports_under_its_own_name(
    tmp_path: Path, isolated_imports: None
) -> None:
    flow = tmp_path / "dc_flow.py"
    flow.write_text(
        "from dataclasses import dataclass\nfrom reflow import Workflow\n"
        "@dataclass\nclass Point:\n    x: int\n"
        "wf = Workflow('dc')\n@wf.job()\ndef make() -> int:\n    return Point(1).x\n"
    )
    workflow = load_workflow(
        {"workflow": "dc", "source": {"file": str(flow), "module": "__main__"}}
    )
    func = workflow.tasks["make"].func
    assert func is not None
    assert func() == 1
    assert func.__module__ == "dc_flow"
    assert str(tmp_path) in sys.path


def test_manifest_of_another_run_is_refused(run: RunFixture) -> None:
    manifest = json.loads(run.layout.manifest.read_text())
    run.write_manifest({**manifest, "run_id": "other-run"})
    with pytest.raises(StoreError, match="belongs to run 'other-run'"):
        read_manifest(run.layout)
    run.layout.manifest.write_text("{")
    with pytest.raises(StoreError, match="not JSON"):
        read_manifest(run.layout)
    run.write_manifest({**manifest, "format": "reflow/run/9"})
    with pytest.raises(StoreError, match="format"):
        read_manifest(run.layout)
