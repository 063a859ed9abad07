"""Pulling a table over Arrow Flight into the local store, side by side with the loopback
TCP limit and with pickle over a socket.

    python benches/bench_remote.py [--mb 800] [--reps 3] [--tables 100] [--kind float64|strings] [--json]

One ``adc serve --no-auth`` process serves a store holding a numeric frame of ``--mb`` MB
(``--kind strings``: a string-heavy table, two string columns, a float64, a boolean).
Per repetition, the contenders alternate:

- **flight pull**: ``Remote.sync`` into an empty client store (GetFlightInfo + DoGet,
  each message copied as it arrives into its place in the local payload: core
  ``tables::receive``);
- **pull, received whole** (the path before the in-place receive, still taken by
  tables it cannot lay out): the stream read in full, joined into one batch, then sent;
- **DoGet only** (the split): the same DoGet read message by message and dropped, no
  store: what the receive costs without the write;
- **TCP limit**: a child process ``os.sendfile``s a file of the same size over a loopback
  socket into this process's preallocated buffer (``recv_into``): the most any protocol
  can move through the loopback interface here;
- **pickle over a socket**: a child process pickles the DataFrame (protocol 5) and sends
  the bytes; this process receives them and unpickles.

Then the cached load of the unchanged table (``get_dataframe`` after the TTL: one
``versions`` call, no DoGet, then the zero-copy local load) against the first pull, and
the version check of ``--tables`` tables in one round trip. Medians; ratios from this run.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pyarrow as pa  # noqa: E402

import allye_data_connector as adc  # noqa: E402
from benches.storetools import remove_store  # noqa: E402

_SENDFILE_CHILD = r"""
import os, socket, sys
path, port = sys.argv[1], int(sys.argv[2])
s = socket.create_connection(("127.0.0.1", port))
with open(path, "rb") as f:
    size = os.fstat(f.fileno()).st_size
    off = 0
    while off < size:
        off += os.sendfile(s.fileno(), f.fileno(), off, size - off)
s.close()
"""

_PICKLE_CHILD = r"""
import pickle, socket, struct, sys
import allye_data_connector as adc
store, port = sys.argv[1], int(sys.argv[2])
df = adc.get_dataframe("big", secret_dir=store)
s = socket.create_connection(("127.0.0.1", int(port)))
data = pickle.dumps(df, protocol=5)
s.sendall(struct.pack("<Q", len(data)))
s.sendall(data)
s.close()
"""


def frame(mb: int, kind: str = "float64") -> Any:
    rng = np.random.default_rng(0)
    if kind == "float64":
        rows = mb * (1 << 20) // (8 * 8)
        return pd.DataFrame({f"c{i}": rng.standard_normal(rows) for i in range(8)})
    # String-heavy: two string columns (4-43 bytes, some multi-byte, 1 in 50 null), one
    # float64, one boolean; about 64 bytes a row laid out.
    rows = mb * (1 << 20) // 64
    vocab = pa.array([("é" if k % 7 == 0 else "") + f"v{k}-" + "x" * (k % 40) for k in range(10_000)])
    pick = rng.integers(0, len(vocab), rows)
    return pa.table({
        "s": vocab.take(pa.array(pick, mask=pick % 50 == 0)),
        "t": vocab.take(pa.array(pick[::-1])),
        "x": rng.standard_normal(rows),
        "b": pick % 3 == 0,
    })


def _listen() -> tuple[socket.socket, int]:
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    return srv, srv.getsockname()[1]


def tcp_limit(path: Path, size: int, buf: bytearray) -> float:
    """Seconds to move ``size`` bytes by sendfile over loopback into ``buf``."""
    srv, port = _listen()
    child = subprocess.Popen([sys.executable, "-c", _SENDFILE_CHILD, str(path), str(port)])
    conn, _ = srv.accept()
    view = memoryview(buf)
    t0 = time.perf_counter()
    got = 0
    while got < size:
        n = conn.recv_into(view[got:], size - got)
        if n == 0:
            break
        got += n
    took = time.perf_counter() - t0
    conn.close()
    srv.close()
    child.wait()
    assert got == size, (got, size)
    return took


def pickle_socket(store: Path) -> float:
    """Seconds from the first byte's arrival wait to the unpickled frame (the child
    loads the frame zero-copy before connecting, so its load is not timed)."""
    import struct

    srv, port = _listen()
    child = subprocess.Popen([sys.executable, "-c", _PICKLE_CHILD, str(store), str(port)])
    conn, _ = srv.accept()
    t0 = time.perf_counter()
    head = b""
    while len(head) < 8:
        head += conn.recv(8 - len(head))
    (n,) = struct.unpack("<Q", head)
    buf = bytearray(n)
    view = memoryview(buf)
    got = 0
    while got < n:
        got += conn.recv_into(view[got:], n - got)
    df = pickle.loads(buf)
    took = time.perf_counter() - t0
    conn.close()
    srv.close()
    child.wait()
    assert len(df) > 0
    return took


def doget_only(location: str) -> float:
    """Seconds to read the table's DoGet message by message, dropping each."""
    import pyarrow.flight as flight

    client = flight.FlightClient(location)
    try:
        t0 = time.perf_counter()
        info = client.get_flight_info(flight.FlightDescriptor.for_path("big"))
        for _ in client.do_get(info.endpoints[0].ticket):
            pass
        return time.perf_counter() - t0
    finally:
        client.close()


