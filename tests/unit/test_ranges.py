"""Tests of array range specs: compression, expansion as Slurm prints them, chunking."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reflow.running.ranges import chunk, compress, expand

_INDICES = st.lists(st.integers(min_value=0, max_value=400), max_size=200)


@pytest.mark.parametrize(
    ("indices", "spec"),
    [
        ([], ""),
        ([5], "5"),
        ([0, 1], "0-1"),
        ([3, 1, 2, 2, 0], "0-3"),
        ([*range(100), 120, *range(200, 251)], "0-99,120,200-250"),
        ([9, 7, 8, 3, 0], "0,3,7-9"),
    ],
)
def test_compress_writes_sorted_deduplicated_ranges(indices, spec):
    assert compress(indices) == spec


def test_compress_refuses_negative_index():
    with pytest.raises(ValueError, match="negative"):
        compress([3, -1])


@pytest.mark.parametrize(
    ("spec", "indices"),
    [
        ("", []),
        ("7", [7]),
        ("0-3,7", [0, 1, 2, 3, 7]),
        ("0-9%2", list(range(10))),
        ("[5-9%2]", [5, 6, 7, 8, 9]),
        ("[1,4,7-9]", [1, 4, 7, 8, 9]),
        ("0-10:5", [0, 5, 10]),
        ("[1-7:3,9%4]", [1, 4, 7, 9]),
        ("3,1-2,2", [1, 2, 3]),
        (" 1-2 ", [1, 2]),
    ],
)
def test_expand_reads_the_specs_slurm_prints(spec, indices):
    assert expand(spec) == indices


@pytest.mark.parametrize("spec", ["a", "1-", "-1", "3-1", "1-5:0", "[1-3", "1,,2", "1%x", "1-3%"])
def test_expand_refuses_malformed_spec(spec):
    with pytest.raises(ValueError, match="array spec"):
        expand(spec)


@given(_INDICES)
def test_expand_inverts_compress(indices):
    assert expand(compress(indices)) == sorted(set(indices))


@given(_INDICES)
def test_compress_is_canonical(indices):
    spec = compress(indices)
    assert compress(expand(spec)) == spec
    assert compress(reversed(indices)) == spec


@given(_INDICES, st.integers(min_value=1, max_value=5))
def test_expand_ignores_throttle_and_brackets(indices, limit):
    spec = compress(indices)
    assert expand(f"[{spec}%{limit}]") == expand(spec)


@given(st.lists(st.integers(), max_size=100), st.integers(min_value=1, max_value=30))
def test_chunk_keeps_order_and_bounds_size(items, max_size):
    pieces = chunk(items, max_size)
    assert [item for piece in pieces for item in piece] == items
    assert all(1 <= len(piece) <= max_size for piece in pieces)
    assert len(pieces) == -(-len(items) // max_size)


def test_chunk_splits_ten_into_four_four_two():
    assert chunk(range(10), 4) == [(0, 1, 2, 3), (4, 5, 6, 7), (8, 9)]


def test_chunk_refuses_non_positive_size():
    with pytest.raises(ValueError, match="positive"):
        chunk([1], 0)
