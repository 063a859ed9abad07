"""The `adc` command as a user types it: a subprocess of the installed entry point."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Callable, Optional

import pytest

ADC = shutil.which("adc", path=str(Path(sys.executable).parent)) or shutil.which("adc")


def _env(extra: Optional[dict]) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALLYE_")}
    env["ALLYE_NOTIFY_CANVAS"] = "0"  # no canvas is running; do not wait for one
    env.update(extra or {})
    return env


def _run(*args: str, store: Optional[Path] = None, env: Optional[dict] = None, check: Optional[int] = 0,
         timeout: float = 120) -> subprocess.CompletedProcess:
    assert ADC, "the adc entry point is not installed (pip install . / maturin develop)"
    cmd = [ADC] + (["--secret-dir", str(store)] if store is not None else []) + list(args)
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=_env(env))
    if check is not None:
        assert proc.returncode == check, f"{cmd} -> {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    return proc


@pytest.fixture
def adc_cmd() -> Callable[..., subprocess.CompletedProcess]:
    """``adc_cmd("ls", "--json", store=store, check=0)``: runs ``adc [--secret-dir store] ls
    --json`` with stdout a pipe (not a terminal), asserts the exit status (``check=None``
    skips that) and returns the completed process."""
    return _run


@pytest.fixture
def cli_env() -> Callable[[Optional[dict]], dict]:
    """The environment the CLI runs in: ours without ALLYE_* settings, plus ``extra``."""
    return _env
