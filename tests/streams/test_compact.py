"""compact_stream: per-source zstd files, atomic, while other processes append."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pyarrow as pa

import allye_data_connector as adc
from allye_data_connector import _core

APPENDER = """
import sys, numpy as np, allye_data_connector as adc
store, source, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for i in range(n):
    adc.append_log("log", [source] * 5, np.arange(i * 5, i * 5 + 5), [bytes(64)] * 5, secret_dir=store)
"""


def test_compaction_while_two_processes_append_keeps_every_row_in_order(store):
    adc.append_log("log", [9], [0], [b"first"], secret_dir=store)
    procs = [subprocess.Popen([sys.executable, "-c", textwrap.dedent(APPENDER), str(store), str(s), "300"],
                              stderr=subprocess.PIPE, text=True) for s in (1, 2)]
    reports = []
    while any(p.poll() is None for p in procs):
        reports.append(adc.compact_stream("log", secret_dir=store))
    for p in procs:
        assert p.wait() == 0, p.stderr.read()
    reports.append(adc.compact_stream("log", secret_dir=store))
    t = adc.get_arrow("log", secret_dir=store)
    assert t.num_rows == 1 + 2 * 300 * 5
    src = t.column("source_id").to_numpy()
    ts = t.column("timestamp").to_numpy()
    for s in (1, 2):
        assert ts[src == s].tolist() == list(range(1500))
    # The last compaction left one file per source, each zstd-compressed, and no other chunk.
    last = reports[-1]
    assert sorted(f["source"] for f in last["files"]) == ["1", "2", "9"]
    stream_dir = last["files"][0]["file"].parent
    arrow_files = sorted(p.name for p in stream_dir.glob("*.arrow"))
    assert arrow_files == sorted(f["file"].name for f in last["files"])
    for f in last["files"]:
        reader = pa.ipc.open_file(f["file"])
        assert reader.read_all().num_rows == f["rows"]
    big = max(last["files"], key=lambda f: f["rows"])
    assert big["bytes"] < big["rows"] * 64  # 64 zero bytes a message compress well
    assert len(_core.stream_chunks("log", secret_dir=str(store))) == 3


def test_compaction_of_a_plain_stream_makes_one_file_and_follow_does_not_repeat(store):
    for i in range(20):
        adc.append("plain", {"i": i}, secret_dir=store)
    chunks = adc.follow("plain", secret_dir=store, from_start=True, timeout_sec=2)
    # The appenders may have merged small chunks in the background already: a chunk
    # followed can hold several appends, in order.
    first: list[int] = []
    while len(first) < 20:
        first += next(chunks).column("i").to_pylist()
    assert first == list(range(20))
    report = adc.compact_stream("plain", secret_dir=store)
    # ...so the compaction found at most the 20 appended chunks, and left one file.
    assert 1 <= report["chunks_before"] <= 20
    assert len(report["files"]) == 1 and report["files"][0]["rows"] == 20
    adc.append("plain", {"i": 20}, secret_dir=store)
    rest = [next(chunks).column("i").to_pylist()]
    assert rest == [[20]]
    assert adc.get_dataframe("plain", secret_dir=store)["i"].tolist() == list(range(21))
