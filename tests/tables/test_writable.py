"""Frames from get_dataframe are ordinary frames: in-place writes work, copying only the
columns written, on first write; the mapped payload is never written, and the columns
not written stay zero-copy views of it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import allye_data_connector as adc
from allye_data_connector.frames import to_pandas
from tests.helpers import run_python

pytestmark = pytest.mark.skipif(
    not to_pandas._copy_on_write_active(), reason="pandas 2 without copy-on-write: frames stay read-only (documented)"
)

ROWS = 1000


#: Columns of several dtypes (a block each on get), and of one dtype (one 2-D block).
FRAMES = {
    "mixed": lambda: pd.DataFrame({"x": np.arange(ROWS), "y": np.arange(ROWS, dtype=float),
                                   "z": np.arange(ROWS, dtype="int32")}),
    "one_dtype": lambda: pd.DataFrame({c: np.arange(ROWS, dtype=float) for c in "xyz"}),
}


def sent(store, transport="shm", frame="mixed"):
    df = FRAMES[frame]()
    adc.send_dataframe(df, "t", secret_dir=store, transport=transport)
    return df


def address(series: pd.Series) -> int:
    return series.to_numpy().__array_interface__["data"][0]


def get(store):
    """get_dataframe's two steps, keeping the mapped table to know its addresses (each
    get maps a segment anew)."""
    table = adc.get_arrow("t", secret_dir=store)
    mapped = {name: table.column(name).chunk(0).buffers()[1].address for name in table.column_names}
    return to_pandas.arrow_to_dataframe(table), mapped


WRITES = {
    "loc": lambda df: df.loc.__setitem__((0, "x"), 1),
    "iloc": lambda df: df.iloc.__setitem__((0, 0), 1),
    "iat": lambda df: df.iat.__setitem__((0, 0), 1),
    "at": lambda df: df.at.__setitem__((0, "x"), 1),
    "mask": lambda df: df.loc.__setitem__((df["x"] < 1, "x"), 1),
    "fillna": lambda df: (df.__setitem__("y", df["y"]), df.fillna({"x": 0}, inplace=True),
                          df.loc.__setitem__((0, "x"), 1)),
    "replace": lambda df: df.replace({"x": {0: 1}}, inplace=True),
    "update": lambda df: df.update(pd.DataFrame({"x": [1]}, index=[0])),
    "series": lambda df: df["x"].__setitem__(0, 1),
    "clip": lambda df: (df.clip(lower=1, inplace=True)),
}


@pytest.mark.parametrize("frame", sorted(FRAMES))
@pytest.mark.parametrize("transport", ["shm", "file"])
@pytest.mark.parametrize("how", sorted(WRITES))
def test_in_place_write_copies_the_column_written_and_never_the_mapping(store, transport, how, frame):
    original = sent(store, transport, frame)
    get(store)  # the first get of a schema learns it; the later ones assemble the frame
    df, mapped = get(store)
    assert {c: address(df[c]) for c in df.columns} == mapped, "read as views of the mapping"
    assert df._mgr.nblocks == (1 if frame == "one_dtype" else 3)
    WRITES[how](df)
    if how != "series":  # a write through a Series derived from the frame leaves the frame as it was
        assert df.loc[0, "x"] == 1
        if how != "clip":
            assert address(df["x"]) != mapped["x"], "the written column is a copy"
            assert address(df["y"]) == mapped["y"] and address(df["z"]) == mapped["z"], "the others are not"
    # The mapping was not written: read again here and in another process.
    pd.testing.assert_frame_equal(adc.get_dataframe("t", secret_dir=store), original)
    out = run_python(f"""
        import allye_data_connector as adc
        df = adc.get_dataframe("t", secret_dir={str(store)!r})
        print(int(df["x"].iloc[0]), int(df["x"].sum()))
    """)
    assert out.split() == ["0", str(ROWS * (ROWS - 1) // 2)]


def test_second_write_goes_into_the_copy(store):
    sent(store)
    df = adc.get_dataframe("t", secret_dir=store)
    df.loc[0, "y"] = -1.0
    first = address(df["y"])
    df.loc[1, "y"] = -2.0
    assert address(df["y"]) == first, "the copy is the frame's own: written in place"
    assert df["y"].iloc[:3].tolist() == [-1.0, -2.0, 2.0]


def test_views_of_the_frame_are_writable_after_the_frame_is_gone(store):
    sent(store)
    df = adc.get_dataframe("t", secret_dir=store)
    part = df[["x", "y"]]
    rows = df.iloc[10:20]
    del df
    part.loc[0, "x"] = 5
    rows.iloc[0, 1] = 5.0
    assert part.loc[0, "x"] == 5 and rows.iloc[0, 1] == 5.0
    assert adc.get_dataframe("t", secret_dir=store)["x"].iloc[0] == 0


def test_a_frame_of_many_batches_and_pyarrow_converted_columns_is_writable(store):
    df = pd.DataFrame({"x": np.arange(ROWS), "s": [f"v{i}" for i in range(ROWS)],
                       "t": pd.date_range("2024-01-01", periods=ROWS, freq="s")})
    adc.send_dataframe(df, "t", secret_dir=store, transport="file", chunk_rows=300)
    for back in (adc.get_dataframe("t", secret_dir=store),
                 adc.get_dataframe("t", secret_dir=store, progress=lambda done, total: None)):
        back.loc[0, "x"] = 7
        back.loc[0, "t"] = pd.Timestamp("2000-01-01")
        back.loc[0, "s"] = "w"
        assert back.loc[0, ["x", "s"]].tolist() == [7, "w"]
    pd.testing.assert_frame_equal(adc.get_dataframe("t", secret_dir=store), df)


def test_to_numpy_stays_read_only_as_pandas_makes_it(store):
    """pandas' copy-on-write hands out read-only arrays of any frame's columns; the
    README says to copy them (np.array(...)) before writing."""
    sent(store)
    df = adc.get_dataframe("t", secret_dir=store)
    with pytest.raises(ValueError, match="read-only"):
        df["x"].to_numpy()[0] = 1
    arr = np.array(df["x"])
    arr[0] = 1
    assert df["x"].iloc[0] == 0


@pytest.mark.parametrize(
    "sent_as",
    [
        pd.DataFrame({"x": np.arange(5)}).set_flags(allows_duplicate_labels=False),
        pd.Series(np.arange(5), name="x"),
        pd.DataFrame({"x": np.arange(5)}, index=pd.date_range("2024-01-01", periods=5, freq="D")),
    ],
    ids=["no_duplicate_labels", "series", "freq_index"],
)
def test_frames_restored_from_our_metadata_are_writable_too(store, sent_as):
    adc.send_dataframe(sent_as, "t", secret_dir=store)
    back = adc.get_dataframe("t", secret_dir=store)
    back.iloc[0] = 9  # Series or frame
    assert np.asarray(back).ravel()[0] == 9
    assert np.asarray(adc.get_dataframe("t", secret_dir=store)).ravel()[0] == 0
