"""What a frame is comes back as it was sent, including what pyarrow's own round trip
loses (kept in our schema metadata, ``allye_pandas``); Series and Arrow data can be sent.
The tables stay what pyarrow makes of the frame (plus that one key): 0.1.2 and pyarrow
read them as before (tests/interop pins the peer's side)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

import allye_data_connector as adc
from allye_data_connector import frames
from tests.helpers import run_python

LOST_BY_PYARROW = {
    "empty_categorical": pd.DataFrame({"c": pd.Categorical([], categories=["b", "a"])}),
    "empty_ordered_int_categorical": pd.DataFrame(
        {"c": pd.Categorical([], categories=[3, 1], ordered=True), "x": np.array([], dtype=float)}
    ),
    "datetime_index_freq": pd.DataFrame({"x": np.arange(5)}, index=pd.date_range("2024-01-01", periods=5, freq="D")),
    "datetime_index_freq_tz": pd.DataFrame(
        {"x": np.arange(4.0)}, index=pd.date_range("2024-01-01", periods=4, freq="15min", tz="Europe/Paris", name="t")
    ),
    "business_day_freq": pd.DataFrame({"x": np.arange(6)}, index=pd.bdate_range("2024-01-05", periods=6)),
    "timedelta_index_freq": pd.DataFrame({"x": [1, 2, 3]}, index=pd.timedelta_range("1s", periods=3, freq="s")),
    "bool_labels": pd.DataFrame([[1, 2]], columns=[True, False]),
    "bool_label_false": pd.DataFrame([[1]], columns=[False]),
    "string_python": pd.DataFrame({"s": pd.array(["a", None, "c"], dtype="string[python]")}),
    "str_python_nan": pd.DataFrame({"s": pd.array(["a", None, "c"], dtype=pd.StringDtype("python", na_value=np.nan))}),
    "arrow_string": pd.DataFrame({"s": pd.Series(["a", None, "c"], dtype=pd.ArrowDtype(pa.string())), "n": [1, 2, 3]}),
    "no_duplicate_labels": pd.DataFrame({"x": [1, 2]}).set_flags(allows_duplicate_labels=False),
    "empty_categorical_index": pd.DataFrame(
        {"x": np.array([], dtype=float)}, index=pd.CategoricalIndex([], categories=["c0", "c1"], name="k")
    ),
    "everything": pd.DataFrame(
        {
            "p": pd.array(["x", None], dtype="string[python]"),
            "a": pd.Series(["y", "z"], dtype=pd.ArrowDtype(pa.string())),
            "c": pd.Categorical(["u", "v"]),
        },
        index=pd.date_range("2024-01-01", periods=2, freq="h", name="when"),
    ).set_flags(allows_duplicate_labels=False),
}


def pyarrow_round_trip(df):
    """pyarrow's round trip through a payload: its table's record batches (a payload
    holds none of no rows, so no dictionary travels), then ``to_pandas``."""
    table = pa.Table.from_pandas(df)
    return pa.Table.from_batches([b for b in table.to_batches() if b.num_rows], schema=table.schema).to_pandas()


@pytest.mark.parametrize("kind", sorted(LOST_BY_PYARROW))
def test_pyarrow_alone_loses_these(kind):
    """Keeps the test below meaningful: each frame is one pyarrow's round trip changes."""
    df = LOST_BY_PYARROW[kind]
    back = pyarrow_round_trip(df)
    with pytest.raises(AssertionError):
        pd.testing.assert_frame_equal(back, df)
        assert back.flags.allows_duplicate_labels == df.flags.allows_duplicate_labels


@pytest.mark.parametrize("transport", ["shm", "file"])
@pytest.mark.parametrize("kind", sorted(LOST_BY_PYARROW))
def test_round_trip_keeps_what_pyarrow_loses(store, transport, kind):
    df = LOST_BY_PYARROW[kind]
    adc.send_dataframe(df, kind, secret_dir=store, transport=transport)
    back = adc.get_dataframe(kind, secret_dir=store)
    pd.testing.assert_frame_equal(back, df)
    assert back.flags.allows_duplicate_labels == df.flags.allows_duplicate_labels
    assert getattr(back.index, "freq", None) == getattr(df.index, "freq", None)


