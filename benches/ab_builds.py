"""Times two builds of this library side by side, alternating, in one run: the 1,000-row
send + get round trip and the get of an 800 MB table (10,000,000 rows x 10 numeric
columns, a file payload), as README.md and RESULTS.md quote them.

    python benches/ab_builds.py --a OLD/venv/bin/python --b NEW/venv/bin/python
    python benches/ab_builds.py --a ... --b ... --rows 1000000 --blocks 10

Each interpreter runs one worker process (its own build of the package imported once);
the driver asks them in turn for a block of timings, so that both see the same machine
(a shared machine drifts during a run). Round trips: each worker sends and gets a
1,000-row frame in a store of its own (10 untimed first), in blocks of 10. The large get:
worker A sends the table once into a store both read (the protocol is the same), then
each worker times ``get_dataframe`` of it, one get per turn (the frame is dropped after
each). Stores go to --dir (default /dev/shm) and are removed at the end.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent

WORKER = r"""
import gc, json, sys, time
sys.path.insert(0, sys.argv[1])  # benches/: frames.py
import numpy as np, pandas as pd
import allye_data_connector as adc
from frames import numeric_frame
small = numeric_frame(1000)
for line in sys.stdin:
    cmd = json.loads(line)
    if cmd["op"] == "round_trips":
        out = []
        for _ in range(cmd["n"]):
            t = time.perf_counter()
            adc.send_dataframe(small, "small", secret_dir=cmd["store"])
            df = adc.get_dataframe("small", secret_dir=cmd["store"])
            out.append(time.perf_counter() - t)
        assert df.shape == small.shape
    elif cmd["op"] == "send_big":
        big = numeric_frame(cmd["rows"])
        adc.send_dataframe(big, "big", secret_dir=cmd["store"], transport="file")
        del big
        out = []
    elif cmd["op"] == "get_big":
        gc.collect()
        t = time.perf_counter()
        df = adc.get_dataframe("big", secret_dir=cmd["store"])
        out = [time.perf_counter() - t]
        assert df.shape[0] == cmd["rows"]
        del df
    print(json.dumps(out), flush=True)
"""


class Worker:
    def __init__(self, python: str) -> None:
        self.proc = subprocess.Popen([python, "-c", WORKER, str(HERE)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)

    def ask(self, **cmd: object) -> list[float]:
        assert self.proc.stdin and self.proc.stdout
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"worker {self.proc.args[0]} died")
        return json.loads(line)

    def close(self) -> None:
        assert self.proc.stdin
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--a", required=True, help="interpreter of build A (the baseline)")
    ap.add_argument("--b", required=True, help="interpreter of build B")
    ap.add_argument("--rows", type=int, default=10_000_000, help="rows of the large table (x 10 columns)")
    ap.add_argument("--blocks", type=int, default=20, help="alternating blocks of 10 round trips per build")
    ap.add_argument("--gets", type=int, default=9, help="alternating gets of the large table per build")
    ap.add_argument("--dir", default="/dev/shm")
    ap.add_argument("--json", help="also write all timings to this file")
    args = ap.parse_args()
    sys.path.insert(0, str(HERE))
    from storetools import remove_store

    workers = {"A": Worker(args.a), "B": Worker(args.b)}
    base = Path(tempfile.mkdtemp(prefix="ab-builds-", dir=args.dir))
    stores = {k: str(base / f"small-{k}") for k in workers}
    shared = str(base / "big")
    times: dict[str, dict[str, list[float]]] = {k: {"round_trip": [], "get_800": []} for k in workers}
    try:
        for k, w in workers.items():
            w.ask(op="round_trips", n=10, store=stores[k])  # untimed: imports, first mappings
        for _ in range(args.blocks):
            for k, w in workers.items():
                times[k]["round_trip"] += w.ask(op="round_trips", n=10, store=stores[k])
        workers["A"].ask(op="send_big", rows=args.rows, store=shared)
        for k, w in workers.items():
            w.ask(op="get_big", rows=args.rows, store=shared)  # untimed: first mapping
        for _ in range(args.gets):
            for k, w in workers.items():
                times[k]["get_800"] += w.ask(op="get_big", rows=args.rows, store=shared)
    finally:
        for w in workers.values():
            w.close()
        for s in [*stores.values(), shared]:
            remove_store(Path(s))
        base.rmdir()
    print(f"{'case':<34}{'A median':>12}{'B median':>12}{'B / A':>8}")
    for case, label in (("round_trip", "1,000-row send + get round trip"),
                        ("get_800", f"get of {args.rows * 80 / 1e6:.0f} MB (file)")):
        a, b = statistics.median(times["A"][case]), statistics.median(times["B"][case])
        print(f"{label:<34}{a * 1e3:>10.3f}ms{b * 1e3:>10.3f}ms{b / a:>8.3f}")
    if args.json:
        Path(args.json).write_text(json.dumps(times))


if __name__ == "__main__":
    main()
