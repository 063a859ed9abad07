"""What a NaN becomes: a send (and an object put) writes every NaN of a float column as a
null, as ``pyarrow.Table.from_pandas`` does, whichever path writes it. The converter
leaves float32/float64 columns unscanned and the core looks for NaN while it copies them
(into a pool segment) or in one pass first (any other write); a NaN found there makes the
core refuse the send, writing nothing, and the frame is sent again with nulls. A round
trip through pandas cannot see the difference (NaN and null both come back NaN): these
tests read the Arrow data."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402
from hypothesis.extra import numpy as hnp  # noqa: E402

import allye_data_connector as adc  # noqa: E402
from allye_data_connector import _core, errors  # noqa: E402
from tests.helpers import unlink_segments  # noqa: E402


@pytest.fixture()
def store(tmp_path: Path):
    d = tmp_path / "store"
    yield d
    unlink_segments(d)


def expected(df: pd.DataFrame) -> pa.Table:
    return pa.Table.from_pandas(df, preserve_index=None)


def assert_same_columns(got: pa.Table, df: pd.DataFrame) -> None:
    want = expected(df)
    assert got.num_columns == want.num_columns
    for i in range(want.num_columns):
        g, w = got.column(i).combine_chunks(), want.column(i).combine_chunks()
        assert g.type == w.type, (i, g.type, w.type)
        assert g.null_count == w.null_count, (i, g.null_count, w.null_count)
        assert g.is_null().equals(w.is_null()), i
        assert g.equals(w), i


def frame(n: int, nan_at: dict[str, list[int]]) -> pd.DataFrame:
    df = pd.DataFrame({
        "f64": np.linspace(0.0, 1.0, n),
        "i64": np.arange(n, dtype=np.int64),
        "f32": np.linspace(0.0, 1.0, n).astype(np.float32),
        "inf": np.full(n, np.inf),
    })
    for col, rows in nan_at.items():
        for r in rows:
            df.loc[r, col] = np.nan
    return df


CASES = {
    "none": {},
    "f64 first": {"f64": [0]},
    "f32 last": {"f32": [-1]},
    "both, middle": {"f64": ["mid"], "f32": ["mid+1"]},
}


def _rows(n: int, spec: dict[str, list]) -> dict[str, list[int]]:
    where = {"mid": n // 2, "mid+1": n // 2 + 1}
    return {c: [where[r] if isinstance(r, str) else r % n for r in rows] for c, rows in spec.items()}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("rows", [1_000, 1_000_000])  # 1M x 4 columns: a pooled send
def test_every_nan_becomes_a_null_through_every_write_path(store: Path, case: str, rows: int) -> None:
    df = frame(rows, _rows(rows, CASES[case]))
    # Several sends of the same size: the first writes a new segment, later ones a pool
    # segment; a file payload too.
    for transport in ["shm", "shm", "shm", "file"]:
        adc.send_dataframe(df, "t", secret_dir=store, transport=transport)
        assert_same_columns(adc.get_arrow("t", secret_dir=store), df)
        pd.testing.assert_frame_equal(adc.get_dataframe("t", secret_dir=store), df)
        time.sleep(0.05)
    objs = adc.objects(secret_dir=store)
    for _ in range(3):
        objs["f"] = df
        _, data = _core.get_object("f", secret_dir=str(store))
        assert_same_columns(pa.table(data), df)
        pd.testing.assert_frame_equal(objs["f"], df)


def test_a_series_with_nan_is_sent_with_a_null(store: Path) -> None:
    s = pd.Series([1.0, np.nan, 3.0], name="s")
    adc.send_dataframe(s, "s", secret_dir=store)
    assert adc.get_arrow("s", secret_dir=store).column(0).null_count == 1
    pd.testing.assert_series_equal(adc.get_dataframe("s", secret_dir=store), s)


def test_the_core_refuses_a_nan_in_a_rejecting_column_and_writes_nothing(store: Path) -> None:
    adc.send_dataframe(pd.DataFrame({"x": [1.0, 2.0]}), "t", secret_dir=store)
    manifest = (store / "manifest.jsonl").read_bytes()
    # The store's segments share its tag (the first characters of a segment name): only
    # those are looked at, since other processes of the machine make and free theirs.
    first = next(json.loads(line) for line in manifest.splitlines() if b'"ready"' in line)["payload"]["locator"]
    tag = first[:len("adc_") + 10]
    before = {n for n in os.listdir("/dev/shm") if n.startswith(tag)}
    nan = pa.table({"x": pa.array(np.array([1.0, np.nan]))})  # a NaN value, no null
    with pytest.raises(errors.NanFoundError, match="column 0 holds NaN"):
        _core.send(nan, secret_dir=str(store), table_name="t", reject_nan=[0])
    assert (store / "manifest.jsonl").read_bytes() == manifest, "no line for a refused send"
    assert {n for n in os.listdir("/dev/shm") if n.startswith(tag)} == before, "no segment for a refused send"
    # Named columns must be float columns of the table.
    with pytest.raises(errors.InvalidArgumentError, match="only float32 and float64"):
        _core.send(pa.table({"n": [1, 2]}), secret_dir=str(store), table_name="t", reject_nan=[0])
    with pytest.raises(errors.InvalidArgumentError, match="the table has 1"):
        _core.send(nan, secret_dir=str(store), table_name="t", reject_nan=[5])
    # Without reject_nan a caller's Arrow data is sent as it is: the NaN stays a value.
    _core.send(nan, secret_dir=str(store), table_name="t")
    got = adc.get_arrow("t", secret_dir=store).column(0)
    assert got.null_count == 0 and np.isnan(got.to_numpy()[1])
    assert [json.loads(line)["status"] for line in (store / "manifest.jsonl").read_text().splitlines()].count(
        "error"
    ) == 0


@pytest.fixture(scope="module")
def shared_store():
    d = Path(tempfile.mkdtemp(prefix="adc-nan-")) / "store"
    yield d
    unlink_segments(d)
    shutil.rmtree(d.parent, ignore_errors=True)


FLOATS = st.sampled_from([np.float32, np.float64, np.float16])


@settings(max_examples=150, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_property_the_sent_arrow_is_from_pandas(shared_store: Path, data: st.DataObject) -> None:
    n = data.draw(st.integers(0, 40))
    cols = {}
    for i in range(data.draw(st.integers(1, 4))):
        dtype = data.draw(FLOATS)
        cols[f"c{i}"] = data.draw(hnp.arrays(dtype, n, elements=st.floats(allow_nan=True, allow_infinity=True,
                                                                       width=np.dtype(dtype).itemsize * 8)))
    df = pd.DataFrame(cols)
    adc.send_dataframe(df, "p", secret_dir=shared_store, transport=data.draw(st.sampled_from(["shm", "file"])))
    assert_same_columns(adc.get_arrow("p", secret_dir=shared_store), df)
    adc.gc(secret_dir=shared_store, dry_run=False)
