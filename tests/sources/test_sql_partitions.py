"""A whole PostgreSQL table read as page ranges on several connections sharing one
snapshot (real server, see conftest.py): the same rows in the same order as one
connection, consistent while the table changes, and one connection where ranges cannot
be used."""

from __future__ import annotations

import threading
from pathlib import Path

import adbc_driver_postgresql.dbapi as pg
import pytest

import allye_data_connector as adc
from allye_data_connector.sources import _adbc, sql
from allye_data_connector.errors import InvalidArgumentError, SourceError
from allye_data_connector.sources import SqlSource

from .conftest import Postgres
from .helpers import leftovers, manifest_lines

ROWS = 300_000


@pytest.fixture()
def wide(postgres: Postgres) -> str:
    postgres.sql("DROP TABLE IF EXISTS wide CASCADE")
    postgres.sql(f"CREATE TABLE wide AS SELECT g AS id, g * 0.5 AS x, 'name' || g AS name, "
                 f"CASE WHEN g % 11 = 0 THEN NULL ELSE g::float8 END AS maybe FROM generate_series(1, {ROWS}) AS g")
    return "wide"


def load(uri: str, table: str, store: Path, **params: object) -> tuple[dict, list[tuple]]:
    logged: list[tuple] = []
    src = SqlSource({"uri": uri, "table": table, **params}, {"logger": logged.append})
    return adc.load(src, table, secret_dir=store, progress=False), logged


def test_page_ranges_give_one_connections_rows_in_its_order(postgres: Postgres, wide: str, store: Path) -> None:
    with pg.connect(postgres.uri) as conn, conn.cursor() as cur:
        cur.execute(f"SELECT * FROM {wide}")
        want = cur.fetch_arrow_table()
    for parts in (2, 3):
        out, logged = load(postgres.uri, wide, store, partitions=parts)
        assert out["rows"] == ROWS
        assert any(f"+ {parts - 1} more page ranges" in " ".join(m) for m in logged), logged
        assert adc.get_arrow(wide, secret_dir=store).equals(want)
    _, logged = load(postgres.uri, wide, store, partitions=1)
    assert not any("page ranges" in " ".join(m) for m in logged)
    assert adc.get_arrow(wide, secret_dir=store).equals(want)


