"""pytest-benchmark suites for send_dataframe / get_dataframe.

Frames of 1e3, 1e5 and 1e6 rows x 10 columns (8 float64, 2 int64), through shared memory
("shm") and Arrow IPC files ("file"), plus a 10-row send+get round trip. Every benchmark
uses `benchmark.pedantic` with a fixed number of rounds so the whole file stays short on
a 2-core machine; the untimed setup of each round releases the previous rounds' payloads.

    pytest benches/ --benchmark-only            # measure
    pytest benches/ --benchmark-disable         # run each body once, as a quick test
"""

from __future__ import annotations

import pandas as pd
import pytest

from allye_data_connector import get_dataframe, list_tables, send_dataframe

SIZES = {"1e3": 1_000, "1e5": 100_000, "1e6": 1_000_000}
# (rounds, warmup_rounds) per size: enough for a stable median, few enough to stay quick.
ROUNDS = {1_000: (100, 5), 100_000: (30, 3), 1_000_000: (10, 1)}
WIRE = {"shm": "shm_arrow_stream_v1", "file": "file_arrow_ipc_v1"}

size_param = pytest.mark.parametrize("rows", list(SIZES.values()), ids=list(SIZES))
transport_param = pytest.mark.parametrize("transport", ["shm", "file"])


def _send(df: pd.DataFrame, name: str, store, transport: str) -> str:
    return send_dataframe(df, name, secret_dir=store, transport=transport, notify_canvas=False)


def _check_sent(store, name: str, transport: str, rows: int) -> None:
    (entry,) = [t for t in list_tables(secret_dir=store) if t["table_name"] == name]
    assert entry["transport"] == WIRE[transport]
    assert entry["shape"] == (rows, 10)


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
    _check_sent(store, name, transport, rows)


@pytest.mark.benchmark(group="get")
@pytest.mark.parametrize("dtype_backend", [None, "pyarrow"], ids=["numpy", "pyarrow"])
@transport_param
@size_param
def test_get(benchmark, store, frame_of, rows, transport, dtype_backend):
    df = frame_of(rows)
    rounds, warmup = ROUNDS[rows]
    _send(df, "bench", store, transport)
    _check_sent(store, "bench", transport, rows)
    benchmark.extra_info.update(rows=rows, transport=transport, dtype_backend=dtype_backend or "numpy")

    out = benchmark.pedantic(
        get_dataframe,
        args=("bench",),
        kwargs={"secret_dir": store, "dtype_backend": dtype_backend},
        rounds=rounds,
        warmup_rounds=warmup,
    )
    assert out.shape == df.shape
    assert list(out.columns) == list(df.columns)
    if dtype_backend == "pyarrow":
        assert all(isinstance(t, pd.ArrowDtype) for t in out.dtypes)
        out = out.astype(df.dtypes.to_dict())  # assert_frame_equal(check_dtype=False) is very slow here
    pd.testing.assert_frame_equal(out, df)
    del out


def _round_trip(df: pd.DataFrame, store, transport: str) -> pd.DataFrame:
    send_dataframe(df, "tiny", secret_dir=store, transport=transport, notify_canvas=False)
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
    _check_sent(store, "tiny", transport, 10)
