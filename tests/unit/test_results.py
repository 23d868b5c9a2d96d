from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from reflow.planning.encoding import dumps, to_json
from reflow.planning.identity import output_hash
from reflow.running.rundir.bundles import read_bundle
from reflow.running.rundir.results import (
    ResultError,
    ResultProblem,
    ResultRecord,
    read_result,
    result_text,
    write_result,
)
from tests.unit.test_bundles import append_result

WHO = {"run_id": "demo-1", "task": "convert", "element": 3, "batch": "b7"}


def _text(value: Any = None, error: ResultError | None = None, **who: Any) -> str:
    ids = {**WHO, **who}
    return result_text(
        run_id=ids["run_id"],
        task=ids["task"],
        element=ids["element"],
        batch=ids["batch"],
        output=to_json(value) if error is None else None,
        output_hash=output_hash(value) if error is None else None,
        error=error,
        started=100.0,
        ended=101.5,
        host="node1",
        pid=4242,
        peak_rss_mb=12.5,
    )


def _read(path: Path, **who: Any) -> ResultRecord | ResultProblem:
    ids = {**WHO, **who}
    return read_result(
        path, run_id=ids["run_id"], task=ids["task"], element=ids["element"], batch=ids["batch"]
    )


def test_success_round_trips_with_undecoded_output_and_canonical_text(tmp_path: Path) -> None:
    path = tmp_path / "3.b7.json"
    value = {"b": [1, 2.5], "a": Path("/x/y.zarr")}
    write_result(path, _text(value))
    record = _read(path)
    assert isinstance(record, ResultRecord)
    assert record.ok
    assert record.output == {"a": {"$path": "/x/y.zarr"}, "b": [1, 2.5]}
    assert record.output_text == dumps(value)
    assert record.output_hash == output_hash(value)
    assert (record.error_type, record.error_message, record.traceback) == (None, None, None)
    assert (record.started, record.ended, record.host, record.pid) == (100.0, 101.5, "node1", 4242)
    assert record.peak_rss_mb == 12.5


