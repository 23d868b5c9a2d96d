"""examples/notebook.ipynb, executed cell by cell in a real Jupyter kernel with nbclient.

The notebook reads ``REFLOW_RUN_DIR`` (here a temporary folder) and runs on the local
executor (``REFLOW_MODE=local``); the kernel inherits both from this process.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

nbformat = pytest.importorskip("nbformat", reason="nbformat comes with the dev extra")
nbclient = pytest.importorskip("nbclient", reason="nbclient comes with the dev extra")

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
CELL_DEADLINE_S = 120


def outputs_of(cell: Any) -> tuple[str, str]:
    """The cell's text output (streams and plain results) and its HTML output."""
    text, html = [], []
    for output in cell.get("outputs", []):
        if output["output_type"] == "stream":
            text.append(output["text"])
        elif output["output_type"] in ("execute_result", "display_data"):
            text.append(output["data"].get("text/plain", ""))
            html.append(output["data"].get("text/html", ""))
    return "".join(text), "".join(html)


# The kernel's process and the notebook's JSON schema belong to jupyter_client and nbformat,
# which can leave a process object or a file to the garbage collector; reflow runs in the
# kernel, not in this process.
@pytest.mark.filterwarnings("ignore::ResourceWarning")
def test_notebook_submits_waits_and_shows_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REFLOW_MODE", "local")
    monkeypatch.setenv("REFLOW_RUN_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("JUPYTER_PLATFORM_DIRS", "1")
    with (EXAMPLES / "notebook.ipynb").open(encoding="utf-8") as source:
        notebook = nbformat.read(source, as_version=4)
    client = nbclient.NotebookClient(
        notebook,
        timeout=CELL_DEADLINE_S,
        kernel_name="python3",
        resources={"metadata": {"path": str(EXAMPLES)}},
    )
    client.execute()

    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    by_source = {cell.source.splitlines()[0]: outputs_of(cell) for cell in code}
    assert "'2025-01-01.nc', '2025-01-02.nc'" in by_source["import os"][0]
    waited, _ = by_source["run.wait(timeout=300, progress=True)"]
    assert "'succeeded'" in waited
    assert "succeeded after" in waited
    _, table = by_source["run"]
    assert "<table" in table
    assert "succeeded" in table
    for task in ("prepare", "convert", "publish"):
        assert f"<td>{task}</td>" in table
    status, _ = by_source["run.status()"]
    assert "SUCCEEDED" in status
    counts, _ = by_source["info = run.status(as_dict=True)"]
    assert "'convert': {'done': 4}" in counts
    _, again = by_source['again = wf.submit(run_dir=run_dir, start="2025-01-01", days=4)']
    assert "cached: 4" in again

    stores = sorted(p.name for p in (tmp_path / "runs" / "zarr").iterdir())
    assert stores == [f"2025-01-0{day}.zarr" for day in range(1, 5)]
