"""Frames of many dtypes, index kinds and column labels: what the round-trip and the
conversion tests send."""

from __future__ import annotations

import numpy as np
import pandas as pd


def frames() -> dict[str, pd.DataFrame]:
    n = 257
    rng = np.random.default_rng(1)
    floats = rng.standard_normal(n)
    floats[::7] = np.nan
    return {
        "ints": pd.DataFrame({"i8": np.arange(n, dtype="int8"), "i64": np.arange(n, dtype="int64") * 10**12, "u32": np.arange(n, dtype="uint32")}),
        "floats_nan": pd.DataFrame({"f64": floats, "f32": floats.astype("float32")}),
        "bool": pd.DataFrame({"b": np.arange(n) % 3 == 0}),
        "strings": pd.DataFrame({"s": [None if i % 5 == 0 else f"héllo-{i}-日本語" for i in range(n)]}),
        "object_strings": pd.DataFrame({"s": pd.Series([None if i % 4 == 0 else f"x{i}" for i in range(n)], dtype=object)}),
        "categorical": pd.DataFrame({"c": pd.Categorical([["a", "b", None][i % 3] for i in range(n)], categories=["b", "a"])}),
        "datetime_tz": pd.DataFrame({"t": pd.date_range("2025-03-30", periods=n, freq="37min", tz="Europe/Berlin")}),
        "datetime_naive_nat": pd.DataFrame({"t": pd.Series(pd.date_range("2020-01-01", periods=n, freq="D")).where(lambda s: s.dt.day != 3)}),
        "timedelta": pd.DataFrame({"d": pd.to_timedelta(np.arange(n), unit="s")}),
        "nullable_int": pd.DataFrame({"n": pd.array([None if i % 6 == 0 else i for i in range(n)], dtype="Int64")}),
        "index_named": pd.DataFrame({"v": np.arange(n, dtype=float)}, index=pd.Index(np.arange(n) * 3, name="key")),
        "multiindex": pd.DataFrame({"v": np.arange(6)}, index=pd.MultiIndex.from_product([["a", "b"], [1, 2, 3]], names=["l", "n"])),
        "int_labels": pd.DataFrame(np.arange(12.0).reshape(4, 3), columns=[10, 20, 30]),
        "mixed_labels": pd.DataFrame([[1, "x", 2.5]], columns=["a", 1, 2.5]),
        "duplicate_labels": pd.DataFrame([[1, 2.0, "x"], [3, 4.0, "y"]], columns=["a", "a", "b"]),
        "empty": pd.DataFrame({"a": pd.Series([], dtype="float64"), "b": pd.Series([], dtype="int64")}),
        "no_columns": pd.DataFrame(index=pd.RangeIndex(5)),
        "wide": pd.DataFrame(np.arange(3 * 500, dtype=float).reshape(3, 500), columns=[f"c{i}" for i in range(500)]),
        # 0.1.2 took the schema from the first 50,000 rows: null for 60k rows, then strings.
        "late_strings": pd.DataFrame({"s": pd.Series([None] * 60_000 + ["late"] * 10, dtype=object)}),
    }

