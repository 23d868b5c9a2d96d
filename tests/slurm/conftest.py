"""Fixtures for tests that submit real jobs to the Slurm cluster on this machine.

The cluster is started by ``scripts/slurm-cluster start`` (as root) before the tests run; the
fixture here only asks ``scripts/slurm-cluster status`` whether it is ready. Without a ready
cluster the Slurm tests are skipped with the reason, or fail when ``REFLOW_REQUIRE_SLURM=1``
(as in CI).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tests.slurm.test_slurm_runs import Workdirs

CLUSTER_SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "slurm-cluster"
REQUIRE_ENV = "REFLOW_REQUIRE_SLURM"
STATUS_TIMEOUT_S = 60.0


def cluster_not_ready_reason() -> str | None:
    """Return None when ``scripts/slurm-cluster status`` says ready, else the reason."""
    try:
        proc = subprocess.run(
            [str(CLUSTER_SCRIPT), "status"],
            capture_output=True,
            text=True,
            timeout=STATUS_TIMEOUT_S,
            check=False,
        )
    except FileNotFoundError:
        return f"{CLUSTER_SCRIPT} not found"
    except PermissionError:
        return f"{CLUSTER_SCRIPT} is not executable"
    except subprocess.TimeoutExpired:
        return f"{CLUSTER_SCRIPT.name} status did not answer within {STATUS_TIMEOUT_S:g} s"
    if proc.returncode == 0 and proc.stdout.strip() == "ready":
        return None
    output = " ".join(f"{proc.stdout} {proc.stderr}".split())
    return output.removeprefix("not ready: ") or f"status exited {proc.returncode}"


@pytest.fixture(scope="session")
def slurm_cluster() -> None:
    """Skip (or fail, with REFLOW_REQUIRE_SLURM=1) unless the local Slurm cluster is ready."""
    reason = cluster_not_ready_reason()
    if reason is None:
        return
    hint = "start it as root with: scripts/slurm-cluster start"
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"no Slurm cluster ({REQUIRE_ENV}=1): {reason}; {hint}", pytrace=False)
    pytest.skip(f"no Slurm cluster: {reason} ({hint})")


@pytest.fixture
def workdirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Workdirs]:
    """Slurm mode without user settings; the runs' jobs left queued are cancelled after."""
    # A test module's helpers: imported when a test asks for this fixture, after collection.
    from tests.slurm.test_slurm_runs import Workdirs, clean_env

    clean_env(monkeypatch, tmp_path / "config")
    dirs = Workdirs(tmp_path, monkeypatch)
    yield dirs
    dirs.cancel_leftovers()


@pytest.fixture
def slurm_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Slurm mode, no user config or ``REFLOW_*`` settings, in a fresh working directory."""
    # A test module's helper: imported when a test asks for this fixture, after collection.
    from tests.slurm.test_slurm_runs import clean_env

    clean_env(monkeypatch, tmp_path / "config")
    workdir = tmp_path / "work"
    workdir.mkdir()
    monkeypatch.chdir(workdir)
    return workdir
