"""Round trips of many dtypes through both transports, in one process."""

from __future__ import annotations

import decimal
import hashlib
import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

import allye_data_connector as adc
from allye_data_connector import errors
from tests.helpers import unlink_segments
from tests.sample_frames import frames

TRANSPORTS = ["shm", "file"]
OBJECT_STRINGS = {"object_strings", "late_strings"}


def send(df, name, store, **kw):
    return adc.send_dataframe(df, name, secret_dir=store, **kw)


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("kind", list(frames()))
def test_round_trip(store, transport, kind):
    df = frames()[kind]
    send(df, kind, store, transport=transport)
    back = adc.get_dataframe(kind, secret_dir=store)
    # An empty RangeIndex of labels comes back as an empty Index: same (no) labels.
    pd.testing.assert_frame_equal(back, df, check_column_type=kind != "no_columns")
    if kind in OBJECT_STRINGS:  # object, not pandas' "str" (pyarrow's reading), and None stays None
        assert back["s"].dtype == object and [type(v) for v in back["s"]] == [type(v) for v in df["s"]]


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_decimals_via_arrow(store, transport):
    values = [decimal.Decimal("1.10"), None, decimal.Decimal("-99999.99")]
    df = pd.DataFrame({"d": pd.Series(values, dtype=pd.ArrowDtype(pa.decimal128(12, 2)))})
    send(df, "dec", store, transport=transport)
    back = adc.get_dataframe("dec", secret_dir=store, dtype_backend="pyarrow")
    assert back["d"].dtype == pd.ArrowDtype(pa.decimal128(12, 2))
    assert back["d"].tolist()[0] == decimal.Decimal("1.10")
    assert back["d"].isna().tolist() == [False, True, False]


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_numeric_columns_are_zero_copy_read_only_views(store, transport):
    df = pd.DataFrame({"x": np.arange(100_000, dtype="float64"), "n": np.arange(100_000)})
    send(df, "zc", store, transport=transport)
    before = pa.total_allocated_bytes()
    back = adc.get_dataframe("zc", secret_dir=store)
    # No buffer of pyarrow's memory pool was allocated: the data is the mapping.
    assert pa.total_allocated_bytes() - before < 4096
    assert not back["x"].to_numpy().flags.writeable
    with pytest.raises(ValueError):
        back["x"].to_numpy()[0] = 1.0
    table = adc.get_arrow("zc", secret_dir=store)
    assert table.column("x").to_numpy().tolist() == df["x"].tolist()


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_pyarrow_backend_keeps_strings_zero_copy(store, transport):
    df = pd.DataFrame({"s": [f"value {i}" for i in range(50_000)], "x": np.arange(50_000.0)})
    send(df, "s", store, transport=transport)
    before = pa.total_allocated_bytes()
    back = adc.get_dataframe("s", secret_dir=store, dtype_backend="pyarrow")
    assert pa.total_allocated_bytes() - before < 4096
    assert isinstance(back["s"].dtype, pd.ArrowDtype)
    assert back["s"].iloc[49_999] == "value 49999"


def test_file_payload_is_chunked_uncompressed_arrow_ipc_file(store):
    df = pd.DataFrame({"x": np.arange(1000.0)})
    send(df, "chunked", store, transport="file", chunk_rows=300)
    locator = adc.list_tables(secret_dir=store)[0]
    path = json.loads((store / "manifest.jsonl").read_text().splitlines()[-1])["payload"]["locator"]
    reader = pa.ipc.open_file(pa.memory_map(path))
    assert reader.num_record_batches == 4
    assert [reader.get_batch(i).num_rows for i in range(4)] == [300, 300, 300, 100]
    assert locator["bytes"] == (store / "payloads" / path.rsplit("/", 1)[1]).stat().st_size
    # Compressed on request, still readable.
    send(df, "zstd", store, transport="file", compression="zstd")
    pd.testing.assert_frame_equal(adc.get_dataframe("zstd", secret_dir=store), df)


