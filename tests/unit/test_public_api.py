"""Public API: documented names, small modules, and no banned calls anywhere in the package."""

import inspect
import io
import re
import tokenize
from pathlib import Path

import pytest

import reflow

PACKAGE = Path(reflow.__file__).parent
MODULES = sorted(PACKAGE.rglob("*.py"))
MAX_LINES = 400


def test_all_names_exist():
    missing = [name for name in reflow.__all__ if not hasattr(reflow, name)]
    assert missing == []


def test_version_is_a_version_string():
    assert re.fullmatch(r"\d+\.\d+\.\d+([.-]?\w+)?", reflow.__version__)


@pytest.mark.parametrize("name", [n for n in reflow.__all__ if not n.startswith("__")])
def test_public_name_has_its_own_docstring(name):
    obj = getattr(reflow, name)
    assert (obj.__dict__.get("__doc__") or "").strip(), f"{name} has no docstring"


@pytest.mark.parametrize("name", [n for n in reflow.__all__ if inspect.isclass(getattr(reflow, n))])
def test_public_methods_have_docstrings(name):
    cls = getattr(reflow, name)
    undocumented = [
        attr
        for attr, value in vars(cls).items()
        if not attr.startswith("_")
        and (inspect.isfunction(value) or isinstance(value, property))
        and not (inspect.getdoc(value) or "").strip()
    ]
    assert undocumented == [], f"{name}: {undocumented}"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_module_is_under_the_line_limit(path):
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{path.relative_to(PACKAGE)} has {lines} lines"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_module_opens_with_a_docstring(path):
    tokens = _code_tokens(path.read_text(encoding="utf-8"))
    if not tokens:
        return  # an empty __init__.py
    assert tokens[0].type == tokenize.STRING, f"{path.relative_to(PACKAGE)} has no docstring"


def _code_tokens(source: str) -> list[tokenize.TokenInfo]:
    skip = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT,
            tokenize.DEDENT, tokenize.ENCODING, tokenize.ENDMARKER}  # fmt: skip
    return [t for t in tokenize.generate_tokens(io.StringIO(source).readline) if t.type not in skip]


# Modules that run code while loading data, and calls that hand a string to a shell.
UNSAFE_MODULES = ("pickle", "cPickle", "marshal", "shelve", "dill", "cloudpickle", "jsonpickle")
SHELL_CALLS = {
    ("os", "system"),
    ("os", "popen"),
    ("subprocess", "getoutput"),
    ("subprocess", "getstatusoutput"),
}


def banned_calls(source: str) -> list[str]:
    """``shell=True``, ``pickle`` and kin, ``eval(``/``exec(`` and shell calls such as
    ``os.system`` in code (not in strings or comments)."""
    tokens = [t.string for t in _code_tokens(source) if t.type in (tokenize.NAME, tokenize.OP)]
    found = []
    for i, token in enumerate(tokens):
        following = tokens[i + 1 : i + 3]
        if token == "shell" and following == ["=", "True"]:
            found.append("shell=True")
        elif token in UNSAFE_MODULES:
            found.append(token)
        elif following[:1] == ["."] and (token, *following[1:]) in SHELL_CALLS:
            found.append(f"{token}.{following[1]}")
        elif token in ("eval", "exec") and following[:1] == ["("]:
            preceding = tokens[i - 1] if i else ""
            if preceding not in (".", "def"):
                found.append(f"{token}(")
    return found


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_module_has_no_banned_calls(path):
    assert banned_calls(path.read_text(encoding="utf-8")) == []


def test_banned_calls_are_found_in_code_but_not_in_text():
    source = (
        '"""Values are JSON, never pickle; no shell=True, no eval(x)."""\n'
        "import pickle\n"
        "subprocess.run(cmd, shell=True)\n"
        "eval('1')\n"
        "os.system('ls')\n"
        "ast.literal_eval('1')  # eval( in a comment\n"
        "subprocess.getoutput('ls'); os.popen('ls'); import shelve\n"
        "exec(code); x.exec(1)  # a method named exec is fine\n"
    )
    assert banned_calls(source) == [
        "pickle",
        "shell=True",
        "eval(",
        "os.system",
        "subprocess.getoutput",
        "os.popen",
        "shelve",
        "exec(",
    ]
