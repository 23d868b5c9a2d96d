"""A headless Chromium driven over the DevTools protocol on a pipe, for the docs site test.

`--remote-debugging-pipe` makes Chromium read protocol messages (JSON, each ended by a NUL
byte) on its file descriptor 3 and write them on 4: no WebDriver and no websocket package.
Host names other than 127.0.0.1 resolve to nothing, so a page can reach no outside server,
and every request the page makes is recorded from the protocol's `Network` events.
"""

from __future__ import annotations

import fcntl
import json
import os
import select
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

BLOCK_OTHER_HOSTS = "MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"
_MOVE_FDS = (
    "import os, sys; os.dup2(int(sys.argv[1]), 3); os.dup2(int(sys.argv[2]), 4); "
    "os.execvp(sys.argv[3], sys.argv[3:])"
)


def find_chromium() -> str | None:
    """The Chromium (or Chrome) executable on PATH, if any."""
    names = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
    return next((path for name in names if (path := shutil.which(name)) is not None), None)


class DevToolsError(RuntimeError):
    """The browser answered a protocol call with an error, or closed its pipe."""


class Browser:
    """One page of a running Chromium; requests made by the page are kept in `requested_urls`."""

    def __init__(self, *, to_browser: int, from_browser: int) -> None:
        self._to_browser = to_browser
        self._from_browser = from_browser
        self._buffer = b""
        self._next_id = 0
        self._session_id: str | None = None
        self.requested_urls: list[str] = []

    def call(
        self, method: str, params: dict[str, Any] | None = None, *, timeout_s: float = 30
    ) -> dict[str, Any]:
        """Send one protocol command to the page (or the browser before `open_page`)."""
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if self._session_id is not None:
            message["sessionId"] = self._session_id
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout_s
        while True:
            reply = self._read(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise DevToolsError(f"{method}: {reply['error']}")
                result: dict[str, Any] = reply.get("result", {})
                return result
            if reply.get("method") == "Network.requestWillBeSent":
                self.requested_urls.append(reply["params"]["request"]["url"])

    def open_page(self) -> None:
        """Open a blank page, attach to it and record its network requests."""
        target = self.call("Target.createTarget", {"url": "about:blank"})
        attached = self.call(
            "Target.attachToTarget", {"targetId": target["targetId"], "flatten": True}
        )
        self._session_id = attached["sessionId"]
        self.call("Network.enable")
        self.call("Page.enable")

    def evaluate(self, expression: str) -> Any:
        """The JSON value of a JavaScript expression in the page."""
        result = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        if "exceptionDetails" in result:
            raise DevToolsError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression: str, *, timeout_s: float) -> bool:
        """Poll a JavaScript expression until it is true; False when the deadline passes."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.evaluate(expression) is True:
                return True
            time.sleep(0.1)
        return False

    def document(self) -> dict[str, Any]:
        """The whole DOM tree, closed shadow roots included."""
        tree = self.call("DOM.getDocument", {"depth": -1, "pierce": True})
        root: dict[str, Any] = tree["root"]
        return root

    def _read(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            remaining = deadline - time.monotonic()
            readable, _, _ = select.select([self._from_browser], [], [], max(remaining, 0))
            if not readable:
                raise TimeoutError("the browser did not answer in time")
            chunk = os.read(self._from_browser, 1 << 16)
            if not chunk:
                raise DevToolsError("the browser closed its DevTools pipe")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        parsed: dict[str, Any] = json.loads(message)
        return parsed


def _high_fd(fd: int) -> int:
    """A copy of `fd` numbered 10 or above, so that moving it to 3 or 4 clobbers neither."""
    copy = fcntl.fcntl(fd, fcntl.F_DUPFD, 10)
    os.close(fd)
    return copy


@contextmanager
def launched(executable: str, *, profile_dir: Path) -> Iterator[Browser]:
    """Start a headless Chromium that resolves no host but 127.0.0.1; close it on exit."""
    browser_reads, we_write = map(_high_fd, os.pipe())
    we_read, browser_writes = map(_high_fd, os.pipe())
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        f"--host-resolver-rules={BLOCK_OTHER_HOSTS}",
        f"--user-data-dir={profile_dir}",
        "--remote-debugging-pipe",
        "about:blank",
    ]
    # A small Python moves the pipe ends to the descriptors 3 and 4 and becomes Chromium.
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            _MOVE_FDS,
            str(browser_reads),
            str(browser_writes),
            executable,
            *flags,
        ],
        pass_fds=(browser_reads, browser_writes),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(browser_reads)
    os.close(browser_writes)
    browser = Browser(to_browser=we_write, from_browser=we_read)
    try:
        yield browser
    finally:
        try:
            os.close(we_write)  # Chromium exits when its end of the pipe closes
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        finally:
            os.close(we_read)
