"""Layers: imports point down only, and the pure layers touch no sqlite, process, env or clock."""

import ast
from pathlib import Path

import pytest

import reflow

PACKAGE = Path(reflow.__file__).parent
FORBIDDEN_IN_PURE_LAYERS = {"sqlite3", "subprocess", "socket", "time", "multiprocessing"}
FORBIDDEN_ATTRIBUTES = {
    ("os", "environ"),
    ("os", "getenv"),
    ("os", "putenv"),
    ("os", "system"),
    ("datetime", "now"),
    ("datetime", "utcnow"),
    ("datetime", "today"),
    ("date", "today"),
}
MAY_IMPORT = {
    "definition": {"definition"},
    "planning": {"definition", "planning"},
    "running": {"definition", "planning", "running"},
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def layer_of(module: str) -> str:
    """``definition``, ``planning``, ``running`` or ``facade`` (the package and its top modules)."""
    parts = module.split(".")
    if len(parts) > 1 and parts[1] in ("definition", "planning", "running"):
        return parts[1]
    return "facade"


def imports_of(path: Path, module: str | None = None) -> list[str]:
    """Every module ``path`` imports, anywhere in it (lazy imports and TYPE_CHECKING too)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = (module or module_name(path)).split(".")
    if path.name != "__init__.py":
        package.pop()
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            found.append(module)
            if module == "reflow":
                found.extend(f"reflow.{alias.name}" for alias in node.names)
    return found


MODULES = sorted(PACKAGE.rglob("*.py"))
LAYERED = [p for p in MODULES if layer_of(module_name(p)) in MAY_IMPORT]
PURE = [p for p in LAYERED if layer_of(module_name(p)) != "running"]


def test_the_walk_finds_every_layer():
    layers = {layer_of(module_name(p)) for p in MODULES}
    assert layers == {"definition", "planning", "running", "facade"}
    assert any(module_name(p) == "reflow.definition.graph" for p in PURE)


def test_module_names_and_relative_imports_resolve():
    assert module_name(PACKAGE / "definition" / "__init__.py") == "reflow.definition"
    assert layer_of("reflow.workflow") == "facade"
    assert layer_of("reflow") == "facade"


@pytest.mark.parametrize("path", LAYERED, ids=lambda p: module_name(p))
def test_layers_import_only_themselves_and_lower_layers(path):
    mine = layer_of(module_name(path))
    upward = [
        module
        for module in imports_of(path)
        if module.split(".")[0] == "reflow" and layer_of(module) not in MAY_IMPORT[mine]
    ]
    assert upward == [], f"{module_name(path)} ({mine}) imports {upward}"


@pytest.mark.parametrize("path", PURE, ids=lambda p: module_name(p))
def test_pure_layers_import_no_io_or_clock_module(path):
    bad = [m for m in imports_of(path) if m.split(".")[0] in FORBIDDEN_IN_PURE_LAYERS]
    assert bad == [], f"{module_name(path)} imports {bad}"


def forbidden_uses(path: Path) -> set[tuple[str, str]]:
    """The ``(name, attribute)`` pairs of ``FORBIDDEN_ATTRIBUTES`` that ``path`` uses."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    used = {
        (node.value.id, node.attr)
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
    }
    from_imports = {
        (node.module or "", alias.name)
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    }
    return (used | from_imports) & FORBIDDEN_ATTRIBUTES


@pytest.mark.parametrize("path", PURE, ids=lambda p: module_name(p))
def test_pure_layers_read_no_environment_and_no_clock(path):
    bad = forbidden_uses(path)
    assert bad == set(), f"{module_name(path)} uses {sorted(bad)}"


def test_the_checks_catch_violations(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text(
        "import time\n"
        "from os import environ\n"
        "import os\n"
        "x = os.getenv('HOME')\n"
        "from ..running import store\n"
        "from . import wiring\n"
        "def later():\n"
        "    from reflow.workflow import Workflow\n"
        "    from reflow import Run\n",
        encoding="utf-8",
    )
    imported = imports_of(bad, "reflow.definition.bad")
    assert imported == [
        "time", "os", "os", "reflow.running", "reflow.definition", "reflow.workflow", "reflow",
        "reflow.Run",
    ]  # fmt: skip
    assert [layer_of(m) for m in imported if m.startswith("reflow")] == [
        "running", "definition", "facade", "facade", "facade",
    ]  # fmt: skip
    assert forbidden_uses(bad) == {("os", "environ"), ("os", "getenv")}
