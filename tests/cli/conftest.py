"""The `adc` command as a user types it: a subprocess of the installed entry point."""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import struct
import subprocess
import sys
import termios
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


_SGR = re.compile(r"\x1b\[[0-9;]*m")  # colour and bold: take no columns


def _run_tty(*args: str, columns: int, store: Optional[Path] = None, env: Optional[dict] = None,
             check: Optional[int] = 0, timeout: float = 120) -> subprocess.CompletedProcess:
    """Runs ``adc`` with stdout a pseudo-terminal ``columns`` wide (TIOCSWINSZ; $COLUMNS
    unset, so the width is the terminal's) and stderr a pipe; returns the process with
    ``stdout`` as the terminal showed it, colour codes removed, lines split on CR LF."""
    assert ADC, "the adc entry point is not installed (pip install . / maturin develop)"
    cmd = [ADC] + (["--secret-dir", str(store)] if store is not None else []) + list(args)
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
    full_env = {k: v for k, v in _env(env).items() if k not in ("COLUMNS", "LINES")}
    full_env["TERM"] = "xterm-256color"
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=slave, stderr=subprocess.PIPE, env=full_env)
    os.close(slave)
    out = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the child closed its end
            break
        if not chunk:
            break
        out += chunk
    os.close(master)
    stderr = proc.stderr.read().decode() if proc.stderr else ""
    rc = proc.wait(timeout=timeout)
    text = _SGR.sub("", out.decode()).replace("\r\n", "\n")
    done = subprocess.CompletedProcess(cmd, rc, text, stderr)
    if check is not None:
        assert rc == check, f"{cmd} -> {rc}\nstdout:\n{text}\nstderr:\n{stderr}"
    return done


@pytest.fixture
def adc_tty() -> Callable[..., subprocess.CompletedProcess]:
    """``adc_tty("ls", columns=80, store=store)``: ``adc`` as a user sees it in a terminal
    of that width (see :func:`_run_tty`)."""
    return _run_tty
