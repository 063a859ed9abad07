"""``load(..., mode="append")``: the rows become chunks of a streaming table as they arrive,
each chunk line carrying the load's state, so a load killed (kill -9), cancelled or failed
after chunk k resumes after chunk k's rows: nothing skipped, nothing twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest

import allye_data_connector as adc
from allye_data_connector import _core
from allye_data_connector.errors import CancelledError, InvalidArgumentError, SourceError
from allye_data_connector.streams import is_stream

from .conftest import Postgres
from .helpers import manifest_lines, numbered_ids, numbered_source, sample

ROOT = Path(__file__).resolve().parents[2]
KEY = _core.METADATA_LOAD


def _lines(store: Path, table: str) -> list[dict]:
    return list(_core.stream_chunks(table, secret_dir=str(store)))


def _states(store: Path, table: str) -> list[dict]:
    return [ln.get(KEY) for ln in _lines(store, table)]


def _ids(store: Path, table: str) -> list[int]:
    return adc.get_arrow(table, secret_dir=store)["id"].to_pylist()


def _stream_files(store: Path, table: str) -> list[str]:
    d = Path(_core.resolve_store(str(store))) / "streams"
    return sorted(p.name for sd in d.iterdir() for p in sd.iterdir()) if d.exists() else []


def test_each_group_becomes_a_chunk_carrying_the_loads_state(store: Path) -> None:
    out = adc.load(numbered_source(count=5, rows=100), "t", secret_dir=store, mode="append", chunk_bytes=1,
                   progress=False)
    assert (out["rows"], out["rows_loaded"], out["chunks"], out["last_cursor"]) == (500, 500, 5, 499)
    assert is_stream("t", secret_dir=store)
    assert [ln["rows"] for ln in _lines(store, "t")] == [100] * 5
    base = {"source": "Numbered", "mode": "append", "cursor": "id"}
    # Every chunk but the last: where the load started (no value yet) and the rows it has
    # appended past it; the last: the largest value, the load complete.
    assert _states(store, "t") == [
        {**base, "rows_loaded": 100 * k, "last": None, "skip": 100 * k} for k in range(1, 5)
    ] + [{**base, "rows_loaded": 500, "last": 499}]
    assert _ids(store, "t") == list(range(500))
    # 0.1.2 and the widgets read the stream's published v1 version: every row.
    ready = [ev for ev in manifest_lines(store) if ev["status"] == "ready"][-1]
    assert ready["id"] == out["id"] and ready["payload"]["shape"][0] == 500
    _, data = _core.get_live("t", secret_dir=str(store), record_read=False)
    assert pa.table(data)["id"].to_pylist() == list(range(500))
    assert adc.get_dataframe("t", secret_dir=store)["v"].sum() == 2 * sum(range(500))
    # The next append reads past 499 only; earlier chunks are never rewritten.
    before = [ln["chunk"] for ln in _lines(store, "t")]
    out = adc.load(numbered_source(count=7, rows=100), "t", secret_dir=store, mode="append", progress=False)
    assert (out["rows"], out["rows_loaded"], out["last_cursor"]) == (700, 200, 699)
    assert [ln["chunk"] for ln in _lines(store, "t")][:5] == before
    assert _ids(store, "t") == list(range(700))
    # publish=False leaves the v1 version behind; the next append publishes even when it
    # finds nothing new (as after a killed run, whose chunks were never published).
    adc.load(numbered_source(count=9, rows=100), "t", secret_dir=store, mode="append", publish=False,
             progress=False)
    assert _core.latest("t", secret_dir=str(store))["payload"]["shape"][0] == 700
    out = adc.load(numbered_source(count=9, rows=100), "t", secret_dir=store, mode="append", progress=False)
    assert out["rows_loaded"] == 0 and out["id"] is not None
    assert _core.latest("t", secret_dir=str(store))["payload"]["shape"][0] == 900
    again = adc.load(numbered_source(count=9, rows=100), "t", secret_dir=store, mode="append", progress=False)
    assert again["id"] is None, "up to date: no publication"


def test_batches_are_grouped_into_chunks_of_about_chunk_bytes(store: Path) -> None:
    # 50 small batches arriving at once: a few chunks, not one file per batch.
    out = adc.load(numbered_source(count=50, rows=1000), "g", secret_dir=store, mode="append", progress=False)
    assert out["rows"] == 50_000 and 1 <= out["chunks"] < 50
    assert _ids(store, "g") == list(range(50_000))
    with pytest.raises(InvalidArgumentError, match="chunk_bytes"):
        adc.load(numbered_source(), "g", secret_dir=store, mode="append", chunk_bytes=0, progress=False)
    with pytest.raises(InvalidArgumentError, match="mode='replace'"):
        adc.load(numbered_source(), "g", secret_dir=store, mode="append", metadata={"a": 1}, progress=False)


KILLED_CHILD = """
import sys
import allye_data_connector as adc
from tests.sources.helpers import numbered_source

