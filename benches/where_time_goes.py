"""Where the time of a small put, a small send + get, and a large get goes: each path
split into its stages, each stage timed on its own in a loop (medians), so that the
sum can be compared with the whole. Run with a release build:

    python benches/where_time_goes.py [--reps 300]

- ``dict``: ``objs["x"] = d`` of a 100-key dict = settings + ``encode`` (pickle 5 into
  an Arrow table) + ``_core.put_object`` (the core: two locked log appends, a segment,
  the auto-gc step, the compaction check); ``objs["x"]`` in another process = settings +
  ``_core.get_object_bytes`` (log index, map, the pickle's bytes as views) +
  ``decode_bytes`` (``pickle.loads``); the older path through a one-row Arrow table
  (``_core.get_object`` + the C stream) is timed beside it;
- ``small``: ``send_dataframe`` / ``get_dataframe`` of a 1,000 x 10 frame, the same way;
- ``big``: ``objs["x"]`` of an 800 MB array in a fresh process, first call, split the
  same way, next to ``shared_memory`` attach + ``np.ndarray``.

Syscalls per operation: ``strace -c -f python benches/where_time_goes.py --only dict-put``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any, Callable


def med(n: int, fn: Callable[[], Any]) -> float:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def dict_put(store: str, n: int) -> dict[str, float]:
    import allye_data_connector as adc
    from allye_data_connector import _core, named_objects, settings

    d = {f"k{i}": ("v" * 10 if i % 4 == 0 else i if i % 4 == 1 else float(i) if i % 4 == 2 else [i, i]) for i in range(100)}
    objs = adc.objects(secret_dir=store)
    objs["x"] = d
    eff = settings.effective(_core.resolve_store(store))
    table, meta = named_objects.encode(d)
    kw = dict(namespace="default", secret_dir=store, metadata={"adc_object": meta}, auto_gc=eff.auto_gc,
              auto_gc_grace_sec=eff.auto_gc_grace_sec, keep_versions=eff.keep_versions)
    return {
        "whole put": med(n, lambda: objs.__setitem__("x", d)),
        "settings": med(n, lambda: settings.effective(_core.resolve_store(store))),
        "encode (pickle 5 -> Arrow)": med(n, lambda: named_objects.encode(d)),
        "pickle.dumps alone": med(n, lambda: __import__("pickle").dumps(d, protocol=5)),
        "_core.put_object": med(n, lambda: _core.put_object(table, "x", **kw)),
        "_core.put_object, no auto-gc": med(n, lambda: _core.put_object(table, "x", **{**kw, "auto_gc": False})),
        "_core.put_object, file": med(n, lambda: _core.put_object(table, "y", transport="file", **kw)),
    }


def dict_get(store: str, n: int) -> dict[str, float]:
    import allye_data_connector as adc
    from allye_data_connector import _core, named_objects, settings

    objs = adc.objects(secret_dir=store)
    t0 = time.perf_counter()
    objs["x"]
    first = time.perf_counter() - t0
    ev, data = _core.get_object("x", secret_dir=store, allow_pickle=True)
    table = named_objects.codecs.table_of(data)
    meta = ev["metadata"]["adc_object"]
    out = {
        "first get of the process": first,
        "whole get": med(n, lambda: objs["x"]),
        "settings": med(n, lambda: settings.effective(_core.resolve_store(store))),
        "_core.get_object": med(n, lambda: _core.get_object("x", secret_dir=store, allow_pickle=True)),
        "C stream -> pa.Table": med(n, lambda: named_objects.codecs.table_of(_core.get_object("x", secret_dir=store, allow_pickle=True)[1])),
        "decode (pickle.loads)": med(n, lambda: named_objects.decode(table, meta)),
        "_core.object_latest (log index only)": med(n, lambda: _core.object_latest("x", secret_dir=store)),
    }
    if hasattr(_core, "get_object_bytes"):  # the bytes as views of the mapping, no Arrow table
        values = _core.get_object_bytes("x", secret_dir=store, allow_pickle=True)[1]
        out["_core.get_object_bytes (MappedBytes)"] = med(n, lambda: _core.get_object_bytes("x", secret_dir=store, allow_pickle=True))
        out["decode_bytes (views + pickle.loads)"] = med(n, lambda: named_objects.codecs.decode_bytes(values, meta))
    return out


def small_send(store: str, n: int) -> dict[str, float]:
    import numpy as np
    import pandas as pd

    import allye_data_connector as adc
    from allye_data_connector import _core, frames as convert, settings

    df = pd.DataFrame({f"c{i}": np.arange(1000, dtype=np.float64) + i for i in range(10)})
    adc.send_dataframe(df, "small", secret_dir=store)
    table = convert.encode(df).table
    return {
        "whole send": med(n, lambda: adc.send_dataframe(df, "small", secret_dir=store)),
        "settings": med(n, lambda: settings.effective(_core.resolve_store(store))),
        "pandas -> Arrow (convert.encode)": med(n, lambda: convert.encode(df)),
        "_core.send": med(n, lambda: _core.send(table, secret_dir=store, table_name="small")),
        "_core.send, no auto-gc": med(n, lambda: _core.send(table, secret_dir=store, table_name="small", auto_gc=False)),
    }


def small_get(store: str, n: int) -> dict[str, float]:
    import allye_data_connector as adc
    from allye_data_connector import _core, frames as convert

    t0 = time.perf_counter()
    adc.get_dataframe("small", secret_dir=store)
    first = time.perf_counter() - t0
    import pyarrow as pa

    tbl = pa.table(_core.get_live("small", secret_dir=store)[1])
    return {
        "first get of the process": first,
        "whole get": med(n, lambda: adc.get_dataframe("small", secret_dir=store)),
        "_core.get_live": med(n, lambda: _core.get_live("small", secret_dir=store)),
        "_core.get_live + pa.table": med(n, lambda: pa.table(_core.get_live("small", secret_dir=store)[1])),
        "Arrow -> pandas": med(n, lambda: convert.arrow_to_dataframe(tbl)),
    }


def big_put(store: str, mb: int) -> dict[str, float]:
    import numpy as np

    import allye_data_connector as adc

    objs = adc.objects(secret_dir=store)
    objs["x"] = np.full(mb * 1024 * 1024 // 8, 1.5)
    return {}


def big_get(store: str, mb: int) -> dict[str, float]:
    """One first get in this fresh process, split: import-free stages timed in order."""
    t0 = time.perf_counter()
    import allye_data_connector as adc
    from allye_data_connector import _core, named_objects

    objs = adc.objects(secret_dir=store)
    t1 = time.perf_counter()
    allow = objs._pickle_allowed()
    t2 = time.perf_counter()
    ev, data = _core.get_object("x", secret_dir=store, allow_pickle=allow)
    t3 = time.perf_counter()
    table = named_objects.codecs.table_of(data)
    t4 = time.perf_counter()
    arr = named_objects.decode(table, ev["metadata"]["adc_object"])
    arr[len(arr) // 2]
    t5 = time.perf_counter()
    again = med(50, lambda: objs["x"][len(arr) // 2])
    return {"objects() handle (import excluded)": t1 - t0, "settings (allow_pickle)": t2 - t1,
            "_core.get_object (first: log scan, open, map)": t3 - t2, "C stream -> pa.Table": t4 - t3,
            "decode (np.frombuffer view) + touch": t5 - t4, "whole first get": t5 - t1, "later gets": again}


def attach(name: str, mb: int) -> dict[str, float]:
    import numpy as np
    from multiprocessing import resource_tracker, shared_memory

    resource_tracker.ensure_running()  # its first use starts a process: not the attach
    t0 = time.perf_counter()
    shm = shared_memory.SharedMemory(name=name)
    a = np.ndarray((mb * 1024 * 1024 // 8,), np.float64, buffer=shm.buf)
    a[len(a) // 2]
    dt = time.perf_counter() - t0
    resource_tracker.unregister(shm._name, "shared_memory")  # type: ignore[attr-defined]
    return {"shared_memory attach + np.ndarray + touch": dt}


WORKERS = {"dict-put": dict_put, "dict-get": dict_get, "small-send": small_send, "small-get": small_get,
           "big-put": big_put, "big-get": big_get, "attach": attach}


def run(*args: Any) -> dict[str, float]:
    out = subprocess.run([sys.executable, __file__, "--worker", *map(str, args)], capture_output=True, text=True,
                         check=True, env={**__import__("os").environ, "ALLYE_NOTIFY_CANVAS": "0"})
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=300)
    ap.add_argument("--mb", type=int, default=800)
    ap.add_argument("--only", choices=sorted(WORKERS))
    ap.add_argument("--worker", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        op, where, n = args.worker
        print(json.dumps(WORKERS[op](where, int(n))))
        return
    store = tempfile.mkdtemp(prefix="where_time_")
    try:
        measure(store, args)
    finally:  # the store, then its segments (collected as a deleted store's)
        import shutil

        import allye_data_connector as adc

        shutil.rmtree(store, ignore_errors=True)
        adc.cleanup_orphans(dry_run=False)


def measure(store: str, args: argparse.Namespace) -> None:
    if args.only:
        print(json.dumps(WORKERS[args.only](store, args.reps), indent=1))
        return
    results: dict[str, dict[str, float]] = {}
    results["100-key dict put"] = run("dict-put", store, args.reps)
    results["100-key dict get, other process"] = run("dict-get", store, args.reps)
    results["1,000-row send"] = run("small-send", store, args.reps)
    results["1,000-row get, other process"] = run("small-get", store, args.reps)
    run("big-put", store, args.mb)
    results[f"{args.mb} MB array get, fresh process"] = run("big-get", store, args.mb)
    import numpy as np
    from multiprocessing import resource_tracker, shared_memory

    shm = shared_memory.SharedMemory(create=True, size=args.mb * 1024 * 1024)
    np.ndarray((args.mb * 1024 * 1024 // 8,), np.float64, buffer=shm.buf)[...] = 1.5
    try:
        results["floor"] = run("attach", shm.name.lstrip("/"), args.mb)
    finally:
        shm.close()
        shm.unlink()
        del resource_tracker
    for what, stages in results.items():
        print(f"\n{what}")
        for k, v in stages.items():
            print(f"  {k:48s} {v * 1e3:9.3f} ms")


if __name__ == "__main__":
    main()
