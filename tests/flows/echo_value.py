"""A flow that records exactly what its task received, for the hostile-value tests.

``record`` writes the JSON of its parameters into ``<run_dir>/received.json`` and returns the
text, so a test compares the value given with the value that reached the task.
"""

import json
from pathlib import Path
from typing import Annotated

from reflow import Param, RunDir, Workflow

wf = Workflow("echo")


@wf.job()
def record(
    text: Annotated[str, Param(help="any text")],
    where: Annotated[Path, Param(help="any path", output=True)] = Path("."),
    words: Annotated[list[str], Param(help="any words")] = ["plain"],  # noqa: B006
    run_dir: RunDir = RunDir(),
) -> str:
    received = {"text": text, "where": str(where), "words": words}
    (run_dir / "received.json").write_text(json.dumps(received), encoding="utf-8")
    return text


if __name__ == "__main__":
    raise SystemExit(wf.cli())
