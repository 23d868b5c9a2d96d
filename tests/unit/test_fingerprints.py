"""Fingerprints of files and directories, and paths carrying them in tagged JSON."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from reflow import DefinitionError, Workflow
from reflow.definition.errors import ConfigError
from reflow.planning.encoding import from_json, loads, to_json
from reflow.planning.paths import tagged_paths, with_fingerprints
from reflow.running.config import load_config
from reflow.running.fingerprints import differs, fingerprint, mode_of


def test_stat_fingerprint_changes_with_size_or_mtime(tmp_path: Path) -> None:
    path = tmp_path / "a.txt"
    path.write_text("one")
    first = fingerprint(path, "stat")
    assert first is not None
    assert first.startswith("stat:3:")
    os.utime(path, ns=(1, 2))
    assert differs(first, path) == "mtime"
    path.write_text("three")
    assert differs(first, path) == "size"
    path.unlink()
    assert differs(first, path) == "missing"


def test_content_fingerprint_ignores_mtime_and_sees_bytes(tmp_path: Path) -> None:
    path = tmp_path / "a.bin"
    path.write_bytes(b"x" * (3 << 20))
    recorded = fingerprint(path, "content")
    assert recorded is not None
    assert mode_of(recorded) == "content"
    os.utime(path, ns=(1, 2))
    assert differs(recorded, path) is None
    path.write_bytes(b"x" * (3 << 20 - 1) + b"y")
    assert differs(recorded, path) == "content"


@pytest.mark.parametrize("mode", ["stat", "content"])
def test_a_directory_fingerprint_covers_every_file_below_it(tmp_path: Path, mode: str) -> None:
    root = tmp_path / "store.zarr"
    (root / "b").mkdir(parents=True)
    (root / "a.json").write_text("{}")
    (root / "b" / "0.0").write_text("chunk")
    recorded = fingerprint(root, mode)  # type: ignore[arg-type]
    assert recorded is not None
    assert differs(recorded, root) is None
    (root / "b" / "0.1").write_text("another chunk")
    assert differs(recorded, root) is not None


def test_path_mode_takes_no_fingerprint_but_wants_the_file(tmp_path: Path) -> None:
    (tmp_path / "there").write_text("x")
    assert fingerprint(tmp_path / "there", "path") is None
    with pytest.raises(FileNotFoundError):
        fingerprint(tmp_path / "missing", "path")


def test_a_fingerprinted_path_reads_back_as_the_same_path() -> None:
    data = to_json({"files": [Path("out/a.txt"), Path("out/b.txt")], "n": 2})
    marked = with_fingerprints(data, lambda path: None if path.endswith("b.txt") else "stat:1:2")
    assert marked["files"][0] == {"$path": "out/a.txt", "$fp": "stat:1:2"}
    assert marked["files"][1] == {"$path": "out/b.txt"}
    assert from_json(marked) == {"files": [Path("out/a.txt"), Path("out/b.txt")], "n": 2}
    assert sorted(tagged_paths(marked)) == [("out/a.txt", "stat:1:2"), ("out/b.txt", None)]
    assert loads('{"$path":"x","$fp":"stat:1:2"}') == Path("x")


def test_a_value_without_paths_is_returned_as_it_is() -> None:
    data = to_json({"a": [1, 2, "x"]})
    assert with_fingerprints(data, lambda path: "never") is data


def test_an_unknown_fingerprint_mode_is_a_definition_error() -> None:
    wf = Workflow("modes")
    options: dict[str, Any] = {"fingerprint": "contents"}

    def make() -> Path:
        return Path("x")

    with pytest.raises(DefinitionError) as caught:
        wf.job(**options)(make)

    assert (caught.value.task, caught.value.param, caught.value.value) == (
        "make",
        "fingerprint",
        "contents",
    )
    assert caught.value.suggestion == "content"


def test_the_config_sets_the_mode_and_refuses_others(tmp_path: Path) -> None:
    assert load_config(
        env={"REFLOW_FINGERPRINT": "content", "HOME": str(tmp_path)}
    ).fingerprint == ("content")
    with pytest.raises(ConfigError) as caught:
        load_config(env={"REFLOW_FINGERPRINT": "sha", "HOME": str(tmp_path)})
    assert caught.value.param == "REFLOW_FINGERPRINT"
