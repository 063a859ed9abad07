"""Serve and pull on loopback: every server its own ``adc serve`` process with its own
store; assertions on the server's own call and byte counters (the ``stats`` action)."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import textwrap
import time
import warnings

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.flight as flight
import pytest

import allye_data_connector as adc
from allye_data_connector import _core
from allye_data_connector.errors import InvalidArgumentError, RemoteUnavailableError, TableNotFoundError
from tests.sample_frames import frames

ROUND_TRIP_KINDS = [k for k in frames() if k != "late_strings"]


def _series(n: int = 10_000, start: str = "2024-01-01") -> pd.DataFrame:
    idx = pd.date_range(start, periods=n, freq="min")
    return pd.DataFrame({"a": np.arange(n, dtype="int64"), "b": np.linspace(0, 1, n), "c": np.arange(n) % 7 == 0}, index=idx)


def _send(store, df, name="t"):
    return adc.send_dataframe(df, name, secret_dir=store, shm_unlink_on_read=False)


def _calls(r, s, method):
    return r.stats(s.location)["calls"].get(method, 0)


def test_round_trip_equals_local_read_for_every_frame_kind(start_server, client_store):
    srv_store_frames = frames()
    s = start_server()
    for kind in ROUND_TRIP_KINDS:
        _send(s.store, srv_store_frames[kind], kind)
    with adc.connect([s.location], secret_dir=client_store, token=s.token) as r:
        for kind in ROUND_TRIP_KINDS:
            local = adc.get_dataframe(kind, secret_dir=s.store)
            pulled = r.get_dataframe(kind)
            pd.testing.assert_frame_equal(pulled, local)
        assert _calls(r, s, "do_get") == len(ROUND_TRIP_KINDS)


def test_first_load_pulls_second_does_not_and_within_ttl_no_call(start_server, client_store):
    s = start_server()
    df = _series()
    _send(s.store, df)
    with adc.connect([s.location], secret_dir=client_store, token=s.token, check_ttl_sec=0) as r:
        pd.testing.assert_frame_equal(r.get_dataframe("t"), df)
        st = r.stats(s.location)
        assert st["calls"]["do_get"] == 1
        assert st["rows_sent"] == len(df)
        # The table is named as adc.get_dataframe names it (table_name=).
        pd.testing.assert_frame_equal(r.get_dataframe(table_name="t"), df)
        st2 = r.stats(s.location)
        assert st2["calls"]["do_get"] == 1, "an unchanged table is not pulled again"
        assert st2["calls"]["do_action:versions"] == st["calls"]["do_action:versions"] + 1
    with adc.connect([s.location], secret_dir=client_store, token=s.token, check_ttl_sec=3600) as r:
        before = r.stats(s.location)["total_calls"]
        for _ in range(3):
            pd.testing.assert_frame_equal(r.get_dataframe("t"), df)
        assert r.stats(s.location)["total_calls"] == before, "within check_ttl_sec no call at all"


def test_new_remote_version_is_pulled_once(start_server, client_store):
    s = start_server()
    _send(s.store, _series(100))
    with adc.connect([s.location], secret_dir=client_store, token=s.token, check_ttl_sec=0) as r:
        r.get_dataframe("t")
        df2 = _series(200)
        _send(s.store, df2)
        pd.testing.assert_frame_equal(r.get_dataframe("t"), df2)
        pd.testing.assert_frame_equal(r.get_dataframe("t"), df2)
        assert _calls(r, s, "do_get") == 2


def test_pulled_version_records_origin_and_remote_id_merged_with_writer_keys(start_server, client_store):
    s = start_server()
    _send(s.store, _series(50))
    remote_id = _core.latest("t", secret_dir=str(s.store))["id"]
    with adc.connect([s.location], secret_dir=client_store, token=s.token) as r:
        r.get_dataframe("t")
    lines = [json.loads(x) for x in (client_store / "manifest.jsonl").read_text().splitlines()]
    ready = [x for x in lines if x["status"] == "ready"][-1]
    meta = ready["metadata"]["adc"]
    assert meta["origin"] == s.location and meta["remote_id"] == remote_id and meta["remote_table"] == "t"
    assert meta["writer"]["pid"] > 0 and meta["locator"] == ready["payload"]["locator"]
    assert ready["id"] != remote_id
    # An ordinary table of the client's store, with the server's shape.
    assert tuple(adc.list_tables(secret_dir=client_store)[0]["shape"]) == (50, 3)


def test_send_merges_callers_adc_metadata(store):
    adc.send_dataframe(pd.DataFrame({"a": [1]}), "m", secret_dir=store, metadata={"adc": {"origin": "x", "remote_id": "y"}, "k": 1})
    ev = _core.latest("m", secret_dir=str(store))
    assert ev["metadata"]["adc"]["origin"] == "x" and ev["metadata"]["adc"]["remote_id"] == "y"
    assert ev["metadata"]["adc"]["writer"]["pid"] == os.getpid()
    assert ev["metadata"]["k"] == 1


def test_partial_and_time_range_pulls_move_only_the_slice(start_server, client_store):
    s = start_server()
    df = _series(20_000)
    _send(s.store, df)
    full_bytes = pa.Table.from_pandas(df).nbytes
    with adc.connect([s.location], secret_dir=client_store, token=s.token, max_full_pull_bytes=1) as r:
        part = r.get_dataframe("t", columns=["b"])
        pd.testing.assert_frame_equal(part, df[["b"]])
        st = r.stats(s.location)
        assert st["bytes_sent"] == pa.Table.from_pandas(df[["b"]]).nbytes < full_bytes
        t0, t1 = df.index[1000], df.index[1500]
        ranged = r.get_dataframe("t", start=t0, end=t1)
        pd.testing.assert_frame_equal(ranged, df.loc[t0 : df.index[1499]])
        st2 = r.stats(s.location)
        assert st2["rows_sent"] - st["rows_sent"] == 500
        assert not adc.list_tables(secret_dir=client_store), "slices of big tables are not cached as the table"
        # adc pull --columns stores the slice.
        ev = r.pull("t", columns=["a"], start=t0, end=t1, local_name="t_part")
    got = adc.get_dataframe("t_part", secret_dir=client_store)
    pd.testing.assert_frame_equal(got, df.loc[t0 : df.index[1499], ["a"]])
    assert ev["metadata"]["adc"]["origin"] == s.location


def test_a_pull_of_rows_keeps_their_labels(start_server, client_store):
    """The server slices with the partial loads' code: rows 100..299 are labelled so."""
    s = start_server()
    df = pd.DataFrame({"v": np.arange(1000) * 0.5, "s": [f"r{i}" for i in range(1000)]})
    odd = pd.DataFrame({"v": np.arange(50.0)}, index=pd.RangeIndex(1000, 500, -10, name="k"))
    _send(s.store, df)
    adc.send_dataframe(odd, "odd", secret_dir=s.store)
    with adc.connect([s.location], secret_dir=client_store, token=s.token, max_full_pull_bytes=1) as r:
        got = r.get_dataframe("t", rows=(100, 300))
        pd.testing.assert_frame_equal(got, df.iloc[100:300])
        pd.testing.assert_frame_equal(r.get_dataframe("odd", rows=(-5, None)), odd.iloc[-5:])
        assert r.stats(s.location)["rows_sent"] == 205, "slices, not the tables"