@pytest.mark.parametrize("kind", sorted(LOST_BY_PYARROW))
def test_the_table_is_pyarrows_plus_our_key(kind):
    """What 0.1.2 and pyarrow read is unchanged: our table is pyarrow's, schema metadata
    included, but for the one key of ours."""
    df = LOST_BY_PYARROW[kind]
    ours = frames.encode(df).table
    meta = dict(ours.schema.metadata)
    if frames.FIDELITY_KEY in meta:
        json.loads(meta.pop(frames.FIDELITY_KEY))
    expected = pa.Table.from_pandas(df, preserve_index=None)
    if frames.LABELS_KEY in meta:  # bool labels: converted under positional names (as mixed labels are)
        del meta[frames.LABELS_KEY]
        frame = df.copy(deep=False)
        frame.columns = [f"{c}__{i}" for i, c in enumerate(df.columns)]
        expected = pa.Table.from_pandas(frame, preserve_index=None)
    assert ours.replace_schema_metadata(meta).equals(expected, check_metadata=True)


def test_common_frames_carry_no_key_of_ours():
    df = pd.DataFrame({"x": np.arange(3.0), "s": ["a", "b", "c"], "c": pd.Categorical(["u", "v", "u"])})
    assert frames.FIDELITY_KEY not in frames.encode(df).table.schema.metadata


def test_freq_is_kept_on_slices_and_dropped_where_the_rows_no_longer_have_it(store):
    df = LOST_BY_PYARROW["datetime_index_freq"]
    adc.send_dataframe(df, "f", secret_dir=store)
    assert adc.get_dataframe("f", secret_dir=store, rows=(1, 4)).index.freq == df.index.freq
    sampled = adc.get_dataframe("f", secret_dir=store, sample=3, seed=1)
    pd.testing.assert_index_equal(sampled.index, df.index[df.index.isin(sampled.index)])


def test_zero_row_categories_come_back_through_get_arrow_and_columns(store):
    df = LOST_BY_PYARROW["empty_ordered_int_categorical"]
    adc.send_dataframe(df, "c", secret_dir=store)
    table = adc.get_arrow("c", secret_dir=store)
    assert table.column("c").type.ordered
    assert table.column("c").chunk(0).dictionary.to_pylist() == [3, 1]
    back = adc.get_dataframe("c", secret_dir=store, columns=["c"])
    pd.testing.assert_frame_equal(back, df[["c"]])


def test_progress_load_keeps_it_too(store):
    df = pd.DataFrame(
        {"s": pd.array([f"v{i}" for i in range(1000)], dtype="string[python]")},
        index=pd.date_range("2024-01-01", periods=1000, freq="min"),
    )
    adc.send_dataframe(df, "p", secret_dir=store, transport="file", chunk_rows=300)
    back = adc.get_dataframe("p", secret_dir=store, progress=lambda done, total: None)
    pd.testing.assert_frame_equal(back, df)


def test_period_and_interval_indexes_in_a_fresh_process(store):
    adc.send_dataframe(pd.DataFrame({"x": [1, 2]}, index=pd.period_range("2024-01", periods=2, freq="M")), "p",
                       secret_dir=store)
    adc.send_dataframe(pd.DataFrame({"x": [1, 2]}, index=pd.interval_range(0, 2)), "i", secret_dir=store)
    adc.send_dataframe(pd.DataFrame({"p": pd.period_range("2024-01-01", periods=2, freq="D")}), "c", secret_dir=store)
    out = run_python(f"""
        import allye_data_connector as adc
        d = {str(store)!r}
        print(adc.get_dataframe("p", secret_dir=d).index.dtype)
        print(adc.get_dataframe("i", secret_dir=d).index.dtype)
        print(adc.get_dataframe("c", secret_dir=d)["p"].dtype)
    """)
    assert out.split("\n")[:3] == ["period[M]", "interval[int64, right]", "period[D]"]


