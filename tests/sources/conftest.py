"""A real PostgreSQL server for the session: initdb into a temporary directory as an
unprivileged user (the ``postgres`` system user when the tests run as root, as CI does:
initdb refuses root), started on a free port with its socket in that directory, stopped
at the end (also when tests fail)."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional

import pytest


def _bindir() -> Optional[str]:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(p.split("/")[4]))
    if found:
        return os.path.dirname(found[-1])
    pg_ctl = shutil.which("pg_ctl")
    return os.path.dirname(pg_ctl) if pg_ctl else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Postgres:
    bindir: str
    root: Path
    port: int
    user: Optional[str]  # the system user the server runs as (None: this one)

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def uri(self) -> str:
        return f"postgresql://adc@127.0.0.1:{self.port}/postgres"

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run([os.path.join(self.bindir, args[0]), *args[1:]], user=self.user,
                              capture_output=True, text=True, check=check, timeout=120, cwd=self.root)

    def start(self) -> None:
        opts = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off"
        self.run("pg_ctl", "-D", str(self.data), "-o", opts, "-l", str(self.root / "log"), "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        self.run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop", check=False)

    def sql(self, statement: str) -> None:
        import adbc_driver_postgresql.dbapi as pg

        with pg.connect(self.uri) as conn, conn.cursor() as cur:
            cur.execute(statement)
            conn.commit()


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    bindir = _bindir()
    if bindir is None:
        pytest.fail("PostgreSQL is not installed (apt-get install postgresql; .ci/run does)")
    user = "postgres" if os.geteuid() == 0 else None
    root = Path(tempfile.mkdtemp(prefix="adc-pg-"))
    if user is not None:
        shutil.chown(root, user)
    pg = Postgres(bindir, root, _free_port(), user)
    try:
        pg.run("initdb", "-D", str(pg.data), "-A", "trust", "-U", "adc", "-E", "UTF8", "--no-sync")
        pg.start()
        yield pg
    finally:
        pg.stop("immediate")
        shutil.rmtree(root, ignore_errors=True)