def test_tail_sync_moves_only_new_rows(start_server, client_store):
    s = start_server()
    df = _series(5000)
    _send(s.store, df)
    with adc.connect([s.location], secret_dir=client_store, token=s.token, check_ttl_sec=0) as r:
        r.get_dataframe("t", sync="tail")
        rows_before = r.stats(s.location)["rows_sent"]
        more = pd.concat([df, _series(300, start=str(df.index[-1] + pd.Timedelta("1min")))])
        _send(s.store, more)
        got = r.get_dataframe("t", sync="tail")
        pd.testing.assert_frame_equal(got, more, check_freq=False)
        assert r.stats(s.location)["rows_sent"] - rows_before == 300


def test_token_file_mode_wrong_and_missing_token_refused(start_server, client_store):
    s = start_server()
    _send(s.store, _series(10))
    assert stat.S_IMODE((s.store / "remote" / "token").stat().st_mode) == 0o600
    assert stat.S_IMODE((s.store / "remote").stat().st_mode) == 0o700  # private, as everything in a store
    for token in ("wrong", None):
        with adc.connect([s.location], secret_dir=client_store, token=token) as r:
            with pytest.raises(RemoteUnavailableError, match="refused"):
                r.get_dataframe("t")
    assert not adc.list_tables(secret_dir=client_store)


def test_no_auth_server_and_list_and_unknown_table(start_server, client_store):
    s = start_server("open", "--no-auth")
    _send(s.store, _series(10), "x")
    with adc.connect([s.location], secret_dir=client_store) as r:
        assert [t["table_name"] for t in r.list_tables(s.location)] == ["x"]
        with pytest.raises(TableNotFoundError):
            r.get_dataframe("nope")
        assert set(r.versions(["x", "nope"])) == {"x", "nope"} and r.versions(["nope"])["nope"] is None


def test_version_check_of_many_tables_is_one_round_trip(start_server, client_store):
    s = start_server()
    for i in range(30):
        _send(s.store, pd.DataFrame({"v": [i]}), f"t{i}")
    with adc.connect([s.location], secret_dir=client_store, token=s.token) as r:
        before = r.stats(s.location)["total_calls"]
        v = r.versions([f"t{i}" for i in range(30)])
        assert len(v) == 30 and all(x is not None for x in v.values())
        assert r.stats(s.location)["total_calls"] == before + 1


