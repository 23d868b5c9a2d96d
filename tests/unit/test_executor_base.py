"""How executors word the way a process ended."""

from __future__ import annotations

import signal

from reflow.running.executors.base import how_it_ended


def test_sigkill_is_worded_as_a_likely_out_of_memory_kill():
    assert how_it_ended(-signal.SIGKILL) == "killed by SIGKILL (out of memory?)"


def test_other_signals_and_exit_statuses_are_named_plainly():
    assert how_it_ended(-signal.SIGSEGV) == "killed by SIGSEGV"
    assert how_it_ended(3) == "exited with status 3"
    assert how_it_ended(-99) == "killed by signal 99"