def test_the_ranges_share_one_snapshot(postgres: Postgres, wide: str, store: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    # Rows deleted and changed after the load began, committed before the other ranges'
    # connections even open (they wait for it): no range may see the change, as each
    # connection alone would from its own later snapshot.
    changed = threading.Event()
    connect = _adbc.connect

    def late_connect(uri: str, driver: object, timeout: float) -> object:
        if threading.current_thread().name == "adc-sql-range":
            assert changed.wait(60)
        return connect(uri, driver, timeout)  # type: ignore[arg-type]

    monkeypatch.setattr(_adbc, "connect", late_connect)

    def change(done: int, total: object) -> None:
        if not changed.is_set():
            postgres.sql(f"DELETE FROM {wide} WHERE id % 2 = 0")
            postgres.sql(f"UPDATE {wide} SET name = 'changed'")
            changed.set()

    src = SqlSource({"uri": postgres.uri, "table": wide, "partitions": 3, "count": "false"})
    out = adc.load(src, "snap", secret_dir=store, progress=change)
    assert changed.is_set() and out["rows"] == ROWS
    t = adc.get_arrow("snap", secret_dir=store)
    assert t["id"].to_pylist() == list(range(1, ROWS + 1))
    assert "changed" not in set(t["name"].to_pylist())


def test_views_queries_and_small_tables_use_one_connection(postgres: Postgres, wide: str, store: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    postgres.sql(f"CREATE VIEW wide_v AS SELECT * FROM {wide}")
    out, logged = load(postgres.uri, "wide_v", store, partitions=2)
    assert out["rows"] == ROWS and not any("page ranges" in " ".join(m) for m in logged)
    # A table of fewer pages than ranges, and the default: one connection.
    postgres.sql("DROP TABLE IF EXISTS tiny")
    postgres.sql("CREATE TABLE tiny AS SELECT g AS id FROM generate_series(1, 100) AS g")
    out, logged = load(postgres.uri, "tiny", store, partitions=2)
    assert out["rows"] == 100 and not any("page ranges" in " ".join(m) for m in logged)
    # auto: a table under PG_PARTITION_MIN_BYTES is one range; over it, two.
    out, logged = load(postgres.uri, wide, store)
    assert out["rows"] == ROWS and not any("page ranges" in " ".join(m) for m in logged)
    monkeypatch.setattr(sql, "PG_PARTITION_MIN_BYTES", 1 << 20)
    out, logged = load(postgres.uri, wide, store)
    assert out["rows"] == ROWS and any("+ 1 more page ranges" in " ".join(m) for m in logged)
    with pytest.raises(InvalidArgumentError, match="partitions must be a positive"):
        SqlSource({"uri": postgres.uri, "table": "tiny", "partitions": "0"})


def test_a_cursor_load_reads_in_cursor_order_on_one_connection(postgres: Postgres, wide: str, store: Path) -> None:
    # Updated rows move to the table's last pages: ctid order is no longer id order. An
    # appending load commits each chunk's largest id as its resume point, so its rows
    # must come in id order (page ranges would bring them in ctid order).
    postgres.sql(f"UPDATE {wide} SET x = x WHERE id <= 1000")
    with pg.connect(postgres.uri) as conn, conn.cursor() as cur:
        cur.execute(f"SELECT count(*) FROM (SELECT id, lag(id) OVER (ORDER BY ctid) AS p FROM {wide}) AS t "
                    "WHERE id < p")
        assert cur.fetchone()[0] > 0  # the precondition: ctid order is not id order
    logged: list[tuple] = []
    params = {"cursor": "id", "partitions": 2}
    src = SqlSource({"uri": postgres.uri, "table": wide, **params}, {"logger": logged.append})
    assert adc.load(src, "inc", secret_dir=store, mode="append", progress=False)["rows"] == ROWS
    assert not any("page ranges" in " ".join(m) for m in logged), logged
    assert adc.get_arrow("inc", secret_dir=store)["id"].to_pylist() == list(range(1, ROWS + 1))
    postgres.sql(f"INSERT INTO {wide} SELECT g, g * 0.5, 'name' || g, g FROM generate_series({ROWS + 1}, {ROWS + 500}) AS g")
    src = SqlSource({"uri": postgres.uri, "table": wide, **params})
    out = adc.load(src, "inc", secret_dir=store, mode="append", progress=False)
    assert out["rows_loaded"] == 500 and out["rows"] == ROWS + 500
    assert adc.get_arrow("inc", secret_dir=store)["id"].to_pylist() == list(range(1, ROWS + 501))


def test_a_range_failing_fails_the_load_and_writes_nothing(postgres: Postgres, store: Path) -> None:
    # The server stops while the ranges are being read (large enough not to be in the
    # sockets' buffers already): every connection fails.
    postgres.sql("DROP TABLE IF EXISTS large")
    postgres.sql("CREATE TABLE large AS SELECT g AS id, 'name' || g AS name FROM generate_series(1, 2000000) AS g")
    stopped: list[bool] = []

    def stop(done: int, total: object) -> None:
        if not stopped:
            stopped.append(True)
            postgres.stop("immediate")

    try:
        with pytest.raises(SourceError):
            adc.load(SqlSource({"uri": postgres.uri, "table": "large", "partitions": 2, "count": "false"}),
                     "gone", secret_dir=store, progress=stop)
    finally:
        postgres.start()
    assert stopped and leftovers(store) == []
    assert [ev["status"] for ev in manifest_lines(store)][-1] == "error"


def test_a_range_whose_connection_fails_is_read_on_the_first(postgres: Postgres, wide: str, store: Path,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    # A real refusal: a role allowed one connection (the first one's).
    postgres.sql("DROP ROLE IF EXISTS one_conn")
    postgres.sql("CREATE ROLE one_conn LOGIN CONNECTION LIMIT 1")
    postgres.sql(f"GRANT SELECT ON {wide} TO one_conn")
    uri = postgres.uri.replace("adc@", "one_conn@")
    with pg.connect(postgres.uri) as conn, conn.cursor() as cur:
        cur.execute(f"SELECT * FROM {wide}")
        want = cur.fetch_arrow_table()
    with caplog.at_level("WARNING", logger="allye_data_connector.sources"):
        out, logged = load(uri, wide, store, partitions=3)
    assert out["rows"] == ROWS and any("+ 2 more page ranges" in " ".join(m) for m in logged)
    refused = [r for r in caplog.records if "reading a page range on the first connection" in r.getMessage()]
    assert len(refused) == 2 and "one_conn" in refused[0].getMessage()
    assert adc.get_arrow(wide, secret_dir=store).equals(want)


KILLED_LOAD = """
import sys, time
from pathlib import Path
import allye_data_connector as adc
from allye_data_connector.sources import SqlSource

class Blocking(SqlSource):
    # The first range streams into the load; the others spill to the scratch folder.
    # Blocks in its 2nd read: the folder exists, then the process is killed (or lives on).
    reads = 0
    def read(self, n=None):
        self.reads += 1
        if self.reads == 2:
            Path(sys.argv[3]).touch()
            time.sleep(600)
        return super().read(n)

adc.load(Blocking({"uri": sys.argv[2], "table": "wide", "partitions": 2}), "wide", secret_dir=sys.argv[1],
         progress=False)
"""


def _scratch(tmpdir: Path) -> list[Path]:
    return sorted(p for p in tmpdir.iterdir() if p.name.startswith("adc-sql-"))


def test_a_replace_load_killed_mid_way_leaves_a_scratch_folder_that_gc_frees(
        postgres: Postgres, wide: str, store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    monkeypatch.setenv("TMPDIR", str(tmpdir))  # the children's and this process's scratch space
    root = Path(__file__).resolve().parents[2]

    def start(name: str) -> tuple[subprocess.Popen, Path]:
        marker = tmp_path / name
        proc = subprocess.Popen([sys.executable, "-c", KILLED_LOAD, str(store / name), postgres.uri, str(marker)],
                                cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 120
        while not marker.exists():
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.02)
        return proc, marker

    killed, _ = start("killed")
    (dead_folder,) = _scratch(tmpdir)
    os.kill(killed.pid, signal.SIGKILL)
    killed.wait(30)
    alive, _ = start("alive")
    try:
        folders = _scratch(tmpdir)
        assert len(folders) == 2 and dead_folder in folders
        assert any(p.name.endswith(".arrows") for p in dead_folder.iterdir()), "the spilled range"
        # gc of any store frees the dead load's folder, reported apart from the store's own.
        dry = [a for a in adc.gc(secret_dir=store / "other") if a["transport"] == "scratch"]
        assert [(a["locator"], a["scope"], a["action"]) for a in dry] == [(str(dead_folder), "orphan", "delete")]
        assert dead_folder.exists(), "a dry run frees nothing"
        done = [a for a in adc.cleanup_orphans() if a["transport"] == "scratch"]
        assert [a["locator"] for a in done] == [str(dead_folder)] and f"pid {killed.pid}" in done[0]["reason"]
        assert _scratch(tmpdir) == [f for f in folders if f != dead_folder], "the live load's folder stays"
    finally:
        alive.kill()
        alive.wait(30)
    adc.gc(secret_dir=store / "other", dry_run=False)
    assert _scratch(tmpdir) == [], "and goes once its process is gone"
