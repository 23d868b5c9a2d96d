"""How often a follower (``--wait``, ``run.wait()``, ``watch``) reads a run."""

from __future__ import annotations

import pytest

from reflow.running.commands.progress import poll_interval_s


def test_a_follower_looks_often_at_first_and_every_two_seconds_later() -> None:
    assert poll_interval_s(0.0) == pytest.approx(0.2)
    assert poll_interval_s(90.0) == pytest.approx(1.1)
    assert poll_interval_s(3600.0) == pytest.approx(2.0)


def test_a_slow_read_spaces_the_next_one_so_reading_takes_a_tenth_of_the_time() -> None:
    # A run whose 100,000 results arrived but are not ingested is read file by file: on a
    # network file system that can take seconds, and the follower must not do it back to back.
    assert poll_interval_s(0.0, took_s=0.01) == pytest.approx(0.2)
    assert poll_interval_s(3600.0, took_s=0.5) == pytest.approx(5.0)
    assert poll_interval_s(3600.0, took_s=30.0) == pytest.approx(300.0)
