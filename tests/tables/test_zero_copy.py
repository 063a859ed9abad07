"""A get maps and wraps: it adds no anonymous memory of the payload's size.

Pages of a mapped payload count in RssFile/RssShmem (and only once touched); a copy
(pandas concatenating record batches, pyarrow converting) lands in RssAnon. So RssAnon
after a get, minus before, is what the get copied.
"""

from __future__ import annotations

import gc
import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

import allye_data_connector as adc

ROWS = 2_000_000  # 2M x 4 x 8 bytes = 64 MB: large enough to see a copy, quick to send
PAYLOAD = ROWS * 4 * 8


def rss_anon() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) * 1024
    pytest.skip("no RssAnon in /proc/self/status")


def frame() -> pd.DataFrame:
    rng = np.random.default_rng(1)
    return pd.DataFrame(
        {"a": rng.standard_normal(ROWS), "b": rng.standard_normal(ROWS), "i": np.arange(ROWS), "j": -np.arange(ROWS)}
    )


def ready_payload(store, table):
    for line in reversed((store / "manifest.jsonl").read_text().splitlines()):
        ev = json.loads(line)
        if ev["table_name"] == table and ev["status"] == "ready":
            return ev["payload"]
    raise AssertionError("no ready line")


@pytest.mark.parametrize("transport", ["auto", "file", "shm"])
def test_default_get_adds_no_copy(store, transport):
    df = frame()
    # max_shm_bytes below the payload: "auto" writes a file, as the default does for big frames.
    adc.send_dataframe(df, "big", secret_dir=store, transport=transport, max_shm_bytes=1 << 20)
    payload = ready_payload(store, "big")
    assert payload["transport"] == ("shm_arrow_stream_v1" if transport == "shm" else "file_arrow_ipc_v1")
    if payload["transport"] == "file_arrow_ipc_v1":
        # Uncompressed by default, and written as one record batch so that nothing is concatenated.
        reader = pa.ipc.open_file(pa.memory_map(payload["locator"]))
        assert reader.num_record_batches == 1
        assert reader.schema.field("a").type == pa.float64()
    gc.collect()
    before = rss_anon()
    out = adc.get_dataframe("big", secret_dir=store)
    added = rss_anon() - before
    assert added < 0.05 * PAYLOAD, f"get added {added} anonymous bytes for a {PAYLOAD}-byte payload"
    assert not out["a"].to_numpy().flags.writeable  # a view of the read-only mapping
    pd.testing.assert_frame_equal(out, df)


@pytest.mark.parametrize("transport", ["file", "shm"])
@pytest.mark.parametrize("given", ["progress", "arrow_chunks"])
def test_data_given_in_many_batches_is_written_as_one(store, transport, given):
    """A send with progress converts the frame in chunks (adc send of a big file in a
    terminal does), and Arrow data may come in many chunks: the payload is still one
    record batch, so the get copies nothing."""
    df = frame()
    df["s"] = pd.Series([f"w{i % 1000}" for i in range(ROWS)], dtype=object)
    if given == "progress":
        seen = []
        adc.send_dataframe(df, "many", secret_dir=store, transport=transport, progress=lambda d, n: seen.append(d))
        assert len(seen) > 1, "converted in chunks"
    else:
        table = pa.Table.from_pandas(df, preserve_index=False)
        table = pa.Table.from_batches(table.to_batches(max_chunksize=ROWS // 7 + 3))
        assert table.column("a").num_chunks == 7
        adc.send_dataframe(table, "many", secret_dir=store, transport=transport)
    payload = ready_payload(store, "many")
    if transport == "file":
        assert pa.ipc.open_file(pa.memory_map(payload["locator"])).num_record_batches == 1
    got = adc.get_arrow("many", secret_dir=store)
    assert got.column("a").num_chunks == 1 and got.column("s").num_chunks == 1
    gc.collect()
    before = rss_anon()
    out = adc.get_dataframe("many", secret_dir=store, columns=["a", "b", "i", "j"])
    assert rss_anon() - before < 0.05 * PAYLOAD, "the numeric columns are views of the mapping"
    assert not out["a"].to_numpy().flags.writeable
    pd.testing.assert_frame_equal(out, df[["a", "b", "i", "j"]])


def test_explicit_chunk_rows_and_compression_still_chunk(store):
    df = pd.DataFrame({"x": np.arange(1000.0)})
    for name, kwargs, batches in [
        ("plain", {}, 1),
        ("chunked", {"chunk_rows": 300}, 4),
        ("zstd", {"compression": "zstd"}, 1),  # 1000 rows < 500,000: one batch
        ("zstd300", {"compression": "zstd", "chunk_rows": 300}, 4),
    ]:
        adc.send_dataframe(df, name, secret_dir=store, transport="file", **kwargs)
        reader = pa.ipc.open_file(pa.memory_map(ready_payload(store, name)["locator"]))
        assert reader.num_record_batches == batches, name
        pd.testing.assert_frame_equal(adc.get_dataframe(name, secret_dir=store), df)


def test_compressed_default_chunking_is_0_1_2s(store, monkeypatch):
    monkeypatch.setenv("ALLYE_ARROW_COMPRESSION", "lz4")
    df = pd.DataFrame({"x": np.arange(600_000.0)})
    adc.send_dataframe(df, "lz", secret_dir=store, transport="file")
    reader = pa.ipc.open_file(pa.memory_map(ready_payload(store, "lz")["locator"]))
    assert [reader.get_batch(i).num_rows for i in range(reader.num_record_batches)] == [500_000, 100_000]


@pytest.mark.parametrize("transport", ["file", "shm"])
def test_string_frame_with_pyarrow_backend_adds_no_copy(store, transport):
    n = 500_000
    df = pd.DataFrame({"s": [f"row {i} " * 4 for i in range(n)], "x": np.arange(float(n))})
    adc.send_dataframe(df, "s", secret_dir=store, transport=transport)
    size = ready_payload(store, "s")["data_size"]
    gc.collect()
    before_pool, before_anon = pa.total_allocated_bytes(), rss_anon()
    out = adc.get_dataframe("s", secret_dir=store, dtype_backend="pyarrow")
    assert pa.total_allocated_bytes() - before_pool < 4096
    assert rss_anon() - before_anon < 0.05 * size
    assert out["s"].iloc[n - 1] == f"row {n - 1} " * 4
