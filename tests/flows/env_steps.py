"""A flow whose tasks run in an environment: ``setup=`` lines and hostile ``env=`` values.

``probe`` finds ``envtool`` only through the ``PATH`` its setup line makes (``bin/`` in the
folder ``submit`` ran in), records what it saw in ``<run_dir>/seen.json`` and counts its calls;
``broken``'s second setup line fails, so its function must never run. A hostile value that a
shell would execute creates ``pwned`` in the working directory. ``prepare`` sets a test's
folder up (the tool, and a config file with ``[executor] setup`` and ``env``) and
``expected_env`` is what ``probe`` must then see.
"""

import json
import os
import subprocess
import textwrap
from pathlib import Path
from typing import Annotated

from reflow import Result, RunDir, Workflow

wf = Workflow("envflow")

HOSTILE = {
    "DOLLAR": "$(touch pwned)",
    "TICKS": "`touch pwned`",
    "QUOTES": "'\"; touch pwned; echo x",
    "NEWLINE": "a\nb",
    "UNICODE": "é ☃",
    "EMPTY": "",
}
SEEN = [*HOSTILE, "SHARED", "NUMBER", "FROM_CONFIG", "ORDER"]
CONFIG = """
[executor]
setup = ['export ORDER=config']

[executor.env]
SHARED = "{shared}"
FROM_CONFIG = "{shared}"
"""


def prepare(folder: Path, *, shared: str = "config") -> None:
    """A tool in ``bin/`` for the setup line to put on ``PATH``, and a config file."""
    tools = folder / "bin"
    tools.mkdir(exist_ok=True)
    (tools / "envtool").write_text("#!/bin/sh\necho from envtool\n")
    (tools / "envtool").chmod(0o755)
    config = folder / "config" / "reflow" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(textwrap.dedent(CONFIG).format(shared=shared))


def expected_env() -> dict[str, str]:
    """What ``probe`` sees after ``prepare``."""
    return {
        **HOSTILE,
        "SHARED": "task",  # the task's variable replaces the config's
        "NUMBER": "7",
        "FROM_CONFIG": "config",
        "ORDER": "config,task",  # the config's setup lines run first
    }


def count(run_dir: Path, task: str) -> None:
    with (run_dir / f"{task}.calls").open("a") as handle:
        handle.write("call\n")


@wf.job(
    setup=['export PATH="$PWD/bin:$PATH"', 'export ORDER="$ORDER,task"'],
    env={**HOSTILE, "SHARED": "task", "NUMBER": 7},
)
def probe(run_dir: RunDir = RunDir()) -> list[str]:
    count(run_dir, "probe")
    tool = subprocess.run(["envtool"], capture_output=True, text=True, check=True).stdout
    seen = {name: os.environ.get(name) for name in SEEN}
    (run_dir / "seen.json").write_text(json.dumps({"tool": tool.strip(), "env": seen}))
    return ["a", "b"]


@wf.array_job(setup=["true", "nosuch_module_cmd load cdo"])
def broken(item: Annotated[str, Result(step="probe")], run_dir: RunDir = RunDir()) -> str:
    count(run_dir, "broken")
    return item


if __name__ == "__main__":
    raise SystemExit(wf.cli())
