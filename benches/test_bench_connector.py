"""pytest-benchmark suites for send_dataframe / get_dataframe.

* numeric frames of 1e3, 1e5, 1e6 and 1e7 rows x 10 columns (8 float64, 2 int64), through
  shared memory ("shm") and Arrow IPC files ("file"), gets into NumPy and into Arrow-backed
  columns;
* a string-heavy frame (1e6 rows: two string columns, as Python ``str`` objects or as
  Arrow strings);
* a 10-row send + get round trip;
* a get with 10, 1e4 or 1e6 other events in the manifest (each round is a cold lookup).

1e7 rows and 1e6 events run only with ADC_BENCH_LARGE=1 (skipped, with that reason, otherwise).
Every benchmark uses `benchmark.pedantic` with a fixed number of rounds so the whole file
stays short on a 2-core machine; the untimed setup of each round releases the previous
rounds' payloads.

    pytest benches/ --benchmark-only            # measure
    ADC_BENCH_LARGE=1 pytest benches/ --benchmark-only
    pytest benches/ --benchmark-disable         # run each body once, as a quick test

`python benches/compare.py` times the same frames against 0.1.2, feather, pickle and the
machine's limits in one run.
"""

from __future__ import annotations

import itertools
import os

import pandas as pd
import pyarrow as pa
import pytest

from allye_data_connector import get_dataframe, list_tables, send_dataframe
from benches.gating import large
from benches.storetools import write_history

SIZES = [pytest.param(1_000, id="1e3"), pytest.param(100_000, id="1e5"), pytest.param(1_000_000, id="1e6"), large(10_000_000, "1e7")]
# (rounds, warmup_rounds) per size: enough for a stable median, few enough to stay quick.
ROUNDS = {1_000: (100, 5), 100_000: (30, 3), 1_000_000: (10, 1), 10_000_000: (5, 1)}
WIRE = {"shm": "shm_arrow_stream_v1", "file": "file_arrow_ipc_v1"}

size_param = pytest.mark.parametrize("rows", SIZES)
transport_param = pytest.mark.parametrize("transport", ["shm", "file"])
backend_param = pytest.mark.parametrize("dtype_backend", [None, "pyarrow"], ids=["numpy", "pyarrow"])


def _send(df: pd.DataFrame, name: str, store, transport: str) -> str:
    return send_dataframe(df, name, secret_dir=store, transport=transport)


def _check_sent(store, name: str, transport: str, shape) -> None:
    (entry,) = [t for t in list_tables(secret_dir=store) if t["table_name"] == name]
    assert entry["transport"] == WIRE[transport]
    assert entry["shape"] == tuple(shape)


def _check_same(out: pd.DataFrame, df: pd.DataFrame, dtype_backend) -> None:
    assert out.shape == df.shape
    assert list(out.columns) == list(df.columns)
    if dtype_backend == "pyarrow":
        assert all(isinstance(t, pd.ArrowDtype) for t in out.dtypes)
        # assert_frame_equal(check_dtype=False) is very slow here: compare as Arrow.
        assert pa.Table.from_pandas(out, preserve_index=False).cast(
            pa.Table.from_pandas(df, preserve_index=False).schema
        ).equals(pa.Table.from_pandas(df, preserve_index=False))
    else:
        pd.testing.assert_frame_equal(out, df)


@pytest.mark.benchmark(group="send")
@transport_param
@size_param
def test_send(benchmark, store, release_payloads, frame_of, rows, transport):
    df = frame_of(rows)
    rounds, warmup = ROUNDS[rows]
    benchmark.extra_info.update(rows=rows, transport=transport)
    name = benchmark.pedantic(
        _send,
        args=(df, "bench", store, transport),
        setup=lambda: release_payloads(store),
        rounds=rounds,
        warmup_rounds=warmup,
    )
    assert name == "bench"
    _check_sent(store, name, transport, df.shape)


