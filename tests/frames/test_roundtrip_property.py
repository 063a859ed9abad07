"""Property: what get_dataframe returns equals what send_dataframe was given
(``assert_frame_equal`` with its default options), for frames drawn by hypothesis'
pandas strategies and for hand-written kinds of columns, indexes and labels. Bounded
(max_examples) so that it runs in well under a minute."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402
from hypothesis.extra import pandas as hpd  # noqa: E402

import allye_data_connector as adc  # noqa: E402
from tests.helpers import unlink_segments  # noqa: E402

SETTINGS = settings(max_examples=200, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@pytest.fixture(scope="module")
def store():
    d = Path(tempfile.mkdtemp(prefix="adc-property-")) / "store"
    yield d
    unlink_segments(d)
    shutil.rmtree(d.parent, ignore_errors=True)


def round_trip(store, data, transport="auto"):
    adc.send_dataframe(data, "p", secret_dir=store, transport=transport)
    back = adc.get_dataframe("p", secret_dir=store)
    adc.gc(secret_dir=store, dry_run=False)  # one version at a time in /dev/shm
    return back


NUMPY_DTYPES = ["int8", "int16", "int32", "int64", "uint8", "uint32", "uint64", "float32", "float64", "bool",
                "datetime64[ns]", "timedelta64[ns]"]

@st.composite
def numpy_frames(draw):
    names = draw(st.lists(st.text(min_size=1, max_size=5), min_size=1, max_size=5, unique=True))
    cols = [hpd.column(name, dtype=np.dtype(draw(st.sampled_from(NUMPY_DTYPES)))) for name in names]
    index = st.one_of(
        hpd.range_indexes(max_size=20),
        hpd.indexes(dtype="int64", max_size=20),
        hpd.indexes(elements=st.text(max_size=4), max_size=20),
    )
    return draw(hpd.data_frames(columns=cols, index=index))


@SETTINGS
@given(df=numpy_frames(), transport=st.sampled_from(["shm", "file"]))
def test_numpy_frames(store, df, transport):
    pd.testing.assert_frame_equal(round_trip(store, df, transport), df)


def column_of(kind: str, n: int, draw) -> pd.Series:
    ints = draw(st.lists(st.integers(-1000, 1000), min_size=n, max_size=n))
    nulls = draw(st.lists(st.booleans(), min_size=n, max_size=n))
    words = [None if z else f"w{abs(i) % 7}" for i, z in zip(ints, nulls)]
    if kind == "str":
        return pd.Series([w if w is not None else None for w in words], dtype="str")
    if kind == "string_pyarrow":
        return pd.Series(words, dtype="string[pyarrow]")
    if kind == "string_python":
        return pd.Series(words, dtype="string[python]")
    if kind == "arrow_string":
        return pd.Series(words, dtype=pd.ArrowDtype(pa.string()))
    if kind == "arrow_int":
        return pd.Series([None if z else i for i, z in zip(ints, nulls)], dtype=pd.ArrowDtype(pa.int64()))
    if kind == "Int64":
        return pd.Series([None if z else i for i, z in zip(ints, nulls)], dtype="Int64")
    if kind == "Float64":
        return pd.Series([None if z else i / 4 for i, z in zip(ints, nulls)], dtype="Float64")
    if kind == "boolean":
        return pd.Series([None if z else i > 0 for i, z in zip(ints, nulls)], dtype="boolean")
    if kind == "category":
        return pd.Series(pd.Categorical(words, categories=[f"w{k}" for k in range(7)], ordered=bool(n % 2)))
    if kind == "int_category":
        return pd.Series(pd.Categorical([i % 5 for i in ints], categories=range(5)))
    if kind == "float_nan":
        return pd.Series([np.nan if z else i / 2 for i, z in zip(ints, nulls)], dtype="float64")
    if kind == "datetime_tz":
        return pd.Series(pd.to_datetime(ints, unit="h").tz_localize("UTC").tz_convert("Asia/Tokyo"))
    if kind == "datetime_s":
        return pd.Series(np.array(ints, dtype="datetime64[s]"))
    if kind == "period":
        return pd.Series(pd.PeriodIndex.from_ordinals(ints, freq="D"))
    if kind == "interval":
        return pd.Series(pd.IntervalIndex.from_arrays(ints, [i + 1 for i in ints]))
    if kind.startswith("object_"):
        # object columns whose missing entries are any of pandas' missing values
        missing = draw(st.lists(st.sampled_from(OBJECT_MISSING), min_size=n, max_size=n))
        present = {"object_str": words, "object_int": ints, "object_float": [i / 4 for i in ints],
                   "object_bool": [i > 0 for i in ints], "object_bytes": [f"b{i}".encode() for i in ints]}[kind]
        return pd.Series([m if z else v for v, z, m in zip(present, nulls, missing)], dtype=object)
    raise AssertionError(kind)


OBJECT_MISSING = [None, np.nan, pd.NA]
COLUMN_KINDS = ["str", "string_pyarrow", "string_python", "arrow_string", "arrow_int", "Int64", "Float64", "boolean",
                "category", "int_category", "float_nan", "datetime_tz", "datetime_s", "period", "interval",
                "object_str", "object_int", "object_float", "object_bool", "object_bytes"]


def index_of(kind: str, n: int) -> pd.Index:
    if kind == "range":
        return pd.RangeIndex(n)
    if kind == "range_step":
        return pd.RangeIndex(5, 5 + 3 * n, 3, name="r")
    if kind == "datetime_freq":
        return pd.date_range("2024-01-01", periods=n, freq="h", name="t")
    if kind == "datetime_tz_freq":
        return pd.date_range("2024-03-30", periods=n, freq="D", tz="Europe/Paris")
    if kind == "timedelta_freq":
        return pd.timedelta_range("1s", periods=n, freq="250ms")
    if kind == "period":
        return pd.period_range("2024-01", periods=n, freq="M")
    if kind == "interval":
        return pd.interval_range(0, n) if n else pd.IntervalIndex.from_breaks([0])[:0]
    if kind == "str":
        return pd.Index([f"k{i}" for i in range(n)], name="key")
    if kind == "object":
        return pd.Index([None if i % 5 == 3 else f"k{i}" for i in range(n)], dtype=object, name="key")
    if kind == "multi":
        return pd.MultiIndex.from_arrays([np.arange(n) % 3, [f"m{i}" for i in range(n)]], names=["a", "b"])
    if kind == "categorical":
        return pd.CategoricalIndex([f"c{i % 2}" for i in range(n)], categories=["c0", "c1"])
    raise AssertionError(kind)


INDEX_KINDS = ["range", "range_step", "datetime_freq", "datetime_tz_freq", "timedelta_freq", "period", "interval",
               "str", "object", "multi", "categorical"]

LABEL_KINDS = {
    "str": lambda k: [f"c{i}" for i in range(k)],
    "int": lambda k: list(range(10, 10 + k)),
    "bool": lambda k: [bool(i % 2) for i in range(k)],
    "mixed": lambda k: [i if i % 2 else f"c{i}" for i in range(k)],
    "duplicate": lambda k: ["d"] * k,
    "tuple": lambda k: pd.MultiIndex.from_tuples([("g", f"c{i}") for i in range(k)]),
}


@st.composite
def hand_written_frames(draw):
    n = draw(st.integers(0, 12))
    kinds = draw(st.lists(st.sampled_from(COLUMN_KINDS), min_size=1, max_size=4))
    labels = LABEL_KINDS[draw(st.sampled_from(sorted(LABEL_KINDS)))](len(kinds))
    cols = [column_of(k, n, draw) for k in kinds]
    df = pd.concat([c.reset_index(drop=True) for c in cols], axis=1) if n else pd.DataFrame(
        {i: c for i, c in enumerate(cols)})
    df.columns = labels
    df.index = index_of(draw(st.sampled_from(INDEX_KINDS)), n)
    if draw(st.booleans()) and df.columns.is_unique and df.index.is_unique:
        df = df.set_flags(allows_duplicate_labels=False)
    return df


def value_types(values) -> list[type]:
    """The type of each value: None, NaN and pd.NA are equal to assert_frame_equal."""
    return [type(v) for v in values]


@SETTINGS
@given(df=hand_written_frames(), transport=st.sampled_from(["shm", "file"]))
def test_hand_written_frames(store, df, transport):
    back = round_trip(store, df, transport)
    pd.testing.assert_frame_equal(back, df)
    for i in range(df.shape[1]):
        if df.dtypes.iloc[i] == object:
            assert value_types(back.iloc[:, i]) == value_types(df.iloc[:, i])
    if df.index.dtype == object:
        assert value_types(back.index) == value_types(df.index)
    assert back.flags.allows_duplicate_labels == df.flags.allows_duplicate_labels
    assert getattr(back.index, "freq", None) == getattr(df.index, "freq", None)


@SETTINGS
@given(df=hand_written_frames())
def test_series(store, df):
    series = df.iloc[:, 0].rename(None if len(df.columns) % 2 else "name")
    back = round_trip(store, series)
    assert isinstance(back, pd.Series)
    pd.testing.assert_series_equal(back, series)
    if series.dtype == object:
        assert value_types(back) == value_types(series)


@SETTINGS
@given(df=hand_written_frames(), data=st.data())
def test_partial_loads(store, df, data):
    """A partial load is the same part of the frame that was sent: labels, dtypes and
    missing values of the rows it keeps."""
    adc.send_dataframe(df, "p", secret_dir=store)
    n = len(df)
    start = data.draw(st.integers(-n - 2, n + 2))
    stop = data.draw(st.one_of(st.none(), st.integers(-n - 2, n + 2)))
    back = adc.get_dataframe("p", secret_dir=store, rows=(start, stop))
    expected = df.iloc[start:stop]
    pd.testing.assert_frame_equal(back, expected, check_freq=False)
    k = data.draw(st.integers(0, n + 1))
    sample = adc.get_dataframe("p", secret_dir=store, sample=k, seed=data.draw(st.integers(0, 99)))
    assert len(sample) == min(k, n)
    if df.index.is_unique and len(sample):
        positions = sorted(df.index.get_indexer(sample.index))
        pd.testing.assert_frame_equal(sample, df.iloc[positions], check_freq=False, check_index_type=False)
        for i in range(df.shape[1]):
            if df.dtypes.iloc[i] == object:
                assert value_types(sample.iloc[:, i]) == value_types(df.iloc[positions, i])
    adc.gc(secret_dir=store, dry_run=False)
