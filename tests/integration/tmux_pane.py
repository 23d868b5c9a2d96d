"""A tmux pane that runs a command in a real pseudo-terminal, for the tests of ``watch``.

tmux gives the view a real pseudo-terminal whose screen a test reads (``capture-pane``) and
whose keyboard it types on (``send-keys``). After the command ends, the pane's shell records
the exit code and ``stty -a``, so a test sees whether the terminal was restored.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

FLOWS = Path(__file__).resolve().parents[1] / "flows"
FLOW = FLOWS / "watch_steps.py"
""" ``work`` elements wait while ``<run_dir>/hold`` exists; element 1 fails at once."""
FAILING = FLOWS / "watch_failures.py"
""" ``fail``'s four elements fail in index order, 0.4 s apart; ``calls`` counts them."""
RETRIES = FLOWS / "retry_steps.py"
""" With ``--fault oserror``, ``work``'s element 1 goes out three times; ``calls`` counts."""
DEADLINE_S = 60
HELP_START = "up/down select"

# CI must run these (scripts/test installs tmux); elsewhere a missing tmux skips them.
WATCH_MARKS = [
    pytest.mark.skipif(
        shutil.which("tmux") is None and not os.environ.get("CI"), reason="tmux is not installed"
    ),
    pytest.mark.usefixtures("watch_env"),
]
"""The marks of a module of ``watch`` tests (``pytestmark = WATCH_MARKS``)."""


def wait_until(predicate: Callable[[], Any], what: str) -> Any:
    deadline = time.monotonic() + DEADLINE_S
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


class Pane:
    """A tmux pane on a private server, running one command, then recording how it ended."""

    def __init__(self, folder: Path, command: list[str], *, width: int = 100, height: int = 30):
        self.folder = folder
        self.socket = folder / "tmux.sock"
        script = folder / "pane.sh"
        # The shell catches Ctrl-C (a handler, not an ignore, which the command would
        # inherit) so that it outlives the command and records how the command ended.
        script.write_text(
            "trap : INT\n"
            f"{shlex.join(command)}\n"
            f"echo $? > {shlex.quote(str(folder / 'code'))}\n"
            f"stty -a > {shlex.quote(str(folder / 'stty'))}\n"
            "echo watch has ended\n"
            "sleep 600\n"
        )
        self.tmux(
            "new-session", "-d", "-s", "watch", "-x", str(width), "-y", str(height),
            f"sh {shlex.quote(str(script))}",
        )  # fmt: skip

    def tmux(self, *args: str) -> str:
        env = {**os.environ, "TERM": os.environ.get("TERM", "xterm")}
        done = subprocess.run(
            ["tmux", "-S", str(self.socket), *args],
            capture_output=True, text=True, env=env, timeout=DEADLINE_S, check=True,
        )  # fmt: skip
        return done.stdout

    def screen(self) -> list[str]:
        return self.tmux("capture-pane", "-p", "-t", "watch").splitlines()

    def wait_for(self, predicate: Callable[[list[str]], Any], what: str) -> list[str]:
        def check() -> list[str] | None:
            lines = self.screen()
            return lines if predicate(lines) else None

        try:
            return wait_until(check, what)  # type: ignore[no-any-return]
        except AssertionError as err:
            raise AssertionError(f"{err}; the screen:\n" + "\n".join(self.screen())) from None

    def keys(self, *keys: str) -> None:
        self.tmux("send-keys", "-t", "watch", *keys)

    def exit_code(self) -> int:
        code = wait_until(lambda: (self.folder / "code").exists(), "the view to end")
        assert code
        return int((self.folder / "code").read_text())

    def close(self) -> None:
        subprocess.run(
            ["tmux", "-S", str(self.socket), "kill-server"], capture_output=True, check=False
        )
