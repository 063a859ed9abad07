"""Streaming tables side by side (issue 14):

- ``throughput``: 4 producer processes x N messages of 64 bytes (source id, uint64 ns
  time stamp, payload), counted from the start of the producers until every message is
  on disk: ours through the ataraxis shim (``DataLogger.input_queue.put(LogPackage)``,
  until ``stop()`` returns), ataraxis-data-structures' own ``DataLogger`` (in its venv,
  until ``stop()`` returns; one ``.npy`` file per message), and a plain
  ``multiprocessing.Queue`` to one writer process that writes each message to one file;
- ``latency``: a 1-row ``append`` until a ``follow``-ing reader in another process has it
  (median of 200, appends 20 ms apart), the ``append`` call itself, and 2,000 1-row
  appends back to back (the appender's cost with its background work);
- ``sdk``: panoply's ``SDK.write`` of one record, the producer idle 50 ms between
  writes, until a ``follow``-ing reader in another process has it;
- ``read``: ``get_arrow`` of a stream of 10,000 appends (10 rows each) against one
  version of the same 100,000 rows, in a fresh process (first read) and again (warm);
  and ``get_dataframe`` of both (the stream's many batches are concatenated: a copy).

``--before-python`` runs our contenders also with another build (the code before a
change), alternating with this one, for before/after ratios from one run.

Every measurement runs in a fresh worker process (``--worker``), contenders alternating
within each repetition; medians are reported. Run:

    python benches/bench_streams.py [--reps 3] [--messages 100000] [--ataraxis-messages 2000]
                                    [--ataraxis-python .venv-ataraxis/bin/python]
                                    [--before-python /path/to/other/build/bin/python]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
N_PROCS = 4
PAYLOAD = 64


# ---- workers (each in its own interpreter) ----


def _produce_ours(queue, source: int, n: int) -> None:  # type: ignore[no-untyped-def]
    import numpy as np

    from allye_data_connector.compat.ataraxis import LogPackage

    payload = np.arange(PAYLOAD, dtype=np.uint8)
    put = queue.put
    for i in range(n):
        put(LogPackage(np.uint8(source), np.uint64(time.perf_counter_ns()), payload))


def _produce_ataraxis(queue, source: int, n: int) -> None:  # type: ignore[no-untyped-def]
    import numpy as np
    from ataraxis_data_structures import LogPackage

    payload = np.arange(PAYLOAD, dtype=np.uint8)
    put = queue.put
    for i in range(n):
        put(LogPackage(np.uint8(source), np.uint64(time.perf_counter_ns() + i), payload))


def _produce_queue(queue, source: int, n: int) -> None:  # type: ignore[no-untyped-def]
    payload = bytes(range(PAYLOAD))
    put = queue.put
    for i in range(n):
        put((source, time.perf_counter_ns(), payload))


def _queue_writer(queue, total: int, path: str) -> None:  # type: ignore[no-untyped-def]
    import struct

    with open(path, "wb") as f:
        for _ in range(total):
            source, stamp, payload = queue.get()
            f.write(struct.pack("<BQ", source, stamp) + payload)


def _throughput(kind: str, n: int) -> dict:
    import multiprocessing as mp

    ctx = mp.get_context("fork")
    tmp = tempfile.mkdtemp()
    if kind == "ours":
        from allye_data_connector import get_arrow
        from allye_data_connector.compat.ataraxis import DataLogger

        logger = DataLogger(Path(tmp), "bench", npy_files=False)  # the stream only: see RESULTS.md
        logger.start()
        t0 = time.perf_counter()
        procs = [ctx.Process(target=_produce_ours, args=(logger.input_queue, s, n)) for s in range(N_PROCS)]
        for p in procs:
            p.start()
        for p in procs:
            p.join()
        logger.stop()
        dt = time.perf_counter() - t0
        got = get_arrow("bench", secret_dir=logger.output_directory).num_rows
    elif kind == "ataraxis":
        from ataraxis_data_structures import DataLogger as AtxLogger

        logger = AtxLogger(output_directory=Path(tmp), instance_name="bench")
        logger.start()
        t0 = time.perf_counter()
        procs = [ctx.Process(target=_produce_ataraxis, args=(logger.input_queue, s, n)) for s in range(N_PROCS)]
        for p in procs:
            p.start()
        for p in procs:
            p.join()
        logger.stop()
        dt = time.perf_counter() - t0
        got = len(list(Path(logger.output_directory).glob("**/*.npy")))
    elif kind == "queue":
        q = ctx.Queue()
        path = os.path.join(tmp, "log.bin")
        t0 = time.perf_counter()
        writer = ctx.Process(target=_queue_writer, args=(q, N_PROCS * n, path))
        writer.start()
        procs = [ctx.Process(target=_produce_queue, args=(q, s, n)) for s in range(N_PROCS)]
        for p in procs:
            p.start()
        for p in procs:
            p.join()
        writer.join()
        dt = time.perf_counter() - t0
        got = os.path.getsize(path) // (9 + PAYLOAD)
    else:
        raise SystemExit(f"unknown kind {kind}")
    assert got == N_PROCS * n, (kind, got)
    return {"seconds": dt, "messages": got, "rate": got / dt}


FOLLOWER = """
import sys, time, allye_data_connector as adc
chunks = adc.follow("lat", secret_dir=sys.argv[1], timeout_sec=30)
print("ready", flush=True)
n = int(sys.argv[2])
for i, chunk in enumerate(chunks):
    print(time.time_ns() - chunk.column("t")[0].as_py(), flush=True)
    if i + 1 >= n:
        break