def test_peer_down_stale_ok_serves_cache_with_warning_else_error(start_server, client_store):
    s = start_server()
    df = _series(100)
    _send(s.store, df)
    with adc.connect([s.location], secret_dir=client_store, token=s.token, check_ttl_sec=0, timeout_sec=3) as r:
        r.get_dataframe("t")
        s.kill()
        t0 = time.monotonic()
        with pytest.raises(RemoteUnavailableError):
            r.get_dataframe("t")
        assert time.monotonic() - t0 < 10
        with pytest.warns(RuntimeWarning, match="cached version"):
            pd.testing.assert_frame_equal(r.get_dataframe("t", stale_ok=True), df)
        # through the public get_dataframe too
        with pytest.warns(RuntimeWarning):
            r.stale_ok = True
            pd.testing.assert_frame_equal(adc.get_dataframe("t", remote=r), df)


def test_put_only_when_allowed(start_server, client_store):
    closed = start_server("closed")
    opened = start_server("opened", "--allow-put")
    df = _series(100)
    _send(client_store, df, "mine")
    with adc.connect([closed.location], secret_dir=client_store, token=closed.token) as r:
        with pytest.raises(RemoteUnavailableError, match="allow-put"):
            r.push("mine", closed.location)
    assert not adc.list_tables(secret_dir=closed.store)
    with adc.connect([opened.location], secret_dir=client_store, token=opened.token) as r:
        out = r.push("mine", opened.location)
    assert out["table_name"] == "mine"
    pd.testing.assert_frame_equal(adc.get_dataframe("mine", secret_dir=opened.store), df)
    # The protocol's schema_sha256 (of the pandas frame) travels with the push.
    assert out["schema_sha256"] == _core.latest("mine", secret_dir=str(client_store))["payload"]["schema_sha256"]


def test_serving_is_not_a_consuming_read(start_server, client_store):
    s = start_server()
    df = _series(100)
    adc.send_dataframe(df, "once", secret_dir=s.store, shm_unlink_on_read=True)
    with adc.connect([s.location], secret_dir=client_store, token=s.token) as r:
        r.get_dataframe("once")
    assert adc.describe_table("once", secret_dir=s.store)["state"] == "ready"


def test_non_loopback_without_tls_needs_insecure(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "allye_data_connector", "-d", str(tmp_path / "s"), "serve",
                           "--host", "0.0.0.0", "--port", "0"], capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0 and "insecure" in proc.stderr
    with pytest.raises(InvalidArgumentError):
        adc.connect(["nohostport"], secret_dir=tmp_path / "c")


def test_sigterm_shuts_down_cleanly(start_server):
    s = start_server()
    t0 = time.monotonic()
    assert s.stop() == 0
    assert time.monotonic() - t0 < 10


def test_sigkill_of_a_client_leaves_the_server_store_unchanged(start_server, client_store):
    s = start_server()
    _send(s.store, _series(400_000))
    manifest = (s.store / "manifest.jsonl").read_bytes()
    code = textwrap.dedent(f"""
        import allye_data_connector as adc
        r = adc.connect([{s.location!r}], secret_dir={str(client_store)!r}, token={s.token!r})
        print("go", flush=True)
        while True:
            r.get_dataframe("t"); r._checked.clear()
            adc.remove_table("t", secret_dir={str(client_store)!r})
    """)
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "go"
    time.sleep(1.0)
    p.send_signal(signal.SIGKILL)
    p.wait()
    p.stdout.close()
    assert (s.store / "manifest.jsonl").read_bytes() == manifest
    with adc.connect([s.location], secret_dir=client_store, token=s.token) as r:
        assert r.stats(s.location)["calls"]["do_get"] >= 1
    pd.testing.assert_frame_equal(adc.get_dataframe("t", secret_dir=s.store), _series(400_000))


