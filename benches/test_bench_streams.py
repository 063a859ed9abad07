"""Streams: a 1-row append, and get_arrow of a stream of many appends against one version
of the same rows (pytest-benchmark); plus a smoke run of benches/bench_streams.py (CI
runs benches once each). The side-by-side numbers come from running the script."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import allye_data_connector as adc
from benches import bench_streams


@pytest.fixture
def stream_store(tmp_path):
    store = tmp_path / "store"
    for i in range(1000):
        adc.append("s", pd.DataFrame({"i": np.arange(i * 10, i * 10 + 10), "x": np.zeros(10)}), secret_dir=store,
                   publish=False)
    whole = pd.DataFrame({"i": np.arange(10_000), "x": np.zeros(10_000)})
    adc.send_dataframe(whole, "single", secret_dir=store, transport="file", shm_unlink_on_read=False)
    return store


def test_bench_append_one_row(benchmark, tmp_path):
    store = tmp_path / "store"
    benchmark(lambda: adc.append("one", {"i": 1, "x": 0.5}, secret_dir=store, publish=False))


def test_bench_get_arrow_stream_of_1000_appends(benchmark, stream_store):
    t = benchmark(lambda: adc.get_arrow("s", secret_dir=stream_store))
    assert t.num_rows == 10_000


def test_bench_get_arrow_single_version(benchmark, stream_store):
    t = benchmark(lambda: adc.get_arrow("single", secret_dir=stream_store))
    assert t.num_rows == 10_000


def test_bench_streams_script_smoke():
    med = bench_streams.main(["--reps", "1", "--messages", "500", "--ataraxis-python", "/nonexistent",
                              "--appends", "200", "--latency-appends", "20", "--sdk-writes", "5"])
    assert med["throughput/ours"]["messages"] == 2000
    assert med["latency/append"]["n"] == 20
    assert med["sdk/write"]["n"] == 5
    assert med["read/stream"]["rows"] == med["read/single"]["rows"] == 2000