def test_none_output_is_a_success(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    write_result(path, _text(None))
    record = _read(path)
    assert isinstance(record, ResultRecord)
    assert record.ok
    assert record.output is None
    assert record.output_text == "null"


def test_failure_round_trips_its_error(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    error = ResultError(type="ValueError", message="bad \udcff input", traceback="Traceback...")
    write_result(path, _text(error=error))
    record = _read(path)
    assert isinstance(record, ResultRecord)
    assert not record.ok
    assert (record.output, record.output_text, record.output_hash) == (None, None, None)
    assert record.error_type == "ValueError"
    assert record.error_message == "bad \\udcff input"
    assert record.traceback == "Traceback..."


def test_missing_file_is_a_missing_problem(tmp_path: Path) -> None:
    problem = _read(tmp_path / "absent.json")
    assert isinstance(problem, ResultProblem)
    assert problem.kind == "missing"


@pytest.mark.parametrize(
    ("content", "kind", "words"),
    [
        (lambda text: text[: len(text) // 2], "malformed", "not JSON"),
        (lambda text: "", "malformed", "not JSON"),
        (lambda text: "hello there", "malformed", "not JSON"),
        (lambda text: b"\xff\xfe".decode("latin-1"), "malformed", "not JSON"),
        (lambda text: "[1, 2]", "malformed", "JSON list"),
        (lambda text: text.replace("reflow/result/1", "reflow/result/0"), "foreign", "format"),
        (lambda text: text.replace('"run_id":"demo-1"', '"run_id":"other-2"'), "foreign", "run_id"),
        (lambda text: text.replace('"task":"convert"', '"task":"prepare"'), "foreign", "task"),
        (lambda text: text.replace('"element":3', '"element":4'), "foreign", "element"),
        (lambda text: text.replace('"batch":"b7"', '"batch":"b8"'), "foreign", "batch"),
        (lambda text: text.replace('"element":3', '"element":"3"'), "malformed", "element"),
        (lambda text: text.replace('"ok":true', '"ok":1'), "malformed", "ok"),
        (lambda text: text.replace('"pid":4242,', ""), "malformed", "pid"),
        (lambda text: text.replace('"started":100.0', '"started":NaN'), "malformed", "not JSON"),
        (lambda text: text.replace('"host":"node1"', '"host":null'), "malformed", "host"),
        (lambda text: text.replace('"output":"ok"', '"output":"changed"'), "malformed", "hash"),
        (
            lambda text: text.replace('"error":null', '"error":{"type":"X"}'),
            "malformed",
            "error",
        ),
    ],
)
def test_bad_files_give_a_problem_with_a_one_line_reason(
    tmp_path: Path, content: Any, kind: str, words: str
) -> None:
    path = tmp_path / "r.json"
    path.write_text(content(_text("ok")), encoding="latin-1")
    problem = _read(path)
    assert isinstance(problem, ResultProblem), problem
    assert problem.kind == kind
    assert words in problem.reason
    assert "\n" not in problem.reason
    assert problem.path == path


def test_failure_without_error_fields_is_malformed(tmp_path: Path) -> None:
    data = json.loads(_text(error=ResultError(type="E", message="m")))
    del data["error"]["traceback"]
    path = tmp_path / "r.json"
    path.write_text(json.dumps(data))
    problem = _read(path)
    assert isinstance(problem, ResultProblem)
    assert "error.traceback" in problem.reason


def test_directory_instead_of_file_is_unreadable(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    path.mkdir()
    problem = _read(path)
    assert isinstance(problem, ResultProblem)
    assert problem.kind == "unreadable"


def test_cpu_time_round_trips_and_a_file_written_before_it_reads_as_none(tmp_path: Path) -> None:
    path = tmp_path / "3.b7.json"
    document = json.loads(_text(7))
    write_result(path, json.dumps({**document, "cpu_s": 2.25}))
    record = _read(path)
    assert isinstance(record, ResultRecord)
    assert record.cpu_s == 2.25
    assert "cpu_s" not in document
    write_result(path, json.dumps(document))
    old = _read(path)
    assert isinstance(old, ResultRecord)
    assert (old.ok, old.cpu_s) == (True, None)
    write_result(path, json.dumps({**document, "cpu_s": "2"}))
    bad = _read(path)
    assert isinstance(bad, ResultProblem)
    assert "cpu_s" in bad.reason


def test_a_bundle_keeps_every_complete_line_when_the_last_one_is_torn(tmp_path: Path) -> None:
    path = tmp_path / "b7.0.jsonl"
    append_result(path, _text("a", element=3))
    append_result(path, _text(error=ResultError(type="ValueError", message="no"), element=4))
    with path.open("ab") as handle:  # killed while writing the third line
        handle.write(_text("c", element=5).encode()[:40])
    bundle = read_bundle(path, run_id="demo-1", task="convert", batch="b7")
    assert isinstance(bundle, dict)
    assert sorted(bundle) == [3, 4]
    assert bundle[3].output == to_json("a")
    assert bundle[4].error_type == "ValueError"


def test_a_bundle_skips_foreign_and_bad_lines_and_the_first_line_of_an_element_wins(
    tmp_path: Path,
) -> None:
    path = tmp_path / "b7.0.jsonl"
    append_result(path, _text("first", element=3))
    append_result(path, _text("again", element=3))  # the array task ran again (requeued)
    append_result(path, _text("other", element=4, batch="b8"))
    append_result(path, _text("other", element=5, run_id="demo-2"))
    append_result(path, "not json")
    append_result(path, json.dumps({"element": 6, "format": "reflow/result/1"}))
    append_result(path, _text("fine", element=7))
    bundle = read_bundle(path, run_id="demo-1", task="convert", batch="b7")
    assert isinstance(bundle, dict)
    assert sorted(bundle) == [3, 7]
    assert bundle[3].output == to_json("first")


def test_a_missing_bundle_is_a_missing_problem(tmp_path: Path) -> None:
    problem = read_bundle(tmp_path / "none.jsonl", run_id="demo-1", task="convert", batch="b7")
    assert isinstance(problem, ResultProblem)
    assert problem.kind == "missing"