def test_four_clients_pulling_at_once(start_server, tmp_path):
    s = start_server()
    df = _series(200_000)
    _send(s.store, df)
    code = """
        import sys, allye_data_connector as adc, pandas as pd
        r = adc.connect([sys.argv[1]], secret_dir=sys.argv[2], token=sys.argv[3])
        df = r.get_dataframe("t")
        print(len(df), float(df["b"].sum()))
    """
    procs = [subprocess.Popen([sys.executable, "-c", textwrap.dedent(code), s.location, str(tmp_path / f"c{i}"), s.token],
                              stdout=subprocess.PIPE, text=True) for i in range(4)]
    outs = [p.communicate(timeout=120)[0].split() for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert all(int(o[0]) == len(df) and float(o[1]) == pytest.approx(df["b"].sum()) for o in outs)
    with adc.connect([s.location], secret_dir=tmp_path / "c0", token=s.token) as r:
        assert r.stats(s.location)["calls"]["do_get"] == 4
    from tests.helpers import unlink_segments
    for i in range(4):
        unlink_segments(tmp_path / f"c{i}")


def test_sigkill_of_server_mid_stream_leaves_no_ready_line_and_next_replica_serves(start_server, client_store):
    big = _series(3_000_000)  # ~57 MB: streamed in many bounded messages
    a = start_server("a", "--no-auth", env={"ALLYE_FLIGHT_MAX_MESSAGE_BYTES": str(256 << 10)})
    b = start_server("b", "--no-auth")
    _send(a.store, big)
    # b holds a copy of a's version (pulled), so it serves the same source version.
    with adc.connect([a.location], secret_dir=b.store) as r:
        r.get_dataframe("t")
    # A raw DoGet reads one message from a, then a dies: the rest of the stream fails.
    client = flight.FlightClient(a.location)
    info = client.get_flight_info(flight.FlightDescriptor.for_path("t"))
    reader = client.do_get(info.endpoints[0].ticket)
    reader.read_chunk()
    a.kill()
    with pytest.raises(Exception):
        while True:
            reader.read_chunk()
    client.close()
    # The remote client falls over to the replica, and a's broken stream left nothing.
    with adc.connect([a.location, b.location], secret_dir=client_store, timeout_sec=5) as r:
        got = r.get_dataframe("t")
        assert got.equals(big) and got.index.equals(big.index)  # assert_frame_equal takes 16 s on this size
        assert r.stats(b.location)["calls"]["do_get"] == 1
    lines = [json.loads(x) for x in (client_store / "manifest.jsonl").read_text().splitlines()]
    assert [x["status"] for x in lines] == ["writing", "ready"]
    assert lines[-1]["metadata"]["adc"]["origin"] == b.location


def test_remote_pull_cut_mid_stream_falls_over_to_the_next_replica(start_server, client_store, tmp_path):
    import threading

    big = _series(4_000_000)  # ~100 MB in 64 KiB messages: a stream that lasts
    a = start_server("a", "--no-auth", env={"ALLYE_FLIGHT_MAX_MESSAGE_BYTES": str(64 << 10)})
    b = start_server("b", "--no-auth")
    _send(a.store, big)
    with adc.connect([a.location], secret_dir=b.store) as rb:
        rb.get_dataframe("t")  # b serves a copy of the same source version
    result: dict = {}

    def pull() -> None:
        try:
            with adc.connect([a.location, b.location], secret_dir=client_store, timeout_sec=30) as r:
                result["df"] = r.get_dataframe("t")
        except Exception as exc:
            result["error"] = exc

    watcher = adc.connect([a.location], secret_dir=tmp_path / "watcher")
    th = threading.Thread(target=pull)
    th.start()
    deadline = time.monotonic() + 30
    while watcher.stats(a.location)["calls"].get("do_get", 0) < 1 and time.monotonic() < deadline:
        time.sleep(0.001)
    while not (client_store / "manifest.jsonl").exists() and time.monotonic() < deadline:
        time.sleep(0.001)  # the in-place receive has begun: its first message arrived
    os.kill(a.proc.pid, signal.SIGSTOP)  # frozen mid-stream (its first DoGet has begun) ...
    time.sleep(0.2)
    a.kill()  # ... then killed
    th.join(60)
    watcher.close()
    assert "error" not in result, result
    assert result["df"].equals(big)
    lines = [json.loads(x) for x in (client_store / "manifest.jsonl").read_text().splitlines()]
    # The table (ints, floats, booleans) is received in place: the cut pull announced its
    # version (writing) and withdrew it (error, same id); it never became ready.
    assert [x["status"] for x in lines] == ["writing", "error", "writing", "ready"]
    assert lines[0]["id"] == lines[1]["id"] != lines[3]["id"] == lines[2]["id"]
    assert lines[-1]["metadata"]["adc"]["origin"] == b.location, "a's stream was cut, b served"
    payloads = sorted(p.name for p in (client_store / "payloads").iterdir())
    assert payloads == [os.path.basename(lines[-1]["payload"]["locator"])], "the cut stream left no file"


def test_the_token_is_not_trusted_from_a_store_others_can_write(tmp_path):
    """A token another user could have planted would let them in: the store and its
    remote/ are checked before the token there is read (and remote/ is made 0700)."""
    from allye_data_connector.remote import server as serving
    from allye_data_connector.errors import StoreNotPrivateError

    store = tmp_path / "store"
    token = serving.ensure_token(str(store))
    assert serving.ensure_token(str(store)) == token
    (store / "remote").chmod(0o777)
    with pytest.raises(StoreNotPrivateError, match="chmod 700"):
        serving.ensure_token(str(store))
