"""Times this library side by side with the alternatives, in one run, on the same frames,
and prints a table of medians and ratios (and writes a PNG chart for README.md).

    python benches/compare.py                       # 10M rows x 10, 5 repetitions
    python benches/compare.py --rows 1000000 --reps 3 --no-peer --no-chart

Contenders, for the numeric frame (rows x 10: 8 float64, 2 int64, benches/frames.py):
  ours           send_dataframe() with the defaults (transport "auto": a file above
                 64 MiB) and get_dataframe() (NumPy columns; also dtype_backend="pyarrow")
  ours shm       transport="shm"
  0.1.2          the published allye_data_connector 0.1.2, defaults (auto: a zstd file
                 above 64 MiB), run by the interpreter of ./.venv-peer in a child process
                 (the same import name) on the same frame; it times itself, one
                 repetition after each of ours (round trips: blocks of 10 in turn), so
                 that both see the same machine (a shared one drifts during a run)
  feather        pyarrow.feather.write_feather(compression="uncompressed") to /dev/shm,
                 read_table(memory_map=True).to_pandas()
  pickle         pickle.dump(protocol=5) to a /dev/shm file, pickle.load
  pwrite limit   os.pwrite of the frame's column bytes into a fresh /dev/shm file: the
                 least a send that hands the data to another process can cost here
  memcpy limit   copying the same bytes into warm (already faulted-in) memory
Also: a 1,000-row send + get round trip in one store (ours vs 0.1.2, after 5 untimed ones), a string-heavy frame (1M rows,
Python str objects and Arrow strings), the RSS a get adds, and a cold get with 10 vs 1M
other events in the manifest. Stores go to --dir (default /dev/shm, as feather's files).
Every store is removed afterwards with the segments its manifest names (benches/storetools.py).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import pickle
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# Run as a script, this file's folder (benches/) is first on sys.path: frames and storetools
# are its neighbours.
from frames import numeric_frame, string_frame
from storetools import latest_ready, remove_store, write_history

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

#: Untimed first round trips of the 1,000-row frame (imports, first mappings), both sides.
WARMUP = 5
PEER_PYTHON = Path(os.environ.get("ADC_PEER_VENV", ROOT / ".venv-peer")) / "bin" / "python"


def rss() -> dict:
    """RssAnon and VmRSS of this process, bytes."""
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            key = line.split(":")[0]
            if key in ("RssAnon", "VmRSS"):
                out[key] = int(line.split()[1]) * 1024
    return out


def timed(fn, *args, **kwargs):
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return time.perf_counter() - t0, out


# --- the 0.1.2 child -------------------------------------------------------------------
# A server in 0.1.2's interpreter: each stdin line is a JSON request, answered by one JSON
# line of timings (0.1.2 times itself). The parent alternates these requests with its own
# repetitions, so that both sides see the same machine: it is shared, and its speed drifts
# over a run by more than some of the differences measured.
#   {"op": "frame", "rows": N, "strings": null|"object"}  one send + get in a fresh store
#   {"op": "round_trips", "n": K}   K 1,000-row send + get round trips in one store
#   {"op": "version"}
PEER_SERVER = r"""
import gc, json, sys, tempfile, time, importlib.metadata
spec = json.loads(sys.argv[1])
from frames import numeric_frame, string_frame
from storetools import latest_ready, remove_store
import allye_data_connector as adc

frames = {}
small_store = tempfile.mkdtemp(prefix="adc-cmp-peer-small-", dir=spec["base"])
small = numeric_frame(1000)

def frame(rows, strings):
    key = (rows, strings)
    if key not in frames:
        frames.clear()
        gc.collect()
        frames[key] = numeric_frame(rows) if strings is None else string_frame(rows, strings)
    return frames[key]

def one(df, name):
    store = tempfile.mkdtemp(prefix="adc-cmp-peer-", dir=spec["base"])
    try:
        t0 = time.perf_counter()
        adc.send_dataframe(df, name, secret_dir=store, notify_canvas=False)
        t1 = time.perf_counter()
        out = adc.get_dataframe(name, secret_dir=store)
        t2 = time.perf_counter()
        assert out.shape == df.shape, out.shape
        transport = latest_ready(store, name)["payload"]["transport"]
        del out
        gc.collect()
    finally:
        remove_store(store)
    return {"send": t1 - t0, "get": t2 - t1, "transport": transport}

