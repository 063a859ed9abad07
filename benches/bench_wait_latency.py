"""Wake-up latency of a waiting reader: how long after the ``ready`` line lands does a
reader blocked in ``get_dataframe(wait=True)`` (or ``watch()``) in another process hold
the new table?

    python benches/bench_wait_latency.py [--rounds 30] [--json]

A reader process per variant (after one dropped warm-up round) announces "waiting for rN" and blocks; the writer (this
process) sleeps a random 50-150 ms (so polls are caught at a random phase), sends a
1-row frame and takes ``time.monotonic()`` as soon as ``send_dataframe`` returns (the
``ready`` line is its last write). The reader takes ``time.monotonic()`` as soon as its
call returns (the frame loaded, for ``get``; the record yielded, for ``watch``).
``CLOCK_MONOTONIC`` is system-wide on Linux, so the two clocks compare. Variants:

* ``ours get(wait) events``: inotify through the ``notify`` crate (the default);
* ``ours get(wait) polling``: ``ALLYE_WATCH_POLLING=1`` (file systems without events), 50 ms stat polls;
* ``ours watch() events``: the watch iterator;
* ``0.1.2 get(wait)``: the published 0.1.2 in ``.venv-peer`` (polls every 0.5 s), when present.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
PEER = Path(os.environ.get("ADC_PEER_VENV", ROOT / ".venv-peer")) / "bin" / "python"

READER_GET = """
import sys, time, allye_data_connector as a
store, rounds = sys.argv[1], int(sys.argv[2])
for i in range(rounds):
    print(f"waiting r{i}", flush=True)
    a.get_dataframe(f"r{i}", secret_dir=store, wait=True, timeout_sec=60)
    print(f"got {time.monotonic()!r}", flush=True)
"""

READER_WATCH = """
import sys, time, allye_data_connector as a
store, rounds = sys.argv[1], int(sys.argv[2])
print("waiting r0", flush=True)
it = a.watch(secret_dir=store, timeout_sec=60)
print("ready", flush=True)
for i, rec in enumerate(it):
    print(f"got {time.monotonic()!r}", flush=True)
    if i + 1 == rounds:
        break
    print(f"waiting r{i + 1}", flush=True)
"""


def run_variant(python: str, code: str, rounds: int, env: dict[str, str], watch: bool) -> list[float]:
    from allye_data_connector import send_dataframe

    store = Path(tempfile.mkdtemp(prefix="adc-wait-"))
    store.mkdir(exist_ok=True)
    df = pd.DataFrame({"x": [1.0]})
    rounds += 1  # round 0 warms the reader up (first imports, first mapping) and is dropped
    proc = subprocess.Popen(
        [python, "-c", textwrap.dedent(code), str(store), str(rounds)],
        stdout=subprocess.PIPE, text=True, env={**os.environ, **env},
    )
    assert proc.stdout is not None
    latencies = []
    try:
        for i in range(rounds):
            line = proc.stdout.readline()
            assert line.startswith("waiting"), line
            if watch and i == 0:
                assert proc.stdout.readline().strip() == "ready"
            time.sleep(random.uniform(0.05, 0.15))
            send_dataframe(df, f"r{i}", secret_dir=store, transport="file", notify_canvas=False)
            t_ready = time.monotonic()
            got = proc.stdout.readline()
            assert got.startswith("got "), got
            latencies.append(float(got.split()[1]) - t_ready)
    finally:
        proc.kill()
        proc.wait()
        shutil.rmtree(store, ignore_errors=True)  # file payloads only: nothing in /dev/shm
    return latencies[1:]


def main(argv: list[str] | None = None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--no-peer", action="store_true", help="skip 0.1.2 even when .venv-peer exists")
    args = ap.parse_args(argv)
    base = {"ALLYE_WATCH_POLLING": "0"}
    variants = [
        ("ours get(wait) events", sys.executable, READER_GET, base, False),
        ("ours get(wait) polling", sys.executable, READER_GET, {"ALLYE_WATCH_POLLING": "1"}, False),
        ("ours watch() events", sys.executable, READER_WATCH, base, True),
    ]
    if PEER.exists() and not args.no_peer:
        variants.append(("0.1.2 get(wait)", str(PEER), READER_GET, {}, False))
    results = []
    for name, python, code, env, watch in variants:
        lat = sorted(x * 1e3 for x in run_variant(python, code, args.rounds, env, watch))
        results.append({
            "variant": name, "rounds": len(lat),
            "median_ms": round(statistics.median(lat), 2),
            "p90_ms": round(lat[min(len(lat) - 1, int(0.9 * len(lat)))], 2),
            "max_ms": round(lat[-1], 2),
        })
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print(f"{'variant':<26} {'rounds':>6} {'median ms':>10} {'p90 ms':>8} {'max ms':>8}")
        for r in results:
            print(f"{r['variant']:<26} {r['rounds']:>6} {r['median_ms']:>10.2f} {r['p90_ms']:>8.2f} {r['max_ms']:>8.2f}")
    return results


if __name__ == "__main__":
    main()
