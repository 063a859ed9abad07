"""SQL through ADBC against a real PostgreSQL server (started by the session, see
conftest.py) and SQLite files."""

from __future__ import annotations

import json
from pathlib import Path

import adbc_driver_sqlite.dbapi as sqlite
import pyarrow.compute as pc
import pytest

import allye_data_connector as adc
from allye_data_connector.errors import InvalidArgumentError, SourceError
from allye_data_connector.sources import SqlSource

from .conftest import Postgres
from .helpers import leftovers, manifest_lines, payload_files

MILLION = 1_000_000


@pytest.fixture(scope="module")
def big(postgres: Postgres) -> str:
    postgres.sql("DROP TABLE IF EXISTS big")
    postgres.sql(f"CREATE TABLE big AS SELECT g AS id, g * 0.5 AS x, 'name' || g AS name "
                 f"FROM generate_series(1, {MILLION}) AS g")
    return "big"


def test_a_million_row_table_loads_with_progress(postgres: Postgres, big: str, store: Path) -> None:
    seen: list[tuple[int, object]] = []
    out = adc.load(postgres.uri, "pg_big", secret_dir=store, params={"table": big},
                   progress=lambda d, t: seen.append((d, t)))
    assert out["rows"] == MILLION
    t = adc.get_arrow("pg_big", secret_dir=store)
    assert t.column_names == ["id", "x", "name"]
    assert sorted(t["id"].to_pylist()) == list(range(1, MILLION + 1))
    assert t.filter(pc.equal(t["id"], MILLION))["name"].to_pylist() == [f"name{MILLION}"]
    # COUNT(*) first, so progress has a total; several batches as they came from the driver.
    assert len(seen) > 2 and all(tot == MILLION for _, tot in seen[:-1])
    assert seen[-2][0] == MILLION and seen[-1] == (MILLION, MILLION)


def test_a_query_with_indeterminate_progress(postgres: Postgres, big: str, store: Path) -> None:
    seen: list[tuple[int, object]] = []
    out = adc.load(postgres.uri, "pg_q", secret_dir=store,
                   params={"query": "select id, name from big where id % 1000 = 0"},
                   progress=lambda d, t: seen.append((d, t)))
    assert out["rows"] == 1000
    assert seen[0][1] is None, "no COUNT(*) for a query unless asked"
    assert max(adc.get_arrow("pg_q", secret_dir=store)["id"].to_pylist()) == MILLION


def test_a_query_error_is_clear_and_writes_nothing(postgres: Postgres, store: Path) -> None:
    with pytest.raises(SourceError, match="the query failed.*no_such_table"):
        adc.load(postgres.uri, "bad", secret_dir=store, params={"query": "select * from no_such_table"})
    assert manifest_lines(store) == [] and payload_files(store) == []


def test_server_stopped_mid_load_leaves_the_previous_version(postgres: Postgres, big: str, store: Path) -> None:
    adc.load(postgres.uri, "pg", secret_dir=store, params={"query": "select * from big where id <= 10"},
             progress=False)
    prev = adc.describe_table("pg", secret_dir=store)["id"]
    files = payload_files(store)
    stopped: list[bool] = []

    def stop_server(done: int, total: object) -> None:
        if not stopped:
            stopped.append(True)
            postgres.stop("immediate")

    try:
        with pytest.raises(SourceError) as info:
            # One connection: with two page ranges (test_sql_partitions.py) half a million
            # rows may already sit in the sockets' buffers when the server stops.
            adc.load(postgres.uri, "pg", secret_dir=store, params={"table": big, "count": "false", "partitions": 1},
                     progress=stop_server)
    finally:
        postgres.start()
    assert stopped
    assert "postgres" in str(info.value).lower() or "connection" in str(info.value).lower() or "read" in str(info.value)
    d = adc.describe_table("pg", secret_dir=store)
    assert d["id"] == prev and d["shape"][0] == 10
    assert payload_files(store) == files and leftovers(store) == []
    assert manifest_lines(store)[-1]["status"] == "error"


def test_incremental_loads_push_the_cursor_into_the_query(postgres: Postgres, store: Path) -> None:
    postgres.sql("DROP TABLE IF EXISTS inc")
    postgres.sql("CREATE TABLE inc AS SELECT g AS id, g::text AS v FROM generate_series(1, 100) AS g")
    params = {"table": "inc", "cursor": "id"}
    assert adc.load(postgres.uri, "inc", secret_dir=store, mode="append", params=params, progress=False)["rows"] == 100
    postgres.sql("INSERT INTO inc SELECT g, g::text FROM generate_series(101, 130) AS g")
    logged: list[tuple] = []
    src = SqlSource({"uri": postgres.uri, **params}, {"logger": logged.append})
    out = adc.load(src, "inc", secret_dir=store, mode="append", progress=False)
    assert out["rows_loaded"] == 30 and out["rows"] == 130 and out["last_cursor"] == 130
    assert any("WHERE id > 100 ORDER BY id" in " ".join(m) for m in logged), logged
    assert adc.get_arrow("inc", secret_dir=store)["id"].to_pylist() == list(range(1, 131))


