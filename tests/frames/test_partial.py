"""Partial loads: columns, rows, head, sample, and time ranges by binary search, on
both transports and on multi-batch files; and describe/list of every state."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import allye_data_connector as adc
from allye_data_connector.errors import InvalidArgumentError, TableNotFoundError

N = 10_000


def frame(tz=None) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {"a": np.arange(N, dtype=np.int64), "b": rng.standard_normal(N), "c": [f"s{i}" for i in range(N)]},
        index=pd.date_range("2025-01-01", periods=N, freq="min", tz=tz, name="ts"),
    )


@pytest.fixture(params=["shm", "file"])
def sent(request, store):
    df = frame()
    adc.send_dataframe(df, "t", secret_dir=store, transport=request.param, chunk_rows=999)
    return store, df


def test_columns_rows_head(sent):
    store, df = sent
    got = adc.get_dataframe("t", secret_dir=store, columns=["c", "a"])
    pd.testing.assert_frame_equal(got, df[["c", "a"]], check_freq=False)
    got = adc.get_dataframe("t", secret_dir=store, rows=(1500, 2500))
    pd.testing.assert_frame_equal(got, df.iloc[1500:2500], check_freq=False)
    got = adc.get_dataframe("t", secret_dir=store, rows=(-10, None), columns=["b"])
    pd.testing.assert_frame_equal(got, df[["b"]].iloc[-10:], check_freq=False)
    got = adc.get_dataframe("t", secret_dir=store, head=3)
    pd.testing.assert_frame_equal(got, df.head(3), check_freq=False)
    assert adc.get_dataframe("t", secret_dir=store, head=0).shape == (0, 3)
    with pytest.raises(InvalidArgumentError, match="no column 'zz'"):
        adc.get_dataframe("t", secret_dir=store, columns=["zz"])
    with pytest.raises(InvalidArgumentError):
        adc.get_dataframe("t", secret_dir=store, rows=(1, 2, 3))
    with pytest.raises(InvalidArgumentError):
        adc.get_dataframe("t", secret_dir=store, head=-1)


def test_sample_is_reproducible_and_ordered(sent):
    store, df = sent
    s1 = adc.get_dataframe("t", secret_dir=store, sample=100, seed=7)
    s2 = adc.get_dataframe("t", secret_dir=store, sample=100, seed=7)
    s3 = adc.get_dataframe("t", secret_dir=store, sample=100, seed=8)
    pd.testing.assert_frame_equal(s1, s2)
    assert not s1.index.equals(s3.index)
    assert len(s1) == 100 and s1.index.is_monotonic_increasing and s1.index.is_unique
    pd.testing.assert_frame_equal(s1, df.loc[s1.index], check_freq=False)
    assert len(adc.get_dataframe("t", secret_dir=store, sample=10 * N)) == N


def test_time_range_on_index_across_batches(sent):
    store, df = sent
    start, end = "2025-01-01 10:00", "2025-01-03 07:31:30"
    got = adc.get_dataframe("t", secret_dir=store, start=start, end=end)
    want = df[(df.index >= start) & (df.index < end)]
    assert len(want) > 999  # crosses record batches
    pd.testing.assert_frame_equal(got, want, check_freq=False)
    # Open ends, bounds outside the data, empty ranges.
    pd.testing.assert_frame_equal(adc.get_dataframe("t", secret_dir=store, end="2025-01-01 00:05"), df.iloc[:5], check_freq=False)
    pd.testing.assert_frame_equal(adc.get_dataframe("t", secret_dir=store, start="2024-01-01"), df, check_freq=False)
    assert adc.get_dataframe("t", secret_dir=store, start="2030-01-01").empty
    assert adc.get_dataframe("t", secret_dir=store, start="2025-01-02", end="2025-01-01").empty
    # Combined with columns and head.
    got = adc.get_dataframe("t", secret_dir=store, start=start, columns=["a"], head=2)
    assert got["a"].tolist() == [600, 601]


def test_time_range_on_named_column_with_time_zone(store):
    df = frame(tz="Asia/Tokyo").reset_index()
    df["ts"] = df["ts"].dt.as_unit("us")
    adc.send_dataframe(df, "z", secret_dir=store, transport="file", chunk_rows=1000)
    got = adc.get_dataframe("z", secret_dir=store, time_column="ts", start="2025-01-02 00:00", end=pd.Timestamp("2025-01-01 16:00", tz="UTC"))
    want = df[(df.ts >= pd.Timestamp("2025-01-02", tz="Asia/Tokyo")) & (df.ts < pd.Timestamp("2025-01-01 16:00", tz="UTC"))]
    assert len(want) == 60
    pd.testing.assert_frame_equal(got.reset_index(drop=True), want.reset_index(drop=True))


def test_time_range_refuses_what_it_cannot_search(store):
    df = frame().reset_index()
    adc.send_dataframe(df, "plain", secret_dir=store)
    with pytest.raises(InvalidArgumentError, match="DatetimeIndex"):
        adc.get_dataframe("plain", secret_dir=store, start="2025-01-01")
    with pytest.raises(InvalidArgumentError, match="not a datetime"):
        adc.get_dataframe("plain", secret_dir=store, time_column="a", start="2025-01-01")
    shuffled = frame().iloc[::-1]
    adc.send_dataframe(shuffled, "desc", secret_dir=store, transport="file", chunk_rows=1000)
    with pytest.raises(InvalidArgumentError, match="not sorted"):
        adc.get_dataframe("desc", secret_dir=store, start="2025-01-01")


def test_duplicate_labels_partial(store):
    df = pd.DataFrame([[1, 2, 3]], columns=["x", "x", 5])
    adc.send_dataframe(df, "dup", secret_dir=store)
    got = adc.get_dataframe("dup", secret_dir=store, columns=[5])
    assert list(got.columns) == [5] and got.iloc[0, 0] == 3


def test_describe_and_list_all_states(store):
    df = frame()
    adc.send_dataframe(df, "ok", secret_dir=store, transport="file", ttl_sec=3600)
    adc.send_dataframe(df.head(3), "gone", secret_dir=store)
    # A failed send leaves writing + error lines: here a transfer that died mid-write.
    with pytest.raises(Exception):
        adc.send_dataframe(pd.DataFrame({"bad": [object(), 1]}), "broken", secret_dir=store)
    info = adc.describe_table("ok", secret_dir=store)
    assert info["state"] == "ready" and info["shape"] == (N, 3) and info["transport"] == "file_arrow_ipc_v1"
    assert info["expires_at"] and info["ttl_sec"] == 3600 and 0 <= info["age_sec"] < 60
    assert {"name": "b", "type": "double"} in info["schema"] and info["index_columns"] == ["ts"]
    assert info["bytes"] > N * 8

    report = adc.remove_table("gone", secret_dir=store)
    assert len(report["deleted"]) == 1
    states = {t["table_name"]: t for t in adc.list_tables(secret_dir=store, all_states=True)}
    assert states["gone"]["state"] == "removed" and states["gone"]["error"] == "removed by user"
    assert states["ok"]["state"] == "ready" and {"name": "a", "type": "int64"} in states["ok"]["schema"]
    assert states["gone"]["schema"] is None
    assert "schema" not in adc.list_tables(secret_dir=store, all_states=True, with_schema=False)[0]
    assert [t["table_name"] for t in adc.list_tables(secret_dir=store)] == ["ok"]
    with pytest.raises(TableNotFoundError):
        adc.get_dataframe("gone", secret_dir=store)
    with pytest.raises(TableNotFoundError):
        adc.describe_table("never", secret_dir=store)
    # Sending again brings it back.
    adc.send_dataframe(df.head(2), "gone", secret_dir=store)
    assert len(adc.get_dataframe("gone", secret_dir=store)) == 2


def test_error_state_is_listed(store):
    import json

    line = {"version": 1, "id": "e1", "table_name": "err", "producer": "allye", "status": "error",
            "created_at": "2025-12-18T12:34:56+0900", "ttl_sec": None, "payload": None, "metadata": {"error": "disk on fire"}}
    store.mkdir(parents=True)
    (store / "manifest.jsonl").write_text(json.dumps(line, separators=(",", ":")) + "\n")
    (t,) = adc.list_tables(secret_dir=store, all_states=True)
    assert (t["state"], t["error"], t["producer"], t["shape"]) == ("error", "disk on fire", "allye", None)
    assert adc.list_tables(secret_dir=store) == []


# --- every way of picking rows keeps the rows' index labels -----------------------------
def _indexes(n: int) -> dict[str, pd.Index]:
    return {
        "range": pd.RangeIndex(n),
        "range_offset": pd.RangeIndex(100, 100 + n),
        "range_step_named": pd.RangeIndex(1000, 1000 - 7 * n, -7, name="r"),
        "int64": pd.Index(np.arange(n, dtype=np.int64)[::-1] * 3 + 5),
        "datetime": pd.date_range("2024-01-01", periods=n, freq="s", name="t"),
        "str": pd.Index([f"k{i}" for i in range(n)], name="key"),
        "object": pd.Index([f"o{i}" for i in range(n)], dtype=object),
        "multi": pd.MultiIndex.from_arrays([np.arange(n) % 3, [f"m{i}" for i in range(n)]], names=["a", "b"]),
    }


@pytest.mark.parametrize("transport", ["shm", "file"])
@pytest.mark.parametrize("kind", list(_indexes(1)))
def test_partial_loads_keep_the_index_labels(store, kind, transport):
    n = 40
    df = pd.DataFrame({"a": np.arange(n), "b": np.linspace(0, 1, n)}, index=_indexes(n)[kind])
    adc.send_dataframe(df, "t", secret_dir=store, transport=transport)
    got = adc.get_dataframe("t", secret_dir=store, head=3)
    pd.testing.assert_frame_equal(got, df.iloc[:3], check_freq=False)
    got = adc.get_dataframe("t", secret_dir=store, rows=(4, 7))
    pd.testing.assert_frame_equal(got, df.iloc[4:7], check_freq=False)
    got = adc.get_dataframe("t", secret_dir=store, rows=(-5, None), columns=["b"])
    pd.testing.assert_frame_equal(got, df[["b"]].iloc[-5:], check_freq=False)
    got = adc.get_dataframe("t", secret_dir=store, rows=(10, 30), head=4)
    pd.testing.assert_frame_equal(got, df.iloc[10:14], check_freq=False)
    sample = adc.get_dataframe("t", secret_dir=store, sample=5, seed=3)
    assert len(sample) == 5
    # Traceable: each sampled row is the sent row of that label.
    positions = [df.index.get_loc(label) for label in sample.index]
    pd.testing.assert_frame_equal(sample, df.iloc[positions], check_freq=False, check_index_type=False)
    assert sample.index.tolist() == df.index[sorted(positions)].tolist()


def test_a_time_range_on_a_column_keeps_a_range_index(store):
    df = pd.DataFrame({"t": pd.date_range("2024-01-01", periods=10, freq="h"), "v": np.arange(10)},
                      index=pd.RangeIndex(50, 60))
    adc.send_dataframe(df, "t", secret_dir=store)
    got = adc.get_dataframe("t", secret_dir=store, start="2024-01-01 03:00", end="2024-01-01 06:00", time_column="t")
    pd.testing.assert_frame_equal(got, df.iloc[3:6])


def test_a_partial_load_of_a_frame_without_rows_or_columns_has_none(store):
    adc.send_dataframe(pd.DataFrame(), "empty", secret_dir=store)
    for kwargs in ({"head": 3}, {"rows": (0, 3)}, {"rows": (2, 5)}, {"sample": 3}):
        assert adc.get_dataframe("empty", secret_dir=store, **kwargs).shape == (0, 0), kwargs
    # Rows without columns keep their rows and labels.
    adc.send_dataframe(pd.DataFrame(index=pd.RangeIndex(10, 15)), "rows", secret_dir=store)
    got = adc.get_dataframe("rows", secret_dir=store, head=3)
    pd.testing.assert_frame_equal(got, pd.DataFrame(index=pd.RangeIndex(10, 13)))
    assert adc.get_dataframe("rows", secret_dir=store, sample=2, seed=1).shape == (2, 0)
