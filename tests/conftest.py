"""Options and fixtures shared by every test folder: golden files.

A golden file in ``tests/golden/`` holds the expected text of a rendering (a batch script,
``describe`` JSON, a DAG). Tests compare with it through the ``golden`` fixture, and the files
change only when pytest runs with ``--update-golden``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

GOLDEN_DIR = Path(__file__).parent / "golden"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden",
        action="store_true",
        default=False,
        help="rewrite the expected files in tests/golden/ from what the tests render",
    )


class Golden:
    """Compares a rendering with ``tests/golden/<name>``, or rewrites it when updating."""

    def __init__(self, *, directory: Path, update: bool) -> None:
        self.directory = directory
        self.update = update

    def __call__(self, name: str, actual: str) -> None:
        path = self.directory / name
        if self.update:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(actual.encode("utf-8"))
            return
        if not path.exists():
            pytest.fail(f"golden file tests/golden/{name} is missing; run pytest --update-golden")
        expected = path.read_bytes().decode("utf-8")
        assert actual == expected, f"{name} differs; if the change is intended, --update-golden"


@pytest.fixture
def golden(request: pytest.FixtureRequest) -> Golden:
    """Compare text with a file in ``tests/golden/`` (rewritten with ``--update-golden``)."""
    return Golden(directory=GOLDEN_DIR, update=bool(request.config.getoption("--update-golden")))
