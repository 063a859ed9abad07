"""Many processes on one stream: appenders and followers at once, and appenders killed
with SIGKILL at random moments. Real processes, real store."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np

import allye_data_connector as adc
from allye_data_connector import _core

APPENDER = """
import sys, numpy as np, pyarrow as pa, allye_data_connector as adc
store, writer, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = np.random.default_rng(writer)
seq = 0
while seq < n:
    k = int(rng.integers(1, 6))
    k = min(k, n - seq)
    adc.append("st", pa.table({"writer": np.full(k, writer, dtype=np.int64),
                               "seq": np.arange(seq, seq + k, dtype=np.int64)}), secret_dir=store)
    seq += k
"""

FOLLOWER = """
import sys, json, allye_data_connector as adc
store, total = sys.argv[1], int(sys.argv[2])
seen = []
print("ready", flush=True)
for chunk in adc.follow("st", secret_dir=store, from_start=True, timeout_sec=60):
    seen += list(zip(chunk.column("writer").to_pylist(), chunk.column("seq").to_pylist()))
    if len(seen) >= total:
        break
print(json.dumps(seen))
"""


def _spawn(code: str, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code), *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _per_writer(pairs) -> dict[int, list[int]]:
    out: dict[int, list[int]] = {}
    for w, s in pairs:
        out.setdefault(w, []).append(s)
    return out


def test_four_appenders_two_followers_every_row_once_in_order(store):
    n = 300
    followers = [_spawn(FOLLOWER, str(store), str(4 * n)) for _ in range(2)]
    for f in followers:
        assert f.stdout.readline().strip() == "ready"
    appenders = [_spawn(APPENDER, str(store), str(w), str(n)) for w in range(4)]
    for a in appenders:
        out, err = a.communicate(timeout=120)
        assert a.returncode == 0, err
    for f in followers:
        out, err = f.communicate(timeout=120)
        assert f.returncode == 0, err
        got = _per_writer(json.loads(out.splitlines()[-1]))
        assert got == {w: list(range(n)) for w in range(4)}
    t = adc.get_arrow("st", secret_dir=store)
    got = _per_writer(zip(t.column("writer").to_pylist(), t.column("seq").to_pylist()))
    assert got == {w: list(range(n)) for w in range(4)}


KILLED = """
import sys, numpy as np, pyarrow as pa, allye_data_connector as adc
import allye_data_connector.streams  # imported before "ready": the kills hit appends, not imports
store, writer = sys.argv[1], int(sys.argv[2])
seq = 0
print("ready", flush=True)
while True:
    k = 20_000
    adc.append("k", pa.table({"writer": np.full(k, writer, dtype=np.int64),
                              "seq": np.arange(seq, seq + k, dtype=np.int64)}), secret_dir=store)
    seq += k
    print(seq, flush=True)
"""


def test_appenders_killed_at_30_random_moments_leave_the_stream_intact(store):
    rng = random.Random(1234)
    acked: dict[int, int] = {}
    adc.append("k", {"writer": -1, "seq": 0}, secret_dir=store)  # the stream exists whatever the kills hit
    writer = 0
    for _round in range(10):
        procs = []
        for _ in range(3):
            procs.append((writer, _spawn(KILLED, str(store), str(writer))))
            writer += 1
        for _w, p in procs:
            assert p.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.0, 0.3))
        for w, p in procs:
            time.sleep(rng.uniform(0.0, 0.03))
            os.kill(p.pid, signal.SIGKILL)
        for w, p in procs:
            out, _ = p.communicate(timeout=30)
            assert p.returncode == -signal.SIGKILL
            done = [int(x) for x in out.split() if x.isdigit()]
            acked[w] = max(done, default=0)
    t = adc.get_arrow("k", secret_dir=store)
    got = _per_writer(zip(t.column("writer").to_pylist(), t.column("seq").to_pylist()))
    assert got.pop(-1) == [0]
    assert sum(len(v) for v in got.values()) > 0, "no append completed before the kills: the test proves nothing"
    for w, last in acked.items():
        seqs = got.get(w, [])
        # Whole appends only, in order, none twice; everything acknowledged is there (an
        # append whose line landed just before the kill may be there unacknowledged).
        assert seqs == list(range(len(seqs))), f"writer {w}"
        assert len(seqs) % 20_000 == 0 and len(seqs) >= last, f"writer {w}: {len(seqs)} rows, acked {last}"
    # gc frees the chunk files of killed appenders that no line names, and only those.
    stream_dir = next(p for p in (store / "streams").iterdir() if p.is_dir())
    adc.gc(secret_dir=store, dry_run=False)
    files = {p.name for p in stream_dir.iterdir() if p.name.endswith(".arrow") or ".tmp-" in p.name}
    named = {c["chunk"] for c in _core.stream_chunks("k", secret_dir=str(store))}
    assert files == named
    # and appends go on.
    adc.append("k", {"writer": 999, "seq": 0}, secret_dir=store)
    assert adc.get_arrow("k", secret_dir=store).num_rows == t.num_rows + 1


def test_a_follower_is_woken_within_milliseconds(store):
    adc.append("lat", {"v": 0, "t": time.time_ns()}, secret_dir=store)
    follower = _spawn("""