@pytest.mark.benchmark(group="get")
@backend_param
@transport_param
@size_param
def test_get(benchmark, store, frame_of, rows, transport, dtype_backend):
    df = frame_of(rows)
    rounds, warmup = ROUNDS[rows]
    _send(df, "bench", store, transport)
    _check_sent(store, "bench", transport, df.shape)
    benchmark.extra_info.update(rows=rows, transport=transport, dtype_backend=dtype_backend or "numpy")
    out = benchmark.pedantic(
        get_dataframe,
        args=("bench",),
        kwargs={"secret_dir": store, "dtype_backend": dtype_backend},
        rounds=rounds,
        warmup_rounds=warmup,
    )
    _check_same(out, df, dtype_backend)


STRING_ROWS = 1_000_000
strings_param = pytest.mark.parametrize("strings", ["object", "arrow"])


@pytest.mark.benchmark(group="strings-send")
@strings_param
@transport_param
def test_send_strings(benchmark, store, release_payloads, frame_of, transport, strings):
    df = frame_of(STRING_ROWS, strings)
    benchmark.extra_info.update(rows=STRING_ROWS, transport=transport, strings=strings)
    benchmark.pedantic(
        _send, args=(df, "s", store, transport), setup=lambda: release_payloads(store), rounds=5, warmup_rounds=1
    )
    _check_sent(store, "s", transport, df.shape)


@pytest.mark.benchmark(group="strings-get")
@backend_param
@strings_param
@transport_param
def test_get_strings(benchmark, store, frame_of, transport, strings, dtype_backend):
    df = frame_of(STRING_ROWS, strings)
    _send(df, "s", store, transport)
    benchmark.extra_info.update(rows=STRING_ROWS, transport=transport, strings=strings, dtype_backend=dtype_backend or "numpy")
    out = benchmark.pedantic(
        get_dataframe,
        args=("s",),
        kwargs={"secret_dir": store, "dtype_backend": dtype_backend},
        rounds=5,
        warmup_rounds=1,
    )
    assert out.shape == df.shape
    assert out["label"].iloc[-1] == df["label"].iloc[-1]
    if dtype_backend == "pyarrow":
        assert all(isinstance(t, pd.ArrowDtype) for t in out.dtypes)
    # Compare as Arrow (assert_frame_equal of 1e6 strings of different dtypes takes
    # seconds; pandas 3 reads strings back as its "str" dtype whatever was sent).
    expected = pa.Table.from_pandas(df, preserve_index=False)
    assert pa.Table.from_pandas(out, preserve_index=False).cast(expected.schema).equals(expected)


def _round_trip(df: pd.DataFrame, store, transport: str) -> pd.DataFrame:
    send_dataframe(df, "tiny", secret_dir=store, transport=transport)
    return get_dataframe("tiny", secret_dir=store)


@pytest.mark.benchmark(group="roundtrip-10rows")
@transport_param
def test_round_trip_10_rows(benchmark, store, release_payloads, frame_of, transport):
    df = frame_of(10)
    benchmark.extra_info.update(rows=10, transport=transport)
    out = benchmark.pedantic(
        _round_trip,
        args=(df, store, transport),
        setup=lambda: release_payloads(store),
        rounds=200,
        warmup_rounds=10,
    )
    pd.testing.assert_frame_equal(out, df)
    _check_sent(store, "tiny", transport, (10, 10))


@pytest.mark.benchmark(group="get-history")
@pytest.mark.parametrize("events", [10, 10_000, large(1_000_000, "1e6")])
def test_get_with_history(benchmark, store, frame_of, events):
    """A cold get (the first in this process for that store path) of a 10-row table sent
    after `events` other events. Each round renames the store, so no round reuses the
    index of the last one; the payload is a segment, whose locator does not name the path."""
    df = frame_of(10)
    _send(df, "seed", store, "shm")
    write_history(store, events)
    _send(df, "target", store, "shm")
    paths = (store.with_name(f"{store.name}-r{i}") for i in itertools.count())
    current = [store]

    def setup():
        new = next(paths)
        os.rename(current[0], new)
        current[0] = new
        return (("target",), {"secret_dir": new})

    try:
        benchmark.extra_info.update(events=events, manifest_bytes=os.path.getsize(store / "manifest.jsonl"))
        out = benchmark.pedantic(get_dataframe, setup=setup, rounds=20, warmup_rounds=1)
        pd.testing.assert_frame_equal(out, df)
    finally:
        os.rename(current[0], store)
