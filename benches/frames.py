"""The benchmark frames, shared by the pytest-benchmark suites and compare.py (also in
0.1.2's interpreter, so both sides time the very same data). numpy and pandas only."""

from __future__ import annotations

import numpy as np
import pandas as pd


def numeric_frame(rows: int) -> pd.DataFrame:
    """rows x 10 columns: f0..f7 float64, i0..i1 int64 (np.random.default_rng(0))."""
    rng = np.random.default_rng(0)
    cols = {f"f{i}": rng.standard_normal(rows) for i in range(8)}
    cols.update({f"i{i}": rng.integers(-(2**40), 2**40, size=rows, dtype=np.int64) for i in range(2)})
    return pd.DataFrame(cols)


def string_frame(rows: int, strings: str = "object") -> pd.DataFrame:
    """rows x 4 columns, string-heavy: two string columns (6-character codes from 50,000,
    labels of 20-40 characters from 200,000), one float64, one int64.
    ``strings``: "object" (Python ``str`` objects, dtype object), "str" (pandas' default
    string dtype) or "arrow" (``pd.ArrowDtype(pa.string())``)."""
    rng = np.random.default_rng(0)
    words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"]
    codes = np.array([f"C{i:05d}" for i in range(50_000)], dtype=object)
    labels = np.array(
        [f"{words[i % 8]} {words[i // 8 % 8]} {words[i // 64 % 8]} #{i}" for i in range(200_000)], dtype=object
    )
    import pyarrow as pa

    columns = {}
    for name, pool in (("code", codes), ("label", labels)):
        values = pool[rng.integers(0, len(pool), size=rows)]
        if strings == "object":
            columns[name] = pd.Series(values, dtype=object)
        elif strings in ("str", "arrow"):
            arrow = pa.array(values, type=pa.string())
            dtype = pd.ArrowDtype(pa.string()) if strings == "arrow" else pd.StringDtype("pyarrow", na_value=np.nan)
            columns[name] = pd.Series(pd.arrays.ArrowExtensionArray(arrow)).astype(dtype)
        else:
            raise ValueError(f"strings={strings!r}")
    columns["x"] = rng.standard_normal(rows)
    columns["n"] = np.arange(rows, dtype=np.int64)
    return pd.DataFrame(columns)