import sys, time, allye_data_connector as adc
chunks = adc.follow("lat", secret_dir=sys.argv[1], timeout_sec=20)
print("ready", flush=True)
for chunk in chunks:
    print(time.time_ns() - chunk.column("t")[0].as_py(), flush=True)
    break
""", str(store))
    assert follower.stdout.readline().strip() == "ready"
    time.sleep(0.2)
    adc.append("lat", {"v": 1, "t": time.time_ns()}, secret_dir=store)
    out, err = follower.communicate(timeout=30)
    assert follower.returncode == 0, err
    latency_ns = int(out.split()[-1])
    assert latency_ns < 2_000_000_000  # a wake-up, not a timeout (the speed is in benches/)


SMALL_APPENDER = """
import sys, numpy as np, pyarrow as pa, allye_data_connector as adc
import allye_data_connector.streams
store, writer = sys.argv[1], int(sys.argv[2])
seq = 0
print("ready", flush=True)
while True:
    adc.append("kc", pa.table({"writer": np.full(3, writer, dtype=np.int64),
                               "seq": np.arange(seq, seq + 3, dtype=np.int64)}), secret_dir=store, publish=False)
    seq += 3
    print(seq, flush=True)
"""

CONSOLIDATOR = """
import sys
from allye_data_connector import _core
store = sys.argv[1]
print("ready", flush=True)
while True:
    _core.stream_consolidate("kc", secret_dir=store, max_merges=1)
"""


def test_consolidations_killed_at_random_moments_leave_the_stream_readable_and_complete(store):
    rng = random.Random(4321)
    acked: dict[int, int] = {}
    adc.append("kc", {"writer": -1, "seq": 0}, secret_dir=store, publish=False)
    for writer in range(12):
        appender = _spawn(SMALL_APPENDER, str(store), str(writer))
        consolidators = [_spawn(CONSOLIDATOR, str(store)) for _ in range(2)]
        for p in (appender, *consolidators):
            assert p.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.2, 0.6))
        for p in (*consolidators, appender) if writer % 2 else (appender, *consolidators):
            time.sleep(rng.uniform(0.0, 0.01))
            os.kill(p.pid, signal.SIGKILL)
        outs = {p.pid: p.communicate(timeout=30)[0] for p in (appender, *consolidators)}
        done = [int(x) for x in outs[appender.pid].split() if x.isdigit()]
        acked[writer] = max(done, default=0)
        # Readable after every kill, by a process that never read it.
        assert run_read(store) >= 1
    t = adc.get_arrow("kc", secret_dir=store)
    got = _per_writer(zip(t.column("writer").to_pylist(), t.column("seq").to_pylist()))
    assert got.pop(-1) == [0]
    lines = _core.stream_chunks("kc", secret_dir=str(store))
    assert any("merged" in ln for ln in lines), "no consolidation completed: the test proves nothing"
    for w in range(12):
        seqs = got.get(w, [])
        assert seqs == list(range(len(seqs))), f"writer {w}: every row once, in order"
        assert len(seqs) >= acked[w], f"writer {w}: {len(seqs)} rows, acked {acked[w]}"
    # gc frees what the killed consolidations and appenders left, and nothing named.
    stream_dir = next(p for p in (store / "streams").iterdir() if p.is_dir())
    adc.gc(secret_dir=store, dry_run=False)
    files = {p.name for p in stream_dir.iterdir() if p.name.endswith(".arrow") or ".tmp-" in p.name}
    assert files == {c["chunk"] for c in _core.stream_chunks("kc", secret_dir=str(store))}
    assert adc.get_arrow("kc", secret_dir=store).equals(t)


def run_read(store: Path) -> int:
    out = subprocess.run([sys.executable, "-c", "import sys, allye_data_connector as adc; "
                          "print(adc.get_arrow('kc', secret_dir=sys.argv[1]).num_rows)", str(store)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return int(out.stdout.split()[-1])
