"""pytest-benchmark smoke test of a load (CSV into the store); the side-by-side comparison
is bench_sources.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

import allye_data_connector as adc


def test_bench_load_csv(benchmark: Any, tmp_path: Path) -> None:
    path = tmp_path / "data.csv"
    ids = np.arange(200_000)
    pacsv.write_csv(pa.table({"id": ids, "x": ids * 0.5}), path)
    store = tmp_path / "store"
    out = benchmark(lambda: adc.load(path, "csv", secret_dir=store, progress=False))
    assert out["rows"] == 200_000
