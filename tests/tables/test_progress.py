"""Progress and cancellation of sends: reports as the frame converts, and a cancel
leaves nothing behind (no manifest line, no segment, no file)."""

from __future__ import annotations

import threading

import numpy as np
import pandas as pd
import pytest

import allye_data_connector as adc
from allye_data_connector.frames import dataframe_to_arrow
from allye_data_connector.errors import AllyeError, CancelledError

N = 600_000


def big() -> pd.DataFrame:
    return pd.DataFrame(
        {"x": np.arange(N), "s": np.array(["a", "bb", "ccc"])[np.arange(N) % 3],
         "c": pd.Categorical(np.array(list("xyz"))[np.arange(N) % 3])}
    )


@pytest.mark.parametrize(
    "df",
    [
        big(),
        pd.DataFrame({"x": np.arange(N)}, index=pd.date_range("2020", periods=N, freq="s", tz="UTC", name="t")),
        pd.DataFrame({"x": np.arange(N)}, index=pd.RangeIndex(10, 10 + 2 * N, 2)),
        pd.DataFrame({"o": [None] * 300_000 + ["a"] * 300_000}),
        pd.DataFrame(np.ones((N, 2)), columns=["d", "d"]),
    ],
    ids=["mixed", "tz-index", "range-step", "late-type", "dup-labels"],
)
def test_chunked_conversion_equals_whole_frame(df):
    calls = []
    t = dataframe_to_arrow(df, progress=lambda d, n: calls.append((d, n)))
    assert t.equals(dataframe_to_arrow(df), check_metadata=True)
    assert calls[-1] == (N, N) and [d for d, _ in calls] == sorted(d for d, _ in calls)


@pytest.mark.parametrize("transport", ["shm", "file"])
def test_send_reports_progress_and_round_trips(store, transport):
    df = big()
    calls = []
    adc.send_dataframe(df, "p", secret_dir=store, transport=transport,
                       progress=lambda d, n: calls.append((d, n)))
    assert calls[0] == (250_000, N) and calls[-1] == (N, N) and len(calls) >= 3
    pd.testing.assert_frame_equal(adc.get_dataframe("p", secret_dir=store), df)


def _nothing_left(store):
    manifest = store / "manifest.jsonl"
    assert not manifest.exists() or '"table_name":"c"' not in manifest.read_text()
    payloads = store / "payloads"
    assert not payloads.exists() or not any(payloads.iterdir())


@pytest.mark.parametrize("transport", ["shm", "file"])
def test_cancel_midway_leaves_nothing_behind(store, transport):
    stop = threading.Event()
    calls = []

    def progress(done, total):
        calls.append(done)
        stop.set()  # cancel after the first chunk

    with pytest.raises(CancelledError, match="cancelled; nothing was written") as info:
        adc.send_dataframe(big(), "c", secret_dir=store, transport=transport,
                           progress=progress, cancel=stop)
    assert isinstance(info.value, AllyeError)
    assert calls == [250_000]
    _nothing_left(store)
    with pytest.raises(adc.TableNotFoundError):
        adc.get_dataframe("c", secret_dir=store)


def test_cancel_callable_and_before_start(store):
    with pytest.raises(CancelledError):
        adc.send_dataframe(pd.DataFrame({"x": [1]}), "c", secret_dir=store, cancel=lambda: True)
    _nothing_left(store)
    # A token that is never set changes nothing.
    adc.send_dataframe(pd.DataFrame({"x": [1]}), "ok", secret_dir=store, cancel=threading.Event())
    assert adc.get_dataframe("ok", secret_dir=store)["x"].tolist() == [1]


LOAD_FRAMES = {
    "range-step": pd.DataFrame({"x": np.arange(5000.0)}, index=pd.RangeIndex(7, 7 + 3 * 5000, 3, name="r")),
    "tz-index": pd.DataFrame({"x": np.arange(5000)}, index=pd.date_range("2025", periods=5000, freq="min", tz="Asia/Tokyo", name="t")),
    "strings-cats": pd.DataFrame({
        "s": [None if i % 7 == 0 else f"s{i}" for i in range(5000)],
        "c": pd.Categorical(np.array(list("abc"))[np.arange(5000) % 3]),
        "n": pd.array([None if i % 5 == 0 else i for i in range(5000)], dtype="Int64"),
    }),
    "dup-labels": pd.DataFrame(np.ones((5000, 2)), columns=["d", "d"]),
}


@pytest.mark.parametrize("name", list(LOAD_FRAMES))
@pytest.mark.parametrize("dtype_backend", [None, "pyarrow"])
def test_load_progress_gives_the_same_frame(store, name, dtype_backend):
    df = LOAD_FRAMES[name]
    adc.send_dataframe(df, "l", secret_dir=store, transport="file", chunk_rows=1000)
    calls = []
    got = adc.get_dataframe("l", secret_dir=store, dtype_backend=dtype_backend, progress=lambda d, n: calls.append((d, n)))
    pd.testing.assert_frame_equal(got, adc.get_dataframe("l", secret_dir=store, dtype_backend=dtype_backend), check_freq=False)
    assert calls == [(1000 * (i + 1), 5000) for i in range(5)]
    if dtype_backend is None:
        pd.testing.assert_frame_equal(got, df, check_freq=False)


def test_load_cancel(store):
    adc.send_dataframe(LOAD_FRAMES["range-step"], "l", secret_dir=store, transport="file", chunk_rows=1000)
    stop = threading.Event()
    calls = []

    def progress(done, total):
        calls.append(done)
        stop.set()

    with pytest.raises(CancelledError, match="the load was cancelled"):
        adc.get_dataframe("l", secret_dir=store, progress=progress, cancel=stop)
    assert calls == [1000]
    # A partial load reports over what it loads; a single batch in one step.
    calls.clear()
    got = adc.get_dataframe("l", secret_dir=store, rows=(0, 1500), progress=lambda d, n: calls.append((d, n)))
    assert len(got) == 1500 and calls == [(1000, 1500), (1500, 1500)]
    calls.clear()
    adc.get_dataframe("l", secret_dir=store, head=10, progress=lambda d, n: calls.append((d, n)))
    assert calls == [(10, 10)]
