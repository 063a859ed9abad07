"""Flight servers for the remote tests: each one ``adc serve`` in its own process on its
own store (a free loopback port), stopped (SIGTERM) at the end of the test; and a real
ZooKeeper (Debian's package) for the registry's tests and the guide's examples."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator, Optional

import pytest

from tests.helpers import unlink_segments

REPO = Path(__file__).resolve().parents[2]


ZK_JAR = Path("/usr/share/java/zookeeper.jar")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def zookeeper_server(data: Path) -> Iterator[str]:
    """A ZooKeeper on a free loopback port with its data in ``data``, until the block
    ends: its ``zk://`` URL."""
    port = _free_port()
    cfg = data / "zoo.cfg"
    cfg.write_text(f"tickTime=500\ndataDir={data}/data\nclientPort={port}\nclientPortAddress=127.0.0.1\n"
                   "admin.enableServer=false\nminSessionTimeout=1000\n")
    log = open(data / "zk.log", "w")
    proc = subprocess.Popen(["java", "-Xmx256m", "-cp", f"{ZK_JAR}", "org.apache.zookeeper.server.ZooKeeperServerMain",
                             str(cfg)], stdout=log, stderr=subprocess.STDOUT)
    try:
        from kazoo.client import KazooClient

        deadline = time.monotonic() + 60
        while True:
            zk = KazooClient(hosts=f"127.0.0.1:{port}")
            try:
                zk.start(timeout=2)
                zk.stop()
                zk.close()
                break
            except Exception:
                zk.close()
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"ZooKeeper did not start: {(data / 'zk.log').read_text()[-2000:]}")
                time.sleep(0.5)
        yield f"zk://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


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
