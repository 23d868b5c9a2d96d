"""One owner for the store's writes and for state names: a scan of the source tree.

- Every ``INSERT``/``UPDATE``/``DELETE`` on ``instances``, ``runs``, ``tasks`` or ``outputs``
  in ``reflow/`` and ``benchmarks/`` is in ``reflow/running/store/``.
- No code in ``reflow/`` spells an instance or run state as a string literal (a whole
  string, or a quoted word inside SQL) outside ``store/states.py``. Docstrings may mention
  states. Two modules are exempt, each for a stated reason:
  ``executors/base.py`` defines ``JobState``, what a scheduler says about a job (another
  concept that shares some words), and ``planning/plans.py`` sits below the store and
  keeps its own two sets of names, checked here to equal the store's. ``WORDS`` lists the
  literals that are words shown to people rather than states.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from reflow.planning import planner
from reflow.running.store.states import FAILED, FINISHED, STOPPED, InstanceState, RunState

ROOT = Path(__file__).resolve().parents[2]
STORE = ROOT / "reflow" / "running" / "store"
STATES = STORE / "states.py"
EXEMPT = {
    ROOT / "reflow" / "running" / "executors" / "base.py": "JobState is another concept",
    ROOT / "reflow" / "planning" / "plans.py": "below the store; checked equal below",
}
WORDS = {
    ("reflow/running/commands/progress.py", "running"): "progress's word for submitted instances",
    ("reflow/running/commands/status.py", "failed"): "status --json's key for the failed elements",
    ("reflow/running/dispatch/snapshot.py", "failed"): "the word naming a failed upstream element",
    ("reflow/planning/elementwise.py", "failed"): "a gather's word for inputs that all failed",
}
"""Literals that are words for people, not states, with the reason."""
NAMES = frozenset({s.value for s in InstanceState} | {s.value for s in RunState})
_WRITE = re.compile(
    r"\b(?:INSERT(?:\s+OR\s+\w+)?\s+INTO|UPDATE|DELETE\s+FROM)\s+(instances|runs|tasks|outputs)\b"
)
_QUOTED = re.compile(r"'(" + "|".join(sorted(NAMES)) + r")'")


def sources(*folders: str) -> list[Path]:
    return sorted(p for folder in folders for p in (ROOT / folder).rglob("*.py"))


def store_writes(text: str) -> list[str]:
    return [m.group(0) for m in _WRITE.finditer(text)]


def state_literals(text: str) -> list[tuple[int, str]]:
    """``(line, literal)`` of every string constant that is or quotes a state name."""
    tree = ast.parse(text)
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Constant) or not isinstance(node.value, str):
            continue
        if id(node) in docstrings:
            continue
        if node.value in NAMES or _QUOTED.search(node.value):
            found.append((node.lineno, node.value))
    return found


OLD_SCHEMAS = {
    ROOT / "benchmarks" / "migration.py": "builds a store of schema version 1, to migrate it",
}
"""Modules that write stores of an older schema, which the store itself never writes."""


def test_only_the_store_writes_runs_instances_tasks_and_outputs() -> None:
    found = {
        str(path.relative_to(ROOT)): writes
        for path in sources("reflow", "benchmarks")
        if STORE not in path.parents
        and path not in OLD_SCHEMAS
        and (writes := store_writes(path.read_text()))
    }
    assert found == {}


def test_no_state_name_is_spelled_outside_the_states_module() -> None:
    found = {}
    for path in sources("reflow"):
        if path == STATES or path in EXEMPT:
            continue
        name = str(path.relative_to(ROOT))
        literals = [(line, text) for line, text in state_literals(path.read_text())
                    if (name, text) not in WORDS]  # fmt: skip
        if literals:
            found[name] = literals
    assert found == {}


def test_the_scans_find_what_they_look_for() -> None:
    sql = "db.execute(\"UPDATE instances SET state = 'done' WHERE run_id = ?\")\n"
    assert store_writes(sql) == ["UPDATE instances"]
    assert store_writes("INSERT OR IGNORE INTO tasks") == ["INSERT OR IGNORE INTO tasks"]
    assert store_writes("DELETE FROM outputs") == ["DELETE FROM outputs"]
    assert store_writes("UPDATE batches SET") == []
    assert state_literals(sql) == [(1, "UPDATE instances SET state = 'done' WHERE run_id = ?")]
    code = 'def f(s):\n    """Returns \'failed\'."""\n    return s == "cancelled"\n'
    assert state_literals(code) == [(3, "cancelled")]


def test_the_planners_state_sets_are_the_stores() -> None:
    assert {s.value for s in FINISHED} == planner.FINISHED_STATES
    assert {s.value for s in FAILED} == planner.FAILED_STATES
    assert {s.value for s in STOPPED} == planner.STOPPED_STATES
