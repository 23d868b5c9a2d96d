"""Running: read a run's manifest and import the user's flow in a worker. No planning here.

The run manifest (``RunLayout.manifest``, format ``reflow/run/1``) says where the workflow
was defined: a module name, the file it came from, and the submitting process's
``sys.path``. ``load_workflow`` imports that code again in the worker process and returns
the ``Workflow`` object of the run's name. A flow file is never imported as ``__main__``, so
its ``if __name__ == "__main__":`` block (the CLI) does not run on a compute node.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

from reflow.definition.errors import UsageError
from reflow.definition.flow import Flow


class FlowImportError(UsageError):
    """The workflow's code cannot be imported, or defines no workflow of the run's name.

    Attributes:
        cause_type: The type name of the underlying exception (e.g. ``"ImportError"``), or
            ``"FlowImportError"`` when the import worked but the workflow is not there.
    """

    def __init__(self, message: str, *, cause_type: str, hint: str | None = None) -> None:
        self.cause_type = cause_type
        super().__init__(message, hint=hint)


def load_workflow(manifest: Mapping[str, Any]) -> Flow:
    """Import the flow named by ``manifest["source"]`` and return its workflow.

    The result is the module-level ``Workflow`` named ``manifest["workflow"]``, typed as its
    base class ``Flow`` so that this layer does not import the facade above it (a plain
    ``Flow`` of that name is taken only when no ``Workflow`` has it).

    A module other than ``__main__`` is imported by name (so a flow inside a package keeps
    its relative imports); a flow run as a script is imported from its file under a name
    that is not ``__main__``. The file's folder and the recorded ``sys_path`` entries are
    put in front of ``sys.path`` first.

    Raises:
        FlowImportError: The source cannot be imported (its message and ``cause_type`` say
            why, the original exception is chained), or it defines no ``Workflow`` named
            ``manifest["workflow"]``.
    """
    source = manifest.get("source") or {}
    name = str(manifest.get("workflow", ""))
    module_name = str(source.get("module") or "")
    file = source.get("file")
    _extend_sys_path([str(Path(file).parent)] if file else [], source.get("sys_path") or [])
    if module_name and module_name != "__main__":
        module = _import_by_name(module_name, file)
    elif file:
        module = _import_file(Path(file))
    else:
        raise FlowImportError(
            f"workflow {name!r} was defined in an interactive session (no module or file)",
            cause_type="FlowImportError",
            hint="define the workflow in a .py file and import it from the notebook",
        )
    return _find_workflow(module, name)


def load_workflow_anew(manifest: Mapping[str, Any]) -> Flow:
    """``load_workflow`` as the flow's files read now, leaving this process as it was.

    For ``retry``, which runs in the user's own process (a notebook may have imported the
    flow before it was edited): the flow's module is imported again even when it is already
    imported, and afterwards ``sys.path`` and ``sys.modules`` hold what they held before (the
    modules the flow imports stay imported).

    Raises:
        FlowImportError: As ``load_workflow``.
    """
    module_name = str((manifest.get("source") or {}).get("module") or "")
    path = list(sys.path)
    prior = dict(sys.modules)
    if module_name != "__main__":
        sys.modules.pop(module_name, None)
    loaded: list[str] = [module_name]
    try:
        flow = load_workflow(manifest)
        loaded.extend({spec.module for spec in flow.tasks.values()})  # the file's own name
    finally:
        sys.path[:] = path
        for name in loaded:
            if name in prior:
                sys.modules[name] = prior[name]
                parent, _, child = name.rpartition(".")
                if parent in sys.modules:  # the import rebound the package's attribute too
                    setattr(sys.modules[parent], child, prior[name])
            elif name != "__main__":
                sys.modules.pop(name, None)
    return flow


def _extend_sys_path(front: list[str], recorded: list[Any]) -> None:
    for entry in reversed([*front, *(str(p) for p in recorded)]):
        if entry not in sys.path:
            sys.path.insert(0, entry)


def _import_by_name(module_name: str, file: str | None) -> ModuleType:
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        missing = err.name or ""
        if file and (module_name == missing or module_name.startswith(missing + ".")):
            return _import_file(Path(file))
        raise _import_failed(module_name, err) from err
    except (Exception, SystemExit) as err:
        raise _import_failed(module_name, err) from err


def _import_file(path: Path) -> ModuleType:
    module_name = _module_name_for(path)
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise FlowImportError(
            f"cannot import the flow file {path}: not a Python source file",
            cause_type="ImportError",
        )
    module = importlib.util.module_from_spec(spec)
    # Registered before it runs, as a normal import would: dataclasses and typing look
    # their module up in sys.modules while the file executes.
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except FileNotFoundError as err:
        sys.modules.pop(module_name, None)
        raise _import_failed(str(path), err, hint="the flow file moved or was deleted") from err
    except (Exception, SystemExit) as err:
        sys.modules.pop(module_name, None)
        raise _import_failed(str(path), err) from err
    return module


def _module_name_for(path: Path) -> str:
    """The flow file's stem, unless that name is taken or not an identifier."""
    stem = path.stem
    if stem.isidentifier() and stem != "__main__" and stem not in sys.modules:
        return stem
    safe = "".join(c if c.isalnum() else "_" for c in stem)
    return f"_reflow_flow_{safe}"


def _import_failed(what: str, err: BaseException, hint: str | None = None) -> FlowImportError:
    return FlowImportError(
        f"cannot import {what}: {type(err).__name__}: {err}",
        cause_type=type(err).__name__,
        hint=hint,
    )


def _find_workflow(module: ModuleType, name: str) -> Flow:
    found = [v for v in vars(module).values() if isinstance(v, Flow)]
    # A Workflow (a subclass) wins over a plain Flow that happens to share its name.
    for flow in sorted(found, key=lambda f: type(f) is Flow):
        if flow.name == name:
            return flow
    others = sorted({w.name for w in found})
    raise FlowImportError(
        f"{module.__name__} ({getattr(module, '__file__', None)}) defines no Workflow named "
        f"{name!r}" + (f"; it defines {others}" if others else ""),
        cause_type="FlowImportError",
        hint="keep the Workflow object at module level under the name it was submitted with",
    )
