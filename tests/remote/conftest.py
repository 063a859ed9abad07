"""Flight servers for the remote tests: each one ``adc serve`` in its own process on its
own store (a free loopback port), stopped (SIGTERM) at the end of the test."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Iterator, Optional

import pytest

from tests.helpers import unlink_segments

REPO = Path(__file__).resolve().parents[2]


class Server:
    """One ``adc serve`` process."""

    def __init__(self, store: Path, *args: str, env: Optional[dict[str, str]] = None,
                 prefix: Optional[list[str]] = None, module: Optional[list[str]] = None) -> None:
        """``module``: run ``python -m <module...>`` instead of ``adc`` (a wrapper of it,
        e.g. ``["tests.remote.slow_server", "throttle", "0.1", "--"]``)."""
        self.store = store
        store.mkdir(parents=True, exist_ok=True)
        cmd = [*(prefix or []), sys.executable, "-m", *(module or ["allye_data_connector"]), "--json", "-d", str(store),
               "serve", "--port", "0", *args]
        # The log goes to a file: a pipe nobody reads would block a server that logs a lot.
        self.log_path = store.parent / f"{store.name}.log"
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self._log, text=True,
                                     env={**os.environ, **(env or {})}, cwd=REPO)
        line = self.proc.stdout.readline() if self.proc.stdout else ""
        if not line:
            self.proc.wait(timeout=20)
            self._log.close()
            raise AssertionError(f"adc serve did not start: {self.log()}")
        self.location: str = json.loads(line)["location"]

    def log(self) -> str:
        """What the server logged so far (its stderr)."""
        return self.log_path.read_text()

    @property
    def token(self) -> str:
        return (self.store / "remote" / "token").read_text().strip()

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=20)
        finally:
            if self.proc.stdout:
                self.proc.stdout.close()
            self._log.close()

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait()
        self._log.close()


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator:
    servers: list[Server] = []

    def start(name: str = "server", *args: str, **kw) -> Server:
        s = Server(tmp_path / name, *args, **kw)
        servers.append(s)
        return s

    yield start
    for s in servers:
        s.stop()
        unlink_segments(s.store)


@pytest.fixture
def client_store(tmp_path: Path) -> Iterator[Path]:
    d = tmp_path / "client"
    yield d
    unlink_segments(d)
