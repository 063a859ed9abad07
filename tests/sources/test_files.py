"""The built-in file sources (CSV, Parquet, Arrow IPC/Feather) and what read(n) may return,
loaded through adc.load into a real store."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.feather as feather
import pyarrow.parquet as pq
import pytest

import allye_data_connector as adc
from allye_data_connector.errors import InvalidArgumentError, SourceError
from allye_data_connector.sources import CsvSource, IpcSource, ParquetSource, resolve

from .helpers import leftovers, manifest_lines, sample


def test_csv_streams_block_by_block_with_byte_progress(tmp_path: Path, store: Path) -> None:
    t = sample(200_000)
    path = tmp_path / "data.csv"
    pacsv.write_csv(t, path)
    seen: list[tuple[int, object]] = []
    src = CsvSource({"path": str(path), "block_size": str(1 << 20)})
    reported: list[dict] = []
    src.on("progress", reported.append)
    out = adc.load(src, "csv", secret_dir=store, progress=lambda d, tot: seen.append((d, tot)))
    assert out["rows"] == out["rows_loaded"] == 200_000
    got = adc.get_arrow("csv", secret_dir=store)
    assert got.equals(t)
    # Written batch by batch: several batches in the payload, progress in bytes of the file.
    assert adc.describe_table("csv", secret_dir=store)["num_batches"] > 3
    size = os.path.getsize(path)
    assert len(seen) > 3 and all(tot == size for _, tot in seen[:-1])
    assert [d for d, _ in seen[:-1]] == sorted(d for d, _ in seen[:-1])
    assert reported[-1]["loaded"] == size and reported[-1]["total"] == size
    assert seen[-1] == (200_000, 200_000)
    # What it was loaded from is recorded; the table reads back as pandas too.
    ready = [ev for ev in manifest_lines(store) if ev["status"] == "ready"][-1]
    assert ready["metadata"]["allye_load"]["source"] == f"csv:{path}"
    assert ready["payload"]["transport"] == "file_arrow_ipc_v1"
    assert adc.get_dataframe("csv", secret_dir=store)["id"].sum() == t["id"].to_numpy().sum()


def test_csv_by_path_with_delimiter_param(tmp_path: Path, store: Path) -> None:
    path = tmp_path / "semi.tsv"
    path.write_text("a;b\n1;x\n2;y\n")
    out = adc.load(str(path), "semi", secret_dir=store, params={"delimiter": ";"}, progress=False)
    assert out["rows"] == 2
    assert adc.get_dataframe("semi", secret_dir=store).to_dict("list") == {"a": [1, 2], "b": ["x", "y"]}


def test_parquet_file_and_directory_by_row_groups(tmp_path: Path, store: Path) -> None:
    t = sample(50_000)
    pq.write_table(t, tmp_path / "one.parquet", row_group_size=10_000)
    seen: list[tuple[int, object]] = []
    adc.load(tmp_path / "one.parquet", "pq", secret_dir=store, progress=lambda d, tot: seen.append((d, tot)))
    assert adc.get_arrow("pq", secret_dir=store).equals(t)
    assert seen[:5] == [(10_000 * k, 50_000) for k in range(1, 6)]
    assert adc.describe_table("pq", secret_dir=store)["num_batches"] == 5

    d = tmp_path / "dir"
    (d / "part=1").mkdir(parents=True)
    pq.write_table(sample(3, 0), d / "a.parquet")
    pq.write_table(sample(4, 3), d / "part=1" / "b.parquet")
    (d / "_SUCCESS").write_text("")
    out = adc.load(str(d), "pqdir", secret_dir=store, progress=False)
    assert out["rows"] == 7
    assert adc.get_arrow("pqdir", secret_dir=store)["id"].to_pylist() == list(range(7))
    src = ParquetSource({"path": str(tmp_path / "one.parquet"), "columns": "id,name"})
    adc.load(src, "pqcols", secret_dir=store, progress=False)
    assert adc.get_arrow("pqcols", secret_dir=store).column_names == ["id", "name"]


def test_arrow_ipc_file_feather_and_stream(tmp_path: Path, store: Path) -> None:
    t = sample(30_000)
    feather.write_feather(t, tmp_path / "f.feather", chunksize=7_000)
    with pa.OSFile(str(tmp_path / "s.arrows"), "wb") as f, pa.ipc.new_stream(f, t.schema) as w:
        for b in t.to_batches(max_chunksize=10_000):
            w.write_batch(b)
    for name in ("f.feather", "s.arrows"):
        adc.load(tmp_path / name, "ipc", secret_dir=store, progress=False)
        assert adc.get_arrow("ipc", secret_dir=store).equals(t)
    src = IpcSource({"path": str(tmp_path / "f.feather")})
    assert src.schema() == t.schema
    src.close()


@pytest.mark.parametrize(
    "make",
    [
        lambda rows: rows,  # a list of records, as a panoply source returns
        lambda rows: pd.DataFrame(rows),
        lambda rows: pa.Table.from_pylist(rows),
        lambda rows: pa.RecordBatch.from_pylist(rows),
    ],
    ids=["records", "dataframe", "table", "batch"],
)
def test_read_may_return_records_frames_or_arrow(make, store: Path) -> None:
    class Counter(adc.DataSource):
        CONFIG = {"title": "counter", "params": [{"name": "n", "title": "rows"}]}

        def __init__(self, source, options=None):
            super().__init__(source, options)
            self.done = 0

        def read(self, n=None):
            if self.done >= int(self.source["n"]):
                return None
            rows = [{"id": self.done + i, "v": float(i)} for i in range(3)]
            self.done += 3
            self.progress(self.done, int(self.source["n"]))
            return make(rows) if self.done != 6 else make(rows)[:0]  # an empty batch is not the end

    out = adc.load(Counter({"n": 12}), "gen", secret_dir=store, progress=False)
    assert out["rows"] == 9
    assert adc.get_arrow("gen", secret_dir=store)["id"].to_pylist() == [0, 1, 2, 6, 7, 8, 9, 10, 11]


def test_an_empty_source_publishes_an_empty_table_with_its_columns(tmp_path: Path, store: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_text("a,b\n")
    assert adc.load(path, "empty", secret_dir=store, progress=False)["rows"] == 0
    t = adc.get_arrow("empty", secret_dir=store)
    assert t.num_rows == 0 and t.column_names == ["a", "b"]


def test_bad_inputs_are_typed_errors_and_write_nothing(tmp_path: Path, store: Path) -> None:
    with pytest.raises(SourceError, match="no such file"):
        adc.load(tmp_path / "missing.parquet", "t", secret_dir=store)
    with pytest.raises(SourceError, match="cannot read CSV"):
        adc.load(tmp_path / "missing.csv", "t", secret_dir=store)
    with pytest.raises(InvalidArgumentError, match="suffix"):
        adc.load(tmp_path / "data.xyz", "t", secret_dir=store)
    with pytest.raises(InvalidArgumentError, match="mode"):
        adc.load(tmp_path / "a.csv", "t", mode="upsert", secret_dir=store)
    with pytest.raises(InvalidArgumentError, match="no source named"):
        resolve("x", kind="nope")
    (tmp_path / "bad.arrow").write_bytes(b"not arrow at all")
    with pytest.raises(SourceError, match="neither an Arrow IPC file nor a stream"):
        adc.load(tmp_path / "bad.arrow", "t", secret_dir=store)

    class Weird(adc.DataSource):
        def read(self, n=None):
            return 42

    with pytest.raises(SourceError, match="returned a int"):
        adc.load(Weird(), "t", secret_dir=store, progress=False)
    assert manifest_lines(store) == [] and leftovers(store) == []


MEMORY_CHILD = """
import resource, sys
import numpy as np
import pyarrow as pa
import allye_data_connector as adc