"""


def _latency(kind: str, n: int) -> dict:
    import allye_data_connector as adc

    store = tempfile.mkdtemp()
    adc.append("lat", {"i": -1, "t": time.time_ns()}, secret_dir=store, publish=False)
    proc = subprocess.Popen([sys.executable, "-c", FOLLOWER, store, str(n)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    time.sleep(0.2)
    calls = []
    for i in range(n):
        t0 = time.perf_counter()
        adc.append("lat", {"i": i, "t": time.time_ns()}, secret_dir=store, publish=False)
        calls.append(time.perf_counter() - t0)
        time.sleep(0.02)
    out, _ = proc.communicate(timeout=60)
    lat = sorted(int(x) for x in out.split())
    # Appends back to back (the appender's own cost, background consolidation included).
    t0 = time.perf_counter()
    for i in range(n * 10):
        adc.append("burst", {"i": i, "x": 0.5}, secret_dir=store, publish=False)
    burst = (time.perf_counter() - t0) / (n * 10)
    return {"median_ms": statistics.median(lat) / 1e6, "p90_ms": lat[int(len(lat) * 0.9)] / 1e6, "n": len(lat),
            "append_ms": statistics.median(calls) * 1e3, "burst_append_ms": burst * 1e3}


SDK_FOLLOWER = """
import sys, time, allye_data_connector as adc
chunks = adc.follow("sdk", secret_dir=sys.argv[1], timeout_sec=30)
print("ready", flush=True)
n, seen = int(sys.argv[2]), 0
for chunk in chunks:
    now = time.time_ns()
    for t in chunk.column("t").to_pylist():
        print(now - t, flush=True)
        seen += 1
    if seen >= n:
        break
