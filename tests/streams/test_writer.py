"""Writer: buffered appends from a background thread, events, errors never lost, flush
at exit (also in a child that never calls close)."""

from __future__ import annotations

import threading
import time

import pandas as pd
import pyarrow as pa
import pytest

import allye_data_connector as adc
from allye_data_connector import _core, errors, streams
from allye_data_connector.streams import WriterClosedError
from tests.helpers import run_python


def test_write_returns_at_once_and_rows_land_within_the_interval(store):
    with adc.Writer("w", secret_dir=store, flush_interval=0.05) as w:
        record = {"a": 1, "b": "x"}
        w.write(record)
        w.write([{"a": 2, "b": "y"}, {"a": 3, "b": "z"}])
        w.write(pd.DataFrame({"a": [4], "b": ["v"]}))
        assert record == {"a": 1, "b": "x"}  # the input is not mutated
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                if adc.get_arrow("w", secret_dir=store).num_rows == 4:
                    break
            except errors.TableNotFoundError:
                pass
            time.sleep(0.01)
        assert adc.get_dataframe("w", secret_dir=store)["a"].tolist() == [1, 2, 3, 4]
    assert w.closed
    with pytest.raises(WriterClosedError):
        w.write({"a": 5, "b": "u"})
    # close published the stream as a v1 version
    assert [t["table_name"] for t in adc.list_tables(secret_dir=store)] == ["w"]


def test_a_record_changed_after_write_is_appended_as_written(store):
    w = adc.Writer("c", secret_dir=store, flush_interval=60)
    rec = {"a": 1}
    w.write(rec)
    rec["a"] = 99
    w.close()
    assert adc.get_dataframe("c", secret_dir=store)["a"].tolist() == [1]


def test_events_send_flush_and_star(store):
    seen: list[tuple[str, object]] = []
    w = adc.Writer("e", secret_dir=store, flush_interval=60)
    w.on("send", lambda t: seen.append(("send", t.num_rows)))
    w.on("flush", lambda line: seen.append(("flush", line["rows"])))
    w.on("*", lambda name, arg: seen.append(("*", name)))
    with pytest.raises(errors.InvalidArgumentError):
        w.on("nope", print)
    for i in range(3):
        w.write({"i": i})
    w.flush()
    assert seen == [("send", 3), ("*", "send"), ("flush", 3), ("*", "flush")]
    w.close()


def test_max_rows_flushes_without_waiting_for_the_interval(store):
    w = adc.Writer("m", secret_dir=store, flush_interval=60, max_rows=10)
    flushed = threading.Event()
    w.on("flush", lambda line: flushed.set())
    for i in range(10):
        w.write({"i": i})
    assert flushed.wait(5)
    assert adc.get_arrow("m", secret_dir=store).num_rows == 10
    w.close()


def test_a_background_error_reaches_handlers_and_the_next_call(store):
    adc.append("err", {"a": 1}, secret_dir=store)
    errors_seen: list[BaseException] = []
    w = adc.Writer("err", secret_dir=store, flush_interval=0.02)
    w.on("error", errors_seen.append)
    w.write({"a": "text"})  # cannot share column a (int64): refused in the background
    deadline = time.monotonic() + 5
    while not errors_seen and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(errors_seen) == 1 and isinstance(errors_seen[0], errors.SchemaConflictError)
    assert errors_seen[0].refused == [{"a": "text"}]
    with pytest.raises(errors.SchemaConflictError, match="'a' has string values for a column of type int64"):
        w.write({"a": 2})  # raised instead: this record is not written
    # raised once: the writer goes on
    w.write({"a": 3})
    w.close()
    assert adc.get_dataframe("err", secret_dir=store)["a"].tolist() == [1, 3]


def test_the_error_is_raised_from_flush_and_close_too(store):
    adc.append("err2", {"a": 1}, secret_dir=store)
    w = adc.Writer("err2", secret_dir=store, flush_interval=60)
    w.write(pa.table({"a": ["x"]}))
    with pytest.raises(errors.SchemaConflictError):
        w.flush()
    w.write(pa.table({"a": ["x"]}))
    with pytest.raises(errors.SchemaConflictError):
        w.close()


def test_bad_arguments(store):
    with pytest.raises(errors.InvalidArgumentError):
        adc.Writer("x", secret_dir=store, flush_interval=0)
    with pytest.raises(errors.InvalidArgumentError):
        adc.Writer("x", secret_dir=store, max_rows=0)
    w = adc.Writer("x", secret_dir=store)
    with pytest.raises(errors.InvalidInputError):
        w.write(42)
    w.close()


def test_a_child_that_writes_and_exits_without_close_loses_nothing(store):
    run_python(f"""
        import allye_data_connector as adc
        w = adc.Writer("exit", secret_dir={str(store)!r}, flush_interval=3600)
        for i in range(1000):
            w.write({{"i": i}})
        # no flush, no close: the interpreter exits
    """)
    assert adc.get_dataframe("exit", secret_dir=store)["i"].tolist() == list(range(1000))
    # and the stream was published for 0.1.2 and the widgets at exit
    assert adc.list_tables(secret_dir=store)[0]["shape"] in ([1000, 1], (1000, 1))


def test_a_multiprocessing_child_flushes_at_exit_too(store):
    # The parent has imported the streams module before forking (the hooks it registered
    # are cleared in a forked child, which must get its own).
    run_python(f"""
        import multiprocessing as mp
        import allye_data_connector as adc
        adc.Writer  # import the module in the parent

        def work(store):
            w = adc.Writer("mp", secret_dir=store, flush_interval=3600)
            for i in range(500):
                w.write({{"i": i}})

        if __name__ == "__main__":
            p = mp.get_context("fork").Process(target=work, args=({str(store)!r},))
            p.start(); p.join()
            assert p.exitcode == 0
    """)
    assert adc.get_dataframe("mp", secret_dir=store)["i"].tolist() == list(range(500))


def test_an_idle_producers_record_is_appended_without_waiting_for_the_interval(store):
    # flush_interval=60: only the producer going idle can have appended it.
    w = adc.Writer("idle", secret_dir=store, flush_interval=60)
    w.write({"i": 1})
    deadline = time.monotonic() + 5
    while not streams.is_stream("idle", secret_dir=store) and time.monotonic() < deadline:
        time.sleep(0.002)
    assert adc.get_arrow("idle", secret_dir=store)["i"].to_pylist() == [1]
    w.close()


def test_a_busy_producer_is_batched(store):
    w = adc.Writer("busy", secret_dir=store, flush_interval=0.5, idle_sec=0.05)
    for i in range(3000):
        w.write({"i": i})
    w.close()
    assert adc.get_arrow("busy", secret_dir=store)["i"].to_pylist() == list(range(3000))
    assert len(_core.stream_chunks("busy", secret_dir=str(store))) < 30


def test_a_log_writer_flushes_on_idle_too(store):
    lw = adc.LogWriter("lw", secret_dir=store, flush_interval=60)
    lw.put(1, 10, b"x")
    deadline = time.monotonic() + 5
    while not streams.is_stream("lw", secret_dir=store) and time.monotonic() < deadline:
        time.sleep(0.002)
    assert adc.get_arrow("lw", secret_dir=store)["payload"].to_pylist() == [b"x"]
    lw.close()