def test_passwords_in_uris_are_never_logged_or_stored(postgres: Postgres, store: Path,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    uri = postgres.uri.replace("adc@", "adc:pa55word@")  # trust auth: the password is not checked
    with caplog.at_level("DEBUG"):
        adc.load(uri, "pw", secret_dir=store, params={"query": "select 1 as one"}, progress=False)
        with pytest.raises(SourceError) as info:
            adc.load(uri, "pw", secret_dir=store, params={"query": "select nope"}, progress=False)
    assert "pa55word" not in caplog.text and "pa55word" not in str(info.value)
    assert "pa55word" not in json.dumps(manifest_lines(store))
    ready = [ev for ev in manifest_lines(store) if ev["status"] == "ready"][-1]
    assert ready["metadata"]["allye_load"]["source"] == uri.replace("pa55word", "***").join(["sql:", ""])


def test_sqlite_files_by_path_and_uri(tmp_path: Path, store: Path) -> None:
    db = tmp_path / "local.db"
    with sqlite.connect(str(db)) as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE t (id INTEGER, name TEXT)")
        cur.executemany("INSERT INTO t VALUES (?, ?)", [(i, f"r{i}") for i in range(500)])
        conn.commit()
    out = adc.load(str(db), "lite", secret_dir=store, params={"table": "t"}, progress=False)
    assert out["rows"] == 500
    assert adc.get_dataframe("lite", secret_dir=store)["name"].iloc[-1] == "r499"
    adc.load(f"sqlite:///{db}", "lite2", secret_dir=store, params={"query": "select id from t where id < 5"},
             progress=False)
    assert adc.get_arrow("lite2", secret_dir=store)["id"].to_pylist() == [0, 1, 2, 3, 4]
    # Incremental with SQLite's placeholder.
    with sqlite.connect(str(db)) as conn, conn.cursor() as cur:
        cur.execute("INSERT INTO t VALUES (500, 'new')")
        conn.commit()
    adc.load(str(db), "lite", secret_dir=store, params={"table": "t", "cursor": "id"}, progress=False)
    out = adc.load(str(db), "lite", secret_dir=store, params={"table": "t", "cursor": "id"}, mode="append",
                   progress=False)
    assert out["rows_loaded"] == 0 and out["rows"] == 501
    with pytest.raises(SourceError, match="the query failed"):
        adc.load(str(db), "lite_err", secret_dir=store, params={"query": "select * from missing"}, progress=False)
    # ("lite" is a streaming table now: a replace onto it is refused before any query runs.)
    with pytest.raises(InvalidArgumentError, match="streaming table"):
        adc.load(str(db), "lite", secret_dir=store, params={"query": "select * from missing"}, progress=False)


def test_any_adbc_driver_by_name_and_a_missing_driver(tmp_path: Path, store: Path) -> None:
    db = tmp_path / "any.db"
    with sqlite.connect(str(db)) as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE t AS SELECT 1 AS a UNION ALL SELECT 2")
        conn.commit()
    src = SqlSource({"uri": str(db), "driver": "adbc_driver_sqlite", "query": "select a from t order by a"})
    assert adc.load(src, "any", secret_dir=store, progress=False)["rows"] == 2
    with pytest.raises(SourceError, match="no ADBC driver .adbc_driver_nosuchdb. is installed.*pip install adbc-driver-nosuchdb"):
        adc.load("nosuchdb://u:pw@host/db", "x", secret_dir=store,
                 params={"query": "select 1", "driver": "adbc_driver_nosuchdb"})
    # Without driver=, a scheme no installed driver reads is refused before anything runs.
    with pytest.raises(InvalidArgumentError, match="no data source reads the scheme 'nosuchdb'"):
        adc.load("nosuchdb://u:pw@host/db", "x", secret_dir=store, params={"query": "select 1"})


def test_adc_load_from_postgres_on_the_command_line(postgres: Postgres, big: str, store: Path) -> None:
    import shutil
    import subprocess
    import sys

    exe = shutil.which("adc", path=str(Path(sys.executable).parent))
    assert exe
    uri = postgres.uri.replace("adc@", "adc:cli-pw@")
    proc = subprocess.run([exe, "--secret-dir", str(store), "load", uri, "--table", "cli",
                           "--query", "select id, name from big where id <= 1000"],
                          capture_output=True, text=True, timeout=120, env={**__import__("os").environ, "ALLYE_NOTIFY_CANVAS": "0"})
    assert proc.returncode == 0, proc.stderr
    assert "loaded 'cli': 1,000 rows from sql:postgresql://adc:***@127.0.0.1" in proc.stdout
    assert "cli-pw" not in proc.stdout + proc.stderr
    assert adc.get_arrow("cli", secret_dir=store).num_rows == 1000


def test_a_server_that_accepts_and_never_answers_times_out(store: Path) -> None:
    import socket
    import threading
    import time

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    held: list[socket.socket] = []

    def accept() -> None:  # accepts every connection and never says a word
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            held.append(conn)

    threading.Thread(target=accept, daemon=True).start()
    uri = f"postgresql://adc:secret@127.0.0.1:{server.getsockname()[1]}/postgres"
    try:
        start = time.monotonic()
        with pytest.raises(SourceError, match=r"did not answer within 2 s \(connect_timeout\)") as info:
            adc.load(uri, "silent", secret_dir=store, params={"query": "select 1", "connect_timeout": 2},
                     progress=False)
        assert time.monotonic() - start < 30 and held, "it connected, then gave up"
        assert "secret" not in str(info.value)
        assert not manifest_lines(store), "nothing written"
        # The default: 10 s, as a parameter of the source.
        assert SqlSource({"uri": uri, "query": "select 1"}).connect_timeout_sec == 10
        with pytest.raises(InvalidArgumentError, match="connect_timeout"):
            SqlSource({"uri": uri, "query": "select 1", "connect_timeout": "soon"})
    finally:
        server.close()
        for c in held:
            c.close()


NASTY = ["plain", "it's", "back\\slash", "\\'; DROP TABLE canary; --", "'); DROP TABLE canary; --", "\\\\'",
         "E'x'", "$$", "$q$ x $q$", "tab\there\nnewline", "ünïcødé ✓", "", " ", "'", "''", "\\"]


def test_a_cursor_value_in_the_sql_is_the_value_whatever_it_holds(postgres: Postgres) -> None:
    """pg_literal: PostgreSQL reads each literal back as exactly the value, with
    standard_conforming_strings on (the default) and off; no text can end the literal."""
    import datetime
    import decimal

    import adbc_driver_postgresql.dbapi as pg
    from hypothesis import given, settings, strategies as st

    from allye_data_connector.sources.sql import pg_literal

    with pg.connect(postgres.uri) as conn, conn.cursor() as cur:
        def back(value, sql_type):
            cur.execute(f"SELECT ({pg_literal(value)})::{sql_type}")
            return cur.fetchone()[0]

        for conforming in ("on", "off"):
            cur.execute(f"SET standard_conforming_strings = {conforming}")
            for text in NASTY:
                assert back(text, "text") == text, (conforming, text)

            @settings(max_examples=150, deadline=None, derandomize=True)
            @given(st.text(st.characters(exclude_characters="\0", codec="utf-8")))
            def strings_round_trip(text):
                assert back(text, "text") == text

            strings_round_trip()
        for value, sql_type in [(7, "int8"), (-2**63, "int8"), (0.1, "float8"), (1e-300, "float8"),
                                (float("inf"), "float8"), (decimal.Decimal("12345.678901234567890"), "numeric"),
                                (True, "bool"), (b"\x00'\\x", "bytea"), (datetime.date(2024, 2, 29), "date"),
                                (datetime.datetime(2024, 1, 2, 3, 4, 5, 678901), "timestamp"),
                                (datetime.datetime(2024, 1, 2, 3, 4, 5, 6, tzinfo=datetime.timezone.utc),
                                 "timestamptz")]:
            got = back(value, sql_type)
            # ADBC hands PostgreSQL's numeric over as its text.
            assert (decimal.Decimal(got) if sql_type == "numeric" else got) == value, value
    assert pg_literal("nul\0") is None and pg_literal(object()) is None, "bound as parameters instead"


def test_a_text_cursor_resumes_past_any_value_without_injection(postgres: Postgres, store: Path) -> None:
    postgres.sql("DROP TABLE IF EXISTS canary")
    postgres.sql("CREATE TABLE canary AS SELECT 1 AS alive")
    postgres.sql("DROP TABLE IF EXISTS inj")
    postgres.sql("CREATE TABLE inj (k text, v int)")
    values = sorted(NASTY[:6])
    postgres.sql("INSERT INTO inj VALUES " + ", ".join(f"($q${k}$q$, {i})" for i, k in enumerate(values)))
    params = {"table": "inj", "cursor": "k"}
    assert adc.load(postgres.uri, "inj", secret_dir=store, mode="append", params=params, progress=False)["rows"] == 6
    later = ["zz'; DROP TABLE canary; --", "zzz\\"]
    postgres.sql("INSERT INTO inj VALUES " + ", ".join(f"($q${k}$q$, {10 + i})" for i, k in enumerate(later)))
    logged: list[tuple] = []
    src = SqlSource({"uri": postgres.uri, **params}, {"logger": logged.append})
    out = adc.load(src, "inj", secret_dir=store, mode="append", progress=False)
    assert src.last_cursor == max(values) and out["rows_loaded"] == 2 and out["rows"] == 8
    assert "WHERE k > E'" in " ".join(" ".join(m) for m in logged)
    assert sorted(adc.get_arrow("inj", secret_dir=store)["k"].to_pylist()) == sorted(values + later)
    import adbc_driver_postgresql.dbapi as pg

    with pg.connect(postgres.uri) as conn, conn.cursor() as cur:
        cur.execute("SELECT alive FROM canary")
        assert cur.fetchone()[0] == 1, "the canary table is still there"
