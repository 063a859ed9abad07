"""Shared arrays side by side: allye_data_connector's SharedArray (through the ataraxis
shim where the calls are ataraxis'), ataraxis-data-structures' SharedMemoryArray (in its
own venv) and ``multiprocessing.Array`` + its ``Lock``, on the same work:

- ``scalar``: one locked scalar write + read (ataraxis-compatible calls:
  ``write_data(0, v)`` + ``read_data(0)``; ataraxis 4's ``sma[0] = v`` + ``sma[0]``, each
  locked; ``multiprocessing``: ``with lock: a[0] = v`` + ``with lock: a[0]``);
- ``incr``: 4 processes x 100,000 locked increments of one element (exact count checked):
  ours ``arr.add(0, 1)`` (one native call) and, as a second row, ``with arr.locked() as v:
  v[0] += 1``; ataraxis ``with sma.array() as a: a[0] += 1``; ``multiprocessing``
  ``with lock: a[0] += 1``;
- ``view``: an unlocked read of an 8 MB slice (ours and ataraxis' ``array(with_lock=False)``
  give a view; ``read_data(..., with_lock=False)`` / ``sma[a:b]`` copy).

Every measurement runs in a fresh worker process (``--worker``), contenders alternating
within each repetition; the table reports medians. Run:

    python benches/bench_arrays.py [--reps 5] [--ataraxis-python .venv-ataraxis/bin/python]
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
N_SCALAR = 200_000
N_PROCS = 4
N_INCR = 100_000
VIEW_BYTES = 8 * 1024 * 1024


# ---- workers (run in their own interpreter; import only what the contender needs) ----


def _scalar(kind: str, n: int) -> float:
    """Seconds per (locked write + locked read) of element 0."""
    import numpy as np

    if kind == "ours":
        from allye_data_connector.compat.ataraxis import SharedMemoryArray

        store = tempfile.mkdtemp()
        sma = SharedMemoryArray.create_array("bench_scalar", np.zeros(8, dtype=np.uint64), secret_dir=store)
        write, read = sma.write_data, sma.read_data
        t0 = time.perf_counter()
        for i in range(n):
            write(0, i)
            read(0)
        dt = time.perf_counter() - t0
        sma.destroy()
    elif kind == "ataraxis":
        from ataraxis_data_structures import SharedMemoryArray as Atx

        sma = Atx.create_array(f"bench_scalar_{os.getpid()}", np.zeros(8, dtype=np.uint64), exists_ok=True)
        sma.connect()
        t0 = time.perf_counter()
        for i in range(n):
            sma[0] = i
            sma[0]
        dt = time.perf_counter() - t0
        sma.disconnect()
        sma.destroy()
    else:
        import multiprocessing as mp

        arr = mp.Array("Q", 8)
        lock = arr.get_lock()
        t0 = time.perf_counter()
        for i in range(n):
            with lock:
                arr[0] = i
            with lock:
                arr[0]
        dt = time.perf_counter() - t0
    return dt / n


def _incr_child(kind: str, obj, n: int, ready, go) -> None:  # type: ignore[no-untyped-def]
    if kind in ("ours", "ours-block"):
        arr = obj
        ready.put(1)
        go.wait()
        if kind == "ours":
            add = arr.add
            for _ in range(n):
                add(0, 1)  # one native call: lock, view[0] += 1, unlock
        else:
            locked = arr.locked
            for _ in range(n):
                with locked() as v:
                    v[0] += 1
        arr.close()
    elif kind == "ataraxis":
        sma = obj
        sma.connect()
        ready.put(1)
        go.wait()
        for _ in range(n):
            with sma.array(with_lock=True) as v:
                v[0] += 1
        sma.disconnect()
    else:
        arr = obj
        lock = arr.get_lock()
        ready.put(1)
        go.wait()
        for _ in range(n):
            with lock:
                arr[0] += 1


def _incr(kind: str, n: int) -> float:
    """Increments per second of N_PROCS processes x n locked increments of one element."""
    import multiprocessing as mp

    import numpy as np

    # fork: ataraxis' lock is a default-context multiprocessing.Lock, which spawn cannot pass.
    ctx = mp.get_context("fork")
    if kind in ("ours", "ours-block"):
        from allye_data_connector import SharedArray

        obj = SharedArray.create("bench_incr", 1, np.int64, secret_dir=tempfile.mkdtemp())
        final = lambda: int(obj.read(0))  # noqa: E731
    elif kind == "ataraxis":
        from ataraxis_data_structures import SharedMemoryArray as Atx

        obj = Atx.create_array(f"bench_incr_{os.getpid()}", np.zeros(1, dtype=np.int64), exists_ok=True)
        obj.connect()
        final = lambda: int(obj[0])  # noqa: E731
    else:
        obj = ctx.Array("q", 1)
        final = lambda: int(obj[0])  # noqa: E731
    ready, go = ctx.Queue(), ctx.Event()
    procs = [ctx.Process(target=_incr_child, args=(kind, obj, n, ready, go)) for _ in range(N_PROCS)]
    for p in procs:
        p.start()
    for _ in procs:
        ready.get(timeout=120)
    t0 = time.perf_counter()
    go.set()
    for p in procs:
        p.join()
    dt = time.perf_counter() - t0
    got = final()
    if got != N_PROCS * n:
        raise SystemExit(f"{kind}: final count {got}, expected {N_PROCS * n}")
    if kind in ("ours", "ours-block"):
        obj.destroy()
    elif kind == "ataraxis":
        obj.disconnect()
        obj.destroy()
    return N_PROCS * n / dt


def _view(kind: str, n: int) -> dict:
    """Seconds per unlocked 8 MB slice read: as a view, and as the copy read_data gives."""
    import numpy as np

    count = VIEW_BYTES // 8
    proto = np.arange(count + 16, dtype=np.float64)
    out = {}
    if kind == "ours":
        from allye_data_connector import SharedArray

        arr = SharedArray.from_array("bench_view", proto, secret_dir=tempfile.mkdtemp())
        view = arr.array
        t0 = time.perf_counter()
        for _ in range(n):
            s = arr.array[8 : 8 + count]
        out["view"] = (time.perf_counter() - t0) / n
        assert np.shares_memory(s, view) and s.nbytes == VIEW_BYTES
        t0 = time.perf_counter()
        for _ in range(n // 100):
            arr.read(slice(8, 8 + count), lock=False)
        out["copy"] = (time.perf_counter() - t0) / (n // 100)
        arr.destroy()
    elif kind == "ataraxis":
        from ataraxis_data_structures import SharedMemoryArray as Atx

        sma = Atx.create_array(f"bench_view_{os.getpid()}", proto, exists_ok=True)
        sma.connect()
        t0 = time.perf_counter()
        for _ in range(n):
            with sma.array(with_lock=False) as a:
                s = a[8 : 8 + count]
        out["view"] = (time.perf_counter() - t0) / n
        t0 = time.perf_counter()
        for _ in range(n // 100):
            sma[8 : 8 + count]
        out["copy"] = (time.perf_counter() - t0) / (n // 100)
        sma.disconnect()
        sma.destroy()
    else:
        import multiprocessing as mp

        arr = mp.Array("d", count + 16)
        t0 = time.perf_counter()
        for _ in range(n // 100):
            arr[8 : 8 + count]  # a list of floats: multiprocessing has no view
        out["copy"] = (time.perf_counter() - t0) / (n // 100)
    return out


def worker(kind: str, what: str) -> None:
    if what == "scalar":
        result: object = _scalar(kind, N_SCALAR)
    elif what == "incr":
        result = _incr(kind, N_INCR)
    else:
        result = _view(kind, 2000)
    print(json.dumps(result))


# ---- the driver -------------------------------------------------------------------------


def run(python: str, kind: str, what: str) -> object:
    out = subprocess.run([python, __file__, "--worker", kind, what], capture_output=True, text=True, timeout=1800)
    if out.returncode != 0:
        raise SystemExit(f"{kind} {what} failed:\n{out.stdout}\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--ataraxis-python", default=str(ROOT / ".venv-ataraxis" / "bin" / "python"))
    ap.add_argument("--only", choices=["scalar", "incr", "view"])
    ap.add_argument("--worker", nargs=2, metavar=("KIND", "WHAT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(*args.worker)
        return
    contenders = {"ours": sys.executable, "ataraxis": args.ataraxis_python, "multiprocessing": sys.executable}
    whats = [args.only] if args.only else ["scalar", "incr", "view"]
    results: dict[tuple[str, str], list] = {}
    for rep in range(args.reps):
        for what in whats:
            extra = {"ours-block": sys.executable} if what == "incr" else {}
            for kind, python in {**contenders, **extra}.items():  # alternating within each repetition
                results.setdefault((what, kind), []).append(run(python, kind, what))
        print(f"repetition {rep + 1}/{args.reps} done", file=sys.stderr)

    def med(what: str, kind: str, key: str | None = None) -> float:
        vals = results[(what, kind)]
        return statistics.median(v[key] if key else v for v in vals)

    print("| work | allye (ours) | ataraxis 4.0.0 | multiprocessing | ours vs ataraxis | ours vs multiprocessing |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    if "scalar" in whats:
        o, a, m = (med("scalar", k) * 1e6 for k in contenders)
        print(f"| locked scalar write + read (µs) | {o:.2f} | {a:.2f} | {m:.2f} | {a / o:.1f}x | {m / o:.1f}x |")
    if "incr" in whats:
        o, a, m = (med("incr", k) for k in contenders)
        print(f"| {N_PROCS} procs x {N_INCR:,} locked increments (/s): `arr.add(0, 1)` | {o:,.0f} | {a:,.0f} | {m:,.0f} | {o / a:.1f}x | {o / m:.1f}x |")
        b = med("incr", "ours-block")
        print(f"| the same with `with arr.locked() as v: v[0] += 1` (/s) | {b:,.0f} | | | {b / a:.1f}x | {b / m:.1f}x |")
    if "view" in whats:
        o, a = med("view", "ours", "view") * 1e6, med("view", "ataraxis", "view") * 1e6
        print(f"| unlocked 8 MB slice as a view (µs) | {o:.2f} | {a:.2f} | no view | {a / o:.1f}x | |")
        o, a, m = (med("view", k, "copy") * 1e6 for k in contenders)
        print(f"| unlocked 8 MB slice copied (µs) | {o:,.0f} | {a:,.0f} | {m:,.0f} | {a / o:.1f}x | {m / o:.1f}x |")


if __name__ == "__main__":
    main()
