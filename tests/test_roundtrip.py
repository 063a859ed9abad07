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

TRANSPORTS = ["shm", "file"]
OBJECT_STRINGS_BECOME_STR = {"object_strings", "late_strings"}


def send(df, name, store, **kw):
    kw.setdefault("notify_canvas", False)
    return adc.send_dataframe(df, name, secret_dir=store, **kw)


def frames() -> dict[str, pd.DataFrame]:
    n = 257
    rng = np.random.default_rng(1)
    floats = rng.standard_normal(n)
    floats[::7] = np.nan
    return {
        "ints": pd.DataFrame({"i8": np.arange(n, dtype="int8"), "i64": np.arange(n, dtype="int64") * 10**12, "u32": np.arange(n, dtype="uint32")}),
        "floats_nan": pd.DataFrame({"f64": floats, "f32": floats.astype("float32")}),
        "bool": pd.DataFrame({"b": np.arange(n) % 3 == 0}),
        "strings": pd.DataFrame({"s": [None if i % 5 == 0 else f"héllo-{i}-日本語" for i in range(n)]}),
        "object_strings": pd.DataFrame({"s": pd.Series([None if i % 4 == 0 else f"x{i}" for i in range(n)], dtype=object)}),
        "categorical": pd.DataFrame({"c": pd.Categorical([["a", "b", None][i % 3] for i in range(n)], categories=["b", "a"])}),
        "datetime_tz": pd.DataFrame({"t": pd.date_range("2025-03-30", periods=n, freq="37min", tz="Europe/Berlin")}),
        "datetime_naive_nat": pd.DataFrame({"t": pd.Series(pd.date_range("2020-01-01", periods=n, freq="D")).where(lambda s: s.dt.day != 3)}),
        "timedelta": pd.DataFrame({"d": pd.to_timedelta(np.arange(n), unit="s")}),
        "nullable_int": pd.DataFrame({"n": pd.array([None if i % 6 == 0 else i for i in range(n)], dtype="Int64")}),
        "index_named": pd.DataFrame({"v": np.arange(n, dtype=float)}, index=pd.Index(np.arange(n) * 3, name="key")),
        "multiindex": pd.DataFrame({"v": np.arange(6)}, index=pd.MultiIndex.from_product([["a", "b"], [1, 2, 3]], names=["l", "n"])),
        "int_labels": pd.DataFrame(np.arange(12.0).reshape(4, 3), columns=[10, 20, 30]),
        "mixed_labels": pd.DataFrame([[1, "x", 2.5]], columns=["a", 1, 2.5]),
        "duplicate_labels": pd.DataFrame([[1, 2.0, "x"], [3, 4.0, "y"]], columns=["a", "a", "b"]),
        "empty": pd.DataFrame({"a": pd.Series([], dtype="float64"), "b": pd.Series([], dtype="int64")}),
        "no_columns": pd.DataFrame(index=pd.RangeIndex(5)),
        "wide": pd.DataFrame(np.arange(3 * 500, dtype=float).reshape(3, 500), columns=[f"c{i}" for i in range(500)]),
        # 0.1.2 took the schema from the first 50,000 rows: null for 60k rows, then strings.
        "late_strings": pd.DataFrame({"s": pd.Series([None] * 60_000 + ["late"] * 10, dtype=object)}),
    }


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("kind", list(frames()))
def test_round_trip(store, transport, kind):
    df = frames()[kind]
    send(df, kind, store, transport=transport)
    back = adc.get_dataframe(kind, secret_dir=store)
    expected = df
    if kind in OBJECT_STRINGS_BECOME_STR:
        # pyarrow turns Arrow strings into pandas' default string dtype (pandas >= 3: "str"),
        # as it did for 0.1.2; the values are the same.
        assert back["s"].dtype == pd.Series(["x"]).dtype
        expected = df.astype({"s": back["s"].dtype})
    # An empty RangeIndex of labels comes back as an empty Index: same (no) labels.
    pd.testing.assert_frame_equal(back, expected, check_column_type=kind != "no_columns")


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
    name = adc.send_dataframe(pd.DataFrame({"a": [1]}), notify_canvas=False)
    assert name.startswith("table_")
    assert adc.get_dataframe(name)["a"].tolist() == [1]
    assert adc.store_path() == store


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


