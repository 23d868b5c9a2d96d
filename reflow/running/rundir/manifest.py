"""Running: the run manifest (``reflow/run/1``): built at submit, read by all.

A run's manifest says what the run is, so that a dispatcher turn, a worker or the ``reflow``
script can work from the run directory alone: the workflow's description (the graph,
without importing user code), the parameters as tagged JSON, where the flow's code lives
(a module name, the file, the submitting process's ``sys.path``), the interpreter (and the
config setting it came from), the config's resource defaults, the config's compute-node
environment (``[executor] setup`` and ``env``), the folder submit ran in and the warnings
submit printed (``warnings``, absent from runs of older reflows). It is written
before the run is recorded in the store, so a run the store knows always has a manifest.
Only ``retry`` writes it again, atomically, and only the options that name no identity: the
tasks' resources, the resource defaults and the interpreter.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from reflow.definition.description import describe, resources_from_json, resources_json
from reflow.definition.environment import Environment
from reflow.definition.errors import StoreError, UsageError
from reflow.definition.graph import Graph
from reflow.definition.resources import Resources
from reflow.running.rundir.layout import RunLayout, write_atomic

MANIFEST_FORMAT = "reflow/run/1"


class SubmittableWorkflow(Protocol):
    """What submission needs of a workflow: its graph, and where a worker can import it."""

    name: str
    defined_in: str
    defined_file: str | None
    defined_as: str | None

    def graph(self) -> Graph:
        """The validated graph."""
        ...


def build_manifest(
    wf: SubmittableWorkflow,
    graph: Graph,
    run_id: str,
    values: Mapping[str, Any],
    *,
    python: str | None = None,
    python_from: str | None = None,
    defaults: Resources | None = None,
    fingerprint: str | None = None,
    environment: Environment | None = None,
) -> dict[str, Any]:
    """The run's manifest: its description, parameters, flow source, interpreter and folder.

    ``python_from`` says where a configured ``python`` was set (None: the submitting
    interpreter); ``defaults`` are the config's resource defaults, which the run's tasks ask
    for where they set nothing themselves. ``fingerprint`` is the config's ``[cache]
    fingerprint``: how workers fingerprint the files of tasks that set no ``fingerprint=``;
    ``environment`` is the config's ``[executor] setup`` and ``env``, which every task's own
    come after.
    """
    base = environment or Environment()
    return {
        "format": MANIFEST_FORMAT,
        "run_id": run_id,
        "workflow": wf.name,
        "description": describe(graph),
        "params": dict(values),
        "source": flow_source(wf),
        "python": python or sys.executable,
        "python_from": python_from if python else None,
        "defaults": resources_json(defaults or Resources()),
        "cwd": str(Path.cwd()),
        "cache": {"fingerprint": fingerprint or "stat"},
        "environment": base.to_json(),
    }


def submitted_from(manifest: Mapping[str, Any]) -> str:
    """The folder submit ran in: workers start there, and relative paths are below it."""
    return str(manifest.get("cwd") or Path.cwd())


def manifest_environment(manifest: Mapping[str, Any]) -> Environment:
    """The config's environment recorded at submit (empty for a run from before it was)."""
    return Environment.from_json(manifest.get("environment"))


def flow_source(wf: SubmittableWorkflow) -> dict[str, Any]:
    """Where a worker finds the workflow: a flow file, or an importable module."""
    module = wf.defined_in
    file = wf.defined_file
    if module == "__main__" and wf.defined_as:
        module = wf.defined_as  # run as ``python -m package.flow``: import it by that name
    if module == "__main__" and not file:
        raise UsageError(
            f"workflow {wf.name!r} is defined in a notebook or REPL, where a worker cannot "
            "import it",
            value=wf.name,
            hint="move the tasks into a module (e.g. flow.py) and import the workflow from it",
        )
    if module == "__main__" and file and file.startswith("<"):
        # ``python - <<EOF`` names the script "<stdin>": there is no file for a worker to run
        raise UsageError(
            f"workflow {wf.name!r} was read from standard input ({file}), where a worker "
            "cannot import it",
            value=file,
            hint="save the script as a file (e.g. flow.py) and run: python flow.py submit ...",
        )
    sys_path = [str(Path.cwd())]
    if file:
        top = Path(file).resolve().parent
        for _ in range(module.count(".")):
            top = top.parent
        sys_path.insert(0, str(top))
    return {
        "module": module,
        "file": str(Path(file).resolve()) if module == "__main__" and file else None,
        "sys_path": sys_path,
    }


def write_manifest(layout: RunLayout, manifest: Mapping[str, Any]) -> None:
    """Write the run's manifest atomically."""
    write_atomic(layout.manifest, json.dumps(manifest, indent=1) + "\n")


def task_resources(
    manifest: Mapping[str, Any], fallback: Resources | None = None
) -> dict[str, Resources]:
    """What each task's submissions ask for: its resources over the run's recorded defaults.

    ``fallback`` stands for the defaults of a run recorded before its manifest held them.
    """
    recorded = manifest.get("defaults")
    defaults = (fallback or Resources()) if recorded is None else resources_from_json(recorded)
    return {
        task["name"]: resources_from_json(task["resources"]).over(defaults)
        for task in manifest["description"]["tasks"]
    }


def asked_resources(manifest: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    """What each task's next submissions ask for, only the options that are set.

    As the decorator takes them (``{"mem": "1G"}``).
    """
    return {task: asked.shown() for task, asked in task_resources(manifest).items()}


def manifest_stamp(layout: RunLayout) -> tuple[int, int, int] | None:
    """What changes when the manifest is written again (``retry``): inode, time, size."""
    try:
        stat = layout.manifest.stat()
    except OSError:
        return None
    return (stat.st_ino, stat.st_mtime_ns, stat.st_size)


def read_manifest(layout: RunLayout) -> dict[str, Any]:
    """Return the run's manifest.

    Raises:
        StoreError: The manifest is missing, not JSON, of another format or another run.
    """
    path = layout.manifest
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise StoreError(
            f"cannot read the run manifest {path}: {err.strerror or err}",
            value=str(path),
            hint="check --run-dir and the run id; list the runs",
            command=("runs", "--run-dir", str(layout.root)),
        ) from err
    except ValueError as err:
        raise StoreError(
            f"the run manifest {path} is not JSON: {err}",
            value=str(path),
            hint="the run cannot be read or resumed; submit it again",
        ) from err
    if not isinstance(data, dict) or data.get("format") != MANIFEST_FORMAT:
        found = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise StoreError(
            f"the run manifest {path} has format {found!r}, not {MANIFEST_FORMAT!r}",
            value=found,
            hint="run it with the reflow version that submitted it",
        )
    if data.get("run_id") != layout.run_id:
        raise StoreError(
            f"the run manifest {path} belongs to run {data.get('run_id')!r}, not {layout.run_id!r}",
            value=data.get("run_id"),
            hint="the run's folder was copied or renamed; submit the run again",
        )
    return data
