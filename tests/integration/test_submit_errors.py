"""submit() refuses what a worker could not run, before anything is written."""

from __future__ import annotations

import types
from pathlib import Path

import pytest

from reflow import UsageError


def notebook_workflow() -> object:
    """A workflow defined the way a notebook cell defines it: in ``__main__`` without a file."""
    module = types.ModuleType("__main__")
    source = (
        "from reflow import Workflow\n"
        "wf = Workflow('nb')\n"
        "@wf.job()\n"
        "def hello() -> str:\n"
        "    return 'hi'\n"
    )
    exec(compile(source, "<notebook cell>", "exec"), module.__dict__)
    return module.__dict__["wf"]


def test_workflow_defined_in_a_notebook_is_refused_with_a_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REFLOW_MODE", "local")
    wf = notebook_workflow()
    with pytest.raises(UsageError) as caught:
        wf.submit(run_dir=tmp_path / "runs")  # type: ignore[attr-defined]
    assert caught.value.value == "nb"
    assert "module" in str(caught.value.hint)
    assert not (tmp_path / "runs").exists()