class Big(adc.DataSource):
    # 48 batches of 4 MiB: 192 MiB in all, made one at a time.
    n = 0
    def read(self, n=None):
        if self.n == 48:
            return None
        self.n += 1
        return pa.record_batch({"v": np.full(1 << 19, self.n, dtype=np.int64)})

warm = Big(); warm.n = 46
adc.load(warm, "warm", secret_dir=sys.argv[1], progress=False)   # allocator and imports warmed up
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
out = adc.load(Big(), "big", secret_dir=sys.argv[1], progress=False)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(out["rows"], (after - before) // 1024)
"""


def test_a_source_larger_than_its_batches_is_never_held_whole(store: Path) -> None:
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-c", MEMORY_CHILD, str(store)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    rows, grew_mib = map(int, proc.stdout.split())
    assert rows == 48 << 19
    assert grew_mib < 64, f"peak RSS grew by {grew_mib} MiB loading 192 MiB: batches are being held"
    assert adc.describe_table("big", secret_dir=store)["bytes"] >= 192 << 20


def test_compressed_csv_by_suffix(tmp_path: Path, store: Path) -> None:
    t = sample(20_000)
    path = tmp_path / "data.csv.gz"
    with pa.CompressedOutputStream(str(path), "gzip") as out:
        pacsv.write_csv(t, out)
    seen: list[tuple[int, object]] = []
    adc.load(path, "gz", secret_dir=store, progress=lambda d, tot: seen.append((d, tot)))
    assert adc.get_arrow("gz", secret_dir=store).equals(t)
    assert seen[-2] == (os.path.getsize(path), os.path.getsize(path)), "progress in compressed bytes"
