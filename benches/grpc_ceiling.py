"""What one DoGet of a big table costs here, without the store: raw ``read_all`` (and a
batch-by-batch read) of the ``--mb`` MB table for several server message sizes, client
gRPC options, and parallel DoGets of row ranges in threads. A measuring aid for the pull
(benches/RESULTS.md "remote"), not a contender.

    python benches/grpc_ceiling.py [--mb 800] [--reps 3]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pyarrow.flight as flight  # noqa: E402

import allye_data_connector as adc  # noqa: E402
from benches.bench_remote import frame  # noqa: E402
from benches.storetools import remove_store  # noqa: E402


def start(store: Path, message_mb: int) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, "-m", "allye_data_connector", "--json", "-d", str(store), "serve",
                             "--port", "0", "--no-auth", "--max-message-bytes", str(message_mb << 20)],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    return proc, json.loads(proc.stdout.readline())["location"]


def one(client: flight.FlightClient, request: dict, how: str) -> int:
    info = client.get_flight_info(flight.FlightDescriptor.for_command(json.dumps(request)))
    reader = client.do_get(info.endpoints[0].ticket)
    if how == "read_all":
        return reader.read_all().num_rows
    n = 0
    for chunk in reader:
        n += chunk.data.num_rows
    return n


def timed(client_factory, rows: int, parts: int, how: str) -> float:
    clients = [client_factory() for _ in range(parts)]
    step = -(-rows // parts)
    got = [0] * parts

    def work(i: int) -> None:
        req = {"table": "big"} if parts == 1 else {"table": "big", "rows": [i * step, min(rows, (i + 1) * step)]}
        got[i] = one(clients[i], req, how)

    t0 = time.perf_counter()
    threads = [threading.Thread(target=work, args=(i,)) for i in range(parts)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    took = time.perf_counter() - t0
    assert sum(got) == rows, (got, rows)
    for c in clients:
        c.close()
    return took


OPTIONS = {
    "default": [],
    "read_chunk_4M": [("grpc.experimental.tcp_read_chunk_size", 4 << 20),
                      ("grpc.experimental.tcp_min_read_chunk_size", 1 << 20),
                      ("grpc.experimental.tcp_max_read_chunk_size", 16 << 20)],
    "no_bdp_window": [("grpc.http2.bdp_probe", 0), ("grpc.http2.lookahead_bytes", 64 << 20)],
    "write_buffer": [("grpc.http2.write_buffer_size", 16 << 20)],
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=int, default=800)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--messages", default="1,4,16,64")
    ap.add_argument("--parts", default="1,2,4")
    ap.add_argument("--options", default=",".join(OPTIONS), help="client option sets, comma separated")
    ap.add_argument("--how", default="read_all,batches", help="read_all (keep every message) and/or batches (drop each)")
    a = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="adc-grpc-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None))
    store = work / "server"
    df = frame(a.mb)
    rows = len(df)
    adc.send_dataframe(df, "big", secret_dir=store, transport="file", shm_unlink_on_read=False)
    size = int(adc.list_tables(secret_dir=store)[0]["bytes"])
    del df
    print(f"{size / 1e6:,.0f} MB, medians of {a.reps}")
    try:
        for message_mb in [int(x) for x in a.messages.split(",")]:
            proc, loc = start(store, message_mb)
            try:
                for name, opts in ((n, OPTIONS[n]) for n in a.options.split(",")):
                    for parts in [int(x) for x in a.parts.split(",")]:
                        for how in a.how.split(","):
                            ts = [timed(lambda: flight.FlightClient(loc, generic_options=opts), rows, parts, how)
                                  for _ in range(a.reps)]
                            t = statistics.median(ts)
                            print(f"| {message_mb:>3} MiB | {name:<14} | {parts} | {how:<8} | {t:.3f} s | "
                                  f"{size / t / 1e9:.2f} GB/s |", flush=True)
            finally:
                proc.terminate()
                proc.wait()
    finally:
        remove_store(store)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
