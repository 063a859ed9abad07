"""A stream's schema evolves instead of losing data: new fields added, missing ones null,
numbers widened, a value a column cannot take refused alone (typed, carrying it), for
``append``, ``Writer``, the panoply SDK, ``load(mode="append")``; sends onto a stream
refused; listings agree with the get."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest

import allye_data_connector as adc
from allye_data_connector import _core, errors, streams
from allye_data_connector.compat.panoply import SDK
from tests.helpers import run_python


def _chunk_files(store: Path, table: str) -> list[Path]:
    d = Path(store) / "streams" / hashlib.sha256(table.encode()).hexdigest()[:32]
    return [d / c["chunk"] for c in _core.stream_chunks(table, secret_dir=str(store))]


def test_a_number_that_does_not_fit_widens_the_column_instead_of_being_truncated(store):
    adc.append("g", {"a": 1, "b": "x"}, secret_dir=store)
    adc.append("g", {"a": 6.5, "b": "v"}, secret_dir=store)
    adc.append("g", {"a": 6.9}, secret_dir=store)
    adc.append("g", [{"a": 2.5, "b": "w"}], secret_dir=store)
    df = adc.get_dataframe("g", secret_dir=store)
    assert df["a"].tolist() == [1.0, 6.5, 6.9, 2.5]
    assert [None if pd.isna(v) else v for v in df["b"]] == ["x", "v", None, "w"]
    # Earlier chunks are read as the widened type, never rewritten.
    with pa.ipc.open_file(_chunk_files(store, "g")[0]) as f:
        assert f.schema.field("a").type == pa.int64()
    # The same values as a DataFrame, and int32 -> int64.
    adc.append("h", pd.DataFrame({"a": [1, 2]}), secret_dir=store)
    adc.append("h", pd.DataFrame({"a": [6.5]}), secret_dir=store)
    assert adc.get_dataframe("h", secret_dir=store)["a"].tolist() == [1.0, 2.0, 6.5]
    adc.append("w", pa.table({"n": pa.array([1], pa.int32())}), secret_dir=store)
    adc.append("w", pa.table({"n": pa.array([2**40], pa.int64())}), secret_dir=store)
    got = adc.get_arrow("w", secret_dir=store)
    assert got.schema.field("n").type == pa.int64() and got["n"].to_pylist() == [1, 2**40]


def test_a_new_field_adds_a_nullable_column_and_a_dropped_one_reads_null(store):
    adc.append("n", pd.DataFrame({"a": [1, 2], "b": ["x", "y"]}), secret_dir=store)
    adc.append("n", pd.DataFrame({"a": [3], "c": [0.5]}), secret_dir=store)
    adc.append("n", pa.table({"c": [1.5]}), secret_dir=store)
    t = adc.get_arrow("n", secret_dir=store)
    assert t.column_names == ["a", "b", "c"]
    assert t["a"].to_pylist() == [1, 2, 3, None]
    assert t["b"].to_pylist() == ["x", "y", None, None]
    assert t["c"].to_pylist() == [None, None, 0.5, 1.5]
    df = adc.get_dataframe("n", secret_dir=store)
    assert list(df.columns) == ["a", "b", "c"] and len(df) == 4


def test_records_keep_every_field_not_only_the_first_records(store):
    line = adc.append("r", [{"id": 1, "name": "a"}, {"id": 2, "name": "bob", "email": "b@x"}], secret_dir=store)
    assert line is not None and line["rows"] == 2
    t = adc.get_arrow("r", secret_dir=store)
    assert t["email"].to_pylist() == [None, "b@x"]


def test_a_value_that_cannot_be_unified_is_refused_alone_with_a_typed_error(store):
    adc.append("c", {"a": 1, "s": "x"}, secret_dir=store)
    with pytest.raises(errors.SchemaConflictError) as caught:
        adc.append("c", [{"a": 2, "s": "y"}, {"a": "bad", "s": "z"}, {"a": 4, "s": "w"}], secret_dir=store)
    e = caught.value
    assert isinstance(e, errors.InvalidArgumentError) and isinstance(e, ValueError)
    assert e.table == "c"
    assert e.conflicts == [{"field": "a", "value_type": "string", "column_type": "int64", "part": 0}]
    assert e.refused == [{"a": "bad", "s": "z"}]
    assert e.stored is not None and e.stored["rows"] == 2
    for word in ("'c'", "'a'", "string", "int64"):
        assert word in str(e)
    assert adc.get_arrow("c", secret_dir=store)["a"].to_pylist() == [1, 2, 4]
    # A frame's whole column of the wrong kind: its rows refused, the rows without a value there kept.
    df = pd.DataFrame({"a": ["p", None], "s": ["q", "r"]})
    with pytest.raises(errors.SchemaConflictError) as caught:
        adc.append("c", df, secret_dir=store)
    assert isinstance(caught.value.refused, pa.Table) and caught.value.refused["a"].to_pylist() == ["p"]
    assert adc.get_arrow("c", secret_dir=store)["s"].to_pylist() == ["x", "y", "w", "r"]


def test_a_writer_buffer_stores_the_good_records_and_its_error_event_carries_the_bad_one(store):
    seen: list[BaseException] = []
    w = adc.Writer("wb", secret_dir=store, flush_interval=60, idle_sec=60)
    w.on("error", seen.append)
    for rec in ({"a": 10}, {"a": "bad"}, {"a": 12}):
        w.write(rec)
    with pytest.raises(errors.SchemaConflictError, match="'a' has string values for a column of type int64") as c:
        w.flush()
    assert c.value.refused == [{"a": "bad"}] and seen == [c.value]
    assert adc.get_arrow("wb", secret_dir=store)["a"].to_pylist() == [10, 12]
    w.close()


def test_the_panoply_sdk_keeps_a_new_field_and_the_records_flushed_with_it(store):
    conn = SDK("k", "s", secret_dir=str(store))
    conn.write("users", {"id": 1, "name": "a"})
    conn.flush()
    conn.write("users", {"id": 2, "name": "bob", "email": "b@x"})
    conn.write("users", {"id": 3, "name": "c"})
    conn.flush()
    t = adc.get_arrow("users", secret_dir=store)
    assert t["id"].to_pylist() == [1, 2, 3] and t["email"].to_pylist() == [None, "b@x", None]
    # Written together, the new field of the second record is not dropped.
    conn.write("u2", {"id": 1, "name": "a"})
    conn.write("u2", {"id": 2, "name": "bob", "email": "b@x"})
    conn.flush()
    assert adc.get_arrow("u2", secret_dir=store)["email"].to_pylist() == [None, "b@x"]
    conn.close()


def test_adc_load_append_with_one_more_column_adds_it(tmp_path, store):
    adc_bin = shutil.which("adc", path=str(Path(sys.executable).parent)) or "adc"
    first, new = tmp_path / "first.csv", tmp_path / "new.csv"
    pacsv.write_csv(pa.table({"id": [1, 2], "v": [0.5, 1.5]}), first)
    pacsv.write_csv(pa.table({"id": [3], "v": [2.5], "extra": ["e"]}), new)
    for path in (first, new):
        proc = subprocess.run([adc_bin, "--secret-dir", str(store), "load", str(path), "--table", "ap", "--append"],
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
    t = adc.get_arrow("ap", secret_dir=store)
    assert t["extra"].to_pylist() == [None, None, "e"] and t["id"].to_pylist() == [1, 2, 3]


def test_a_send_onto_a_stream_is_refused_and_listings_agree_with_the_get(store):
    adc.append("s", pd.DataFrame({"a": [1, 2]}), secret_dir=store)
    with pytest.raises(errors.InvalidArgumentError, match="streaming table") as refused:
        adc.send_dataframe(pd.DataFrame({"z": [9, 9, 9, 9]}), "s", secret_dir=store)
    assert 'remove_table("s")' in str(refused.value)
    adc.append("s", {"a": 3, "c": "x"}, secret_dir=store, publish=False)
    df = adc.get_dataframe("s", secret_dir=store)
    assert df.shape == (3, 2)
    [listed] = adc.list_tables(secret_dir=store)
    assert tuple(listed["shape"]) == df.shape and listed["transport"] == "stream"
    described = adc.describe_table("s", secret_dir=store)
    assert tuple(described["shape"]) == df.shape
    assert [f["name"] for f in described["schema"]] == ["a", "c"]
    proc = subprocess.run([sys.executable, "-m", "allye_data_connector", "--secret-dir", str(store), "--json", "ls"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    [row] = json.loads(proc.stdout)
    assert tuple(row["shape"]) == df.shape
    # After remove_table the name is free for a plain table.
    adc.remove_table("s", secret_dir=store)
    adc.send_dataframe(pd.DataFrame({"z": [9]}), "s", secret_dir=store)
    assert adc.get_dataframe("s", secret_dir=store)["z"].tolist() == [9]


def test_appending_to_a_sent_table_keeps_its_rows(store):
    adc.send_dataframe(pd.DataFrame({"a": [1, 2]}), "t", secret_dir=store)
    adc.append("t", {"a": 3}, secret_dir=store)
    assert adc.get_dataframe("t", secret_dir=store)["a"].tolist() == [1, 2, 3]


PEER_SEND = """
import pandas as pd, allye_data_connector as adc, importlib.metadata as m
assert m.version("allye_data_connector") == "0.1.2"
adc.send_dataframe(pd.DataFrame({{"z": [9]}}), "p", secret_dir={store!r})
"""


def test_an_append_onto_a_stream_whose_name_a_plain_table_was_sent_to_after_is_refused(store, peer_python):
    adc.append("p", {"a": 1}, secret_dir=store)
    streams.publish("p", secret_dir=store)
    run_python(PEER_SEND.format(store=str(store)), python=peer_python)  # 0.1.2 knows nothing of streams
    with pytest.raises(errors.InvalidArgumentError, match="plain table was sent") as refused:
        adc.append("p", {"a": 2}, secret_dir=store)
    assert 'remove_table("p")' in str(refused.value)
    assert adc.get_arrow("p", secret_dir=store)["a"].to_pylist() == [1]


PEER_READ = """
import json, allye_data_connector as adc
df = adc.get_dataframe("u", secret_dir={store!r})
print(json.dumps({{"columns": list(df.columns), "a": df["a"].tolist()}}))
"""


def test_the_v1_publication_has_the_unified_schema(store, peer_python):
    adc.append("u", {"a": 1}, secret_dir=store)
    adc.append("u", {"a": 2.5, "b": "x"}, secret_dir=store)
    streams.publish("u", secret_dir=store)
    got = json.loads(run_python(PEER_READ.format(store=str(store)), python=peer_python))
    assert got == {"columns": ["a", "b"], "a": [1.0, 2.5]}


def test_the_schema_history_is_in_the_log_and_survives_compaction_and_consolidation(store, monkeypatch):
    # No background consolidation: this test merges the chunks itself, once it has read the log.
    from allye_data_connector.streams import _background

    monkeypatch.setattr(_background.PUBLISHER, "_consolidate", lambda *args: None)
    adc.append("hx", pa.table({"a": pa.array([1], pa.int32())}), secret_dir=store)
    for i in range(40):
        adc.append("hx", {"a": i, "k": f"k{i}"} if i % 2 else {"a": i + 0.5}, secret_dir=store)
    lines = _core.stream_chunks("hx", secret_dir=str(store))
    assert "schema" in lines[0] and sum("schema" in ln for ln in lines) == 3  # first, +k... and a widened
    before = adc.get_arrow("hx", secret_dir=store)
    assert _core.stream_consolidate("hx", secret_dir=str(store), max_merges=100)["merges"] >= 2
    assert adc.get_arrow("hx", secret_dir=store).equals(before)
    adc.compact_stream("hx", secret_dir=store, compression=None)
    after = adc.get_arrow("hx", secret_dir=store)
    assert after.equals(before) and after.schema.field("a").type == pa.float64()
    with pytest.raises(errors.SchemaConflictError):
        adc.append("hx", {"k": 5}, secret_dir=store)


def test_an_empty_stream_schema_is_none_and_bad_records_are_typed_errors(store):
    assert _core.stream_schema("none", secret_dir=str(store)) is None
    with pytest.raises(errors.InvalidInputError):
        adc.append("e", [{"a": 1}, 5], secret_dir=store)
    big = {"a": 2**70}  # no Arrow integer holds it
    with pytest.raises(errors.SchemaConflictError) as caught:
        adc.append("e", [{"a": 1}, big], secret_dir=store)
    assert caught.value.refused == [big]
    assert adc.get_arrow("e", secret_dir=store)["a"].to_pylist() == [1]
    adc.append("e", {"a": np.int64(5)}, secret_dir=store)
    assert adc.get_arrow("e", secret_dir=store)["a"].to_pylist() == [1, 5]