cursor = None if sys.argv[3] == "-" else sys.argv[3]
seed = None if sys.argv[4] == "-" else int(sys.argv[4])
src = numbered_source(count=8, rows=100, cursor=cursor, shuffle_seed=seed, block_at=5, marker=sys.argv[2])
adc.load(src, "k", secret_dir=sys.argv[1], mode="append", chunk_bytes=1, progress=False)
"""


def _kill_when(marker: Path, proc: subprocess.Popen, what: str) -> None:
    deadline = time.monotonic() + 120
    while not marker.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, f"the child never reached {what}"
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait(30) == -signal.SIGKILL


@pytest.mark.parametrize("cursor,seed", [("id", None), ("id", 7), (None, None)],
                         ids=["cursor-in-order", "cursor-out-of-order", "no-cursor"])
def test_a_load_killed_between_chunks_resumes_without_skipping_or_duplicating(
        store: Path, tmp_path: Path, cursor: str | None, seed: int | None) -> None:
    # A first load, complete: ids -200..-1.
    adc.load(numbered_source(count=2, rows=100, start=-200, cursor=cursor), "k", secret_dir=store, mode="append",
             chunk_bytes=1, progress=False)
    # The child reads 4 batches (ids 0..799 in the source's order), appends 3 of them as
    # chunks (a group is appended when the next batch arrives) and blocks in its 5th read:
    # SIGKILL there.
    marker = tmp_path / "blocked"
    proc = subprocess.Popen([sys.executable, "-c", KILLED_CHILD, str(store), str(marker), cursor or "-",
                             "-" if seed is None else str(seed)], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    _kill_when(marker, proc, "its 5th read")
    order = numbered_ids(8, 100, 0, seed)
    assert [ln["rows"] for ln in _lines(store, "k")] == [100, 100, 100, 100, 100], "2 + the 3 committed"
    assert _ids(store, "k") == list(range(-200, 0)) + order[:300].tolist(), "whole chunks only"
    state = _states(store, "k")[-1]
    assert state["skip"] == 300 and state["rows_loaded"] == 300
    if cursor:
        assert state["last"] == -1, "the killed load's start: its rows are not in cursor order (in general)"
    # Run again: the 300 rows the killed run appended are dropped, the rest appended once.
    src = numbered_source(count=8, rows=100, cursor=cursor, shuffle_seed=seed)
    out = adc.load(src, "k", secret_dir=store, mode="append", chunk_bytes=1, progress=False)
    if cursor:
        assert src.last_cursor == -1
        assert out["last_cursor"] == 799
        assert _states(store, "k")[-1] == {"source": "Numbered", "mode": "append", "cursor": "id",
                                           "rows_loaded": 500, "last": 799}
    else:
        assert "skip" not in _states(store, "k")[-1], "complete"
    assert out["rows_loaded"] == 500 and out["rows"] == 1000
    ids = _ids(store, "k")
    assert ids == list(range(-200, 0)) + order.tolist()
    # No leftover of the killed child (it was killed inside read, between chunks).
    assert not [f for f in _stream_files(store, "k") if ".tmp" in f]


def test_a_source_failing_or_cancelled_mid_append_keeps_whole_chunks_and_resumes(store: Path) -> None:
    with pytest.raises(SourceError, match="300 rows appended before stay.*API went away"):
        adc.load(numbered_source(count=8, rows=100, fail_at=5), "f", secret_dir=store, mode="append",
                 chunk_bytes=1, progress=False)
    assert [ln["rows"] for ln in _lines(store, "f")] == [100, 100, 100]
    assert not [f for f in _stream_files(store, "f") if ".tmp" in f], "the partial group leaves nothing"
    calls = {"n": 0}

    def cancel() -> bool:  # checked before each read: the 6th read never happens
        calls["n"] += 1
        return calls["n"] > 5

    # The run resumes past the 300 rows the failed one appended (reads 1-3 dropped), appends
    # read 4 when read 5 arrives, and is cancelled before read 6: read 5 is dropped.
    with pytest.raises(CancelledError, match="100 rows appended before stay"):
        adc.load(numbered_source(count=8, rows=100), "f", secret_dir=store, mode="append", chunk_bytes=1,
                 cancel=cancel, progress=False)
    assert _states(store, "f")[-1]["skip"] == 400
    out = adc.load(numbered_source(count=8, rows=100), "f", secret_dir=store, mode="append", chunk_bytes=1,
                   progress=False)
    assert out["rows_loaded"] == 400 and _ids(store, "f") == list(range(800))
    # Cancelled before anything was appended: says so, the stream unchanged.
    with pytest.raises(CancelledError, match="nothing was appended"):
        adc.load(numbered_source(count=9, rows=100), "f", secret_dir=store, mode="append", cancel=lambda: True,
                 progress=False)
    assert _ids(store, "f") == list(range(800))


def test_a_csv_out_of_cursor_order_cancelled_midway_resumes_exactly(tmp_path: Path, store: Path) -> None:
    # About 4.5 MB of text in 1 MiB slices: several batches; ids shuffled.
    ids = np.random.default_rng(3).permutation(150_000)
    path = tmp_path / "shuffled.csv"
    pacsv.write_csv(pa.table({"id": ids, "name": [f"name-{i:08d}" for i in ids]}), path)
    calls = {"n": 0}

    def cancel() -> bool:
        calls["n"] += 1
        return calls["n"] > 3

    with pytest.raises(CancelledError, match="rows appended before stay"):
        adc.load(path, "csv", secret_dir=store, mode="append", params={"cursor": "id", "slice_bytes": 1 << 20}, chunk_bytes=1,
                 cancel=cancel, progress=False)
    partial = _ids(store, "csv")
    assert 0 < len(partial) < 150_000 and partial == ids[:len(partial)].tolist()
    out = adc.load(path, "csv", secret_dir=store, mode="append", params={"cursor": "id", "slice_bytes": 1 << 20}, chunk_bytes=1,
                   progress=False)
    assert out["rows"] == 150_000 and out["last_cursor"] == 149_999
    assert _ids(store, "csv") == ids.tolist()
    # Complete: the next append reads past the largest id only.
    assert adc.load(path, "csv", secret_dir=store, mode="append", params={"cursor": "id", "slice_bytes": 1 << 20},
                    progress=False)["rows_loaded"] == 0


def test_a_chunk_never_ends_inside_a_run_of_equal_cursor_values(store: Path) -> None:
    # ids 0,0,...(250 times),1,1,...: runs that span the 100-row batches.
    out = adc.load(numbered_source(count=10, rows=100, run=250), "ties", secret_dir=store, mode="append",
                   chunk_bytes=1, progress=False)
    assert out["rows"] == 1000
    chunks = [pa.table(t)["id"].to_pylist() for t in _chunk_tables(store, "ties")]
    assert len(chunks) > 1
    for a, b in zip(chunks, chunks[1:]):
        assert a[-1] < b[0], "a run of equal values is never split between chunks"
    assert sum(chunks, []) == numbered_ids(10, 100, 0, None, 250).tolist()


def _chunk_tables(store: Path, table: str) -> list[pa.Table]:
    info, data = _core.stream_read(table, secret_dir=str(store))
    whole = pa.table(data)
    out, at = [], 0
    for ln in _lines(store, table):
        out.append(whole.slice(at, ln["rows"]))
        at += ln["rows"]
    return out


def test_append_onto_a_plain_table_makes_it_a_stream_that_keeps_its_state(tmp_path: Path, store: Path) -> None:
    path = tmp_path / "events.csv"
    pacsv.write_csv(sample(100), path)
    first = adc.load(path, "ev", secret_dir=store, params={"cursor": "id"}, progress=False)  # replace
    ready = [ev for ev in manifest_lines(store) if ev["status"] == "ready"][-1]
    assert not is_stream("ev", secret_dir=store) and ready["metadata"][KEY]["last"] == 99
    writing = [ev for ev in manifest_lines(store) if ev["status"] == "writing"][-1]
    assert "last" not in writing["metadata"][KEY], "a replace's state only on the line that publishes its rows"
    pacsv.write_csv(sample(150), path)
    out = adc.load(path, "ev", secret_dir=store, mode="append", params={"cursor": "id"}, progress=False)
    # The current version is the first chunk, with the state its ready line had; the
    # append resumed after it.
    assert is_stream("ev", secret_dir=store) and out["rows_loaded"] == 50 and out["rows"] == 150
    lines = _lines(store, "ev")
    assert [ln["rows"] for ln in lines] == [100, 50]
    assert lines[0][KEY] == ready["metadata"][KEY]
    assert _ids(store, "ev") == list(range(150)) and first["id"] != out["id"]
    _, data = _core.get_live("ev", secret_dir=str(store), record_read=False)
    assert pa.table(data)["id"].to_pylist() == list(range(150)), "0.1.2 reads the published version"
    # And back: a replace onto the stream is refused with what to do; nothing changes.
    with pytest.raises(InvalidArgumentError, match="remove_table"):
        adc.load(path, "ev", secret_dir=store, progress=False)
    assert _ids(store, "ev") == list(range(150))


def test_a_compaction_carries_the_state_forward(store: Path) -> None:
    adc.load(numbered_source(count=4, rows=100, shuffle_seed=1), "c", secret_dir=store, mode="append",
             chunk_bytes=1, progress=False)
    assert len(_lines(store, "c")) == 4
    adc.compact_stream("c", secret_dir=store)
    lines = _lines(store, "c")
    assert len(lines) == 1 and lines[0][KEY]["last"] == 399 and "skip" not in lines[0][KEY]
    out = adc.load(numbered_source(count=6, rows=100, shuffle_seed=1), "c", secret_dir=store, mode="append",
                   progress=False)
    # A different permutation of 0..599: only the ids past 399 are new.
    assert out["rows_loaded"] == 200 and sorted(_ids(store, "c")) == list(range(600))


def test_rows_appended_without_this_sources_state_resume_after_the_largest_value(store: Path) -> None:
    adc.append("m", pa.table({"id": pa.array([0, 5, 3], pa.int64()), "v": pa.array([0, 10, 6], pa.int64())}),
               secret_dir=store, publish=False)
    src = numbered_source(count=1, rows=10)
    out = adc.load(src, "m", secret_dir=store, mode="append", progress=False)
    assert src.last_cursor == 5 and out["rows_loaded"] == 4 and _ids(store, "m") == [0, 5, 3, 6, 7, 8, 9]


SQL_CHILD = """
import sys
from pathlib import Path
import time
import allye_data_connector as adc
from allye_data_connector.sources import SqlSource

