"""What the local executor reports for an element whose worker process was killed."""

from __future__ import annotations

import signal
from pathlib import Path

from reflow.definition.resources import Resources
from reflow.running.executors.base import BatchRequest, FailureReason, JobState
from reflow.running.executors.local_chunks import Chunk, element_status, log_mark
from reflow.running.rundir.layout import log_name


def killed_chunk(log_dir: Path, returncode: int) -> Chunk:
    """A finished chunk of element 0, whose log shows the element started."""
    request = BatchRequest(
        run_id="r", workflow="w", task="t", batch_id="b1", elements=(0,),
        resources=Resources(), command=("true",), workdir=log_dir, log_dir=log_dir,
        script_path=log_dir / "script",
    )  # fmt: skip
    chunk = Chunk(chunk_id="b1.0", request=request, elements=[0], members=frozenset({0}), slots=1)
    chunk.log_marks[0] = log_mark(log_dir, 0)  # no log before the start
    (log_dir / log_name(0)).write_text("==> reflow: t[0] batch b1 on host at now\n")
    chunk.process = object()  # type: ignore[assignment]  # started; only its end matters here
    chunk.returncode = returncode
    return chunk


def test_a_sigkilled_chunk_says_out_of_memory_may_be_why(tmp_path: Path) -> None:
    status = element_status(killed_chunk(tmp_path, -signal.SIGKILL), 0)
    assert status.state is JobState.FAILED
    assert status.detail == "chunk b1.0 killed by SIGKILL (out of memory?)"
    assert status.reason is FailureReason.LOST  # no trace of why: it goes out again as it was


def test_a_segfaulted_chunk_names_the_signal(tmp_path: Path) -> None:
    status = element_status(killed_chunk(tmp_path, -signal.SIGSEGV), 0)
    assert status.detail == "chunk b1.0 killed by SIGSEGV"
    assert status.reason is FailureReason.EXIT_CODE
