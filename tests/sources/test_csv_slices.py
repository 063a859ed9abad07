"""The CSV source's sliced, parallel read: an uncompressed file is cut at line ends into
slices parsed by ``pyarrow.csv.read_csv``; the table must be the one ``read_csv`` gives
for the whole file (types, nulls, strings), whatever the slice size."""

from __future__ import annotations

import csv
import gzip
import io
import os
from pathlib import Path
from typing import Optional

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import allye_data_connector as adc
from allye_data_connector.errors import InvalidArgumentError, SourceError
from allye_data_connector.sources import CsvSource

from .helpers import leftovers, manifest_lines


def read_all(path: Path, **params: object) -> tuple[pa.Table, list[tuple[int, Optional[int]]], int]:
    """The source's batches as one table, its progress reports and how many reads it took."""
    src = CsvSource({"path": str(path), **params})
    seen: list[tuple[int, Optional[int]]] = []
    src.on("progress", lambda p: seen.append((p["loaded"], p["total"])))
    parts = []
    try:
        while (part := src.read()) is not None:
            parts.append(part)
    finally:
        src.close()
    schema = parts[0].schema if parts else src.schema()
    return pa.Table.from_batches([b for p in parts for b in pa.table(p).to_batches()], schema=schema), seen, len(parts)


def whole(path: Path, **parse: object) -> pa.Table:
    return pacsv.read_csv(path, parse_options=pacsv.ParseOptions(**parse))  # type: ignore[arg-type]


def csv_bytes(rows: list[list[object]], header: list[str], newline: str, trailing: bool) -> bytes:
    out = io.StringIO()
    w = csv.writer(out, lineterminator=newline)
    w.writerow(header)
    w.writerows(["" if v is None else v for v in r] for r in rows)
    text = out.getvalue()
    return (text if trailing else text[: -len(newline)]).encode()


text = st.text(alphabet=st.sampled_from(list('ab ,"\n\r\té-;')), max_size=12).map(lambda s: "s" + s)
row = st.tuples(st.none() | st.integers(-10**12, 10**12), st.none() | st.floats(-1e6, 1e6, allow_nan=False),
                text, st.none() | st.booleans())


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(first=st.tuples(st.integers(-10, 10), st.floats(-1, 1, allow_nan=False), text, st.booleans()),
       rows=st.lists(row, max_size=60), newline=st.sampled_from(["\n", "\r\n"]), trailing=st.booleans(),
       slice_bytes=st.integers(1, 300))
def test_any_slice_size_gives_read_csvs_table(tmp_path: Path, first: tuple, rows: list, newline: str,
                                              trailing: bool, slice_bytes: int) -> None:
    # The first row has every column set: a column of nulls in the first slice would be
    # typed null there (see test_a_later_value_of_another_type_is_an_error_naming_the_column).
    path = tmp_path / "h.csv"
    path.write_bytes(csv_bytes([list(first)] + [list(r) for r in rows], ["i", "f", "s", "b"], newline, trailing))
    try:
        want = whole(path)
    except pa.ArrowInvalid:
        # A bare \r ends a line for pyarrow (Python's csv module does not quote it): what
        # read_csv rejects, the source rejects too.
        with pytest.raises(SourceError):
            read_all(path, slice_bytes=slice_bytes)
        return
    got, seen, _ = read_all(path, slice_bytes=slice_bytes)
    assert got.schema == want.schema
    assert got.equals(want), (got.to_pylist(), want.to_pylist())
    size = path.stat().st_size
    assert [d for d, _ in seen] == sorted(d for d, _ in seen) and seen[-1] == (size, size)


def test_slices_parse_in_parallel_and_load_with_byte_progress(tmp_path: Path, store: Path) -> None:
    n = 300_000
    t = pa.table({"id": pa.array(range(n), pa.int64()), "x": pa.array([i * 0.25 for i in range(n)]),
                  "name": pa.array([f"n{i % 977}" for i in range(n)]),
                  "maybe": pa.array([None if i % 7 == 0 else i for i in range(n)], pa.int64())})
    path = tmp_path / "big.csv"
    pacsv.write_csv(t, path)
    size = path.stat().st_size
    seen: list[tuple[int, Optional[int]]] = []
    src = CsvSource({"path": str(path), "slice_bytes": str(1 << 20)})
    out = adc.load(src, "big", secret_dir=store, progress=lambda d, tot: seen.append((d, tot)))
    assert out["rows"] == n
    got = adc.get_arrow("big", secret_dir=store)
    assert got.equals(whole(path)) and got.equals(t)
    # Several slices, progress in bytes of the file, rising, ending at the file's size.
    byte_reports = [d for d, tot in seen if tot == size]
    assert len(set(byte_reports)) >= size // (1 << 20)
    assert byte_reports == sorted(byte_reports) and byte_reports[-1] == size


def test_a_slice_cut_inside_a_quoted_value_is_moved_to_a_line_end_outside_quotes(tmp_path: Path) -> None:
    # Every slice of 40 bytes would end inside a quoted value spanning three lines.
    body = "".join(f'{i},"line one {i}\nline, two\n""three"""\n' for i in range(200))
    path = tmp_path / "q.csv"
    path.write_text("id,note\n" + body)
    got, _, reads = read_all(path, slice_bytes=40)
    assert reads > 100
    want = whole(path)
    assert got.equals(want)
    assert got["note"][5].as_py() == 'line one 5\nline, two\n"three"'


