"""Times send_dataframe / get_dataframe of a large frame (default 10,000,000 rows x 10
float64 columns, np.random.default_rng(0)) for this package and for the published 0.1.2,
and prints the medians of a few repetitions with ratios 0.1.2 / ours.

    python benches/measure_10m.py [--rows N] [--reps 3] [--dir /tmp]

Variants (each repetition uses a fresh store, deleted afterwards with its shm segments):
  ours auto          send(transport="auto") (a file at this size), get()
  ours shm           send(transport="shm"), get()
  ours file+pyarrow  send(transport="file"), get(dtype_backend="pyarrow")
  0.1.2 auto         0.1.2's send(transport="auto") and get(), in the interpreter of
                     ./.venv-peer (the same import name, so it runs in a child process that
                     builds the same frame and times itself with time.perf_counter)
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PEER_PYTHON = Path(os.environ.get("ADC_PEER_VENV", ROOT / ".venv-peer")) / "bin" / "python"

# Shared by this process and the 0.1.2 child, so both build the very same frame and
# clean up the same way.
COMMON = r'''
import json, os, shutil
import numpy as np
import pandas as pd

def make_frame(rows):
    rng = np.random.default_rng(0)
    return pd.DataFrame({f"c{i}": rng.standard_normal(rows) for i in range(10)})

def manifest_events(store):
    try:
        with open(os.path.join(store, "manifest.jsonl"), encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        return []
    out = []
    for line in lines:
        try:
            ev = json.loads(line)
        except ValueError:
            continue
        if isinstance(ev, dict):
            out.append(ev)
    return out

def same_values(out, df):
    """Bitwise check of the first and last columns (untimed)."""
    return all(
        np.array_equal(np.asarray(out[c].to_numpy(dtype="float64")), df[c].to_numpy()) for c in (df.columns[0], df.columns[-1])
    )

def transport_used(store, table_name):
    for ev in reversed(manifest_events(store)):
        if ev.get("table_name") == table_name and ev.get("status") == "ready":
            return (ev.get("payload") or {}).get("transport")
    return None

def remove_store(store):
    """Unlinks /dev/shm/<locator> for every shm payload the manifest names, then deletes the store."""
    for ev in manifest_events(store):
        for ref in (ev.get("payload"), (ev.get("metadata") or {}).get("adc")):
            if isinstance(ref, dict) and ref.get("transport") == "shm_arrow_stream_v1":
                name = ref.get("locator")
                if isinstance(name, str) and name and "/" not in name:
                    try:
                        os.unlink(os.path.join("/dev/shm", name))
                    except FileNotFoundError:
                        pass
    shutil.rmtree(store, ignore_errors=True)
'''

# The 0.1.2 child: argv = rows reps base_dir; prints one JSON line.
PEER_CHILD = COMMON + r'''
import gc, sys, tempfile, time
import importlib.metadata
import allye_data_connector as adc

rows, reps, base = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
df = make_frame(rows)
send_s, get_s, transports = [], [], []
for _ in range(reps):
    store = tempfile.mkdtemp(prefix="adc-m10m-peer-", dir=base)
    try:
        t0 = time.perf_counter()
        adc.send_dataframe(df, "big", secret_dir=store, notify_canvas=False)
        t1 = time.perf_counter()
        out = adc.get_dataframe("big", secret_dir=store)
        t2 = time.perf_counter()
        assert out.shape == df.shape, out.shape
        assert same_values(out, df)
        transports.append(transport_used(store, "big"))
        del out
        gc.collect()
    finally:
        remove_store(store)
    send_s.append(t1 - t0)
    get_s.append(t2 - t1)
print(json.dumps({
    "version": importlib.metadata.version("allye_data_connector"),
    "send": send_s, "get": get_s, "transports": transports,
}))
'''

exec(COMMON)  # make_frame, manifest_events, transport_used, remove_store


def run_ours(df, label, transport, dtype_backend, reps, base):
    import allye_data_connector as adc

    send_s, get_s, transports = [], [], []
    for _ in range(reps):
        store = tempfile.mkdtemp(prefix="adc-m10m-ours-", dir=base)
        try:
            t0 = time.perf_counter()
            adc.send_dataframe(df, "big", secret_dir=store, transport=transport, notify_canvas=False)
            t1 = time.perf_counter()
            out = adc.get_dataframe("big", secret_dir=store, dtype_backend=dtype_backend)
            t2 = time.perf_counter()
            assert out.shape == df.shape, out.shape
            assert same_values(out, df), label
            transports.append(transport_used(store, "big"))
            del out
            gc.collect()
        finally:
            remove_store(store)
        send_s.append(t1 - t0)
        get_s.append(t2 - t1)
        print(f"  {label}: send {send_s[-1]:.3f}s get {get_s[-1]:.3f}s ({transports[-1]})", flush=True)
    return {"send": send_s, "get": get_s, "transports": transports}


def run_peer(rows, reps, base):
    if not PEER_PYTHON.exists():
        sys.exit(f"no 0.1.2 interpreter at {PEER_PYTHON} (set ADC_PEER_VENV)")
    proc = subprocess.run(
        [str(PEER_PYTHON), "-c", PEER_CHILD, str(rows), str(reps), str(base)],
        capture_output=True,
        text=True,
        timeout=3600,
        cwd=base,  # keep the child off this checkout, so `allye_data_connector` is 0.1.2's
    )
    if proc.returncode != 0:
        sys.exit(f"0.1.2 child failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    for s, g, t in zip(res["send"], res["get"], res["transports"]):
        print(f"  0.1.2 auto: send {s:.3f}s get {g:.3f}s ({t})", flush=True)
    return res


def short(transport):
    return {"shm_arrow_stream_v1": "shm", "file_arrow_ipc_v1": "file"}.get(transport, str(transport))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--dir", default=tempfile.gettempdir(), help="where the temporary stores go")
    args = ap.parse_args(argv)
    base = Path(args.dir)

    import numpy
    import pandas
    import pyarrow
    import allye_data_connector as adc

    print(
        f"rows={args.rows:,} x 10 float64 ({args.rows * 80 / 1e6:,.0f} MB), reps={args.reps}, stores in {base}\n"
        f"ours {adc.__version__} | python {sys.version.split()[0]} numpy {numpy.__version__} "
        f"pandas {pandas.__version__} pyarrow {pyarrow.__version__} | {os.cpu_count()} CPUs",
        flush=True,
    )

    results = {}
    df = make_frame(args.rows)
    results["ours auto"] = run_ours(df, "ours auto", "auto", None, args.reps, base)
    results["ours shm"] = run_ours(df, "ours shm", "shm", None, args.reps, base)
    results["ours file+pyarrow"] = run_ours(df, "ours file+pyarrow", "file", "pyarrow", args.reps, base)
    del df
    gc.collect()
    results["0.1.2 auto"] = peer = run_peer(args.rows, args.reps, base)

    med = {k: (statistics.median(v["send"]), statistics.median(v["get"])) for k, v in results.items()}
    ps, pg = med["0.1.2 auto"]
    print()
    print(f"median of {args.reps} reps, {args.rows:,} rows x 10 float64; ratio = 0.1.2 auto / this row")
    head = f"{'variant':<20}{'transport':<11}{'send s':>9}{'get s':>9}{'send+get s':>12}{'send x':>9}{'get x':>9}{'total x':>9}"
    print(head)
    print("-" * len(head))
    for k, v in results.items():
        s, g = med[k]
        tr = ",".join(sorted({short(t) for t in v["transports"]}))
        print(f"{k:<20}{tr:<11}{s:>9.3f}{g:>9.3f}{s + g:>12.3f}{ps / s:>9.2f}{pg / g:>9.2f}{(ps + pg) / (s + g):>9.2f}")
    print(f"(0.1.2 is {peer['version']}; its file payloads are zstd-compressed by default, ours are uncompressed)")


if __name__ == "__main__":
    main()
