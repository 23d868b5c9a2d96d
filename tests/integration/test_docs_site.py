"""The docs site, built with `mkdocs build --strict`, draws its diagrams with nothing from outside.

A headless Chromium reads each page with a ```mermaid block from a server on 127.0.0.1, with
every other host unresolvable, as on a machine without internet. Each diagram must be drawn
as an SVG that shows its labels, no diagram source may be left on the page, and the page may
request nothing but files of the site. Without Chromium the test skips, and fails under CI.
"""

from __future__ import annotations

import functools
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.integration.browser import Browser, find_chromium, launched

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
RENDER_TIMEOUT_S = 15.0
_FENCE = re.compile(r"^```mermaid\n(.*?)^```$", re.MULTILINE | re.DOTALL)


@dataclass(frozen=True, slots=True, kw_only=True)
class Diagram:
    kind: str  # the first line: flowchart LR, stateDiagram-v2, ...
    labels: tuple[str, ...]  # texts the drawing must show


@dataclass(frozen=True, slots=True, kw_only=True)
class Page:
    url_path: str
    diagrams: tuple[Diagram, ...]


def _labels(source: str) -> tuple[str, ...]:
    """Quoted node labels, and the text after `: ` of transitions, messages and notes."""
    labels: list[str] = []
    for line in source.splitlines()[1:]:
        quoted = re.findall(r'"([^"]+)"', line)
        if quoted:
            labels.extend(quoted)
        elif ": " in line:
            labels.append(line.split(": ", 1)[1].strip())
    return tuple(labels)


def _pages_with_diagrams() -> tuple[Page, ...]:
    pages = []
    for markdown in sorted(DOCS.glob("*.md")):
        sources = _FENCE.findall(markdown.read_text(encoding="utf-8"))
        if sources:
            diagrams = tuple(
                Diagram(kind=source.splitlines()[0].strip(), labels=_labels(source))
                for source in sources
            )
            url_path = "" if markdown.stem == "index" else f"{markdown.stem}/"
            pages.append(Page(url_path=url_path, diagrams=diagrams))
    return tuple(pages)


PAGES = _pages_with_diagrams()


def test_the_concepts_and_architecture_pages_have_diagrams() -> None:
    paths = {page.url_path for page in PAGES}
    assert {"concepts/", "architecture/"} <= paths


def _is_ci() -> bool:
    return os.environ.get("CI", "").lower() not in ("", "0", "false")


@pytest.fixture(scope="module")
def chromium() -> str:
    executable = find_chromium()
    if executable is None:
        reason = "Chromium is not installed (scripts/test installs it as root)"
        if _is_ci():
            pytest.fail(f"{reason}; CI must run the docs site test")
        pytest.skip(reason)
    return executable


@pytest.fixture(scope="module")
def site_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The site built with `mkdocs build --strict`; scripts/test passes the one it built."""
    prebuilt = os.environ.get("REFLOW_DOCS_SITE_DIR")
    if prebuilt:
        return Path(prebuilt)
    site = tmp_path_factory.mktemp("site")
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "--site-dir", str(site)],
        cwd=ROOT,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return site


@pytest.fixture(scope="module")
def site_url(site_dir: Path) -> Iterator[str]:
    """The built site, served on 127.0.0.1."""
    handler = functools.partial(_QuietHandler, directory=str(site_dir))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the base's name)
        pass


@pytest.fixture(scope="module")
def browser(chromium: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    with launched(chromium, profile_dir=tmp_path_factory.mktemp("chromium")) as running:
        running.open_page()
        yield running


def _mermaid_drawings(node: dict[str, Any]) -> list[dict[str, Any] | None]:
    """For each `div.mermaid` (the theme's drawn diagram), its `<svg>` node or None."""
    found: list[dict[str, Any] | None] = []
    attributes = node.get("attributes", [])
    classes = dict(zip(attributes[::2], attributes[1::2], strict=True)).get("class", "").split()
    if node.get("localName") == "div" and "mermaid" in classes:
        inside = [*node.get("shadowRoots", []), *node.get("children", [])]
        found.append(next((svg for child in inside if (svg := _find_svg(child))), None))
        return found
    for child in [*node.get("shadowRoots", []), *node.get("children", [])]:
        found.extend(_mermaid_drawings(child))
    return found


def _find_svg(node: dict[str, Any]) -> dict[str, Any] | None:
    if node.get("localName") == "svg":
        return node
    for child in [*node.get("shadowRoots", []), *node.get("children", [])]:
        if (svg := _find_svg(child)) is not None:
            return svg
    return None


def _text(node: dict[str, Any]) -> str:
    """The text an element shows, without its `<style>` sheets, whitespace collapsed."""
    if node.get("localName") == "style":
        return ""
    if node.get("nodeType") == 3:
        return str(node.get("nodeValue", ""))
    return " ".join(_text(child) for child in node.get("children", []))


@pytest.mark.parametrize("page", PAGES, ids=[page.url_path.strip("/") or "home" for page in PAGES])
def test_page_draws_every_diagram_offline_as_svg(
    page: Page, site_url: str, browser: Browser
) -> None:
    browser.requested_urls.clear()
    browser.call("Page.navigate", {"url": site_url + page.url_path})
    drawn = browser.wait_for(
        "document.readyState === 'complete' && "
        f"document.querySelectorAll('div.mermaid').length === {len(page.diagrams)}",
        timeout_s=RENDER_TIMEOUT_S,
    )

    drawings = _mermaid_drawings(browser.document())
    problems = [f"{len(drawings)} of {len(page.diagrams)} diagrams were drawn"] if not drawn else []
    for diagram, svg in zip(page.diagrams, drawings, strict=False):
        if svg is None:
            problems.append(f"the {diagram.kind} diagram has no <svg>")
            continue
        shown = " ".join(_text(svg).split())
        missing = [label for label in diagram.labels if " ".join(label.split()) not in shown]
        if missing:
            problems.append(f"the {diagram.kind} drawing lacks {missing}; it shows {shown!r}")
    visible = browser.evaluate("document.body.innerText")
    problems += [
        f"the {d.kind} source is shown as text" for d in page.diagrams if d.kind in visible
    ]
    outside = [url for url in browser.requested_urls if not url.startswith((site_url, "data:"))]
    if outside:
        problems.append(f"the page requested {outside}")
    assert not problems, problems


def test_built_pages_link_no_outside_script_style_or_font(site_dir: Path) -> None:
    """Every page, opened or not: no `<script src>` or `<link href>` points off the site."""
    loads = re.compile(r"<(?:script|link)\b[^>]*\b(?:src|href)=[\"']?((?:https?:)?//[^\"' >]+)")
    offenders = {
        f"{page.relative_to(site_dir)}: {url}"
        for page in site_dir.rglob("*.html")
        for url in loads.findall(page.read_text(encoding="utf-8"))
    }
    assert not offenders, sorted(offenders)
