"""The migration shims against the seed READMEs' examples: ataraxis' DataLogger and
LogPackage, panoply's SDK."""

from __future__ import annotations

import multiprocessing as mp
import time as tm
from pathlib import Path

import numpy as np
import pytest

import allye_data_connector as adc
from allye_data_connector import errors
from allye_data_connector.compat.ataraxis import DataLogger, LogPackage
from allye_data_connector.compat.panoply import SDK
from tests.helpers import run_python


def test_datalogger_readme_example(tmp_path):
    # ataraxis' README, step by step, with its .npy/.npz file counts, then what the stream holds.
    logger = DataLogger(output_directory=Path(tmp_path), instance_name="my_name")
    assert logger.output_directory == tmp_path / "my_name_data_log" and logger.output_directory.is_dir()
    logger.start()
    logger_queue = logger.input_queue
    source_id = np.uint8(1)
    timestamp = np.uint64(tm.perf_counter_ns())
    data = np.array([1, 2, 3, 4, 5], dtype=np.uint8)
    logger_queue.put(LogPackage(source_id, timestamp, data))
    timestamp2 = np.uint64(tm.perf_counter_ns())
    data = np.array([6, 7, 8, 9, 10], dtype=np.uint8)
    logger_queue.put(LogPackage(source_id, timestamp2, data))
    logger.stop()
    assert len(list(logger.output_directory.glob("**/*.npy"))) == 2
    first_npy = np.load(logger.output_directory / f"001_{int(timestamp):020d}.npy")
    assert first_npy[0] == 1 and first_npy[9:].tolist() == [1, 2, 3, 4, 5]
    df = adc.get_dataframe("my_name", secret_dir=logger.output_directory)
    assert df["source_id"].tolist() == [1, 1]
    assert df["timestamp"].tolist() == [int(timestamp), int(timestamp2)]
    assert df["payload"].tolist() == [bytes([1, 2, 3, 4, 5]), bytes([6, 7, 8, 9, 10])]
    logger.compress_logs(remove_sources=True)
    assert len(list(logger.output_directory.glob("**/*.npy"))) == 0
    assert len(list(logger.output_directory.glob("**/*.npz"))) == 1
    npz = list(logger.output_directory.glob("**/*.npz"))
    assert [p.name for p in npz] == ["1_log.npz"]
    with np.load(npz[0]) as archive:
        assert len(archive.files) == 2
        first = archive[sorted(archive.files)[0]]
        assert first[0] == 1 and first[9:].tolist() == [1, 2, 3, 4, 5]
    # compacted: one zstd Arrow file for the source, the rows unchanged
    assert adc.get_dataframe("my_name", secret_dir=logger.output_directory)["payload"].tolist()[1] == bytes(
        [6, 7, 8, 9, 10])


def test_start_and_stop_are_idempotent_and_cycle(tmp_path):
    logger = DataLogger(tmp_path, "cyc")
    logger.stop()  # before start: nothing
    logger.start()
    logger.start()
    logger.input_queue.put(LogPackage(np.uint8(2), np.uint64(1), np.zeros(3, np.uint8)))
    logger.stop()
    logger.stop()
    logger.start()
    logger.input_queue.put(LogPackage(np.uint8(2), np.uint64(2), np.ones(3, np.uint8)))
    logger.stop()
    assert adc.get_arrow("cyc", secret_dir=logger.output_directory).num_rows == 2
    with pytest.raises(errors.InvalidArgumentError):
        logger.input_queue.put(("not", "a", "package"))


def _produce(queue, source: int, n: int) -> None:
    for i in range(n):
        queue.put(LogPackage(np.uint8(source), np.uint64(i), np.full(8, source, np.uint8)))
    tm.sleep(0.5)  # still alive (and not flushed by its exit) when the logger stops


