"""Shared fixtures: canvas notification off, a private store per test whose shared-memory
segments are unlinked afterwards, and the real 0.1.2 package in its own venv. Helpers
(child interpreters, manifest readers) are in tests/helpers.py."""

from __future__ import annotations

import os
import subprocess
import venv
from pathlib import Path
from typing import Optional

import pytest

from tests.helpers import PRIVATE_SHM_ENV, run_in_private_shm, unlink_segments

ROOT = Path(__file__).resolve().parent.parent
PEER_VENV = Path(os.environ.get("ADC_PEER_VENV", ROOT / ".venv-peer"))
PEER_VERSION = "0.1.2"


@pytest.fixture(autouse=True, scope="session")
def no_leftovers_of_deleted_stores() -> None:
    """Tests that count what gc reports (it reports, machine-wide, the segments of stores
    whose directory is gone) start from a /dev/shm without such leftovers, whatever ran
    before on the machine (the crate's tests, an interrupted run): freed as a user's
    ``adc cleanup`` frees them."""
    from allye_data_connector import cleanup_orphans

    cleanup_orphans(dry_run=False)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "private_shm: run the test in a child pytest with a /dev/shm of its own (tests/helpers.py "
                   "run_in_private_shm): for tests of what gc finds machine-wide")


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> Optional[bool]:
    """A test marked ``private_shm`` runs in a child pytest with a private /dev/shm (it
    passes when that run passes); inside that child it runs as any test does."""
    if pyfuncitem.get_closest_marker("private_shm") is None or os.environ.get(PRIVATE_SHM_ENV):
        return None
    run_in_private_shm(pyfuncitem.nodeid, ROOT)
    return True


@pytest.fixture(autouse=True)
def no_canvas_notification(monkeypatch: pytest.MonkeyPatch) -> None:
    """Sends do not notify an Allye canvas (one may run on a developer's machine): the
    setting's environment variable, which child processes inherit too. The canvas tests
    delete it again to test notification."""
    monkeypatch.setenv("ALLYE_NOTIFY_CANVAS", "0")


@pytest.fixture
def store(tmp_path: Path):
    d = tmp_path / "store"
    yield d
    unlink_segments(d)


@pytest.fixture(scope="session")
def peer_python() -> str:
    """The interpreter of a venv holding the published allye_data_connector 0.1.2
    (same import name as ours, hence its own venv). Created on first use."""
    python = PEER_VENV / "bin" / "python"
    probe = "import importlib.metadata as m; print(m.version('allye_data_connector'))"
    if python.exists():
        out = subprocess.run([str(python), "-c", probe], capture_output=True, text=True)
        if out.returncode == 0 and out.stdout.strip() == PEER_VERSION:
            return str(python)
    venv.EnvBuilder(with_pip=True, clear=True).create(PEER_VENV)
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", f"allye_data_connector=={PEER_VERSION}"],
        check=True,
    )
    out = subprocess.run([str(python), "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == PEER_VERSION
    return str(python)
