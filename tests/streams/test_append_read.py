"""append and the reads of a stream: whole appends, many batches, partial loads, errors."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

import allye_data_connector as adc
from allye_data_connector import _core, errors, streams


def test_frames_records_and_arrow_append_to_one_table_of_many_batches(store):
    adc.append("s", pd.DataFrame({"a": [1, 2], "b": ["x", "y"]}), secret_dir=store)
    adc.append("s", [{"a": 3, "b": "z"}, {"a": 4, "b": None}], secret_dir=store)
    adc.append("s", {"a": 5, "b": "v"}, secret_dir=store)
    adc.append("s", pa.record_batch({"a": [6], "b": ["w"]}), secret_dir=store)
    t = adc.get_arrow("s", secret_dir=store)
    assert t.column("a").to_pylist() == [1, 2, 3, 4, 5, 6]
    assert t.column("a").num_chunks == 1  # small appends are read as one coalesced batch
    df = adc.get_dataframe("s", secret_dir=store)
    assert [None if pd.isna(v) else v for v in df["b"]] == ["x", "y", "z", None, "v", "w"]
    assert list(df.index) == list(range(6))


def test_large_appends_are_read_zero_copy_from_their_chunks(store):
    adc.append("z", {"v": 1}, secret_dir=store)
    adc.append("z", pa.table({"v": np.arange(1_000_000, dtype=np.int64)}), secret_dir=store)
    t1 = adc.get_arrow("z", secret_dir=store)
    assert t1.column("v").num_chunks == 2
    # The partial load below maps the large chunk alone; the whole read's batch is it.
    part = adc.get_arrow("z", secret_dir=store, selection=adc.Selection(rows=(1, 2)))
    mapped = part.column("v").chunk(0).buffers()[1].address
    assert t1.column("v").chunk(1).buffers()[1].address == mapped
    assert adc.get_arrow("z", secret_dir=store).column("v").chunk(1).buffers()[1].address == mapped


def test_an_int_column_that_later_holds_nan_keeps_its_type_where_it_can(store):
    adc.append("f", pd.DataFrame({"x": [1.5]}), secret_dir=store)
    adc.append("f", pd.DataFrame({"x": [2]}), secret_dir=store)
    assert adc.get_dataframe("f", secret_dir=store)["x"].tolist() == [1.5, 2.0]
    adc.append("i", pd.DataFrame({"x": [1]}), secret_dir=store)
    adc.append("i", pd.DataFrame({"x": [2, None]}), secret_dir=store)  # float64 with NaN: cast back, no widening
    assert adc.get_arrow("i", secret_dir=store).column("x").to_pylist() == [1, 2, None]


def test_bad_inputs_are_typed_errors(store):
    with pytest.raises(errors.InvalidInputError):
        adc.append("b", 42, secret_dir=store)
    with pytest.raises(errors.InvalidInputError):
        adc.append("b", [1, 2], secret_dir=store)
    with pytest.raises(errors.InvalidArgumentError):
        adc.append("", {"a": 1}, secret_dir=store)
    with pytest.raises(errors.InvalidArgumentError, match="time_column"):
        adc.append("b", {"a": 1}, secret_dir=store, time_column="nope")
    assert adc.append("b", pd.DataFrame({"a": []}), secret_dir=store) is None  # nothing to append
    with pytest.raises(errors.TableNotFoundError):
        adc.get_dataframe("b", secret_dir=store)


def test_partial_loads_touch_only_the_chunks_needed(store):
    for i in range(10):
        adc.append("p", pd.DataFrame({"i": np.arange(i * 10, i * 10 + 10)}), secret_dir=store)
    info, _ = _core.stream_read("p", secret_dir=str(store), row_start=25, row_end=42)
    assert (info["chunks"], info["first_row"], info["total_chunks"]) == (3, 20, 10)
    assert adc.get_dataframe("p", secret_dir=store, rows=(25, 42))["i"].tolist() == list(range(25, 42))
    assert adc.get_dataframe("p", secret_dir=store, head=3)["i"].tolist() == [0, 1, 2]
    assert adc.get_dataframe("p", secret_dir=store, rows=(-2, None))["i"].tolist() == [98, 99]
    assert adc.get_arrow("p", secret_dir=store, selection=adc.Selection(rows=(95, 200))).num_rows == 5


def test_time_ranges_skip_chunks_and_filter_interleaved_rows(store):
    # Two appenders' chunks interleave in time: a stream is not sorted.
    adc.append_log("log", [1, 1], [100, 300], [b"a", b"b"], secret_dir=store)
    adc.append_log("log", [2, 2], [200, 400], [b"c", b"d"], secret_dir=store)
    adc.append_log("log", [3], [10_000], [b"e"], secret_dir=store)
    df = adc.get_dataframe("log", secret_dir=store, start=150, end=401, time_column="timestamp")
    assert sorted(df["timestamp"].tolist()) == [200, 300, 400]
    info, _ = _core.stream_read("log", secret_dir=str(store), t_start=150, t_end=401)
    assert info["chunks"] == 2  # the third chunk's range [10000, 10000] is not read
    # The recorded time column is the default.
    assert adc.get_dataframe("log", secret_dir=store, start=9000)["payload"].tolist() == [b"e"]
    t = pd.Timestamp("2025-01-01", tz="UTC")
    ts = pd.DataFrame({"t": pd.date_range(t, periods=4, freq="s"), "v": range(4)})
    adc.append("ts", ts, secret_dir=store, time_column="t")
    got = adc.get_dataframe("ts", secret_dir=store, start=t + pd.Timedelta("1s"), end=t + pd.Timedelta("3s"),
                            time_column="t")
    assert got["v"].tolist() == [1, 2]


def test_log_fast_path_builds_the_fixed_schema_in_bulk(store):
    payloads = np.arange(5 * 64, dtype=np.uint8).reshape(5, 64)
    adc.append_log("fast", np.full(5, 7), np.arange(5, dtype=np.uint64), payloads, secret_dir=store)
    t = adc.get_arrow("fast", secret_dir=store)
    assert t.schema.equals(streams.LOG_SCHEMA)
    assert t.column("payload").to_pylist()[2] == payloads[2].tobytes()
    with pytest.raises(errors.InvalidArgumentError, match="differ in length"):
        streams.log_table([1, 2], [1], [b"x", b"y"])


def test_publish_makes_an_ordinary_v1_version_with_every_row(store):
    for i in range(3):
        adc.append("pub", pd.DataFrame({"v": [i, i]}), secret_dir=store, publish=False)
    ev = streams.publish("pub", secret_dir=store)
    assert ev["payload"]["shape"] == [6, 1] or tuple(ev["payload"]["shape"]) == (6, 1)
    assert ev["metadata"][_core.METADATA_STREAM] == {"chunks": 3, "rows": 6}
    (version,) = adc.list_tables(secret_dir=store)
    assert version["table_name"] == "pub" and tuple(version["shape"]) == (6, 1)
    # The v1 manifest holds only v1 lines: our stream lives in its own log.
    for line in (store / "manifest.jsonl").read_text().splitlines():
        assert json.loads(line)["version"] == 1


def test_remove_table_removes_a_stream_and_gc_frees_its_leftovers(store):
    adc.append("r", {"a": 1}, secret_dir=store)
    report = adc.remove_table("r", secret_dir=store)
    assert report["stream_chunks"] == 1
    with pytest.raises(errors.TableNotFoundError):
        adc.get_dataframe("r", secret_dir=store)
    assert not any((store / "streams").iterdir())
    adc.append("r", {"a": 2}, secret_dir=store)  # a new stream of the same name starts empty
    assert adc.get_dataframe("r", secret_dir=store)["a"].tolist() == [2]