# --- the conversion is pyarrow's, byte for byte -----------------------------------------
def conversion_frames() -> dict[str, pd.DataFrame]:
    """Frames for the fast numeric path (``convert._numeric_table``) and for the frames it
    must leave to pyarrow, on top of ``frames()``."""
    n = 1000
    rng = np.random.default_rng(2)
    nan_late = rng.standard_normal(n)
    nan_late[-1] = np.nan
    wide = pd.DataFrame(rng.standard_normal((n, 4)), columns=list("abcd"))  # one 2-D block
    mixed = pd.DataFrame({"f": rng.standard_normal(n), "i": np.arange(n), "s": [f"s{i}" for i in range(n)]})
    return {
        "floats_no_nan": pd.DataFrame({"f64": rng.standard_normal(n), "f32": rng.standard_normal(n).astype("float32")}),
        "float_nan_last_only": pd.DataFrame({"a": rng.standard_normal(n), "b": nan_late}),
        "all_nan": pd.DataFrame({"a": np.full(n, np.nan)}),
        "float_inf": pd.DataFrame({"a": np.array([np.inf, -np.inf, 0.0] * 10)}),
        "float16": pd.DataFrame({"h": np.arange(10, dtype="float16")}),
        "ints_all_widths": pd.DataFrame({str(t): np.arange(50, dtype=t) for t in ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64")}),
        "bool_and_floats": pd.DataFrame({"b": np.arange(n) % 2 == 0, "f": np.arange(n, dtype=float)}),
        "numeric_frame_2d_block": wide,
        "sliced_rangeindex": wide.iloc[5:500:3],
        "rangeindex_named_offset": pd.DataFrame({"v": np.arange(5.0)}, index=pd.RangeIndex(10, 20, 2, name="r")),
        "rangeindex_other_stop": pd.DataFrame({"v": np.arange(4.0)}, index=pd.RangeIndex(0, 7, 2)),
        "int_labels": pd.DataFrame(np.arange(12.0).reshape(4, 3), columns=[10, 20, 30]),
        "float_labels": pd.DataFrame(np.arange(6.0).reshape(2, 3), columns=[1.0, 2.0, 3.0]),
        "bool_labels": pd.DataFrame(np.arange(4.0).reshape(2, 2), columns=[True, False]),
        "named_column_index": pd.DataFrame(np.arange(4.0).reshape(2, 2), columns=pd.Index(["x", "y"], name="cols")),
        "multiindex_columns": pd.DataFrame(np.arange(8.0).reshape(2, 4), columns=pd.MultiIndex.from_product([["a", "b"], [1, 2]], names=["l0", "l1"])),
        "multiindex_columns_nan": pd.DataFrame([[1.0, np.nan], [2.0, 3.0]], columns=pd.MultiIndex.from_tuples([("a", 1), ("b", 2)])),
        "strided": pd.DataFrame({"f": np.arange(20.0)[::2]}),
        "attrs": pd.DataFrame({"f": np.arange(3.0)}).pipe(lambda d: (d.attrs.update(source="x"), d)[1]),
        "mixed_numeric_and_strings": mixed,
        "datetimes_tz_and_floats": pd.DataFrame({"t": pd.date_range("2025-01-01", periods=3, tz="Asia/Tokyo"), "f": [1.0, np.nan, 2.0]}),
        "empty_rows": pd.DataFrame({"a": np.array([], dtype=float), "b": np.array([], dtype="int64")}),
        "empty_other_index": pd.DataFrame({"a": np.array([], dtype=float)}, index=pd.Index([], dtype="int64")),
    }


ALL_CONVERSION_FRAMES = {**frames(), **conversion_frames()}


@pytest.mark.parametrize("kind", list(ALL_CONVERSION_FRAMES))
def test_conversion_equals_pyarrow_from_pandas(kind):
    from allye_data_connector.convert import LABELS_KEY, dataframe_to_arrow

    df = ALL_CONVERSION_FRAMES[kind]
    ours = dataframe_to_arrow(df)
    for attempt in range(2):  # the second conversion of a frame uses the cached schema
        if LABELS_KEY in (ours.schema.metadata or {}):
            # Duplicate or mixed labels: converted under positional names (see convert.py).
            frame = df.copy(deep=False)
            frame.columns = [f"{c}__{i}" for i, c in enumerate(df.columns)]
            meta = dict(ours.schema.metadata)
            del meta[LABELS_KEY]
            got = ours.replace_schema_metadata(meta)
        else:
            frame, got = df, ours
        expected = pa.Table.from_pandas(frame, preserve_index=None)
        assert got.schema.equals(expected.schema, check_metadata=True), (got.schema, expected.schema)
        assert got.schema.metadata == expected.schema.metadata
        assert got.num_rows == expected.num_rows
        assert got.equals(expected)
        for g, e in zip(got.columns, expected.columns):
            assert g.null_count == e.null_count
        # pandas restores the same frame from either.
        pd.testing.assert_frame_equal(got.to_pandas(), expected.to_pandas())
        ours = dataframe_to_arrow(df)


def test_nan_becomes_null_and_clean_floats_are_not_copied():
    from allye_data_connector.convert import dataframe_to_arrow

    clean = np.arange(1000, dtype=float)
    holes = clean.copy()
    holes[[3, 999]] = np.nan
    table = dataframe_to_arrow(pd.DataFrame({"clean": clean, "holes": holes, "n": np.arange(1000)}))
    assert table.column("clean").null_count == 0
    assert table.column("holes").null_count == 2
    assert table.column("holes").is_null().to_pylist()[3] is True
    # Wrapped, not copied: the Arrow values buffer is the frame's memory.
    df = pd.DataFrame({"clean": clean})
    col = df["clean"].to_numpy()
    buf = dataframe_to_arrow(df).column("clean").chunk(0).buffers()[1]
    assert buf.address == col.__array_interface__["data"][0]


def test_large_frames_are_scanned_for_nan_in_parallel_pieces():
    """Above convert._PARALLEL_SCAN_VALUES the NaN scan runs in pieces on a thread pool:
    a NaN in any piece (first, middle, last) must still make that column's nulls."""
    from allye_data_connector import convert

    n = convert._PARALLEL_SCAN_VALUES // 2 + 3 * convert._SCAN_PIECE // 2  # pieces end mid-column
    cols = {name: np.arange(n, dtype=float) for name in ("clean", "first", "middle", "last")}
    cols["first"][0] = np.nan
    cols["middle"][n // 2] = np.nan
    cols["last"][-1] = np.nan
    cols["ints"] = np.arange(n)
    cols["f32"] = np.arange(n, dtype="float32")
    cols["f32"][convert._SCAN_PIECE] = np.nan
    df = pd.DataFrame(cols)
    assert sum(len(a) for a in convert._column_arrays(df) if a.dtype.kind == "f") >= convert._PARALLEL_SCAN_VALUES
    got = convert.dataframe_to_arrow(df)
    expected = pa.Table.from_pandas(df, preserve_index=None)
    assert [c.null_count for c in got.columns] == [c.null_count for c in expected.columns] == [0, 1, 1, 1, 0, 1]
    assert got.equals(expected) and got.schema.metadata == expected.schema.metadata
    assert convert._scan_pool is not None, "the parallel scan ran"


def test_parallel_nan_scan_works_in_a_forked_child():
    """A child forked after the scan pool started has none of its threads; its large
    sends must not hang waiting for them."""
    import multiprocessing

    from allye_data_connector import convert

    n = convert._PARALLEL_SCAN_VALUES
    df = pd.DataFrame({"a": np.arange(n, dtype=float), "b": np.arange(n, dtype=float)})
    df.loc[n - 1, "b"] = np.nan
    assert [c.null_count for c in convert.dataframe_to_arrow(df).columns] == [0, 1]  # the pool exists here
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(1) as pool:
        result = pool.apply_async(_null_counts_in_child, (df,))
        assert result.get(timeout=60) == [0, 1]


def _null_counts_in_child(df):
    from allye_data_connector import convert

    return [c.null_count for c in convert.dataframe_to_arrow(df).columns]


def test_cached_schema_follows_the_row_count():
    """The schema cache is keyed without the RangeIndex stop: frames of the same columns
    and different lengths must still get their own RangeIndex metadata."""
    from allye_data_connector.convert import dataframe_to_arrow

    for rows in (10, 3, 10, 0, 7):
        df = pd.DataFrame({"a": np.arange(rows, dtype=float), "b": np.arange(rows)})
        got = dataframe_to_arrow(df)
        assert got.schema.metadata == pa.Table.from_pandas(df, preserve_index=None).schema.metadata
        assert got.to_pandas().index.equals(pd.RangeIndex(rows))


@pytest.mark.parametrize("kind", list(ALL_CONVERSION_FRAMES))
def test_schema_sha256_is_the_protocols(kind):
    from allye_data_connector.convert import schema_sha256

    df = ALL_CONVERSION_FRAMES[kind]
    columns = list(map(str, df.columns.tolist()))
    dtypes = {str(k): str(v) for k, v in df.dtypes.to_dict().items()}
    expected = hashlib.sha256((str(columns) + "|" + str(dtypes)).encode("utf-8")).hexdigest()
    assert schema_sha256(df) == expected
    assert schema_sha256(df) == expected  # cached
    if all(isinstance(t, np.dtype) for t in df.dtypes) and kind not in ("attrs",):
        from allye_data_connector import convert

        assert any(v == expected for v in convert._SHAS.values()), "frames of NumPy dtypes are cached"


def test_schema_sha256_cache_tells_equal_labels_of_other_types_apart():
    from allye_data_connector.convert import schema_sha256

    shas = set()
    for labels in ([1, 2], [1.0, 2.0], [True, False]):
        df = pd.DataFrame(np.zeros((2, 2)), columns=labels)
        text = str([str(c) for c in labels]) + "|" + str({str(c): "float64" for c in labels})
        assert schema_sha256(df) == hashlib.sha256(text.encode()).hexdigest()
        shas.add(schema_sha256(df))
    assert len(shas) == 3


FAST_PATH = {
    "all_nan", "bool", "bool_and_floats", "bool_labels", "empty", "empty_rows", "float16", "float_inf", "float_labels",
    "float_nan_last_only", "floats_nan", "floats_no_nan", "int_labels", "ints", "ints_all_widths", "multiindex_columns",
    "multiindex_columns_nan", "named_column_index", "numeric_frame_2d_block", "rangeindex_named_offset",
    "rangeindex_other_stop", "sliced_rangeindex", "strided", "wide",
}


def test_which_frames_take_the_numeric_path():
    """Keeps test_conversion_equals_pyarrow_from_pandas meaningful: these frames are
    converted by convert._numeric_table, all others by pyarrow."""
    from allye_data_connector.convert import _numeric_table

    taken = {k for k, df in ALL_CONVERSION_FRAMES.items() if _numeric_table(df) is not None}
    assert taken == FAST_PATH


# --- get side: convert._numeric_frame against pyarrow's to_pandas -------------------------
def arrow_tables() -> dict[str, pa.Table]:
    """Tables as a get sees them: every conversion frame as a send converts it, plus
    tables no frame of ours gives (slices, several chunks, nulls, lying metadata)."""
    from allye_data_connector.convert import dataframe_to_arrow

    tables = {k: dataframe_to_arrow(df) for k, df in ALL_CONVERSION_FRAMES.items()}
    base = pa.Table.from_pandas(pd.DataFrame({"a": np.arange(20.0), "b": np.arange(20)}), preserve_index=None)
    tables["sliced_table"] = base.slice(3, 10)
    tables["sliced_to_empty"] = base.slice(5, 0)
    tables["two_chunks"] = pa.concat_tables([base, base])
    tables["null_in_int"] = base.set_column(1, "b", pa.array([None] + list(range(19)), pa.int64()))
    tables["nullable_int_without_nulls"] = pa.Table.from_pandas(pd.DataFrame({"n": pd.array([1, 2, 3], dtype="Int64")}))
    tables["no_pandas_metadata"] = base.replace_schema_metadata(None)
    tables["extra_metadata"] = base.replace_schema_metadata({**base.schema.metadata, b"other": b"x"})
    renamed = pa.schema([pa.field("x", pa.float64()), pa.field("y", pa.int64())], metadata=base.schema.metadata)
    tables["renamed_fields"] = pa.Table.from_arrays(base.columns, schema=renamed)
    return tables


ARROW_TABLES = arrow_tables()
#: Tables whose later gets _numeric_frame assembles itself (the rest go to pyarrow).
GET_FAST_PATH = {
    "bool_labels", "empty", "empty_rows", "extra_metadata", "float16", "float_inf", "float_labels", "floats_no_nan",
    "int_labels", "ints", "ints_all_widths", "multiindex_columns", "named_column_index", "no_columns",
    "numeric_frame_2d_block", "rangeindex_named_offset", "rangeindex_other_stop", "renamed_fields", "sliced_rangeindex",
    "sliced_table", "sliced_to_empty", "strided", "wide",
}


def assert_same_frame(got: pd.DataFrame, expected: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(got, expected, check_exact=True, check_column_type=True, check_index_type=True)
    assert type(got.index) is type(expected.index) and got.index.equals(expected.index)
    assert got.index.name == expected.index.name and got.index.names == expected.index.names
    assert got.columns.dtype == expected.columns.dtype and type(got.columns) is type(expected.columns)
    assert got.columns.names == expected.columns.names
    assert got.attrs == expected.attrs
    for i in range(got.shape[1]):
        g, e = got.iloc[:, i].array, expected.iloc[:, i].array
        assert type(g) is type(e) and g.dtype == e.dtype
        gv, ev = got.iloc[:, i].to_numpy(), expected.iloc[:, i].to_numpy()
        assert gv.flags.writeable == ev.flags.writeable


def pyarrow_result(table: pa.Table, dtype_backend=None) -> pd.DataFrame:
    """arrow_to_dataframe with the numeric get path switched off: to_pandas as before."""
    from allye_data_connector import convert

    saved, convert._from_blocks = convert._from_blocks, None
    try:
        return convert.arrow_to_dataframe(table, dtype_backend)
    finally:
        convert._from_blocks = saved


@pytest.mark.parametrize("kind", list(ARROW_TABLES))
def test_get_conversion_equals_pyarrow_to_pandas(kind):
    """The first table of a schema is converted by pyarrow (and learnt from), the later
    ones possibly by _numeric_frame: all must be what to_pandas(split_blocks=True) gives."""
    from allye_data_connector import convert

    table = ARROW_TABLES[kind]
    convert._FRAMES.clear()
    expected = pyarrow_result(table)
    for _ in range(3):
        assert_same_frame(convert.arrow_to_dataframe(table), expected)
    for backend in ("pyarrow", "numpy_nullable"):  # other backends never take the path
        assert_same_frame(convert.arrow_to_dataframe(table, backend), pyarrow_result(table, backend))


def test_which_tables_take_the_numeric_get_path():
    """Keeps the test above meaningful: these tables are assembled by _numeric_frame once
    their schema is learnt, all others converted by pyarrow."""
    from allye_data_connector import convert

    taken = set()
    for kind, table in ARROW_TABLES.items():
        convert._FRAMES.clear()
        convert.arrow_to_dataframe(table)  # learns
        if convert._numeric_frame(table) is not None:
            taken.add(kind)
    # pandas < 3 has no create_dataframe_from_blocks: there every get goes through pyarrow.
    assert taken == (GET_FAST_PATH if convert._from_blocks is not None else set())


def test_numeric_get_path_is_zero_copy_and_follows_the_length():
    """Later tables of a learnt schema with other lengths (so other RangeIndex stops) get
    their own RangeIndex, and their columns are read-only views of the Arrow buffers."""
    from allye_data_connector import convert

    convert._FRAMES.clear()
    for rows in (10, 3, 10, 0, 7, 1000):
        table = pa.Table.from_pandas(pd.DataFrame({"a": np.arange(rows, dtype=float), "b": np.arange(rows)}))
        got = convert.arrow_to_dataframe(table)
        assert_same_frame(got, pyarrow_result(table))
        assert got.index.equals(pd.RangeIndex(rows))
        if rows:
            for name in ("a", "b"):
                arr = got[name].to_numpy()
                assert not arr.flags.writeable
                assert arr.__array_interface__["data"][0] == table.column(name).chunk(0).buffers()[1].address
    assert len(convert._FRAMES) == 1, "one schema learnt once, whatever the lengths"


def test_renaming_one_results_columns_leaves_the_next_get_alone():
    from allye_data_connector import convert

    convert._FRAMES.clear()
    table = pa.Table.from_pandas(pd.DataFrame({"a": np.arange(3.0), "b": np.arange(3)}))
    first = convert.arrow_to_dataframe(table)
    second = convert.arrow_to_dataframe(table)
    first.columns.name = "renamed"
    second.columns.name = "also"
    third = convert.arrow_to_dataframe(table)
    assert third.columns.name is None and first.columns.name == "renamed"
    third.columns = ["x", "y"]
    assert list(convert.arrow_to_dataframe(table).columns) == ["a", "b"]


def test_a_learnt_schema_is_not_used_for_other_field_names_or_types():
    """Same pandas metadata bytes, other field names or types: each is learnt on its own."""
    from allye_data_connector import convert

    convert._FRAMES.clear()
    base = pa.Table.from_pandas(pd.DataFrame({"a": np.arange(4.0), "b": np.arange(4)}))
    meta = base.schema.metadata
    variants = [
        base,
        pa.Table.from_arrays(base.columns, schema=pa.schema([("x", pa.float64()), ("y", pa.int64())], metadata=meta)),
        pa.Table.from_arrays([base.column(0), pa.array(np.arange(4, dtype="int32"))],
                             schema=pa.schema([("a", pa.float64()), ("b", pa.int32())], metadata=meta)),
    ]
    for _ in range(2):
        for table in variants:
            assert_same_frame(convert.arrow_to_dataframe(table), pyarrow_result(table))
    assert len(convert._FRAMES) == 3
