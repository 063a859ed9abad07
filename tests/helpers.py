"""Helpers the tests import (``from tests.helpers import ...``): child interpreters, and
what a store's manifest names (the store tools themselves live in benches/storetools.py,
which benches/compare.py also runs under 0.1.2's interpreter)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Optional

from benches.storetools import payload_locators, shm_exists, unlink_segments

__all__ = ["run_python", "segments_named_in", "shm_exists", "unlink_segments"]


def segments_named_in(store: Path) -> set[str]:
    """Every shm locator the store's manifest mentions (ready lines and our writing lines)."""
    return payload_locators(store)[0]


def run_python(code: str, *, python: str = sys.executable, env: Optional[dict] = None, timeout: float = 300) -> str:
    """Runs `code` in a fresh interpreter; returns its stdout; fails the test on error.
    The child inherits this process's environment (canvas notification off, see conftest)."""
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
