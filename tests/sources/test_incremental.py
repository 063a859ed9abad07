"""Incremental loads: an append adds chunks to a streaming table, the cursor's last value is
committed on the chunk line with the rows, and the next append reads only newer rows."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pytest

import allye_data_connector as adc
from allye_data_connector import errors
from allye_data_connector import _core
from allye_data_connector.errors import InvalidArgumentError, SourceError
from allye_data_connector.streams import is_stream

from .helpers import manifest_lines, sample


def _ready_state(store: Path) -> dict:
    ready = [ev for ev in manifest_lines(store) if ev["status"] == "ready"][-1]
    return ready["metadata"][_core.METADATA_LOAD]


def _chunk_state(store: Path, table: str) -> dict:
    """The state on the stream's last chunk line."""
    return _core.stream_chunks(table, secret_dir=str(store))[-1][_core.METADATA_LOAD]


def test_append_with_a_cursor_reads_only_new_rows(tmp_path: Path, store: Path) -> None:
    path = tmp_path / "events.csv"
    pacsv.write_csv(sample(1000), path)
    first = adc.load(path, "ev", secret_dir=store, mode="append", params={"cursor": "id"}, progress=False)
    assert first["rows"] == 1000 and first["last_cursor"] == 999 and first["chunks"] == 1
    assert is_stream("ev", secret_dir=store)
    state = _chunk_state(store, "ev")
    assert state == {"source": f"csv:{path}", "mode": "append", "cursor": "id", "rows_loaded": 1000, "last": 999}
    chunk_files = {c["chunk"] for c in _core.stream_chunks("ev", secret_dir=str(store))}

    # The file grows (old rows rewritten, new ones appended): only ids past 999 are added,
    # as a new chunk; the first chunk is never rewritten.
    pacsv.write_csv(pa.concat_tables([sample(1000), sample(250, 1000)]), path)
    second = adc.load(path, "ev", secret_dir=store, mode="append", params={"cursor": "id"}, progress=False)
    assert second["rows_loaded"] == 250 and second["rows"] == 1250
    lines = _core.stream_chunks("ev", secret_dir=str(store))
    assert chunk_files < {c["chunk"] for c in lines} and [c["rows"] for c in lines] == [1000, 250]
    assert adc.get_arrow("ev", secret_dir=store)["id"].to_pylist() == list(range(1250))
    assert _chunk_state(store, "ev")["last"] == 1249
    # 0.1.2 and the widgets read the stream's published v1 version: every row.
    ready = [ev for ev in manifest_lines(store) if ev["status"] == "ready" and ev["table_name"] == "ev"][-1]
    assert ready["payload"]["shape"][0] == 1250 and ready["id"] == second["id"]
    # Nothing new: no chunk, state unchanged.
    third = adc.load(path, "ev", secret_dir=store, mode="append", params={"cursor": "id"}, progress=False)
    assert third["rows_loaded"] == 0 and third["rows"] == 1250 and third["chunks"] == 0
    assert _chunk_state(store, "ev")["last"] == 1249
    # A replace onto a stream is refused (its readers read the chunks), saying what to do.
    with pytest.raises(InvalidArgumentError, match="streaming table.*remove_table"):
        adc.load(path, "ev", secret_dir=store, params={"cursor": "id"}, progress=False)
    assert adc.get_arrow("ev", secret_dir=store).num_rows == 1250
    adc.remove_table("ev", secret_dir=store)
    assert adc.load(path, "ev", secret_dir=store, params={"cursor": "id"}, progress=False)["rows"] == 1250
    assert not is_stream("ev", secret_dir=store)


def test_the_committed_state_not_the_tables_rows_decides(store: Path) -> None:
    class Feed(adc.DataSource):
        cursor = "ts"

        def __init__(self, rows):
            super().__init__({})
            self.rows, self.seen_last = rows, "unset"

        def read(self, n=None):
            if self.rows is None:
                return None
            self.seen_last = self.last_cursor
            out, self.rows = self.rows, None
            return out

    t0 = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
    stamps = [t0 + dt.timedelta(minutes=i) for i in range(5)]
    tbl = pa.table({"ts": pa.array(stamps, pa.timestamp("us", tz="UTC")), "v": list(range(5))})
    src = Feed(tbl)
    adc.load(src, "ts", secret_dir=store, mode="append", progress=False)
    assert src.seen_last is None
    assert isinstance(_chunk_state(store, "ts")["last"], int), "timestamps are kept as their integer"
    src = Feed(pa.concat_tables([tbl, tbl.slice(4).set_column(0, "ts", pa.array([stamps[4] + dt.timedelta(hours=1)],
                                                                                   pa.timestamp("us", tz="UTC")))]))
    out = adc.load(src, "ts", secret_dir=store, mode="append", progress=False)
    assert src.seen_last == stamps[4], "the source is told the last value, as a Python value"
    assert out["rows_loaded"] == 1 and out["rows"] == 6


def test_append_without_a_cursor_adds_all_rows_and_evolves_the_schema(store: Path) -> None:
    class Once(adc.DataSource):
        def __init__(self, table):
            super().__init__({})
            self.table = table

        def read(self, n=None):
            t, self.table = self.table, None
            return t

    adc.load(Once(sample(3)), "a", secret_dir=store, mode="append", progress=False)
    adc.load(Once(sample(2, 3)), "a", secret_dir=store, mode="append", progress=False)
    assert adc.get_arrow("a", secret_dir=store)["id"].to_pylist() == [0, 1, 2, 3, 4]
    # Another column: added (earlier rows read null), never dropped; a value a column
    # cannot take: that row alone refused, named in a typed error that carries it.
    adc.load(Once(pa.table({"zzz": [1]})), "a", secret_dir=store, mode="append", progress=False)
    got = adc.get_arrow("a", secret_dir=store)
    assert got["zzz"].to_pylist() == [None] * 5 + [1] and got["id"].to_pylist() == [0, 1, 2, 3, 4, None]
    with pytest.raises(errors.SchemaConflictError, match="'id' has string values") as refused:
        adc.load(Once(pa.table({"id": ["seven", None], "x": [7.0, 8.0]})), "a", secret_dir=store, mode="append",
                 progress=False)
    assert refused.value.refused == [{"id": "seven", "x": 7.0}]
    assert adc.get_arrow("a", secret_dir=store)["x"].to_pylist()[-1] == 8.0

    class Cursor(Once):
        cursor = "missing"

    with pytest.raises(SourceError, match="no column 'missing'"):
        adc.load(Cursor(sample(1)), "a", secret_dir=store, mode="append", progress=False)
    assert adc.get_arrow("a", secret_dir=store).num_rows == 7
