"""The examples of README.md and docs/ run as tests (Sybil collects them; the repository's
conftest.py hands them to pytest): ```` ```python ```` blocks (and ``>>>`` sessions, whose
output is checked) in one namespace per page, in page order, so a page can tell one story;
```` ```bash ```` blocks through ``bash -euo pipefail``; ```` ```yaml ```` blocks must parse. Other
blocks (:data:`LANGUAGES`) are shown as they are. A block is skipped only behind ``<!-- skip: next "why" -->``.

Each page runs in a temporary directory of its own (the working directory, where its
examples write files) with a temporary store (``$ALLYE_SECRET_DIR``), the canvas not
notified. What a page names that exists only on the reader's side, a database server, a
Flight peer, a ZooKeeper, a network address, is replaced in the example's text by what
stands in for it here (:data:`ADAPTED`), started when a page first names it: the real
PostgreSQL, ``adc serve`` and ZooKeeper of the test suites.

A shell block whose every command is ``adc serve ...`` starts each server (on a free
port), waits until it says it is serving, stops it with SIGTERM, as a user would, and
expects exit 0.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import pytest
from sybil import Example, Sybil
from sybil.evaluators.python import pad
from sybil.parsers.markdown import CodeBlockParser, PythonCodeBlockParser, SkipParser

ROOT = Path(__file__).resolve().parents[2]
BIN = str(Path(sys.executable).parent)

#: (what a page writes, the fixture whose value stands in for it here), applied in order.
ADAPTED: list[tuple[str, str]] = [
    ("postgresql://me@db/shop", "doc_postgres_uri"),  # PostgreSQL holding the pages' tables
    ("10.0.0.5:8815", "doc_flight_peer"),             # `adc serve` of a store holding them
    ("zk://zk1:2181", "doc_zookeeper"),               # a ZooKeeper
    ("10.0.0.5", "doc_loopback"),                     # a host's address: loopback here
    ("0.0.0.0", "doc_loopback"),                      # every interface: loopback here
    ("/tmp/", "doc_tmp"),                             # a shared temporary directory: the page's own
]

#: The files a page names that the reader brings: made here when a page names them.
MADE: dict[str, str] = {
    "srv.pem": "doc_pki", "srv.key": "doc_pki", "ca.pem": "doc_pki",
}


@dataclass
class Page:
    """One page's surroundings (see the module docs)."""

    request: pytest.FixtureRequest
    cwd: Path
    store: Path
    servers: list[subprocess.Popen] = field(default_factory=list)

    def adapt(self, source: str) -> str:
        for name, fixture in ADAPTED:
            if name in source:
                source = source.replace(name, str(self.request.getfixturevalue(fixture)))
        for name, fixture in MADE.items():
            if name in source:
                self.request.getfixturevalue(fixture)
        return source

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "PATH": BIN + os.pathsep + os.environ.get("PATH", "")}


def run_python(example: Example) -> None:
    """Runs a ```python block in its page's namespace, names adapted."""
    __tracebackhide__ = True
    page: Page = example.namespace["doc_page"]
    source = pad(page.adapt(example.parsed), example.line + example.parsed.line_offset)
    exec(compile(source, example.path, "exec", dont_inherit=True), example.namespace)
    example.namespace.pop("__builtins__", None)