def start_server(store: Path) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, "-m", "allye_data_connector", "--json", "-d", str(store), "serve",
                             "--port", "0", "--no-auth"], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    return proc, json.loads(proc.stdout.readline())["location"]


def run(mb: int, reps: int, tables: int, kind: str = "float64") -> dict:
    # Stores and the raw file in /dev/shm (as benches/compare.py): the disk is not measured.
    work = Path(tempfile.mkdtemp(prefix="adc-bench-remote-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None))
    server_store = work / "server"
    df = frame(mb, kind)
    adc.send_dataframe(df, "big", secret_dir=server_store, transport="file", shm_unlink_on_read=False)
    for i in range(tables):
        adc.send_dataframe(pd.DataFrame({"v": [i]}), f"small{i}", secret_dir=server_store, shm_unlink_on_read=False)
    size = int(adc.list_tables(secret_dir=server_store)[0]["bytes"])
    raw = work / "raw.bin"
    with open(raw, "wb") as f:
        f.write(os.urandom(1 << 20) * (size >> 20) + os.urandom(size & ((1 << 20) - 1)))
    buf = bytearray(size)
    proc, location = start_server(server_store)
    out: dict = {"mb": mb, "kind": kind, "bytes": size, "reps": reps, "flight": [], "whole": [], "doget": [], "tcp": [], "pickle": [], "cached": [],
                 "versions": []}
    try:
        for rep in range(reps):
            client = work / f"client{rep}"
            with adc.connect([location], secret_dir=client, check_ttl_sec=0) as r:
                t0 = time.perf_counter()
                r.sync("big")
                out["flight"].append(time.perf_counter() - t0)
                out["doget"].append(doget_only(location))
                whole = work / f"whole{rep}"
                with adc.connect([location], secret_dir=whole, check_ttl_sec=0) as w:
                    w._receive = lambda *a, **k: None  # type: ignore[method-assign]  # never in place
                    t0 = time.perf_counter()
                    w.sync("big")
                    out["whole"].append(time.perf_counter() - t0)
                remove_store(whole)
                out["tcp"].append(tcp_limit(raw, size, buf))
                out["pickle"].append(pickle_socket(server_store))
                t0 = time.perf_counter()
                cached = r.get_dataframe("big")
                out["cached"].append(time.perf_counter() - t0)
                assert len(cached) == len(df)
                del cached
                t0 = time.perf_counter()
                v = r.versions([f"small{i}" for i in range(tables)])
                out["versions"].append(time.perf_counter() - t0)
                assert len(v) == tables
                stats = r.stats(location)
            remove_store(client)
        out["server_calls"] = stats["calls"]
    finally:
        proc.terminate()
        proc.wait()
        remove_store(server_store)
        shutil.rmtree(work, ignore_errors=True)
    med = {k: statistics.median(out[k]) for k in ("flight", "whole", "doget", "tcp", "pickle", "cached", "versions")}
    out["median_sec"] = med
    out["gbps"] = {k: size / med[k] / 1e9 for k in ("flight", "whole", "doget", "tcp", "pickle")}
    out["flight_vs_tcp"] = med["tcp"] / med["flight"]
    out["flight_vs_pickle"] = med["pickle"] / med["flight"]
    out["cached_vs_first_pull"] = med["flight"] / med["cached"]
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=int, default=800)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--tables", type=int, default=100)
    ap.add_argument("--kind", choices=["float64", "strings"], default="float64",
                    help="8 float64 columns, or string-heavy (2 strings, a float64, a boolean)")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    out = run(a.mb, a.reps, a.tables, a.kind)
    if a.json:
        print(json.dumps(out, indent=2))
        return
    m, g = out["median_sec"], out["gbps"]
    print(f"{out['bytes'] / 1e6:,.0f} MB ({out['kind']}), medians of {out['reps']}")
    print(f"| flight pull into the store | {m['flight']:.3f} s | {g['flight']:.2f} GB/s |")
    print(f"| pull received whole, joined, then sent (before) | {m['whole']:.3f} s | {g['whole']:.2f} GB/s |")
    print(f"| DoGet only, messages dropped (split) | {m['doget']:.3f} s | {g['doget']:.2f} GB/s |")
    print(f"| loopback TCP limit (sendfile) | {m['tcp']:.3f} s | {g['tcp']:.2f} GB/s |")
    print(f"| pickle over a socket | {m['pickle']:.3f} s | {g['pickle']:.2f} GB/s |")
    print(f"| cached load, unchanged | {m['cached'] * 1e3:.2f} ms | |")
    print(f"| version check of {a.tables} tables | {m['versions'] * 1e3:.2f} ms | 1 round trip |")
    print(f"flight pull = {out['flight_vs_tcp']:.2f}x the TCP limit's rate; flight vs pickle = {out['flight_vs_pickle']:.1f}x faster; "
          f"cached vs first pull = {out['cached_vs_first_pull']:.0f}x faster")


if __name__ == "__main__":
    main()
