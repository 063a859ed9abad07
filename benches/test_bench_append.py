"""pytest-benchmark smoke test of an incremental append (one chunk of new rows onto a
stream); the side-by-side comparison is bench_append.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

import allye_data_connector as adc


def test_bench_load_append(benchmark: Any, tmp_path: Path) -> None:
    store = tmp_path / "store"
    state = {"at": 0}

    class New(adc.DataSource):
        cursor = "id"

        def __init__(self) -> None:
            super().__init__({})
            ids = np.arange(state["at"], state["at"] + 10_000, dtype=np.int64)
            self.batch: Any = pa.table({"id": ids, "x": ids * 0.5}).to_batches()[0]
            state["at"] += 10_000

        def read(self, n: Any = None) -> Any:
            out, self.batch = self.batch, None
            return out

    out = benchmark(lambda: adc.load(New(), "t", secret_dir=store, mode="append", publish=False, progress=False))
    assert out["rows_loaded"] == 10_000 and out["rows"] == state["at"]
