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

__all__ = ["PRIVATE_SHM_ENV", "own", "run_in_private_shm", "run_python", "segments_named_in", "shm_exists",
           "unlink_segments"]

#: Set in the child pytest that :func:`run_in_private_shm` starts (its /dev/shm is private).
PRIVATE_SHM_ENV = "ADC_TEST_PRIVATE_SHM"


def own(actions: list) -> list:
    """The gc actions of the store gc ran on (``scope == "store"``): what a deleted store
    or a dead load left anywhere on the machine (``"orphan"``) is reported too, and a test
    must not depend on what else runs on the machine."""
    return [a for a in actions if a["scope"] == "store"]


def run_in_private_shm(nodeid: str, root: Path) -> None:
    """Runs the test ``nodeid`` in a child pytest whose ``/dev/shm`` is a tmpfs of its own
    (a private mount namespace, ``unshare --mount``; with ``--user --map-root-user`` when
    not root): what it finds there is what it made, whatever else runs on the machine.
    Fails with the child's output when the child fails, or when no namespace can be made."""
    mount = 'mount -t tmpfs -o mode=1777,size=2g adc-test-shm /dev/shm && exec "$0" "$@"'
    userns = [] if os.geteuid() == 0 else ["--user", "--map-root-user"]
    cmd = ["unshare", *userns, "--mount", "--propagation", "private", "--", "sh", "-c", mount,
           sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", nodeid]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=root, timeout=600,
                          env={**os.environ, PRIVATE_SHM_ENV: "1"})
    if proc.returncode != 0:
        raise AssertionError(
            f"the test in a private /dev/shm failed ({proc.returncode}; it needs `unshare --mount`: root, or "
            f"unprivileged user namespaces):\n{proc.stdout}\n{proc.stderr}")


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