@pytest.mark.parametrize("transport", ["shm", "file"])
@pytest.mark.parametrize(
    "series",
    [
        pd.Series([1.5, 2.5], name="v", index=pd.Index(["a", "b"], name="k")),
        pd.Series([1, 2, 3]),
        pd.Series(["x", None], name=0),
        pd.Series(pd.Categorical([], categories=["q"]), name="c", dtype="category"),
        pd.Series([1, 2], name="t", index=pd.date_range("2024-01-01", periods=2, freq="D")),
    ],
    ids=["named", "unnamed", "named_zero", "empty_categorical", "freq"],
)
def test_a_series_comes_back_a_series(store, transport, series):
    adc.send_dataframe(series, "s", secret_dir=store, transport=transport)
    back = adc.get_dataframe("s", secret_dir=store)
    assert isinstance(back, pd.Series)
    pd.testing.assert_series_equal(back, series)
    (listed,) = adc.list_tables(secret_dir=store)
    assert listed["shape"] == (len(series), 1)


def arrow_inputs():
    table = pa.table({"a": [1, 2, 3], "s": ["x", None, "z"]})
    yield "table", table, table
    yield "record_batch", table.to_batches()[0], table
    yield "reader", pa.RecordBatchReader.from_batches(table.schema, table.to_batches()), table

    class Stream:  # any object with __arrow_c_stream__ (duckdb relations, ...)
        def __arrow_c_stream__(self, requested_schema=None):
            return table.__arrow_c_stream__(requested_schema)

    yield "c_stream", Stream(), table
    try:
        import polars as pl
    except ImportError:
        return
    yield "polars", pl.DataFrame({"a": [1, 2, 3], "s": ["x", None, "z"]}), table


@pytest.mark.parametrize("transport", ["shm", "file"])
@pytest.mark.parametrize("kind", [k for k, _, _ in arrow_inputs()])
def test_arrow_data_can_be_sent(store, transport, kind):
    data, table = next((d, t) for k, d, t in arrow_inputs() if k == kind)
    adc.send_dataframe(data, kind, secret_dir=store, transport=transport)
    got = adc.get_arrow(kind, secret_dir=store)
    assert got.num_rows == 3 and got.column_names == ["a", "s"]
    assert got.column("a").to_pylist() == [1, 2, 3] and got.column("s").to_pylist() == ["x", None, "z"]
    pd.testing.assert_frame_equal(adc.get_dataframe(kind, secret_dir=store), table.to_pandas())
    (listed,) = adc.list_tables(secret_dir=store)
    assert listed["shape"] == (3, 2)


def test_something_else_is_refused_with_what_to_send(store):
    with pytest.raises(adc.errors.InvalidInputError, match="Series.*RecordBatch.*__arrow_c_stream__"):
        adc.send_dataframe([1, 2], "x", secret_dir=store)


def test_labels_holding_nul_come_back_whole(store):
    """Arrow's C interface cuts field names at a NUL; such labels travel in allye_columns."""
    df = pd.DataFrame({"a\0b": [1, 2], "a": [3, 4], "\0": [5, 6]})
    adc.send_dataframe(df, "nul", secret_dir=store)
    pd.testing.assert_frame_equal(adc.get_dataframe("nul", secret_dir=store), df)
    assert adc.get_dataframe("nul", secret_dir=store, columns=["a\0b"])["a\0b"].tolist() == [1, 2]


