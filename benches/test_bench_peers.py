"""Smoke run of benches/compare_peers.py without the peers (CI has no side venvs): every
worker of ours and of the floors runs once on small data, and the table is printed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).with_name("compare_peers.py")


def test_compare_peers_smoke() -> None:
    out = subprocess.run(
        [sys.executable, str(SCRIPT), "--no-peers", "--reps", "1", "--mb", "8", "--rows", "100000", "--puts", "2",
         "--pause", "0.1", "--incr", "200", "--only", "array", "frame", "dict", "small", "scalar", "incr"],
        capture_output=True, text=True, timeout=600,
    )
    assert out.returncode == 0, out.stderr
    for row in ("float64 array put, steady", "DataFrame get, other process", "100-key dict put",
                "1,000-row send + get", "locked scalar write + read", "locked increments"):
        assert row in out.stdout, out.stdout
