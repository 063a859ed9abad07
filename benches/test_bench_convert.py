"""pytest-benchmark: the pandas <-> Arrow conversions of a send and a get, ours next to
pyarrow's own (what 0.1.2 calls), on the numeric frames of 1e3 and 1e6 rows x 10.

* send side: ``frames.dataframe_to_arrow`` (NumPy columns wrapped, NaN scan, cached
  schema) vs ``pa.Table.from_pandas``;
* get side: ``frames.arrow_to_dataframe`` (zero-copy views assembled with a learnt
  column Index) vs ``Table.to_pandas(split_blocks=True)``.

Compare within a group (``--benchmark-group-by=group``): each pair converts the very same
frame or table in one run.
"""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pytest

from allye_data_connector import frames

ROWS = [pytest.param(1_000, id="1e3"), pytest.param(1_000_000, id="1e6")]
ROUNDS = {1_000: 2000, 1_000_000: 20}


@pytest.mark.parametrize("rows", ROWS)
@pytest.mark.parametrize("who", ["ours", "pyarrow"])
def test_to_arrow(benchmark, frame_of, rows, who):
    df = frame_of(rows)
    convert_ = frames.dataframe_to_arrow if who == "ours" else (lambda d: pa.Table.from_pandas(d, preserve_index=None))
    benchmark.group = f"pandas -> Arrow, {rows:,} rows"
    table = benchmark.pedantic(convert_, args=(df,), rounds=ROUNDS[rows], warmup_rounds=2)
    assert table.equals(pa.Table.from_pandas(df, preserve_index=None))


@pytest.mark.parametrize("rows", ROWS)
@pytest.mark.parametrize("who", ["ours", "pyarrow"])
def test_to_pandas(benchmark, frame_of, rows, who):
    table = pa.Table.from_pandas(frame_of(rows), preserve_index=None)
    convert_ = frames.arrow_to_dataframe if who == "ours" else (lambda t: t.to_pandas(split_blocks=True))
    benchmark.group = f"Arrow -> pandas, {rows:,} rows"
    out = benchmark.pedantic(convert_, args=(table,), rounds=ROUNDS[rows], warmup_rounds=2)
    pd.testing.assert_frame_equal(out, table.to_pandas(split_blocks=True), check_exact=True)