# --- object columns and indexes ------------------------------------------------------------
OBJECT_FRAMES = {
    "object_strings": pd.DataFrame({"s": pd.Series(["a", "b", "c"], dtype=object)}),
    "object_strings_nan": pd.DataFrame({"s": pd.Series(["a", np.nan, "c"], dtype=object)}),
    "object_strings_none": pd.DataFrame({"s": pd.Series(["a", None, "c"], dtype=object)}, index=[7, 8, 9]),
    "object_strings_na": pd.DataFrame({"s": pd.Series(["a", pd.NA, "c"], dtype=object)}),
    "object_strings_mixed_missing": pd.DataFrame({"s": pd.Series([None, "a", np.nan, None, pd.NA, "b"], dtype=object)}),
    "object_all_nan": pd.DataFrame({"s": pd.Series([np.nan, np.nan], dtype=object), "x": [1, 2]}),
    "object_ints": pd.DataFrame({"i": pd.Series([1, 2, 3], dtype=object)}),
    "object_ints_none": pd.DataFrame({"i": pd.Series([1, None, 3], dtype=object)}),
    "object_floats": pd.DataFrame({"f": pd.Series([1.5, np.nan, 2.5], dtype=object)}),
    "object_bools_nan": pd.DataFrame({"b": pd.Series([True, np.nan, False], dtype=object)}),
    "object_bytes_nan": pd.DataFrame({"b": pd.Series([b"x", np.nan], dtype=object)}),
    "object_index": pd.DataFrame({"x": [1, 2, 3]}, index=pd.Index(["a", "b", "c"], dtype=object, name="k")),
    "object_index_missing": pd.DataFrame({"x": [1, 2, 3]}, index=pd.Index(["a", np.nan, None], dtype=object)),
    "object_multiindex_level": pd.DataFrame(
        {"x": [1, 2, 3]},
        index=pd.MultiIndex.from_arrays([[1, 2, 3], ["a", "b", "c"]]).set_levels(
            pd.Index(["a", "b", "c"], dtype=object), level=1),
    ),
    "object_and_str": pd.DataFrame({"o": pd.Series(["a", None], dtype=object), "s": pd.Series(["a", None], dtype="str")}),
}


@pytest.mark.parametrize("kind", sorted(OBJECT_FRAMES))
def test_pyarrow_alone_loses_object_columns(kind):
    """Keeps the test below meaningful: pyarrow's round trip changes each of these."""
    df = OBJECT_FRAMES[kind]
    back = pa.Table.from_pandas(df).to_pandas()
    with pytest.raises(AssertionError):
        pd.testing.assert_frame_equal(back, df)
        for c in df:  # None and NaN are both "missing" to assert_frame_equal
            assert [type(v) for v in back[c]] == [type(v) for v in df[c]]
        assert [type(v) for v in back.index] == [type(v) for v in df.index]


@pytest.mark.parametrize("transport", ["shm", "file"])
@pytest.mark.parametrize("kind", sorted(OBJECT_FRAMES))
def test_object_columns_come_back_object_with_their_missing_values(store, transport, kind):
    df = OBJECT_FRAMES[kind]
    adc.send_dataframe(df, "o", secret_dir=store, transport=transport)
    back = adc.get_dataframe("o", secret_dir=store)
    pd.testing.assert_frame_equal(back, df)
    for c in df:
        assert [type(v) for v in back[c]] == [type(v) for v in df[c]], c
    assert [type(v) for v in back.index] == [type(v) for v in df.index]
    if isinstance(df.index, pd.MultiIndex):
        assert [lvl.dtype for lvl in back.index.levels] == [lvl.dtype for lvl in df.index.levels]


def test_object_missing_values_follow_the_rows_a_partial_load_keeps(store):
    values = [None, "a", np.nan, None, pd.NA, "b", np.nan, "c"]
    df = pd.DataFrame({"s": pd.Series(values, dtype=object), "n": np.arange(8)})
    adc.send_dataframe(df, "o", secret_dir=store)

    def kinds(frame):
        return [type(v) for v in frame["s"]]

    for kwargs, expected in [({"rows": (2, 7)}, df.iloc[2:7]), ({"head": 3}, df.iloc[:3]),
                             ({"rows": (-3, None)}, df.iloc[-3:])]:
        got = adc.get_dataframe("o", secret_dir=store, **kwargs)
        pd.testing.assert_frame_equal(got, expected)
        assert kinds(got) == kinds(expected), kwargs
    sample = adc.get_dataframe("o", secret_dir=store, sample=4, seed=5)
    expected = df.loc[sample.index]
    pd.testing.assert_frame_equal(sample, expected)
    assert kinds(sample) == kinds(expected)


def test_object_columns_with_other_dtype_backends_are_as_asked(store):
    df = pd.DataFrame({"s": pd.Series(["a", None], dtype=object)})
    adc.send_dataframe(df, "o", secret_dir=store)
    assert isinstance(adc.get_dataframe("o", secret_dir=store, dtype_backend="pyarrow")["s"].dtype, pd.ArrowDtype)
    assert isinstance(adc.get_dataframe("o", secret_dir=store, dtype_backend="numpy_nullable")["s"].dtype,
                      pd.StringDtype)
