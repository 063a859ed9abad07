"""The conversion is pyarrow's, byte for byte: the send side (``dataframe_to_arrow`` and its
numeric fast path) against ``pa.Table.from_pandas``, the get side (``arrow_to_dataframe``
and its numeric fast path) against ``to_pandas``, and the schema hash."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from allye_data_connector.frames import _caches, to_arrow, to_pandas
from tests.sample_frames import frames


# --- the conversion is pyarrow's, byte for byte -----------------------------------------
def conversion_frames() -> dict[str, pd.DataFrame]:
    """Frames for the fast numeric path (``to_arrow.numeric_table``) and for the frames it
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
    from allye_data_connector.frames import FIDELITY_KEY, LABELS_KEY, dataframe_to_arrow

    df = ALL_CONVERSION_FRAMES[kind]
    ours = dataframe_to_arrow(df)
    for attempt in range(2):  # the second conversion of a frame uses the cached schema
        if FIDELITY_KEY in (ours.schema.metadata or {}):  # ours, beside pyarrow's (tests/frames/test_fidelity.py)
            ours = ours.replace_schema_metadata({k: v for k, v in ours.schema.metadata.items() if k != FIDELITY_KEY})
        if LABELS_KEY in (ours.schema.metadata or {}):
            # Duplicate or mixed labels: converted under positional names (see frames/to_arrow.py).
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
    from allye_data_connector.frames import dataframe_to_arrow

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
    """Above to_arrow.PARALLEL_SCAN_VALUES the NaN scan runs in pieces on a thread pool:
    a NaN in any piece (first, middle, last) must still make that column's nulls."""
    n = to_arrow.PARALLEL_SCAN_VALUES // 2 + 3 * to_arrow.SCAN_PIECE // 2  # pieces end mid-column
    cols = {name: np.arange(n, dtype=float) for name in ("clean", "first", "middle", "last")}
    cols["first"][0] = np.nan
    cols["middle"][n // 2] = np.nan
    cols["last"][-1] = np.nan
    cols["ints"] = np.arange(n)
    cols["f32"] = np.arange(n, dtype="float32")
    cols["f32"][to_arrow.SCAN_PIECE] = np.nan
    df = pd.DataFrame(cols)
    assert sum(len(a) for a in _caches.column_arrays(df) if a.dtype.kind == "f") >= to_arrow.PARALLEL_SCAN_VALUES
    got = to_arrow.dataframe_to_arrow(df)
    expected = pa.Table.from_pandas(df, preserve_index=None)
    assert [c.null_count for c in got.columns] == [c.null_count for c in expected.columns] == [0, 1, 1, 1, 0, 1]
    assert got.equals(expected) and got.schema.metadata == expected.schema.metadata
    assert _caches.CACHES.scan_pool_started, "the parallel scan ran"


def test_parallel_nan_scan_works_in_a_forked_child():
    """A child forked after the scan pool started has none of its threads; its large
    sends must not hang waiting for them."""
    import multiprocessing

    n = to_arrow.PARALLEL_SCAN_VALUES
    df = pd.DataFrame({"a": np.arange(n, dtype=float), "b": np.arange(n, dtype=float)})
    df.loc[n - 1, "b"] = np.nan
    assert [c.null_count for c in to_arrow.dataframe_to_arrow(df).columns] == [0, 1]  # the pool exists here
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(1) as pool:
        result = pool.apply_async(_null_counts_in_child, (df,))
        assert result.get(timeout=60) == [0, 1]


def _null_counts_in_child(df):
    return [c.null_count for c in to_arrow.dataframe_to_arrow(df).columns]


def test_cached_schema_follows_the_row_count():
    """The schema cache is keyed without the RangeIndex stop: frames of the same columns
    and different lengths must still get their own RangeIndex metadata."""
    from allye_data_connector.frames import dataframe_to_arrow

    for rows in (10, 3, 10, 0, 7):
        df = pd.DataFrame({"a": np.arange(rows, dtype=float), "b": np.arange(rows)})
        got = dataframe_to_arrow(df)
        assert got.schema.metadata == pa.Table.from_pandas(df, preserve_index=None).schema.metadata
        assert got.to_pandas().index.equals(pd.RangeIndex(rows))


@pytest.mark.parametrize("kind", list(ALL_CONVERSION_FRAMES))
def test_schema_sha256_is_the_protocols(kind):
    from allye_data_connector.frames import schema_sha256

    df = ALL_CONVERSION_FRAMES[kind]
    columns = list(map(str, df.columns.tolist()))
    dtypes = {str(k): str(v) for k, v in df.dtypes.to_dict().items()}
    expected = hashlib.sha256((str(columns) + "|" + str(dtypes)).encode("utf-8")).hexdigest()
    assert schema_sha256(df) == expected
    assert schema_sha256(df) == expected  # cached
    if all(isinstance(t, np.dtype) for t in df.dtypes) and kind not in ("attrs",):
        assert any(v == expected for v in _caches.CACHES.shas.values()), "frames of NumPy dtypes are cached"


def test_schema_sha256_cache_tells_equal_labels_of_other_types_apart():
    from allye_data_connector.frames import schema_sha256

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
    converted by to_arrow.numeric_table, all others by pyarrow."""
    from allye_data_connector.frames.to_arrow import numeric_table

    taken = {k for k, df in ALL_CONVERSION_FRAMES.items() if numeric_table(df) is not None}
    assert taken == FAST_PATH


# --- get side: to_pandas.numeric_frame against pyarrow's to_pandas -------------------------
def arrow_tables() -> dict[str, pa.Table]:
    """Tables as a get sees them: every conversion frame as a send converts it, plus
    tables no frame of ours gives (slices, several chunks, nulls, lying metadata)."""
    from allye_data_connector.frames import dataframe_to_arrow

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
    # One dtype: a payload's columns lie at one stride (one 2-D block); these do not, or
    # only from an offset.
    floats = dataframe_to_arrow(pd.DataFrame({f"f{i}": np.arange(20.0) + i for i in range(4)}))
    tables["one_dtype_sliced"] = floats.slice(3, 10)
    same = pa.array(np.arange(5.0))
    two = dataframe_to_arrow(pd.DataFrame({"f0": np.arange(5.0), "f1": np.arange(5.0)})).schema
    tables["one_array_twice"] = pa.Table.from_arrays([same, same], schema=two)
    tables["one_dtype_reversed"] = pa.Table.from_arrays(floats.columns[::-1], schema=floats.schema)
    return tables


ARROW_TABLES = arrow_tables()
#: Tables whose later gets numeric_frame assembles itself (the rest go to pyarrow).
GET_FAST_PATH = {
    "bool_labels", "empty", "empty_rows", "extra_metadata", "float16", "float_inf", "float_labels", "floats_no_nan",
    "int_labels", "ints", "ints_all_widths", "multiindex_columns", "named_column_index", "no_columns",
    "numeric_frame_2d_block", "one_array_twice", "one_dtype_reversed", "one_dtype_sliced", "rangeindex_named_offset",
    "rangeindex_other_stop", "renamed_fields", "sliced_rangeindex", "sliced_table", "sliced_to_empty", "strided", "wide",
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
    return to_pandas.arrow_to_dataframe_by_pyarrow(table, dtype_backend)


@pytest.mark.parametrize("kind", list(ARROW_TABLES))
def test_get_conversion_equals_pyarrow_to_pandas(kind):
    """The first table of a schema is converted by pyarrow (and learnt from), the later
    ones possibly by numeric_frame: all must be what to_pandas(split_blocks=True) gives."""
    table = ARROW_TABLES[kind]
    _caches.CACHES.frames.clear()
    expected = pyarrow_result(table)
    for _ in range(3):
        assert_same_frame(to_pandas.arrow_to_dataframe(table), expected)
    for backend in ("pyarrow", "numpy_nullable"):  # other backends never take the path
        assert_same_frame(to_pandas.arrow_to_dataframe(table, backend), pyarrow_result(table, backend))


def test_which_tables_take_the_numeric_get_path():
    """Keeps the test above meaningful: these tables are assembled by numeric_frame once
    their schema is learnt, all others converted by pyarrow."""
    taken = set()
    for kind, table in ARROW_TABLES.items():
        _caches.CACHES.frames.clear()
        to_pandas.arrow_to_dataframe(table)  # learns
        if to_pandas.numeric_frame(table) is not None:
            taken.add(kind)
    # pandas < 3 has no create_dataframe_from_blocks: there every get goes through pyarrow.
    assert taken == (GET_FAST_PATH if to_pandas.NUMERIC_GET_PATH else set())


def test_numeric_get_path_is_zero_copy_and_follows_the_length():
    """Later tables of a learnt schema with other lengths (so other RangeIndex stops) get
    their own RangeIndex, and their columns are read-only views of the Arrow buffers."""
    _caches.CACHES.frames.clear()
    for rows in (10, 3, 10, 0, 7, 1000):
        table = pa.Table.from_pandas(pd.DataFrame({"a": np.arange(rows, dtype=float), "b": np.arange(rows)}))
        got = to_pandas.arrow_to_dataframe(table)
        assert_same_frame(got, pyarrow_result(table))
        assert got.index.equals(pd.RangeIndex(rows))
        if rows:
            for name in ("a", "b"):
                arr = got[name].to_numpy()
                assert not arr.flags.writeable
                assert arr.__array_interface__["data"][0] == table.column(name).chunk(0).buffers()[1].address
    assert len(_caches.CACHES.frames) == 1, "one schema learnt once, whatever the lengths"


@pytest.mark.parametrize("kind, blocks", [
    ("one_dtype_sliced", 1), ("numeric_frame_2d_block", 1), ("one_array_twice", 2), ("one_dtype_reversed", 4),
    ("sliced_table", 2),
])
def test_columns_of_one_dtype_at_one_stride_are_one_block_of_views(kind, blocks):
    """A table of one dtype whose columns lie at one stride (as a payload holds them, or a
    frame's 2-D block converted) becomes one 2-D block viewing them; overlapping,
    reversed or mixed columns a block each. Either way every column is a read-only view
    of its own Arrow buffer."""
    table = ARROW_TABLES[kind]
    _caches.CACHES.frames.clear()
    to_pandas.arrow_to_dataframe(table)  # learns
    got = to_pandas.numeric_frame(table)
    assert got is not None and got._mgr.nblocks == blocks
    for i in range(table.num_columns):
        chunk = table.column(i).chunk(0)
        arr = got.iloc[:, i].to_numpy()
        assert not arr.flags.writeable
        assert arr.__array_interface__["data"][0] == chunk.buffers()[1].address + chunk.offset * arr.itemsize
        assert arr.tolist() == chunk.to_pylist()


def test_a_one_block_view_keeps_every_column_alive():
    """The 2-D view holds every column it spans, not only the first: each column here is
    a buffer with its own owner, and every owner lives exactly as long as the frame."""
    import gc
    import weakref

    class Owner:
        def __init__(self, memory):
            self.memory = memory

    _caches.CACHES.frames.clear()
    schema = ARROW_TABLES["one_dtype_sliced"].schema
    to_pandas.arrow_to_dataframe(ARROW_TABLES["one_dtype_sliced"])  # learns the schema
    rows = 20
    memory = np.arange(4 * rows, dtype=np.float64)
    owners = [Owner(memory) for _ in range(4)]
    columns = [
        pa.Array.from_buffers(pa.float64(), rows, [None, pa.foreign_buffer(
            memory.ctypes.data + i * rows * 8, rows * 8, base=owners[i])])
        for i in range(4)
    ]
    table = pa.Table.from_arrays(columns, schema=schema)
    got = to_pandas.numeric_frame(table)
    assert got is not None and got._mgr.nblocks == 1
    alive = [weakref.ref(o) for o in owners]
    del owners, columns, table
    gc.collect()
    assert all(r() is not None for r in alive), "every column's owner is held by the frame"
    assert got.to_numpy().T.ravel().tolist() == list(range(4 * rows))
    del got
    gc.collect()
    assert all(r() is None for r in alive)


def test_renaming_one_results_columns_leaves_the_next_get_alone():
    _caches.CACHES.frames.clear()
    table = pa.Table.from_pandas(pd.DataFrame({"a": np.arange(3.0), "b": np.arange(3)}))
    first = to_pandas.arrow_to_dataframe(table)
    second = to_pandas.arrow_to_dataframe(table)
    first.columns.name = "renamed"
    second.columns.name = "also"
    third = to_pandas.arrow_to_dataframe(table)
    assert third.columns.name is None and first.columns.name == "renamed"
    third.columns = ["x", "y"]
    assert list(to_pandas.arrow_to_dataframe(table).columns) == ["a", "b"]


def test_a_learnt_schema_is_not_used_for_other_field_names_or_types():
    """Same pandas metadata bytes, other field names or types: each is learnt on its own."""
    _caches.CACHES.frames.clear()
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
            assert_same_frame(to_pandas.arrow_to_dataframe(table), pyarrow_result(table))
    assert len(_caches.CACHES.frames) == 3