def test_stop_returns_with_every_package_of_live_producer_processes(tmp_path):
    logger = DataLogger(tmp_path, "many")
    logger.start()
    ctx = mp.get_context("fork")
    procs = [ctx.Process(target=_produce, args=(logger.input_queue, s, 2000)) for s in range(1, 5)]
    for p in procs:
        p.start()
    tm.sleep(0.25)  # the puts are done; the producers sleep with messages possibly buffered
    logger.stop()
    df = adc.get_dataframe("many", secret_dir=logger.output_directory)
    for p in procs:
        p.join()
    assert len(df) == 8000
    for s in range(1, 5):
        assert df.loc[df["source_id"] == s, "timestamp"].tolist() == list(range(2000))


def test_panoply_readme_example_and_events(store):
    conn = SDK("APIKEY", "APISECRET", secret_dir=str(store))
    sent, flushed = [], []
    conn.on("send", sent.append)
    conn.on("flush", flushed.append)
    conn.write("tablename", {"foo": "bar"})
    t0 = tm.monotonic()
    while not flushed and tm.monotonic() - t0 < 5:
        tm.sleep(0.01)
    assert tm.monotonic() - t0 < 2.0  # "saved within up to 2 seconds"
    assert sent == [[{"foo": "bar"}]]
    assert adc.get_dataframe("tablename", secret_dir=store)["foo"].tolist() == ["bar"]
    with pytest.raises(errors.InvalidArgumentError):
        conn.on("nope", print)
    conn.close()


def test_panoply_errors_are_not_lost_and_records_survive_exit(store):
    adc.append("t", {"foo": "bar"}, secret_dir=store)
    conn = SDK("k", "s", secret_dir=str(store))
    seen = []
    conn.on("error", seen.append)
    conn.write("t", {"foo": 1})  # a number into a string column
    t0 = tm.monotonic()
    while not seen and tm.monotonic() - t0 < 5:
        tm.sleep(0.01)
    assert seen and isinstance(seen[0], errors.SchemaConflictError) and seen[0].refused == [{"foo": 1}]
    with pytest.raises(errors.SchemaConflictError):
        conn.write("t", {"foo": "baz"})
    conn.flush()  # the write that raised did not buffer its record; the error is spent
    assert adc.get_dataframe("t", secret_dir=store)["foo"].tolist() == ["bar"]
    conn.write("t", {"foo": "baz"})
    conn.flush()
    assert adc.get_dataframe("t", secret_dir=store)["foo"].tolist() == ["bar", "baz"]
    # A script that writes and ends at once (panoply lost these records).
    run_python(f"""
        from allye_data_connector.compat.panoply import SDK
        conn = SDK("APIKEY", "APISECRET", secret_dir={str(store)!r})
        for i in range(100):
            conn.write("quick", {{"i": i}})
    """)
    assert adc.get_dataframe("quick", secret_dir=store)["i"].tolist() == list(range(100))


def test_panoply_batch_with_a_refused_record_announces_the_stored_ones_and_says_the_error_once(store):
    adc.append("mixed", {"foo": "bar"}, secret_dir=store)
    out = run_python(f"""
        import logging, sys, time
        logging.basicConfig(stream=sys.stdout, level=logging.WARNING, format="LOG %(levelname)s %(message)s")
        from allye_data_connector.compat.panoply import SDK
        conn = SDK("k", "s", secret_dir={str(store)!r}, flush_interval=60)
        flushed, errs = [], []
        conn.on("flush", flushed.append)
        conn.on("error", errs.append)
        for rec in ({{"foo": "a"}}, {{"foo": 2}}, {{"foo": "c"}}):
            conn.write("mixed", rec)
        t0 = time.monotonic()
        while not errs and time.monotonic() - t0 < 10:
            time.sleep(0.01)
        print("FLUSHED", [f["rows"] for f in flushed])
        print("REFUSED", errs[0].refused)
    """)
    # The two text records were stored and announced by a flush event; the number alone
    # went to the error handler; the exit did not log the same error a second time.
    assert "FLUSHED [2]" in out, out
    assert "REFUSED [{'foo': 2}]" in out, out
    assert out.count("LOG ") == 1, out
    assert adc.get_dataframe("mixed", secret_dir=store)["foo"].tolist() == ["bar", "a", "c"]
