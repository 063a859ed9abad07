"""Pulls received in place (core ``tables::receive``): a big table of numbers, booleans,
strings or bytes is copied message by message into ONE record batch of a file payload,
and a stream cut off mid-way publishes nothing. Real ``adc serve`` processes, as the rest
of the suite."""

from __future__ import annotations

import json
import os
import signal
import threading
import time

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.flight as flight
import pytest

import allye_data_connector as adc
from allye_data_connector import _core

ROWS = 3_000_000  # 4 columns of 8 bytes + the index: ~96 MB, over max_shm_bytes


def _numeric(n: int = ROWS) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    f = rng.standard_normal(n)
    f[::97] = np.nan  # nulls, at offsets no message boundary lines up with
    return pd.DataFrame(
        {"f": f, "i": np.arange(n, dtype="int64"), "u": (np.arange(n) % 251).astype("uint8"),
         "t": pd.date_range("2020-01-01", periods=n, freq="s")},
        index=pd.date_range("2024-01-01", periods=n, freq="min", name="when"),
    )


MIXED_ROWS = 1_500_000  # ~80 MB of Arrow: over max_shm_bytes


def _mixed(n: int = MIXED_ROWS) -> pa.Table:
    """Booleans, strings (32- and 64-bit offsets, multi-byte, empty) and bytes, with nulls
    at offsets no message boundary lines up with."""
    rng = np.random.default_rng(2)
    vocab = pa.array([f"{'é' * (k % 3)}w{k}" + "x" * (k % 40) for k in range(1000)] + [""])
    pick = rng.integers(0, len(vocab), n)
    holes = np.zeros(n, dtype=bool)
    holes[::89] = True
    words = vocab.take(pa.array(pick, mask=holes))
    return pa.table({
        "s": words,
        "ls": vocab.take(pa.array(pick[::-1])).cast(pa.large_string()),
        "bin": pa.array([b"", b"\x00\xff", b"abc"] * (n // 3) + [b"z"] * (n % 3)),
        "flag": pa.array(pick % 3 == 0, mask=(pick % 13 == 0)),
        "dense": pa.array(pick % 2 == 1),
        "i": pa.array(np.arange(n, dtype="int64")),
    })


def _lines(store):
    return [json.loads(x) for x in (store / "manifest.jsonl").read_text().splitlines()]


def _payload_files(store):
    d = store / "payloads"
    return sorted(p.name for p in d.iterdir()) if d.exists() else []


def test_server_announces_each_columns_nulls(start_server):
    s = start_server("a", "--no-auth")
    df = _numeric(1000)
    adc.send_dataframe(df, "t", secret_dir=s.store, shm_unlink_on_read=False)
    info = flight.FlightClient(s.location).get_flight_info(flight.FlightDescriptor.for_path("t"))
    meta = json.loads(info.app_metadata)
    table = pa.Table.from_pandas(df)
    assert meta["null_counts"] == [table.column(n).null_count for n in info.schema.names]
    assert meta["null_counts"][info.schema.names.index("f")] == len(range(0, 1000, 97))
    assert meta["data_bytes"] == [None] * len(info.schema.names), "no string/bytes column"


def test_server_announces_the_value_bytes_of_each_string_column_of_the_slice(start_server):
    s = start_server("a", "--no-auth", env={"ALLYE_FLIGHT_MAX_MESSAGE_BYTES": str(4096)})
    table = _mixed(20_000)
    adc.send_dataframe(table, "t", secret_dir=s.store, shm_unlink_on_read=False)
    client = flight.FlightClient(s.location)
    for rows in ([None, None], [7, 12_345], [-5, None], [19_999, None], [3, 3]):
        info = client.get_flight_info(flight.FlightDescriptor.for_command(json.dumps({"table": "t", "rows": rows})))
        meta = json.loads(info.app_metadata)
        part = table.slice(*slice(*rows).indices(len(table))[:1], len(range(*slice(*rows).indices(len(table)))))
        want = [len(b"".join(x for x in part.column(n).to_pylist() if x is not None)
                    if pa.types.is_binary(part.column(n).type)
                    else "".join(x for x in part.column(n).to_pylist() if x is not None).encode())
                if n in ("s", "ls", "bin") else None for n in info.schema.names]
        assert meta["data_bytes"] == want, rows
        assert meta["null_counts"] == [c.null_count for c in part.columns]
        # What the stream then holds, message by message (sliced, offsets not from 0).
        got = client.do_get(info.endpoints[0].ticket).read_all()
        assert got.equals(part)


def test_big_numeric_table_is_received_in_place_as_one_batch(start_server, client_store):
    # Odd-sized messages: every message boundary cuts the validity bitmaps mid-byte.
    s = start_server("a", "--no-auth", env={"ALLYE_FLIGHT_MAX_MESSAGE_BYTES": str((3 << 20) + 13)})
    df = _numeric()
    adc.send_dataframe(df, "t", secret_dir=s.store, shm_unlink_on_read=False)
    with adc.connect([s.location], secret_dir=client_store) as r:
        got = r.get_dataframe("t")
        assert r.stats(s.location)["calls"]["do_get"] == 1
        assert r.stats(s.location)["rows_sent"] == ROWS
    assert got.equals(df) and got.index.equals(df.index) and list(got.dtypes) == list(df.dtypes)
    ready = _lines(client_store)[-1]
    assert ready["status"] == "ready" and ready["payload"]["transport"] == "file_arrow_ipc_v1"
    assert ready["payload"]["shape"] == [ROWS, 4]
    assert ready["metadata"]["adc"]["origin"] == s.location
    # What 0.1.2 and the widgets open: a plain Arrow IPC file, one record batch.
    with pa.memory_map(ready["payload"]["locator"]) as source:
        reader = pa.ipc.open_file(source)
        assert reader.num_record_batches == 1
        table = reader.read_all()
    assert table.equals(pa.Table.from_pandas(df))
    assert table.column("f").null_count == len(range(0, ROWS, 97))
    assert _payload_files(client_store) == [os.path.basename(ready["payload"]["locator"])]


def test_big_table_of_booleans_strings_and_bytes_is_received_in_place(start_server, client_store, monkeypatch):
    # Odd-sized messages: boundaries cut bitmaps mid-byte and strings anywhere.
    s = start_server("a", "--no-auth", env={"ALLYE_FLIGHT_MAX_MESSAGE_BYTES": str((1 << 20) + 7)})
    table = _mixed()
    adc.send_dataframe(table, "t", secret_dir=s.store, shm_unlink_on_read=False)
    seen: list = []
    real = _core.receive
    monkeypatch.setattr(_core, "receive", lambda *a, **kw: seen.append(kw["data_bytes"]) or real(*a, **kw))
    with adc.connect([s.location], secret_dir=client_store) as r:
        got = r.get_arrow("t")
        assert r.stats(s.location)["calls"]["do_get"] == 1
    assert len(seen) == 1 and seen[0][0] > 0, "the in-place path took it"
    assert got.equals(table)
    ready = _lines(client_store)[-1]
    assert ready["status"] == "ready" and ready["payload"]["transport"] == "file_arrow_ipc_v1"
    with pa.memory_map(ready["payload"]["locator"]) as source:
        reader = pa.ipc.open_file(source)
        assert reader.num_record_batches == 1
        stored = reader.read_all()
    stored.validate(full=True)
    assert stored.equals(table)
    assert stored.column("s").null_count == len(range(0, MIXED_ROWS, 89))
    assert _payload_files(client_store) == [os.path.basename(ready["payload"]["locator"])]
    # pandas reads it as it reads a local send of the same table.
    assert adc.get_dataframe("t", secret_dir=client_store).equals(table.to_pandas())


@pytest.mark.parametrize("kind", ["numbers", "strings"])
def test_a_stream_cut_mid_way_publishes_nothing_and_the_next_replica_serves(start_server, client_store, tmp_path, kind):
    df = _numeric() if kind == "numbers" else _mixed()
    a = start_server("a", "--no-auth", env={"ALLYE_FLIGHT_MAX_MESSAGE_BYTES": str(64 << 10)})
    b = start_server("b", "--no-auth")
    adc.send_dataframe(df, "t", secret_dir=a.store, shm_unlink_on_read=False)
    with adc.connect([a.location], secret_dir=b.store) as rb:
        rb.get_dataframe("t")  # b serves a copy of the same source version
    result: dict = {}
    seen: list = []
    real = _core.receive

    def receive(*args, **kw):  # the in-place path is the one under test
        seen.append(kw["table_name"])
        return real(*args, **kw)

    def pull() -> None:
        try:
            with adc.connect([a.location, b.location], secret_dir=client_store, timeout_sec=30) as r:
                result["df"] = r.get_dataframe("t")
        except Exception as exc:
            result["error"] = exc

    _core.receive = receive
    try:
        watcher = adc.connect([a.location], secret_dir=tmp_path / "watcher")
        th = threading.Thread(target=pull)
        th.start()
        deadline = time.monotonic() + 30
        while not (client_store / "manifest.jsonl").exists() and time.monotonic() < deadline:
            time.sleep(0.001)  # the receive has begun: its writing line is there
        os.kill(a.proc.pid, signal.SIGSTOP)  # frozen mid-stream ...
        time.sleep(0.2)
        a.kill()  # ... then killed
        th.join(60)
        watcher.close()
    finally:
        _core.receive = real
    assert "error" not in result, result
    assert result["df"].equals(df if kind == "numbers" else df.to_pandas())
    assert seen == ["t", "t"], "both pulls went through the in-place receive"
    lines = _lines(client_store)
    assert [x["status"] for x in lines] == ["writing", "error", "writing", "ready"]
    assert lines[-1]["metadata"]["adc"]["origin"] == b.location
    assert _payload_files(client_store) == [os.path.basename(lines[-1]["payload"]["locator"])], \
        "the cut stream left no file, temporary or final"


def test_tables_it_cannot_lay_out_take_the_ordinary_path(start_server, client_store, monkeypatch):
    s = start_server("a", "--no-auth")
    n = 3_000_000
    df = pd.DataFrame({"x": np.arange(n, dtype="float64"), "b": np.arange(n) % 3 == 0,
                       "c": pd.Categorical(np.array(["u", "v", "w"])[np.arange(n) % 3])})  # a dictionary
    adc.send_dataframe(df, "t", secret_dir=s.store, shm_unlink_on_read=False)
    seen: list = []
    real = _core.receive
    monkeypatch.setattr(_core, "receive", lambda *a, **kw: seen.append(1) or real(*a, **kw))
    with adc.connect([s.location], secret_dir=client_store) as r:
        got = r.get_dataframe("t")
    assert got.equals(df)
    assert seen == [], "a dictionary column keeps the ordinary path"
    assert [x["status"] for x in _lines(client_store)] == ["writing", "ready"]
    strings = pa.schema([("s", pa.string()), ("n", pa.int8())])
    assert not _core.receivable(strings), "strings need their bytes announced"
    assert not _core.receivable(strings, [None, None])
    assert not _core.receivable(strings, [5]), "one entry a column"
    assert _core.receivable(strings, [5, None])
    assert not _core.receivable(pa.schema([("l", pa.list_(pa.int8()))]))
    assert not _core.receivable(pa.schema([("v", pa.string_view())]), [1])
    assert _core.receivable(pa.schema([("f", pa.float32()), ("d", pa.decimal128(10, 2)), ("t", pa.time64("us")),
                                       ("b", pa.bool_())]))


def _timed(n: int = MIXED_ROWS, start: str = "2024-01-01") -> pa.Table:
    t = pa.array(pd.date_range(start, periods=n, freq="s").values)
    return _mixed(n).append_column("t", t)


def test_a_partial_pull_of_strings_is_received_in_place(start_server, client_store, monkeypatch):
    s = start_server("a", "--no-auth", env={"ALLYE_FLIGHT_MAX_MESSAGE_BYTES": str((2 << 20) + 5)})
    table = _timed()
    adc.send_dataframe(table, "t", secret_dir=s.store, shm_unlink_on_read=False)
    seen: list = []
    real = _core.receive
    monkeypatch.setattr(_core, "receive", lambda *a, **kw: seen.append(kw["rows"]) or real(*a, **kw))
    times = table.column("t")
    t0, t1 = times[1001].as_py(), times[MIXED_ROWS - 7].as_py()
    with adc.connect([s.location], secret_dir=client_store) as r:
        ev = r.pull("t", columns=["s", "ls", "flag"], start=t0, end=t1, time_column="t", local_name="part")
        sent = r.stats(s.location)["rows_sent"]
    want = table.select(["s", "ls", "flag"]).slice(1001, MIXED_ROWS - 7 - 1001)
    assert seen == [want.num_rows] and sent == want.num_rows, "only the slice moved, in place"
    got = adc.get_arrow("part", secret_dir=client_store)
    assert got.select(want.column_names).equals(want)
    assert ev["metadata"]["adc"]["origin"] == s.location
    with pa.memory_map(ev["payload"]["locator"]) as source:
        assert pa.ipc.open_file(source).num_record_batches == 1


def test_a_tail_sync_copies_the_held_rows_and_the_new_ones_in_place(start_server, client_store, monkeypatch):
    s = start_server("a", "--no-auth", env={"ALLYE_FLIGHT_MAX_MESSAGE_BYTES": str((1 << 20) + 3)})
    first = _timed()
    adc.send_dataframe(first, "t", secret_dir=s.store, shm_unlink_on_read=False)
    seen: list = []
    real = _core.receive
    monkeypatch.setattr(_core, "receive", lambda *a, **kw: seen.append(kw["rows"]) or real(*a, **kw))
    with adc.connect([s.location], secret_dir=client_store, check_ttl_sec=0) as r:
        r.sync("t", sync="tail", time_column="t")
        before = r.stats(s.location)["rows_sent"]
        later = _timed(1003, start=str(pd.Timestamp(first.column("t")[-1].as_py()) + pd.Timedelta("1s")))
        both = pa.concat_tables([first, later])
        adc.send_dataframe(both, "t", secret_dir=s.store, shm_unlink_on_read=False)
        r.sync("t", sync="tail", time_column="t")
        got = adc.get_arrow("t", secret_dir=client_store)
        assert r.stats(s.location)["rows_sent"] - before == 1003, "only the new rows moved"
    assert seen == [MIXED_ROWS, MIXED_ROWS + 1003]
    assert got.equals(both)
    lines = _lines(client_store)
    assert [x["status"] for x in lines] == ["writing", "ready", "writing", "ready"]
    with pa.memory_map(lines[-1]["payload"]["locator"]) as source:
        reader = pa.ipc.open_file(source)
        assert reader.num_record_batches == 1
        reader.read_all().validate(full=True)


@pytest.mark.parametrize("in_place", [True, False], ids=["received-in-place", "received-whole"])
def test_a_pull_frees_superseded_versions_as_the_store_settings_say(start_server, client_store, monkeypatch,
                                                                    in_place):
    # The client store's settings (here from the environment) apply to what a pull
    # writes, as to a send: no grace, two versions kept.
    s = start_server("a", "--no-auth")
    monkeypatch.setenv("ALLYE_AUTO_GC_GRACE_SEC", "0")
    monkeypatch.setenv("ALLYE_KEEP_VERSIONS", "2")
    seen: list = []
    real = _core.receive
    monkeypatch.setattr(_core, "receive", lambda *a, **kw: seen.append(kw["rows"]) or real(*a, **kw))
    if in_place:  # a small table takes the in-place path once shared memory "cannot" hold it
        monkeypatch.setattr(_core, "DEFAULT_MAX_SHM_BYTES", 1024)
    payloads = []
    with adc.connect([s.location], secret_dir=client_store, check_ttl_sec=0) as r:
        for v in range(3):
            adc.send_dataframe(_numeric(2000).assign(i=v), "t", secret_dir=s.store, shm_unlink_on_read=False)
            ev = r.sync("t")
            payloads.append(ev["payload"])
            assert adc.get_dataframe("t", secret_dir=client_store)["i"].iloc[0] == v
    assert len(seen) == (3 if in_place else 0)

    def exists(p):
        return os.path.exists(p["locator"] if p["transport"] == "file_arrow_ipc_v1" else f"/dev/shm/{p['locator']}")

    assert [exists(p) for p in payloads] == [False, True, True], "the oldest version is freed at once, two kept"
