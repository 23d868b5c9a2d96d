"""Docs build hook: ships a pinned Mermaid renderer with the site, so diagrams draw offline.

mkdocs-material draws ```mermaid blocks with the global `mermaid` when a page defines one, and
otherwise loads it from a CDN at reading time. mkdocs.yml lists `javascripts/mermaid.min.js`
in `extra_javascript`; this hook adds that file (and Mermaid's license) to the site.

The file is `dist/mermaid.min.js` of the npm package `mermaid` at `MERMAID_VERSION`, checked
against `MERMAID_SHA256`. It is taken from the cache folder (`$XDG_CACHE_HOME/reflow/docs`,
else `~/.cache/reflow/docs`) and fetched there once with `npm pack`; a machine without npm
builds the site once the two files are placed there by hand.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import tarfile
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File, Files

if TYPE_CHECKING:
    from mkdocs.config.defaults import MkDocsConfig

# mkdocs-material 9 renders with the Mermaid 11 API (`mermaid.render` returning `{svg, fn}`).
MERMAID_VERSION = "11.17.2"
MERMAID_SHA256 = "581ed7d74bd9048d0e3a91363927d72ef22942d7722546b27f7cc29e35390eb8"
SITE_FOLDER = "javascripts"
# Site file name -> file in the npm package.
_SHIPPED = {"mermaid.min.js": "package/dist/mermaid.min.js", "mermaid.LICENSE": "package/LICENSE"}


def cache_dir() -> Path:
    """The folder holding the pinned Mermaid files, named after the version."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "reflow" / "docs" / f"mermaid-{MERMAID_VERSION}"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _is_cached(folder: Path) -> bool:
    script = folder / "mermaid.min.js"
    return all((folder / name).is_file() for name in _SHIPPED) and _sha256(script) == MERMAID_SHA256


def _fetch(folder: Path) -> None:
    """Download the npm package with `npm pack` and unpack the shipped files into `folder`."""
    with tempfile.TemporaryDirectory() as scratch:
        try:
            done = subprocess.run(
                ["npm", "pack", f"mermaid@{MERMAID_VERSION}", "--pack-destination", scratch],
                capture_output=True,
                text=True,
                timeout=600,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as err:
            raise PluginError(_missing_message(folder, f"npm pack failed: {err}")) from err
        if done.returncode != 0:
            raise PluginError(_missing_message(folder, f"npm pack failed: {done.stderr.strip()}"))
        tarballs = list(Path(scratch).glob("mermaid-*.tgz"))
        if len(tarballs) != 1:
            raise PluginError(_missing_message(folder, "npm pack wrote no mermaid-*.tgz"))
        folder.mkdir(parents=True, exist_ok=True)
        with tarfile.open(tarballs[0]) as tarball:
            for name, member in _SHIPPED.items():
                source = tarball.extractfile(member)
                if source is None:
                    raise PluginError(_missing_message(folder, f"the package has no {member}"))
                partial = folder / f".{name}.partial"
                partial.write_bytes(source.read())
                partial.replace(folder / name)


def _missing_message(folder: Path, why: str) -> str:
    return (
        f"mermaid {MERMAID_VERSION} (for the docs' diagrams) is not in {folder} and {why}; "
        f"run `npm pack mermaid@{MERMAID_VERSION}` where npm reaches its registry and put "
        f"the package's {' and '.join(_SHIPPED.values())} into {folder}"
    )


def on_files(files: Files, *, config: MkDocsConfig) -> Files:
    """Add the pinned `mermaid.min.js` and its license to the site's files."""
    folder = cache_dir()
    if not _is_cached(folder):
        _fetch(folder)
    if _sha256(folder / "mermaid.min.js") != MERMAID_SHA256:
        raise PluginError(
            f"{folder / 'mermaid.min.js'} is not mermaid {MERMAID_VERSION}: its sha256 is not "
            f"{MERMAID_SHA256}; delete the folder to fetch it again"
        )
    for name in _SHIPPED:
        files.append(
            File.generated(config, f"{SITE_FOLDER}/{name}", abs_src_path=str(folder / name))
        )
    return files
