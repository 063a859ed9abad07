"""`adc get -o FILE` writes the Arrow table that was sent, so pandas, pyarrow and polars
read back the frame that was sent (dtypes included); `adc send` reads such files back,
and a file that is not what its name says is a one-line error."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow.feather as feather
import pyarrow.parquet as pq
import pytest

import allye_data_connector as adc


def sent_frame() -> pd.DataFrame:
    n = 60
    return pd.DataFrame(
        {
            "x": np.linspace(0, 1, n),
            "n": np.arange(n),
            "team": pd.Categorical(["red", "blue", "green"] * (n // 3)),
            "s": [f"row {i}" for i in range(n)],
            "flag": np.arange(n) % 3 == 0,
            "when": pd.date_range("2024-01-01", periods=n, freq="D"),
        },
        index=pd.date_range("2025-01-01", periods=n, freq="h", name="ts"),
    )


def plain_frame() -> pd.DataFrame:
    """Numbers only, default RangeIndex: what comes back as double[pyarrow] today."""
    rng = np.random.default_rng(0)
    return pd.DataFrame({"a": rng.standard_normal(40), "b": np.arange(40, dtype=np.int64)})


# freq is not kept by a round trip yet (issue 11's fidelity list, another branch).
EQUAL = dict(check_freq=False)


@pytest.mark.parametrize("transport", ["shm", "file"])
@pytest.mark.parametrize("suffix", [".parquet", ".feather"])
def test_files_read_back_as_the_frame_that_was_sent(store, tmp_path, adc_cmd, transport, suffix):
    for name, df in (("mixed", sent_frame()), ("plain", plain_frame())):
        adc.send_dataframe(df, name, secret_dir=store, transport=transport, notify_canvas=False)
        out = tmp_path / f"{name}{suffix}"
        res = json.loads(adc_cmd("get", name, "-o", str(out), "--json", store=store).stdout)
        assert (res["rows"], res["columns"]) == df.shape
        if suffix == ".parquet":
            readers = [pd.read_parquet(out), pq.read_table(out).to_pandas()]
        else:
            readers = [pd.read_feather(out), feather.read_table(out).to_pandas()]
        for back in readers:
            pd.testing.assert_frame_equal(back, df, **EQUAL)  # dtypes too: category, float64, str, bool
        assert str(readers[0]["a" if name == "plain" else "x"].dtype) == "float64"


@pytest.mark.parametrize("suffix", [".parquet", ".feather"])
def test_polars_reads_the_files(store, tmp_path, adc_cmd, suffix):
    pl = pytest.importorskip("polars")  # optional dependency; installed by .ci/run
    for name, df in (("mixed", sent_frame()), ("plain", plain_frame())):
        adc.send_dataframe(df, name, secret_dir=store, notify_canvas=False)
        out = tmp_path / f"{name}{suffix}"
        adc_cmd("get", name, "-o", str(out), store=store)
        back = pl.read_parquet(out) if suffix == ".parquet" else pl.read_ipc(out)
        expected = pl.from_pandas(df.reset_index() if name == "mixed" else df)
        assert back.select(expected.columns).equals(expected)
        assert back.schema == expected.schema if name == "plain" else back.schema["team"] == pl.Categorical


def test_csv_reads_back_with_the_values_sent(store, tmp_path, adc_cmd):
    df = sent_frame()
    adc.send_dataframe(df, "mixed", secret_dir=store, notify_canvas=False)
    adc_cmd("get", "mixed", "-o", str(tmp_path / "m.csv"), store=store)
    back = pd.read_csv(tmp_path / "m.csv", index_col="ts", parse_dates=["ts", "when"])
    expected = df.astype({"team": "str"})  # text has no categories
    pd.testing.assert_frame_equal(back, expected, check_freq=False, check_index_type=False, check_dtype=False)
    assert back.dtypes.astype(str).tolist() == ["float64", "int64", "str", "str", "bool", "datetime64[us]"]
    # A default RangeIndex is not written: the file holds exactly the frame's columns.
    plain = plain_frame()
    adc.send_dataframe(plain, "plain", secret_dir=store, notify_canvas=False)
    adc_cmd("get", "plain", "-o", str(tmp_path / "p.csv"), store=store)
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "p.csv"), plain)


@pytest.mark.parametrize("suffix", [".parquet", ".feather", ".csv"])
def test_a_partial_get_keeps_the_dtypes(store, tmp_path, adc_cmd, suffix):
    df = sent_frame()
    adc.send_dataframe(df, "mixed", secret_dir=store, notify_canvas=False)
    out = tmp_path / f"part{suffix}"
    adc_cmd("get", "mixed", "-o", str(out), "--columns", "team,x", "--rows", "6:12", store=store)
    expected = df[["team", "x"]].iloc[6:12]
    if suffix == ".csv":
        back = pd.read_csv(out, index_col="ts", parse_dates=["ts"])
        expected = expected.astype({"team": "str"})
        pd.testing.assert_frame_equal(back, expected, check_freq=False, check_index_type=False)
    else:
        back = pd.read_parquet(out) if suffix == ".parquet" else pd.read_feather(out)
        pd.testing.assert_frame_equal(back, expected, check_freq=False)


@pytest.mark.parametrize("suffix", [".parquet", ".feather", ".csv"])
def test_send_of_a_file_written_by_get(store, tmp_path, adc_cmd, suffix):
    df = sent_frame() if suffix != ".csv" else plain_frame()
    adc.send_dataframe(df, "orig", secret_dir=store, notify_canvas=False)
    out = tmp_path / f"copy{suffix}"
    adc_cmd("get", "orig", "-o", str(out), store=store)
    sent = adc_cmd("send", str(out), "--no-notify", store=store)
    assert f"sent 'copy': {len(df):,} rows x {df.shape[1]} columns" in sent.stdout, sent.stdout
    pd.testing.assert_frame_equal(adc.get_dataframe("copy", secret_dir=store), df, **EQUAL)


@pytest.mark.parametrize("suffix,content", [
    (".parquet", b"this is not parquet\n" * 10),
    (".feather", b"PAR1 nor feather" * 10),
    (".parquet", b""),
    (".csv", b'a,b\n1,"unterminated\n'),
    (".csv", b"\xff\xfe\x00garbage\x00\xff" * 20),
])
def test_a_bad_file_is_one_line_not_a_traceback(store, tmp_path, adc_cmd, suffix, content):
    bad = tmp_path / f"bad{suffix}"
    bad.write_bytes(content)
    proc = adc_cmd("send", str(bad), store=store, check=None)
    assert proc.returncode in (1, 2), proc
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert "Traceback" not in proc.stderr and str(bad) in lines[0]
    assert adc.list_tables(secret_dir=store) == []


def test_get_rows_keeps_the_index_labels(store, tmp_path, adc_cmd):
    df = pd.DataFrame({"a": np.arange(10)}, index=pd.RangeIndex(100, 110))
    adc.send_dataframe(df, "r", secret_dir=store, notify_canvas=False)
    for suffix in (".csv", ".parquet"):
        out = tmp_path / f"r{suffix}"
        adc_cmd("get", "r", "-o", str(out), "--rows", "4:7", store=store)
        back = pd.read_csv(out, index_col=0) if suffix == ".csv" else pd.read_parquet(out)
        assert back.index.tolist() == [104, 105, 106] and back["a"].tolist() == [4, 5, 6]


def test_a_table_without_rows_or_columns_gets_and_shows_no_rows(store, tmp_path, adc_cmd):
    adc.send_dataframe(pd.DataFrame(), "empty", secret_dir=store, notify_canvas=False)
    out = tmp_path / "e.csv"
    res = json.loads(adc_cmd("get", "empty", "--head", "3", "-o", str(out), "--json", store=store).stdout)
    assert res["rows"] == 0
    assert out.read_text().strip() == ""
    shown = adc_cmd("show", "empty", store=store).stdout
    assert "no rows" in shown and "Index" not in shown
    assert json.loads(adc_cmd("--json", "show", "empty", store=store).stdout)["head"]["index"] == []