"""


def _sdk_latency(n: int, gap: float) -> dict:
    """panoply's ``SDK.write`` of one record, the producer idle ``gap`` seconds between
    writes, until a follower in another process has the record."""
    from allye_data_connector.compat.panoply import SDK

    import allye_data_connector as adc

    store = tempfile.mkdtemp()
    adc.append("sdk", {"i": -1, "t": time.time_ns()}, secret_dir=store, publish=False)
    proc = subprocess.Popen([sys.executable, "-c", SDK_FOLLOWER, store, str(n)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    time.sleep(0.2)
    conn = SDK("key", "secret", secret_dir=store)
    for i in range(n):
        conn.write("sdk", {"i": i, "t": time.time_ns()})
        time.sleep(gap)
    out, _ = proc.communicate(timeout=120)
    conn.close()
    lat = sorted(int(x) for x in out.split())
    return {"median_ms": statistics.median(lat) / 1e6, "p90_ms": lat[int(len(lat) * 0.9)] / 1e6,
            "max_ms": lat[-1] / 1e6, "n": len(lat)}


def _read_setup(store: str, appends: int, rows: int) -> None:
    import numpy as np
    import pandas as pd

    import allye_data_connector as adc

    frames = []
    for i in range(appends):
        df = pd.DataFrame({"i": np.arange(i * rows, (i + 1) * rows, dtype=np.int64),
                           "x": np.arange(rows, dtype=np.float64) * 0.5})
        adc.append("stream", df, secret_dir=store, publish=False)
        frames.append(df)
    whole = pd.concat(frames, ignore_index=True)
    adc.send_dataframe(whole, "single", secret_dir=store, transport="file", shm_unlink_on_read=False)


def _read(kind: str, store: str) -> dict:
    import allye_data_connector as adc
    import allye_data_connector.tables  # noqa: F401 - imports are not what is measured
    import allye_data_connector.streams  # noqa: F401

    name = {"stream": "stream", "single": "single"}[kind]
    t0 = time.perf_counter()
    t = adc.get_arrow(name, secret_dir=store)
    first = time.perf_counter() - t0
    warm = []
    for _ in range(5):
        t0 = time.perf_counter()
        t = adc.get_arrow(name, secret_dir=store)
        warm.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    df = adc.get_dataframe(name, secret_dir=store)
    pandas_s = time.perf_counter() - t0
    assert len(df) == t.num_rows
    return {"first_ms": first * 1e3, "warm_ms": statistics.median(warm) * 1e3, "pandas_ms": pandas_s * 1e3,
            "rows": t.num_rows, "batches": t.column(0).num_chunks}


def _worker(argv: list[str]) -> None:
    what = argv[0]
    if what == "throughput":
        res = _throughput(argv[1], int(argv[2]))
    elif what == "latency":
        res = _latency(argv[1], int(argv[2]))
    elif what == "sdk":
        res = _sdk_latency(int(argv[1]), float(argv[2]))
    elif what == "read":
        res = _read(argv[1], argv[2])
    elif what == "read_setup":
        _read_setup(argv[1], int(argv[2]), int(argv[3]))
        res = {}
    else:
        raise SystemExit(f"unknown worker {what}")
    print(json.dumps(res))


# ---- driver ----


def _run(python: str, *args: str) -> dict:
    env = {**os.environ, "ALLYE_NOTIFY_CANVAS": "0", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([python, str(Path(__file__).resolve()), "--worker", *args], capture_output=True,
                          text=True, env=env, timeout=3600)
    if proc.returncode != 0:
        raise RuntimeError(f"worker {args} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> dict[str, dict]:
    ap = argparse.ArgumentParser()
    ap.add_argument("--worker", nargs=argparse.REMAINDER)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--messages", type=int, default=100_000, help="messages per producer (ours, queue)")
    ap.add_argument("--ataraxis-messages", type=int, default=2_000, help="messages per producer for ataraxis")
    ap.add_argument("--ataraxis-python", default=str(ROOT / ".venv-ataraxis" / "bin" / "python"))
    ap.add_argument("--appends", type=int, default=10_000)
    ap.add_argument("--skip", nargs="*", default=[], help="parts to skip: throughput latency sdk read")
    ap.add_argument("--latency-appends", type=int, default=200)
    ap.add_argument("--sdk-writes", type=int, default=50)
    ap.add_argument("--sdk-gap", type=float, default=0.05, help="seconds the SDK producer is idle between writes")
    ap.add_argument("--before-python", default=None,
                    help="an interpreter with another build of this package (the code before a change): its "
                         "runs of our contenders alternate with this one's, reported as '<part>/before'")
    args = ap.parse_args(argv)
    if args.worker:
        _worker(args.worker)
        return {}
    results: dict[str, list[dict]] = {}
    builds = [("", sys.executable)] + ([("/before", args.before_python)] if args.before_python else [])
    if "throughput" not in args.skip:
        have_atx = Path(args.ataraxis_python).exists()
        for rep in range(args.reps):
            for kind in ("ours", "queue", "ataraxis"):
                if kind == "ataraxis" and not have_atx:
                    continue
                for suffix, python in builds if kind == "ours" else [("", sys.executable)]:
                    n = args.ataraxis_messages if kind == "ataraxis" else args.messages
                    python = args.ataraxis_python if kind == "ataraxis" else python
                    r = _run(python, "throughput", kind, str(n))
                    results.setdefault(f"throughput/{kind}{suffix}", []).append(r)
                    print(f"rep {rep} throughput {kind}{suffix}: {r['rate']:,.0f} msg/s ({r['messages']:,} in "
                          f"{r['seconds']:.2f} s)", flush=True)
    if "latency" not in args.skip:
        for rep in range(args.reps):
            for suffix, python in builds:
                r = _run(python, "latency", "append", str(args.latency_appends))
                results.setdefault(f"latency/append{suffix}", []).append(r)
                print(f"rep {rep} latency{suffix}: median {r['median_ms']:.2f} ms, p90 {r['p90_ms']:.2f} ms; "
                      f"append call {r['append_ms']:.3f} ms, back to back {r['burst_append_ms']:.3f} ms", flush=True)
    if "sdk" not in args.skip:
        for rep in range(args.reps):
            for suffix, python in builds:
                r = _run(python, "sdk", str(args.sdk_writes), str(args.sdk_gap))
                results.setdefault(f"sdk/write{suffix}", []).append(r)
                print(f"rep {rep} SDK.write until a reader has it{suffix}: median {r['median_ms']:.2f} ms, "
                      f"p90 {r['p90_ms']:.2f} ms, max {r['max_ms']:.2f} ms", flush=True)
    if "read" not in args.skip:
        stores = {}
        for suffix, python in builds:
            stores[suffix] = tempfile.mkdtemp()
            _run(python, "read_setup", stores[suffix], str(args.appends), "10")
        for rep in range(args.reps):
            for kind in ("stream", "single"):
                for suffix, python in builds:
                    r = _run(python, "read", kind, stores[suffix])
                    results.setdefault(f"read/{kind}{suffix}", []).append(r)
                    print(f"rep {rep} read {kind}{suffix}: first {r['first_ms']:.2f} ms, warm {r['warm_ms']:.3f} ms, "
                          f"pandas {r['pandas_ms']:.2f} ms ({r['batches']} batches)", flush=True)
    print("\nmedians:")
    med: dict[str, dict] = {}
    for key, runs in results.items():
        med[key] = {k: statistics.median(r[k] for r in runs) for k in runs[0] if isinstance(runs[0][k], (int, float))}
        print(f"  {key}: {med[key]}")
    if "throughput/ours" in med and "throughput/ataraxis" in med:
        print(f"  ours / ataraxis throughput: {med['throughput/ours']['rate'] / med['throughput/ataraxis']['rate']:.0f}x")
    if "throughput/ours" in med and "throughput/queue" in med:
        print(f"  ours / multiprocessing.Queue: {med['throughput/ours']['rate'] / med['throughput/queue']['rate']:.2f}x")
    for suffix, _ in builds:
        if f"read/stream{suffix}" in med:
            for k in ("first_ms", "warm_ms", "pandas_ms"):
                print(f"  read stream / single{suffix}, {k}: "
                      f"{med[f'read/stream{suffix}'][k] / med[f'read/single{suffix}'][k]:.2f}x")
    return med


if __name__ == "__main__":
    main()
