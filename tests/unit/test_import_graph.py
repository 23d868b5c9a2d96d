"""The import graph of ``reflow``: no cycles, rooms keep their rules, lazy imports say why."""

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

import reflow

PACKAGE = Path(reflow.__file__).parent
FACADES = {
    "reflow",
    "reflow.cli",
    "reflow.run",
    "reflow.workflow",
    "reflow.running.commands.handlers",
    "reflow.running.worker.last_out",
}
"""Where lazy imports of reflow modules may be: the facades, the command dispatcher (a
command loads only what it runs, so ``status`` does not load the submit path), and the
worker's last array task (only it loads the dispatcher, to run a turn in its process)."""
SHARED = {"codehash", "config", "fingerprints", "process", "ranges"}
"""Rooms of ``reflow.running`` every other room may import."""
ROOMS = {
    "rundir": set(),
    "store": {"rundir"},
    "worker": {"rundir", "dispatch.slurm_chain"},
    "executors": {"rundir", "worker.command"},
    "dispatch": {"store", "rundir", "executors", "worker"},
    "commands": {"dispatch", "store", "rundir", "executors", "worker"},
    "config": {"config_file", "config_values"},
    "config_file": set(),
    "config_values": set(),
    "process": set(),
    "ranges": set(),
    "fingerprints": set(),
    "codehash": set(),
}
"""What each room of ``reflow.running`` may import besides itself and ``SHARED``."""


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py")) if p.name != "__main__.py"}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _walk(tree: ast.AST) -> Iterator[tuple[ast.Import | ast.ImportFrom, bool]]:
    """Every import outside ``if TYPE_CHECKING:``, and whether it is inside a function."""

    def visit(
        node: ast.AST, in_function: bool
    ) -> Iterator[tuple[ast.Import | ast.ImportFrom, bool]]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                continue
            if isinstance(child, ast.Import | ast.ImportFrom):
                yield child, in_function
            inner = in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
            yield from visit(child, inner)

    yield from visit(tree, False)


def _targets(module: str, node: ast.Import | ast.ImportFrom) -> list[str]:
    """The ``reflow`` modules an import statement loads (a submodule named by ``from`` too)."""
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        package = module.split(".")
        if MODULES[module].name != "__init__.py":
            package.pop()
        base = package[: len(package) - node.level + 1] if node.level else []
        source = ".".join([*base, *([node.module] if node.module else [])])
        names = [source]
        names += [f"{source}.{a.name}" for a in node.names if f"{source}.{a.name}" in MODULES]
    return [name for name in names if name in MODULES]


def import_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        graph[module] = {t for node, _ in _walk(tree) for t in _targets(module, node)}
        graph[module].discard(module)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a list of modules, or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def room_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[2] if len(parts) > 2 and parts[1] == "running" else None


def test_reflow_has_no_import_cycle():
    assert find_cycle(import_graph()) is None


def test_the_cycle_finder_finds_one():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycle(graph) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_the_graph_sees_lazy_imports_and_submodules():
    graph = import_graph()
    assert "reflow.running.commands.handlers" in graph["reflow.cli"]  # a function-local import
    assert "reflow.running.store.sqlite" in graph["reflow.running.dispatch.dispatcher"]


@pytest.mark.parametrize("module", sorted(m for m in MODULES if room_of(m)))
def test_rooms_of_running_import_by_their_rules(module):
    mine = room_of(module)
    assert mine in ROOMS, f"{module}: a new room of reflow.running needs a rule in ROOMS"
    allowed = ROOMS[mine] | SHARED | {mine}
    bad = []
    for target in import_graph()[module]:
        room = room_of(target)
        if room is None:
            continue
        inner = ".".join(target.split(".")[2:])
        if not any(inner == rule or inner.startswith(rule + ".") for rule in allowed):
            bad.append(target)
    assert bad == [], f"{module} ({mine}) may not import {bad}"


def _has_reason(lines: list[str], index: int) -> bool:
    """A comment on the import's line, or above the block of imports it stands in."""
    if "#" in lines[index]:
        return True
    while index > 0 and (
        lines[index - 1].strip().startswith(("import ", "from ")) or not lines[index - 1].strip()
    ):
        index -= 1
    return lines[index - 1].strip().startswith("#")


@pytest.mark.parametrize("module", sorted(MODULES))
def test_function_local_imports_are_explained(module):
    """Lazy imports stay only where they keep startup fast, each with a comment saying so."""
    path = MODULES[module]
    lines = path.read_text(encoding="utf-8").splitlines()
    tree = ast.parse("\n".join(lines))
    for node, in_function in _walk(tree):
        if not in_function:
            continue
        if module not in FACADES:
            assert not _targets(module, node), (
                f"{module}:{node.lineno}: only the facades import reflow modules lazily"
            )
        assert _has_reason(lines, node.lineno - 1), (
            f"{module}:{node.lineno}: say in a comment why this import is lazy"
        )