def test_manifest_lines_follow_the_protocol(store):
    df = pd.DataFrame({"a": [1, 2], "b": ["x", "y"]})
    send(df, "proto", store, ttl_sec=3600, metadata={"note": "ü"})
    lines = (store / "manifest.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 2
    writing, ready = (json.loads(line) for line in lines)
    keys = ["version", "id", "table_name", "producer", "status", "created_at", "ttl_sec", "payload", "metadata"]
    assert list(writing) == keys and list(ready) == keys
    assert (writing["status"], ready["status"]) == ("writing", "ready")
    assert writing["id"] == ready["id"] and writing["payload"] is None
    assert ", " not in lines[1] and '": ' not in lines[1] and "ü" in lines[1]
    p = ready["payload"]
    assert list(p) == ["transport", "locator", "data_size", "shape", "schema_sha256", "created_at", "expires_at"]
    assert p["shape"] == [2, 2] and p["transport"] == "shm_arrow_stream_v1"
    assert not p["locator"].startswith("/") and len(p["locator"]) <= 30
    expected = hashlib.sha256(("['a', 'b']|" + str({"a": str(df.dtypes["a"]), "b": str(df.dtypes["b"])})).encode()).hexdigest()
    assert p["schema_sha256"] == expected
    assert p["expires_at"] is not None and p["expires_at"] > p["created_at"]
    assert ready["metadata"]["shm_unlink_on_read"] is True and ready["metadata"]["note"] == "ü"
    assert oct((store / "payloads").stat().st_mode & 0o777) == oct(0o700)
    assert oct(store.stat().st_mode & 0o777) == oct(0o700)


def test_latest_version_wins_and_producer_filter(store):
    for i in range(3):
        send(pd.DataFrame({"v": [i]}), "t", store, transport=TRANSPORTS[i % 2])
    send(pd.DataFrame({"v": [99]}), "t", store, producer="allye")
    assert adc.get_dataframe("t", secret_dir=store)["v"].tolist() == [99]
    assert adc.get_dataframe("t", secret_dir=store, producer="python")["v"].tolist() == [2]
    with pytest.raises(KeyError):
        adc.get_dataframe("t", secret_dir=store, producer="nobody")
    tables = adc.list_tables(secret_dir=store)
    assert [(t["table_name"], t["producer"], t["shape"]) for t in tables] == [("t", "allye", (1, 1))]
    assert [t["shape"] for t in adc.list_tables(secret_dir=store, producer="python")] == [(1, 1)]


def test_generated_name_and_env_store(store, monkeypatch):
    monkeypatch.setenv("ALLYE_SECRET_DIR", str(store))
    name = adc.send_dataframe(pd.DataFrame({"a": [1]}))
    assert name.startswith("table_")
    assert adc.get_dataframe(name)["a"].tolist() == [1]
    assert adc.store_path() == store


def test_a_send_returns_its_record_only_when_asked(store, caplog):
    from allye_data_connector import _core

    table = pa.table({"a": [1, 2]})
    assert _core.send(table, secret_dir=str(store), table_name="quiet", record=False) is None
    ev = _core.send(table, secret_dir=str(store), table_name="loud")
    assert ev is not None and ev["table_name"] == "loud" and ev["status"] == "ready"
    assert adc.get_dataframe("quiet", secret_dir=store)["a"].tolist() == [1, 2]
    # The name comes back given or generated, and the debug log still names the payload.
    assert adc.send_dataframe(pd.DataFrame({"a": [3]}), "named", secret_dir=store) == "named"
    with caplog.at_level("DEBUG", logger="allye_data_connector"):
        generated = adc.send_dataframe(pd.DataFrame({"a": [4]}), secret_dir=store)
    assert generated.startswith("table_") and adc.get_dataframe(generated, secret_dir=store)["a"].tolist() == [4]
    assert any(generated in r.getMessage() and "bytes" in r.getMessage() for r in caplog.records)


def test_auto_decides_by_arrow_size(store):
    df = pd.DataFrame({"x": np.zeros(10_000)})  # 80 kB of Arrow data
    send(df, "small", store, max_shm_bytes=100_000)
    send(df, "big", store, max_shm_bytes=50_000)
    kinds = {t["table_name"]: t["transport"] for t in adc.list_tables(secret_dir=store)}
    assert kinds == {"small": "shm_arrow_stream_v1", "big": "file_arrow_ipc_v1"}


def test_wait_for_a_table_sent_later(store):
    import threading

    timer = threading.Timer(0.3, lambda: send(pd.DataFrame({"a": [7]}), "later", store))
    timer.start()
    df = adc.get_dataframe("later", secret_dir=store, wait=True, timeout_sec=10, poll_interval_sec=0.05)
    assert df["a"].tolist() == [7]
    with pytest.raises(errors.TableNotFoundError):
        adc.get_dataframe("never", secret_dir=store, wait=True, timeout_sec=0.2, poll_interval_sec=0.05)


def test_a_relative_store_path_is_taken_from_the_working_directory(tmp_path, monkeypatch):
    """A relative ``secret_dir`` names a directory under the working directory for every
    call: the send's table is listed and read back, here and from an absolute path."""
    monkeypatch.chdir(tmp_path)
    df = pd.DataFrame({"a": [1, 2, 3]})
    adc.send_dataframe(df, "rel", secret_dir="relstore")
    assert [t["table_name"] for t in adc.list_tables(secret_dir="relstore")] == ["rel"]
    pd.testing.assert_frame_equal(adc.get_dataframe("rel", secret_dir="relstore"), df)
    pd.testing.assert_frame_equal(adc.get_dataframe("rel", secret_dir=tmp_path / "relstore"), df)
    objs = adc.objects(secret_dir="relstore")
    objs["o"] = [1, 2]
    assert adc.objects(secret_dir=tmp_path / "relstore")["o"] == [1, 2]
    unlink_segments(tmp_path / "relstore")
