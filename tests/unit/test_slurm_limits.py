"""Parsers of sacctmgr's submit limits and the explanation of Slurm end states."""

from __future__ import annotations

import pytest

from reflow.running.executors.slurm_query import (
    describe_failure,
    is_limit_error,
    parse_assoc_submit_limits,
    parse_qos_submit_limits,
)


def test_assoc_limits_and_qos_names_are_read_from_every_association():
    text = "100|500|normal,long\n|40|normal\n||\n"
    limits, qos = parse_assoc_submit_limits(text)
    assert sorted(limits) == [40, 100, 500]
    assert qos == {"normal", "long"}


def test_assoc_without_limits_gives_none():
    assert parse_assoc_submit_limits("||normal\n") == ([], {"normal"})
    assert parse_assoc_submit_limits("") == ([], set())


def test_qos_limits_are_read_only_for_the_named_qos():
    text = "normal|50|\nlong|10|1000\nhigh|5|\n"
    assert sorted(parse_qos_submit_limits(text, {"normal", "long"})) == [10, 50, 1000]
    assert parse_qos_submit_limits("normal||\n", {"normal"}) == []


def test_end_states_are_explained_for_people():
    assert "time limit" in describe_failure("TIMEOUT")
    assert "memory" in describe_failure("OUT_OF_MEMORY")
    assert "cancelled" in describe_failure("CANCELLED by 0")
    assert describe_failure("COMPLETED") == ""


@pytest.mark.parametrize(
    ("stderr", "is_limit"),
    [
        (
            "sbatch: error: AssocMaxSubmitJobLimit\nsbatch: error: Batch job submission failed:"
            " Job violates accounting/QOS policy (job submit limit, user's size and/or time"
            " limits)",
            True,
        ),
        ("sbatch: error: QOSMaxSubmitJobPerUserLimit", True),
        ("sbatch: error: Batch job submission failed: Invalid partition name specified", False),
        ("sbatch: error: Batch job submission failed: Socket timed out on send/recv", False),
    ],
)
def test_submit_limit_refusals_are_told_apart(stderr: str, is_limit: bool) -> None:
    assert is_limit_error(stderr) is is_limit
