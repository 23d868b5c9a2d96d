"""Running: the hash of a task's code, blind to formatting, comments and docstrings.

The hash is taken over the function's abstract syntax tree (read from its source file), with
decorators and docstrings removed, so reformatting the code or editing a comment or a
docstring keeps it, while any change to what the code does changes it. A task's
``code_deps=[helper, ...]`` are hashed with it. Anything else the task calls (other helper
functions, imported modules, data files) is not covered. A function whose source cannot be
read (built in C, or defined in an interactive session) has no code hash ("").
"""

from __future__ import annotations

import ast
import hashlib
import inspect
import textwrap
from collections.abc import Callable, Iterable
from typing import Any

CODE_TAG = "reflow/code/1"


def code_hash(func: Callable[..., Any], deps: Iterable[Callable[..., Any]] = ()) -> str:
    """The SHA-256 of the normalised code of ``func`` and ``deps``; "" when unreadable."""
    digest = hashlib.sha256(CODE_TAG.encode())
    for item in (func, *deps):
        dumped = _normalised(item)
        if dumped is None:
            return ""
        digest.update(b"\0" + dumped.encode())
    return digest.hexdigest()


def _normalised(func: Callable[..., Any]) -> str | None:
    try:
        source = textwrap.dedent(inspect.getsource(func))
        tree = ast.parse(source)
    except (OSError, TypeError, SyntaxError):
        return None
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            if not isinstance(node, ast.ClassDef):
                node.decorator_list = []
            first = node.body[0] if node.body else None
            if (
                isinstance(first, ast.Expr)
                and isinstance(first.value, ast.Constant)
                and isinstance(first.value.value, str)
            ):
                node.body = node.body[1:] or [ast.Pass()]
    return ast.dump(tree, annotate_fields=False, include_attributes=False)