def _serve(page: Page, line: str) -> None:
    argv = shlex.split(line, comments=True) + ["--port", "0"]
    proc = subprocess.Popen(argv, cwd=page.cwd, env=page.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    page.servers.append(proc)
    first = proc.stdout.readline() if proc.stdout else ""
    if not first.startswith("serving "):
        proc.kill()
        err = proc.communicate(timeout=30)[1]
        raise AssertionError(f"{line!r} did not start: {first}{err}")
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, f"{line!r} exited {proc.returncode} on SIGTERM: {err}"


def run_shell(example: Example) -> None:
    """Runs a ```bash block in its page's directory, names adapted (servers: see above)."""
    __tracebackhide__ = True
    page: Page = example.namespace["doc_page"]
    source = page.adapt(str(example.parsed))
    commands = [ln for ln in source.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    if commands and all(ln.startswith("adc serve") for ln in commands):
        for line in commands:
            _serve(page, line)
        return
    if any(ln.startswith("adc serve") for ln in commands):
        raise AssertionError("a block that starts `adc serve` holds only `adc serve` lines (it is stopped after each)")
    out = subprocess.run(["bash", "-euo", "pipefail", "-c", source], cwd=page.cwd, env=page.env,
                         capture_output=True, text=True, timeout=300)
    if out.returncode != 0:
        raise AssertionError(f"exit {out.returncode}\n--- stdout\n{out.stdout}\n--- stderr\n{out.stderr}")


class PythonParser(PythonCodeBlockParser):
    """```python blocks run by :func:`run_python`; ``>>>`` sessions as doctests."""

    def __init__(self) -> None:
        super().__init__()
        self.codeblock_parser = CodeBlockParser("python", run_python)


def check_yaml(example: Example) -> None:
    """A ```yaml block must parse (it is shown as a file's content)."""
    import yaml

    yaml.safe_load(str(example.parsed))


#: The languages of the fenced blocks pages may hold: run, parsed, or shown as they are.
LANGUAGES = {"python": "run", "bash": "run", "yaml": "parsed", "text": "shown", "json": "shown", "toml": "shown"}


sybil = Sybil(
    parsers=[
        SkipParser(),
        PythonParser(),
        CodeBlockParser(language="bash", evaluator=run_shell),
        CodeBlockParser(language="yaml", evaluator=check_yaml),
    ],
    path=str(ROOT),
    patterns=["README.md", "docs/*.md", "docs/**/*.md"],
    fixtures=["doc_page"],
)


# ---- fixtures ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def doc_page(request: pytest.FixtureRequest) -> Iterator[Page]:
    """The page's directory and store (module scope: Sybil makes a page a module)."""
    root = Path(tempfile.mkdtemp(prefix="adc-doc-"))
    page = Page(request, root / "work", root / "store")
    page.cwd.mkdir()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ALLYE_SECRET_DIR", str(page.store))
        mp.setenv("ALLYE_NOTIFY_CANVAS", "0")
        mp.chdir(page.cwd)
        try:
            yield page
        finally:
            for proc in page.servers:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
    shutil.rmtree(root, ignore_errors=True)
    from allye_data_connector import cleanup_orphans

    cleanup_orphans(dry_run=False)  # the segments of the store just deleted, as `adc cleanup` frees them


@pytest.fixture(scope="session")
def doc_loopback() -> str:
    return "127.0.0.1"


@pytest.fixture(scope="module")
def doc_tmp(doc_page: Page) -> str:
    d = doc_page.cwd / "tmp"
    d.mkdir(exist_ok=True)
    return f"{d}/"


@pytest.fixture(scope="module")
def doc_pki(doc_page: Page) -> Path:
    """A CA (``ca.pem``) and a server certificate for 127.0.0.1 (``srv.pem``, ``srv.key``),
    in the page's directory, made with the ``openssl`` command."""
    d = doc_page.cwd

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=d)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=adc-doc-ca",
            "-keyout", "ca.key", "-out", "ca.pem")
    (d / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=srv", "-keyout", "srv.key", "-out", "srv.csr")
    openssl("x509", "-req", "-in", "srv.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-days", "2",
            "-extfile", "san.ext", "-out", "srv.pem")
    return d


@pytest.fixture(scope="session")
def doc_postgres_uri(postgres: Any) -> str:
    """The suites' PostgreSQL (tests/sources/conftest.py) holding the pages' ``orders``."""
    postgres.sql("CREATE TABLE orders AS SELECT i AS id, (ARRAY['EU', 'US', 'APAC'])[1 + i % 3] AS region, "
                 "round((i * 7.5)::numeric % 500, 2)::float8 AS amount FROM generate_series(1, 1000) AS i")
    return str(postgres.uri)


@pytest.fixture(scope="session")
def doc_flight_server(tmp_path_factory: pytest.TempPathFactory, doc_zookeeper: str) -> Iterator[Any]:
    """``adc serve --allow-put`` (tests/remote/conftest.py) of a store holding the pages'
    ``prices`` (daily closes) and ``ticks`` (a growing series), registered in the
    pages' ZooKeeper."""
    import numpy as np
    import pandas as pd

    import allye_data_connector as adc
    from tests.remote.conftest import Server

    store = tmp_path_factory.mktemp("doc-peer") / "store"
    days = pd.date_range("2024-01-01", periods=120, freq="D", name="date")
    prices = pd.DataFrame({"close": np.linspace(100, 160, len(days)), "volume": np.arange(len(days)) * 10}, days)
    ticks = pd.DataFrame({"price": np.arange(1000.0)},
                         pd.date_range("2024-01-02 09:00", periods=1000, freq="s", name="ts"))
    for name, frame in (("prices", prices), ("ticks", ticks)):
        adc.send_dataframe(frame, name, secret_dir=store, shm_unlink_on_read=False)
    server = Server(store, "--allow-put", "--registry", doc_zookeeper)
    try:
        yield server
    finally:
        server.stop()
        from tests.helpers import unlink_segments

        unlink_segments(server.store)


@pytest.fixture(scope="module")
def doc_flight_peer(doc_page: Page, doc_flight_server: Any) -> str:
    """The server's ``host:port``; its bearer token in the page's ``token`` file."""
    (doc_page.cwd / "token").write_text(doc_flight_server.token + "\n")
    return str(doc_flight_server.location.split("://", 1)[1])


@pytest.fixture(scope="session")
def doc_zookeeper(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The registry suite's ZooKeeper (tests/remote/conftest.py)."""
    from tests.remote.conftest import zookeeper_server

    with zookeeper_server(tmp_path_factory.mktemp("doc-zk")) as url:
        yield url