def test_crlf_no_trailing_newline_and_a_line_longer_than_the_slice(tmp_path: Path) -> None:
    path = tmp_path / "crlf.csv"
    long = "y" * 5000
    path.write_bytes(f"a,b\r\n1,x\r\n2,{long}\r\n3,z".encode())
    got, _, _ = read_all(path, slice_bytes=64)
    assert got.equals(whole(path))
    assert got.to_pydict() == {"a": [1, 2, 3], "b": ["x", long, "z"]}


def test_a_later_value_of_another_type_is_an_error_naming_the_column(tmp_path: Path, store: Path) -> None:
    # read_csv alone widens "qty" to double: it holds the whole file. A load has written
    # the first slices by then, so it says which column and how to type it.
    path = tmp_path / "types.csv"
    path.write_text("id,qty\n" + "".join(f"{i},{i}\n" for i in range(5000)) + "5000,2.5\n")
    assert whole(path).schema.field("qty").type == pa.float64()
    adc.send_dataframe(pd.DataFrame({"id": [7]}), "typed", secret_dir=store)
    with pytest.raises(SourceError, match=r"'qty' was typed int64 .*column_types=\"qty:string\""):
        adc.load(CsvSource({"path": str(path), "slice_bytes": "4096"}), "typed", secret_dir=store, progress=False)
    assert adc.get_dataframe("typed", secret_dir=store).to_dict("list") == {"id": [7]}
    assert [ev["status"] for ev in manifest_lines(store)][-1] == "error" and not leftovers(store)
    # Typed up front (a dict or the CLI's text form), it is read_csv's table.
    for types in ({"qty": "float64"}, "qty:float64", {"qty": pa.float64()}):
        adc.load(CsvSource({"path": str(path), "slice_bytes": "4096", "column_types": types}), "typed",
                 secret_dir=store, progress=False)
        assert adc.get_arrow("typed", secret_dir=store).equals(whole(path))


def test_a_column_empty_in_the_first_slice_can_be_typed(tmp_path: Path) -> None:
    path = tmp_path / "sparse.csv"
    path.write_text("id,late\n" + "".join(f"{i},\n" for i in range(3000)) + "3000,7\n")
    with pytest.raises(SourceError, match="'late' was typed null"):
        read_all(path, slice_bytes=1024)
    got, _, _ = read_all(path, slice_bytes=1024, column_types="late:int64")
    assert got.equals(whole(path))


def test_newlines_in_values_and_compressed_files_use_the_streaming_reader(tmp_path: Path) -> None:
    # Values spanning lines across pyarrow's blocks: read_csv itself needs the option.
    body = "".join(f'{i},"a\nb {i}"\n' for i in range(150_000))
    path = tmp_path / "multi.csv"
    path.write_text("id,note\n" + body)
    with pytest.raises(SourceError, match="newlines_in_values"):
        read_all(path)
    got, _, reads = read_all(path, newlines_in_values="true", block_size=1 << 16)
    assert reads > 10 and got.equals(whole(path, newlines_in_values=True))
    gz = tmp_path / "multi.csv.gz"
    gz.write_bytes(gzip.compress(path.read_bytes()))
    got, seen, _ = read_all(gz, newlines_in_values=True)
    assert got.equals(whole(path, newlines_in_values=True)) and seen[-1][0] == os.path.getsize(gz)


def test_bad_csv_params_are_clear_errors(tmp_path: Path) -> None:
    path = tmp_path / "p.csv"
    path.write_text("a\n1\n")
    for params, match in [({"slice_bytes": "0"}, "slice_bytes must be a positive"),
                          ({"newlines_in_values": "maybe"}, "newlines_in_values must be true or false"),
                          ({"column_types": "a"}, "not name:type"),
                          ({"column_types": "a:notatype"}, "not a pyarrow type name")]:
        with pytest.raises(InvalidArgumentError, match=match):
            CsvSource({"path": str(path), **params})
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(SourceError, match="cannot read CSV"):
        CsvSource({"path": str(empty)})


CSV_MEMORY_CHILD = """
import sys
import pyarrow.csv as pacsv
import allye_data_connector as adc
from allye_data_connector.sources import CsvSource

def rss(key):
    for line in open("/proc/self/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1]) // 1024

path, store = sys.argv[1], sys.argv[2]
adc.load(CsvSource({"path": path, "slice_bytes": 1 << 20}), "warm", secret_dir=store, progress=False)
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # the high-water mark from here on
before = rss("VmRSS")
out = adc.load(CsvSource({"path": path, "slice_bytes": 4 << 20}), "big", secret_dir=store, progress=False)
print(out["rows"], rss("VmHWM") - before)
"""


def test_a_csv_larger_than_its_slices_is_never_held_whole(tmp_path: Path, store: Path) -> None:
    import subprocess
    import sys

    import numpy as np

    n = 3_000_000
    ids = np.arange(n)
    t = pa.table({"id": ids, "x": ids * 0.5, "name": pa.array(np.char.add("n", (ids % 10007).astype(str)))})
    path = tmp_path / "big.csv"
    pacsv.write_csv(t, path)
    arrow_mib = t.nbytes >> 20
    proc = subprocess.run([sys.executable, "-c", CSV_MEMORY_CHILD, str(path), str(store)], capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    rows, grew_mib = map(int, proc.stdout.split())
    assert rows == n and arrow_mib >= 60
    # A few 4 MiB slices and their tables (read_csv alone: about 3.5x the Arrow size).
    assert grew_mib < 48, f"peak RSS grew by {grew_mib} MiB loading {arrow_mib} MiB of Arrow from CSV"
