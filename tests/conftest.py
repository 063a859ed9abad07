"""Shared fixtures: a private store per test whose shared-memory segments are unlinked
afterwards, the real 0.1.2 package in its own venv, and a runner for child processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import venv
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from storetools import payload_locators, shm_exists, unlink_segments  # noqa: E402,F401

ROOT = Path(__file__).resolve().parent.parent
PEER_VENV = Path(os.environ.get("ADC_PEER_VENV", ROOT / ".venv-peer"))
PEER_VERSION = "0.1.2"


def segments_named_in(store: Path) -> set[str]:
    """Every shm locator the store's manifest mentions (ready lines and our writing lines)."""
    return payload_locators(store)[0]


@pytest.fixture
def store(tmp_path: Path):
    d = tmp_path / "store"
    yield d
    unlink_segments(d)


def run_python(code: str, *, python: str = sys.executable, env: dict | None = None, timeout: float = 300) -> str:
    """Runs `code` in a fresh interpreter; returns its stdout; fails the test on error."""
    proc = subprocess.run(
        [python, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )
    if proc.returncode != 0:
        raise AssertionError(f"child failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout


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
