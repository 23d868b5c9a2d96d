"""Fixtures of the integration tests that ask for them by name."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.integration.tmux_pane import Pane
from tests.unit.test_slurm_executor import FakeSlurm


@pytest.fixture
def watch_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The local executor with four slots, and no user config."""
    monkeypatch.setenv("REFLOW_MODE", "local")
    monkeypatch.setenv("REFLOW_LOCAL_SLOTS", "4")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))


@pytest.fixture
def pane_factory(tmp_path: Path) -> Iterator[Callable[[list[str]], Pane]]:
    panes: list[Pane] = []

    def make(command: list[str]) -> Pane:
        panes.append(Pane(tmp_path, command))
        return panes[-1]

    yield make
    for pane in panes:
        pane.close()


@pytest.fixture
def slurm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeSlurm:
    """Fake Slurm commands first on ``PATH``, Slurm mode, no ``REFLOW_*``/``SLURM_*``, no config."""
    for name in list(os.environ):
        if name.startswith(("REFLOW_", "SLURM_")):
            monkeypatch.delenv(name)
    fake = FakeSlurm(tmp_path / "bin")
    monkeypatch.setenv("PATH", f"{fake.bin_dir}:/usr/bin:/bin")
    monkeypatch.setenv("REFLOW_MODE", "slurm")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    return fake
