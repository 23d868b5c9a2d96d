"""Which run directory a command works in: ``resolve_run_dir``."""

from __future__ import annotations

from pathlib import Path

from reflow.running.config import Config
from reflow.running.rundir.location import resolve_run_dir


def test_dot_dots_above_the_root_are_dropped_and_others_kept_as_the_kernel_reads_them(
    tmp_path: Path,
) -> None:
    (tmp_path / "x" / "a" / "b").mkdir(parents=True)
    (tmp_path / "link").symlink_to(tmp_path / "x" / "a" / "b")
    assert resolve_run_dir("/../.." + str(tmp_path / "runs"), Config()) == tmp_path / "runs"
    through_link = resolve_run_dir(tmp_path / "link" / ".." / "runs", Config())
    assert through_link == tmp_path / "link" / ".." / "runs"  # not tmp_path / "runs"
    through_link.mkdir()
    assert (tmp_path / "x" / "a" / "runs").is_dir()  # where the kernel put it
