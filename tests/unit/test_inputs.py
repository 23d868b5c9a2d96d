from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from reflow.definition.errors import StoreError
from reflow.planning.encoding import to_json
from reflow.running.rundir.inputs import read_inputs, write_inputs
from reflow.running.rundir.layout import RunLayout


@pytest.fixture
def layout(tmp_path: Path) -> RunLayout:
    return RunLayout(tmp_path, "demo-1")


def test_each_element_reads_back_its_own_decoded_inputs(layout: RunLayout) -> None:
    values = [
        {"nc_file": "a.nc", "extra": [1, 2.5, None]},
        {"nc_file": "ü-ß.nc", "extra": {"$weird": True}},
        {"nc_file": Path("/data/c.nc"), "extra": []},
    ]
    write_inputs(layout, "convert", "p1", [to_json(row) for row in values])
    for element, row in enumerate(values):
        assert read_inputs(layout, "convert", "p1", element) == row
    assert isinstance(read_inputs(layout, "convert", "p1", 2)["nc_file"], Path)


def test_file_holds_one_canonical_line_per_element_in_order(layout: RunLayout) -> None:
    write_inputs(layout, "convert", "p1", [{"x": 1, "a": "é"}, {"x": 2, "a": "b"}])
    lines = layout.inputs("convert", "p1").read_text(encoding="utf-8").splitlines()
    assert lines == [
        '{"element":0,"inputs":{"a":"é","x":1}}',
        '{"element":1,"inputs":{"a":"b","x":2}}',
    ]
    assert [json.loads(line)["element"] for line in lines] == [0, 1]


def test_index_holds_little_endian_byte_offsets(layout: RunLayout) -> None:
    write_inputs(layout, "t", "p", [{"v": "é"}, {"v": "x"}, {"v": "y"}])
    raw = layout.inputs_index("t", "p").read_bytes()
    offsets = list(struct.unpack("<3Q", raw))
    data = layout.inputs("t", "p").read_bytes()
    first = len('{"element":0,"inputs":{"v":"é"}}\n'.encode())
    assert offsets[0] == 0
    assert offsets[1] == first
    assert data[offsets[2] :].startswith(b'{"element":2')


def test_empty_task_writes_empty_files(layout: RunLayout) -> None:
    write_inputs(layout, "t", "p", [])
    assert layout.inputs("t", "p").read_bytes() == b""
    assert layout.inputs_index("t", "p").read_bytes() == b""


def test_rewriting_replaces_files_atomically_without_temporaries(layout: RunLayout) -> None:
    write_inputs(layout, "t", "p", [{"v": 1}] * 5)
    write_inputs(layout, "t", "p", [{"v": 2}] * 2)
    assert read_inputs(layout, "t", "p", 1) == {"v": 2}
    assert sorted(p.name for p in layout.inputs("t", "p").parent.iterdir()) == [
        "t-p.idx",
        "t-p.jsonl",
    ]


@pytest.mark.parametrize("element", [3, 100, -1])
def test_element_outside_the_planning_is_a_store_error(layout: RunLayout, element: int) -> None:
    write_inputs(layout, "t", "p", [{"v": 1}] * 3)
    with pytest.raises(StoreError, match="element"):
        read_inputs(layout, "t", "p", element)


def test_missing_files_are_a_store_error(layout: RunLayout) -> None:
    with pytest.raises(StoreError, match="cannot read the inputs of t"):
        read_inputs(layout, "t", "nope", 0)


def test_index_pointing_at_another_line_is_detected(layout: RunLayout) -> None:
    write_inputs(layout, "t", "p", [{"v": 1}, {"v": 2}])
    layout.inputs_index("t", "p").write_bytes(struct.pack("<2Q", 0, 0))
    with pytest.raises(StoreError, match="not this element's inputs"):
        read_inputs(layout, "t", "p", 1)


def test_hundred_thousand_rows_are_written_and_read_back_by_offset(layout: RunLayout) -> None:
    # How fast this is belongs to the benchmarks (plan+persist writes inputs files).
    rows = [{"nc_file": f"/scratch/data/file-{i:06d}.nc", "n": i} for i in range(100_000)]
    write_inputs(layout, "convert", "big", rows)
    got = [read_inputs(layout, "convert", "big", e) for e in (0, 54_321, 99_999)]
    assert got[0] == {"nc_file": "/scratch/data/file-000000.nc", "n": 0}
    assert got[1] == {"nc_file": "/scratch/data/file-054321.nc", "n": 54_321}
    assert got[2]["n"] == 99_999