try:
    for line in sys.stdin:
        req = json.loads(line)
        if req["op"] == "quit":
            break
        if req["op"] == "version":
            res = {"version": importlib.metadata.version("allye_data_connector")}
        elif req["op"] == "frame":
            res = one(frame(req["rows"], req.get("strings")), "big" if req.get("strings") is None else "s")
        elif req["op"] == "round_trips":
            res = []
            for _ in range(req["n"]):
                t0 = time.perf_counter()
                adc.send_dataframe(small, "small", secret_dir=small_store, notify_canvas=False)
                t1 = time.perf_counter()
                adc.get_dataframe("small", secret_dir=small_store)
                res.append([t1 - t0, time.perf_counter() - t1])
        else:
            raise ValueError(req)
        print(json.dumps(res), flush=True)
finally:
    remove_store(small_store)
"""


class Peer:
    """allye_data_connector 0.1.2 in a child process (``PEER_SERVER``), asked for one
    repetition at a time. ``results`` gathers its timings by case, as the report reads them."""

    def __init__(self, base: Path):
        if not PEER_PYTHON.exists():
            sys.exit(f"no 0.1.2 interpreter at {PEER_PYTHON}: run the tests once (tests/conftest.py creates it), set ADC_PEER_VENV, or pass --no-peer")
        spec = {"base": str(base)}
        # stderr to a file: 0.1.2's resource tracker warns about every segment at exit.
        self.err = tempfile.TemporaryFile(mode="w+")
        self.proc = subprocess.Popen(
            [str(PEER_PYTHON), "-c", PEER_SERVER, json.dumps(spec)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.err, text=True,
            # `-c` puts the working directory first on sys.path: benches/ gives the child
            # frames and storetools, and holds no `allye_data_connector` (the child's is 0.1.2's).
            cwd=HERE,
        )
        self.results: dict = {"version": self.ask({"op": "version"})["version"]}

    def ask(self, req: dict):
        self.proc.stdin.write(json.dumps(req) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            self.err.seek(0)
            sys.exit(f"0.1.2 child died ({self.proc.wait()}):\n{self.err.read()[-4000:]}")
        return json.loads(line)

    def frame(self, case: str, rows: int, strings=None) -> None:
        r = self.ask({"op": "frame", "rows": rows, "strings": strings})
        res = self.results.setdefault(case, {"send": [], "get": [], "transports": []})
        res["send"].append(r["send"])
        res["get"].append(r["get"])
        res["transports"].append(r["transport"])

    def round_trips(self, n: int) -> list:
        return self.ask({"op": "round_trips", "n": n})

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.write(json.dumps({"op": "quit"}) + "\n")
            self.proc.stdin.close()
            self.proc.wait(timeout=120)
        self.err.close()


# --- ours ------------------------------------------------------------------------------
def run_ours(df, reps, base, *, transport="auto", backends=(None,), name="big", measure_rss=False, between=None):
    """``reps`` sends and gets of ``df``, each in a fresh store; ``between()`` is called
    after each repetition (0.1.2's turn, when comparing with it)."""
    import allye_data_connector as adc

    res = {"send": [], "transports": []}
    for b in backends:
        res[f"get:{b or 'numpy'}"] = []
    for rep in range(reps):
        store = Path(tempfile.mkdtemp(prefix="adc-cmp-ours-", dir=base))
        try:
            t, _ = timed(adc.send_dataframe, df, name, secret_dir=store, transport=transport)
            res["send"].append(t)
            payload = latest_ready(store, name)["payload"]
            res["transports"].append(payload["transport"])
            for b in backends:
                gc.collect()
                before = rss()
                t, out = timed(adc.get_dataframe, name, secret_dir=store, dtype_backend=b)
                after = rss()
                res[f"get:{b or 'numpy'}"].append(t)
                if measure_rss and rep == 0:
                    res[f"rss:{b or 'numpy'}"] = {
                        "payload": payload["data_size"],
                        "anon": after["RssAnon"] - before["RssAnon"],
                        "total": after["VmRSS"] - before["VmRSS"],
                    }
                assert out.shape == df.shape
                if rep == 0:
                    check = out.iloc[[0, -1]].astype(object).values.tolist() == df.iloc[[0, -1]].astype(object).values.tolist()
                    assert check, f"{transport}/{b}: values differ"
                del out
        finally:
            remove_store(store)
        if between is not None:
            gc.collect()
            between()
    return res


def run_breakdown(df, reps, base):
    """The two halves of a default send: pandas -> Arrow (one from_pandas, which scans
    float columns for NaN), and the core's write of that Arrow table (manifest lines, the
    payload file) with the GIL released."""
    from allye_data_connector import _core
    from allye_data_connector.frames import dataframe_to_arrow

    convert, write = [], []
    for _ in range(reps):
        t, table = timed(dataframe_to_arrow, df)
        convert.append(t)
        store = Path(tempfile.mkdtemp(prefix="adc-cmp-core-", dir=base))
        try:
            t, _ = timed(_core.send, table, secret_dir=str(store), table_name="big", chunk_rows=0)
            write.append(t)
        finally:
            remove_store(store)
        del table
    return {"convert": convert, "write": write}


ROUND_TRIP_BLOCK = 10


def run_round_trips(df, reps, base, peer=None):
    """``reps`` 1,000-row send + get round trips of ours, and as many of 0.1.2's (when
    ``peer``), alternating in blocks of ``ROUND_TRIP_BLOCK``.
    Returns (our round-trip times, 0.1.2's {"send": [...], "get": [...]} or None)."""
    import allye_data_connector as adc

    store = Path(tempfile.mkdtemp(prefix="adc-cmp-small-", dir=base))
    ours, theirs = [], {"send": [], "get": []}
    try:
        for i in range(WARMUP):
            adc.send_dataframe(df, "small", secret_dir=store)
            adc.get_dataframe("small", secret_dir=store)
        if peer is not None:
            peer.round_trips(WARMUP)
        done = 0
        while done < reps:
            n = min(ROUND_TRIP_BLOCK, reps - done)
            for _ in range(n):
                t0 = time.perf_counter()
                adc.send_dataframe(df, "small", secret_dir=store)
                adc.get_dataframe("small", secret_dir=store)
                ours.append(time.perf_counter() - t0)
            if peer is not None:
                for send, get in peer.round_trips(n):
                    theirs["send"].append(send)
                    theirs["get"].append(get)
            done += n
    finally:
        remove_store(store)
    return ours, (theirs if peer is not None else None)


# --- alternatives and limits -----------------------------------------------------------
def run_feather(df, reps, shm_dir):
    import pyarrow.feather as feather

    send, get = [], []
    path = Path(shm_dir) / f"adc-cmp-{os.getpid()}.feather"
    try:
        for _ in range(reps):
            t, _ = timed(feather.write_feather, df, path, compression="uncompressed")
            send.append(t)
            t, out = timed(lambda: feather.read_table(path, memory_map=True).to_pandas())
            get.append(t)
            assert out.shape == df.shape
            del out
            path.unlink()
    finally:
        path.unlink(missing_ok=True)
    return {"send": send, "get:numpy": get}


def run_pickle(df, reps, shm_dir):
    send, get = [], []
    path = Path(shm_dir) / f"adc-cmp-{os.getpid()}.pkl"
    try:
        for _ in range(reps):
            with open(path, "wb") as f:
                t, _ = timed(pickle.dump, df, f, protocol=5)
            send.append(t)
            with open(path, "rb") as f:
                t, out = timed(pickle.load, f)
            get.append(t)
            assert out.shape == df.shape
            del out
            path.unlink()
    finally:
        path.unlink(missing_ok=True)
    return {"send": send, "get:numpy": get}


def column_bytes(df):
    import numpy as np

    return [memoryview(np.ascontiguousarray(df[c].to_numpy())).cast("B") for c in df.columns]


def run_pwrite(df, reps, shm_dir):
    bufs = column_bytes(df)
    path = Path(shm_dir) / f"adc-cmp-{os.getpid()}.pwrite"
    times = []
    try:
        for _ in range(reps):
            t0 = time.perf_counter()
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
            off = 0
            for b in bufs:
                while len(b):
                    n = os.pwrite(fd, b, off)
                    off += n
                    b = b[n:]
            os.close(fd)
            times.append(time.perf_counter() - t0)
            path.unlink()
    finally:
        path.unlink(missing_ok=True)
    return {"send": times}


def run_memcpy(df, reps):
    import numpy as np

    bufs = [np.frombuffer(b, dtype=np.uint8) for b in column_bytes(df)]
    dst = np.ones(sum(len(b) for b in bufs), dtype=np.uint8)  # faulted in: warm
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        off = 0
        for b in bufs:
            dst[off:off + len(b)] = b
            off += len(b)
        times.append(time.perf_counter() - t0)
    return {"send": times}


def run_history(events_list, reps, base):
    """Cold gets of a 10-row table (sent last, as a segment) after N other events: each
    repetition renames the store, so the lookup is this process's first for that path.
    The stores are built first, then their gets alternate (the machine drifts)."""
    import allye_data_connector as adc


    df = numeric_frame(10)
    stores, out = {}, {}
    try:
        for events in events_list:
            store = Path(tempfile.mkdtemp(prefix="adc-cmp-hist-", dir=base))
            stores[events] = store
            adc.send_dataframe(df, "seed", secret_dir=store, transport="shm")
            write_history(store, events)
            adc.send_dataframe(df, "target", secret_dir=store, transport="shm")
            out[events] = {"get": [], "manifest_bytes": (store / "manifest.jsonl").stat().st_size}
        for i in range(reps + 1):
            for events in events_list:
                new = stores[events].with_name(f"{stores[events].name}-{i}")
                os.rename(stores[events], new)
                stores[events] = new
                t, got = timed(adc.get_dataframe, "target", secret_dir=new)
                assert got.shape == df.shape
                if i:  # the first is a warm-up (imports, first mapping)
                    out[events]["get"].append(t)
    finally:
        for store in stores.values():
            remove_store(store)
    return out


# --- report ----------------------------------------------------------------------------
def med(xs):
    return statistics.median(xs) if xs else float("nan")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--small-reps", type=int, default=100, help="repetitions of the 1,000-row round trip")
    ap.add_argument("--string-rows", type=int, default=1_000_000, help="0: skip the string frames")
    ap.add_argument("--history", type=int, default=1_000_000, help="events for the long-manifest case (0: skip)")
    ap.add_argument("--dir", default="/dev/shm", help="where stores and the feather/pickle/pwrite files go")
    ap.add_argument("--no-peer", action="store_true", help="skip 0.1.2")
    ap.add_argument("--no-chart", action="store_true")
    ap.add_argument("--chart", default=str(HERE / "compare.png"))
    ap.add_argument("--json", help="also write all timings to this file")
    args = ap.parse_args(argv)
    base = Path(args.dir)
    # Our sends notify no canvas (what is timed is the send alone); 0.1.2's are told so by argument.
    os.environ["ALLYE_NOTIFY_CANVAS"] = "0"

    import numpy
    import pandas
    import pyarrow

    import allye_data_connector as adc

    mb = args.rows * 80 / 1e6
    load = os.getloadavg()
    print(
        f"{args.rows:,} rows x 10 (8 float64, 2 int64; {mb:,.0f} MB), medians of {args.reps} reps, files in {base}\n"
        f"ours {adc.__version__} | python {sys.version.split()[0]} numpy {numpy.__version__} pandas {pandas.__version__} "
        f"pyarrow {pyarrow.__version__} | {os.cpu_count()} CPUs | load average at start {load[0]:.2f}",
        flush=True,
    )
    R: dict = {"rows": args.rows, "reps": args.reps, "load_start": load}
    peer = None if args.no_peer else Peer(base)
    try:
        run_all(R, args, base, peer)
    finally:
        if peer is not None:
            peer.close()
    R["0.1.2"] = peer.results if peer is not None else None
    R["load_end"] = os.getloadavg()

    report(R, args)
    if args.json:
        Path(args.json).write_text(json.dumps(R, indent=1, default=str))
    if not args.no_chart:
        chart(R, args)


def run_all(R: dict, args, base: Path, peer) -> None:
    """Every case, ours interleaved with 0.1.2's where both are timed."""
    rows = args.rows
    df = numeric_frame(rows)
    steps = [
        ("ours", lambda: run_ours(
            df, args.reps, base, backends=(None, "pyarrow"), measure_rss=True,
            between=None if peer is None else (lambda: peer.frame("numeric", rows)),
        )),
        ("ours shm", lambda: run_ours(df, args.reps, base, transport="shm")),
        ("ours breakdown", lambda: run_breakdown(df, args.reps, base)),
        ("feather", lambda: run_feather(df, args.reps, base)),
        ("pickle", lambda: run_pickle(df, args.reps, base)),
        ("pwrite limit", lambda: run_pwrite(df, args.reps, base)),
        ("memcpy limit", lambda: run_memcpy(df, args.reps)),
    ]
    for label, step in steps:
        print(f"{label} ...", flush=True)
        R[label] = step()
        gc.collect()
    del df
    gc.collect()
    print("1,000-row round trips ...", flush=True)
    R["small"], peer_small = run_round_trips(numeric_frame(1000), args.small_reps, base, peer)
    if peer is not None:
        peer.results["small"] = peer_small
    if args.string_rows:
        for kind in ("object", "arrow"):
            print(f"string frame ({kind}) ...", flush=True)
            between = None
            if peer is not None and kind == "object":
                between = lambda: peer.frame("strings-object", args.string_rows, "object")  # noqa: E731
            R[f"strings-{kind}"] = run_ours(
                string_frame(args.string_rows, kind), args.reps, base, backends=(None, "pyarrow"), name="s",
                measure_rss=True, between=between,
            )
    if args.history:
        print("long manifest ...", flush=True)
        R["history"] = run_history([10, args.history], max(30, args.reps * 2), base)


def report(R, args):
    peer = R.get("0.1.2")
    ours = R["ours"]
    print(f"\n== numeric frame, {args.rows:,} x 10, medians (s); ratio = that row / ours (default send, default get)")
    s0, g0 = med(ours["send"]), med(ours["get:numpy"])
    rows = [
        ("ours (auto: file, 1 batch)", ours["send"], ours["get:numpy"]),
        ("ours, get dtype_backend=pyarrow", None, ours["get:pyarrow"]),
        ("ours shm", R["ours shm"]["send"], R["ours shm"]["get:numpy"]),
        ("  of a send: pandas -> Arrow", R["ours breakdown"]["convert"], None),
        ("  of a send: core write of that table", R["ours breakdown"]["write"], None),
    ]
    if peer:
        rows.append((f"0.1.2 auto ({','.join(sorted(set(peer['numeric']['transports'])))})", peer["numeric"]["send"], peer["numeric"]["get"]))
    rows += [
        ("feather uncompressed, /dev/shm, mmap", R["feather"]["send"], R["feather"]["get:numpy"]),
        ("pickle protocol 5, /dev/shm", R["pickle"]["send"], R["pickle"]["get:numpy"]),
        ("pwrite limit (fresh /dev/shm file)", R["pwrite limit"]["send"], None),
        ("memcpy limit (warm memory)", R["memcpy limit"]["send"], None),
    ]
    print(f"{'contender':<40}{'send s':>9}{'get s':>10}{'send/ours':>11}{'get/ours':>10}")
    for label, s, g in rows:
        ms, mg = (med(s) if s else None), (med(g) if g else None)
        print(
            f"{label:<40}{'' if ms is None else f'{ms:.3f}':>9}{'' if mg is None else f'{mg:.4f}':>10}"
            f"{'' if ms is None else f'{ms / s0:.2f}':>11}{'' if mg is None else f'{mg / g0:.1f}':>10}"
        )
    rss_np = ours["rss:numpy"]
    print(
        f"get RSS: +{rss_np['anon'] / 1e6:.1f} MB anonymous, +{rss_np['total'] / 1e6:.1f} MB total, "
        f"for a {rss_np['payload'] / 1e6:.0f} MB payload ({100 * rss_np['anon'] / rss_np['payload']:.2f}% / "
        f"{100 * rss_np['total'] / rss_np['payload']:.2f}%)"
    )

    small = med(R["small"])
    print(f"\n== 1,000-row send + get round trip: ours {small * 1e3:.2f} ms", end="")
    if peer:
        ps = med([a + b for a, b in zip(peer["small"]["send"], peer["small"]["get"])])
        print(f", 0.1.2 {ps * 1e3:.2f} ms ({ps / small:.1f}x)")
    else:
        print()

    for kind in ("object", "arrow"):
        r = R.get(f"strings-{kind}")
        if not r:
            continue
        line = (
            f"== strings ({kind}), {args.string_rows:,} rows: send {med(r['send']):.3f} s, get {med(r['get:numpy']):.3f} s, "
            f"get pyarrow {med(r['get:pyarrow']):.4f} s (+{r['rss:pyarrow']['anon'] / 1e6:.1f} MB anonymous of "
            f"{r['rss:pyarrow']['payload'] / 1e6:.0f} MB)"
        )
        if peer and kind == "object" and "strings-object" in peer:
            p = peer["strings-object"]
            line += f"; 0.1.2 send {med(p['send']):.3f} s, get {med(p['get']):.3f} s"
        print(line)

    h = R.get("history")
    if h:
        (few, fh), (many, mh) = sorted(h.items())
        print(
            f"== cold get with {few} events in the manifest {med(fh['get']) * 1e3:.2f} ms; with {many:,} events "
            f"({mh['manifest_bytes'] / 1e6:.0f} MB) {med(mh['get']) * 1e3:.2f} ms ({med(mh['get']) / med(fh['get']):.2f}x)"
        )

    print(f"\n== targets of issue 3 (set for 10M rows and 1M events; this run: {args.rows:,} rows)")
    checks = []
    if peer:
        checks.append(("get >= 100x faster than 0.1.2", med(peer["numeric"]["get"]) / g0, ">=", 100))
        checks.append(("send >= 3x faster than 0.1.2", med(peer["numeric"]["send"]) / s0, ">=", 3))
        checks.append(("1e3 round trip >= 5x faster than 0.1.2", med([a + b for a, b in zip(peer["small"]["send"], peer["small"]["get"])]) / small, ">=", 5))
    checks.append(("get >= 20x faster than feather read", med(R["feather"]["get:numpy"]) / g0, ">=", 20))
    checks.append(("send <= 1.5x the pwrite limit", s0 / med(R["pwrite limit"]["send"]), "<=", 1.5))
    checks.append(("  (its core write alone <= 1.5x the pwrite limit)", med(R["ours breakdown"]["write"]) / med(R["pwrite limit"]["send"]), "<=", 1.5))
    checks.append(("get adds <= 5% of the payload (RSS)", rss_np["total"] / rss_np["payload"], "<=", 0.05))
    if h:
        checks.append((f"get with {many:,} events <= 1.2x get with {few}", med(mh["get"]) / med(fh["get"]), "<=", 1.2))
    r = R.get("strings-arrow") or R.get("strings-object")
    if r:
        checks.append(("string get, pyarrow backend: no copy (<= 5% RSS)", r["rss:pyarrow"]["anon"] / r["rss:pyarrow"]["payload"], "<=", 0.05))
    for label, value, op, limit in checks:
        ok = value >= limit if op == ">=" else value <= limit
        print(f"{'met ' if ok else 'MISS'}  {label:<52} {value:10.3f} (target {op} {limit})")
    la, lb = R["load_start"], R["load_end"]
    print(f"(load average {la[0]:.2f} at start, {lb[0]:.2f} at end; {os.cpu_count()} CPUs)")


def chart(R, args):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    peer = R.get("0.1.2")
    labels, send, get = [], [], []

    def add(label, s, g):
        labels.append(label)
        send.append(med(s) if s else 0)
        get.append(med(g) if g else 0)

    add("ours (default)", R["ours"]["send"], R["ours"]["get:numpy"])
    add("ours, shm", R["ours shm"]["send"], R["ours shm"]["get:numpy"])
    if peer:
        add("0.1.2", peer["numeric"]["send"], peer["numeric"]["get"])
    add("feather, /dev/shm", R["feather"]["send"], R["feather"]["get:numpy"])
    add("pickle 5, /dev/shm", R["pickle"]["send"], R["pickle"]["get:numpy"])
    add("pwrite limit", R["pwrite limit"]["send"], None)
    add("memcpy limit", R["memcpy limit"]["send"], None)

    fig, ax = plt.subplots(figsize=(8, 4.2))
    y = range(len(labels))
    ax.barh([i - 0.2 for i in y], send, height=0.4, label="send")
    ax.barh([i + 0.2 for i in y], [g or float("nan") for g in get], height=0.4, label="get (to pandas)")
    for i, (s, g) in enumerate(zip(send, get)):
        if s:
            ax.text(s, i - 0.2, f" {s:.3g}s", va="center", fontsize=7)
        if g:
            ax.text(g, i + 0.2, f" {g:.3g}s", va="center", fontsize=7)
    ax.set_yticks(list(y), labels)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("seconds (median, log scale)")
    ax.set_title(f"{args.rows:,} rows x 10 numeric columns ({args.rows * 80 / 1e6:,.0f} MB), {os.cpu_count()}-CPU VM")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(args.chart, dpi=110)
    print(f"chart: {args.chart}")


if __name__ == "__main__":
    main()