class Paged(SqlSource):
    # The driver's batches, handed out n rows at a time; blocks in its 6th read.
    reads = 0
    pending = None
    def read(self, n=None):
        self.reads += 1
        if self.reads == 6:
            Path(sys.argv[3]).touch()
            time.sleep(600)
        if self.pending is None or self.pending.num_rows == 0:
            self.pending = super().read(n)
            if self.pending is None:
                return None
        out, self.pending = self.pending.slice(0, n), self.pending.slice(n)
        return out

src = Paged({"uri": sys.argv[2], "table": "inc_kill", "cursor": "id"})
adc.load(src, "pgk", secret_dir=sys.argv[1], mode="append", batch_rows=100, chunk_bytes=1, progress=False)
"""


@pytest.mark.parametrize("ties", [False, True], ids=["unique-ids", "runs-of-7-equal-values"])
def test_a_sql_append_killed_between_chunks_resumes_past_its_last_chunk(postgres: Postgres, store: Path,
                                                                       tmp_path: Path, ties: bool) -> None:
    # With ties, id = g / 7: runs of 7 equal cursor values that the 100-row reads split.
    div = 7 if ties else 1
    postgres.sql("DROP TABLE IF EXISTS inc_kill")
    postgres.sql(f"CREATE TABLE inc_kill AS SELECT g / {div} AS id, g AS v FROM generate_series(1, 100) AS g")
    params = {"table": "inc_kill", "cursor": "id"}
    assert adc.load(postgres.uri, "pgk", secret_dir=store, mode="append", params=params, progress=False)["rows"] == 100
    if ties:
        # Rows inserted later with a cursor value already loaded are never read (WHERE id >
        # last): start over so that the new rows begin at a fresh value (98 // 7 = 14).
        postgres.sql("DELETE FROM inc_kill WHERE v > 97")
        adc.remove_table("pgk", secret_dir=store)
        assert adc.load(postgres.uri, "pgk", secret_dir=store, mode="append", params=params,
                        progress=False)["rows"] == 97
    start = int(adc.get_arrow("pgk", secret_dir=store)["v"].to_numpy().max()) + 1
    # New rows inserted in an order unlike the ids': the load orders the query by the cursor.
    postgres.sql(f"INSERT INTO inc_kill SELECT g / {div}, g FROM generate_series(1000, {start}, -1) AS g")
    marker = tmp_path / "blocked"
    proc = subprocess.Popen([sys.executable, "-c", SQL_CHILD, str(store), postgres.uri, str(marker)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _kill_when(marker, proc, "its 6th read")
    # 5 reads of 100 rows: 4 groups appended, the 5th lost with the process (with ties,
    # a group's last run moved to the next group: a little less).
    lines = _lines(store, "pgk")
    kept = sum(ln["rows"] for ln in lines[1:])
    assert len(lines) == 5 and (kept == 400 if not ties else 400 - 7 < kept <= 400), lines
    state = _states(store, "pgk")[-1]
    got = adc.get_arrow("pgk", secret_dir=store)
    assert state["last"] == max(got["id"].to_pylist()) and "skip" not in state, "resume past the last chunk"
    assert got.num_rows == pa.compute.sum(pa.compute.less_equal(
        pa.array(np.arange(1, 1001) // div), state["last"])).as_py(), "every row up to it, each once"
    from allye_data_connector.sources import SqlSource

    logged: list[tuple] = []
    src = SqlSource({"uri": postgres.uri, **params}, {"logger": logged.append})
    out = adc.load(src, "pgk", secret_dir=store, mode="append", progress=False)
    assert src.last_cursor == state["last"] and any(f"WHERE id > {state['last']} " in " ".join(m) for m in logged), logged
    assert out["rows"] == 1000 and out["last_cursor"] == 1000 // div
    got = adc.get_arrow("pgk", secret_dir=store)
    assert sorted(got["v"].to_pylist()) == list(range(1, 1001)), "no row skipped or twice"
    assert all(i == v // div for i, v in zip(got["id"].to_pylist(), got["v"].to_pylist()))


def test_a_second_appending_load_waits_for_the_first(store: Path, tmp_path: Path) -> None:
    import threading

    marker = tmp_path / "blocked"
    proc = subprocess.Popen([sys.executable, "-c", KILLED_CHILD, str(store), str(marker), "id", "-"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not marker.exists():
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.02)
    # The child holds the stream's load lock (blocked in its 5th read, 3 chunks appended).
    results: list[dict] = []
    waiter = threading.Thread(target=lambda: results.append(adc.load(
        numbered_source(count=8, rows=100), "k", secret_dir=store, mode="append", progress=False)))
    waiter.start()
    waiter.join(1.0)
    assert waiter.is_alive() and len(_lines(store, "k")) == 3, "waits instead of reading the same state"
    with pytest.raises(CancelledError, match="waiting for another load"):
        adc.load(numbered_source(count=8, rows=100), "k", secret_dir=store, mode="append", cancel=lambda: True,
                 progress=False)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(30)
    waiter.join(60)
    assert not waiter.is_alive() and results[0]["rows_loaded"] == 500
    assert _ids(store, "k") == list(range(800))


RESUMED_CHILD = """
import sys
from pathlib import Path
import time
import allye_data_connector as adc
from allye_data_connector.sources import SqlSource

class Blocking(SqlSource):
    # The driver's own batches; blocks in its 4th read (3 batches read, 2 appended).
    reads = 0
    def read(self, n=None):
        self.reads += 1
        if self.reads == 4:
            Path(sys.argv[3]).touch()
            time.sleep(600)
        return super().read(n)

src = Blocking({"uri": sys.argv[2], "table": "resume_big", "cursor": "id"})
adc.load(src, "rb", secret_dir=sys.argv[1], mode="append", chunk_bytes=1, progress=False)
"""


def test_a_resumed_sql_append_streams_in_chunks_and_a_kill_keeps_them(postgres: Postgres, store: Path,
                                                                       tmp_path: Path) -> None:
    """The resume bound is in the SQL as a literal: ADBC's PostgreSQL driver returns a
    query with a bound parameter as one batch after its last row (no streaming, and a
    kill loses everything), a query without one batch by batch."""
    from allye_data_connector.sources import SqlSource

    rows = 1_500_000
    postgres.sql("DROP TABLE IF EXISTS resume_big")
    postgres.sql("CREATE TABLE resume_big AS SELECT g AS id, g * 0.5 AS x, 'name ' || g || repeat('x', 24) AS s "
                 "FROM generate_series(1, 1000) AS g")
    params = {"table": "resume_big", "cursor": "id"}
    adc.load(postgres.uri, "rb", secret_dir=store, mode="append", params=params, progress=False)
    postgres.sql(f"INSERT INTO resume_big SELECT g, g * 0.5, 'name ' || g || repeat('x', 24) "
                 f"FROM generate_series(1001, {rows}) AS g")

    class Counting(SqlSource):
        batches = 0

        def read(self, n=None):  # type: ignore[no-untyped-def]
            b = super().read(n)
            self.batches += b is not None
            return b

    # A first load of the same rows, for comparison: the driver's batches.
    first = Counting({"uri": postgres.uri, **params})
    adc.load(first, "fresh", secret_dir=store, mode="append", chunk_bytes=1, progress=False)
    assert first.batches >= 4, "the driver streams a first load in batches"
    # Killed while resuming: the chunks appended before the kill stay, with their state.
    marker = tmp_path / "blocked"
    proc = subprocess.Popen([sys.executable, "-c", RESUMED_CHILD, str(store), postgres.uri, str(marker)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _kill_when(marker, proc, "its 4th read")
    lines = _lines(store, "rb")
    assert len(lines) == 1 + 2, f"the first load's chunk and two of the resumed load's: {lines}"
    state = _states(store, "rb")[-1]
    got = adc.get_arrow("rb", secret_dir=store)["id"].to_numpy()
    assert got.max() == state["last"] > 1000 and len(got) == state["last"], "every row up to it, once"
    # Run again: it resumes past them, streaming too.
    again = Counting({"uri": postgres.uri, **params})
    out = adc.load(again, "rb", secret_dir=store, mode="append", chunk_bytes=1, progress=False)
    assert again.batches >= 2 and out["chunks"] == again.batches, "batch by batch, not one batch at the end"
    assert out["rows"] == rows and out["last_cursor"] == rows
    ids = adc.get_arrow("rb", secret_dir=store)["id"].to_numpy()
    assert len(ids) == rows and (np.sort(ids) == np.arange(1, rows + 1)).all()
