"""Named objects side by side: ``adc.objects()`` against a pickle-5 file in ``/dev/shm``
and ``multiprocessing.shared_memory`` + NumPy (arrays only), on the same objects:

- ``array``: a float64 NumPy array of ``--mb`` MB;
- ``frame``: a DataFrame of ``--rows`` rows x 10 float64 columns;
- ``dict100``: a dict of 100 small values (str, int, float, list);
- ``put`` in one process, ``get`` in another (started after the writer exited; a get
  touches one element of each array/column so a lazy reader pays its mapping), and the
  put + get round trip of ``dict100`` in one process;
- ``bookkeeping``: ``len(objs)`` + ``objs.used()`` after 100 and after ``--versions``
  versions written (they must not grow with the number of versions ever written).

Every measurement runs in a fresh worker process (``--worker``), contenders alternating
within each repetition; the table reports medians. brain-plasma (a Plasma server in a
side venv with pyarrow 11) is a contender when ``--brain-python`` names that venv's
interpreter. Run:

    python benches/bench_objects.py [--reps 5] [--mb 800] [--rows 10000000] [--brain-python .venv-brain/bin/python]
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
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def _make(case: str, mb: int, rows: int) -> Any:
    import numpy as np

    if case == "array":
        return np.full(mb * 1024 * 1024 // 8, 1.5)
    if case == "frame":
        import pandas as pd

        return pd.DataFrame({f"c{i}": np.full(rows, float(i)) for i in range(10)})
    if case == "dict100":
        return {f"k{i}": ("v" * 10 if i % 4 == 0 else i if i % 4 == 1 else float(i) if i % 4 == 2 else [i, i]) for i in range(100)}
    raise ValueError(case)


def _touch(value: Any) -> Any:
    import numpy as np

    if isinstance(value, np.ndarray):
        return value[len(value) // 2]
    if hasattr(value, "iloc"):
        return [value[c].iloc[len(value) // 2] for c in value.columns]
    return len(value)


# ---- workers: one contender, one operation, in a fresh interpreter -----------------------


def _put(kind: str, case: str, mb: int, rows: int, where: str) -> float:
    value = _make(case, mb, rows)
    if kind == "ours":
        import allye_data_connector as adc

        objs = adc.objects(secret_dir=where)
        t0 = time.perf_counter()
        objs["x"] = value
        return time.perf_counter() - t0
    if kind == "pickle5":
        import pickle

        t0 = time.perf_counter()
        with open(os.path.join("/dev/shm", where), "wb") as f:
            pickle.dump(value, f, protocol=5)
        return time.perf_counter() - t0
    if kind == "mp_shm":
        import numpy as np
        from multiprocessing import resource_tracker, shared_memory

        t0 = time.perf_counter()
        shm = shared_memory.SharedMemory(name=where, create=True, size=value.nbytes)
        np.ndarray(value.shape, value.dtype, buffer=shm.buf)[...] = value
        dt = time.perf_counter() - t0
        resource_tracker.unregister(shm._name, "shared_memory")  # outlive this process, as the others do
        shm.close()
        return dt
    if kind == "brain":
        from brain_plasma import Brain

        brain = Brain(path=where)  # 0.3.3: Brain(namespace, path); learn(name, thing): use brackets
        t0 = time.perf_counter()
        brain["x"] = value
        return time.perf_counter() - t0
    raise ValueError(kind)


def _create(kind: str, mb: int, where: str) -> float:
    """Seconds to allocate an ``mb`` MB float64 array in shared memory and fill it in
    place (``ours``: ``objs.create`` + publish; ``mp_shm``: a new ``SharedMemory`` filled
    through a NumPy view; ``memset``: a fresh anonymous mapping filled, the limit)."""
    import mmap

    import numpy as np

    n = mb * 1024 * 1024 // 8
    if kind == "ours":
        import allye_data_connector as adc

        objs = adc.objects(secret_dir=where)
        t0 = time.perf_counter()
        with objs.create("x", n, "float64") as arr:
            arr.fill(1.5)
        return time.perf_counter() - t0
    if kind == "mp_shm":
        from multiprocessing import resource_tracker, shared_memory

        t0 = time.perf_counter()
        shm = shared_memory.SharedMemory(name=where, create=True, size=n * 8)
        np.ndarray((n,), np.float64, buffer=shm.buf).fill(1.5)
        dt = time.perf_counter() - t0
        resource_tracker.unregister(shm._name, "shared_memory")
        shm.close()
        return dt
    if kind == "memset":
        t0 = time.perf_counter()
        m = mmap.mmap(-1, n * 8)
        np.frombuffer(m, np.float64).fill(1.5)
        return time.perf_counter() - t0
    raise ValueError(kind)


def _get(kind: str, case: str, mb: int, rows: int, where: str) -> float:
    if kind == "ours":
        import allye_data_connector as adc

        objs = adc.objects(secret_dir=where)
        t0 = time.perf_counter()
        _touch(objs["x"])
        return time.perf_counter() - t0
    if kind == "pickle5":
        import pickle

        t0 = time.perf_counter()
        with open(os.path.join("/dev/shm", where), "rb") as f:
            _touch(pickle.load(f))
        return time.perf_counter() - t0
    if kind == "mp_shm":
        import numpy as np
        from multiprocessing import resource_tracker, shared_memory

        n = mb * 1024 * 1024 // 8
        t0 = time.perf_counter()
        shm = shared_memory.SharedMemory(name=where)
        _touch(np.ndarray((n,), np.float64, buffer=shm.buf))
        dt = time.perf_counter() - t0
        resource_tracker.unregister(shm._name, "shared_memory")
        return dt
    if kind == "brain":
        from brain_plasma import Brain

        brain = Brain(path=where)
        t0 = time.perf_counter()
        _touch(brain["x"])
        return time.perf_counter() - t0
    raise ValueError(kind)


def _round_trip(kind: str, case: str, mb: int, rows: int, where: str) -> float:
    """Median seconds of put + get of the same object in one process (200 rounds)."""
    value = _make(case, mb, rows)
    times = []
    if kind == "ours":
        import allye_data_connector as adc

        objs = adc.objects(secret_dir=where)
        put, get = objs.__setitem__, objs.__getitem__
        for _ in range(200):
            t0 = time.perf_counter()
            put("x", value)
            get("x")
            times.append(time.perf_counter() - t0)
    elif kind == "pickle5":
        import pickle

        path = os.path.join("/dev/shm", where)
        for _ in range(200):
            t0 = time.perf_counter()
            with open(path, "wb") as f:
                pickle.dump(value, f, protocol=5)
            with open(path, "rb") as f:
                pickle.load(f)
            times.append(time.perf_counter() - t0)
    elif kind == "brain":
        from brain_plasma import Brain

        brain = Brain(path=where)
        for _ in range(200):
            t0 = time.perf_counter()
            brain["x"] = value
            brain["x"]
            times.append(time.perf_counter() - t0)
    else:
        raise ValueError(kind)
    return statistics.median(times)


def _bookkeeping(kind: str, versions: int, where: str) -> dict[str, float]:
    """Seconds of ``len(objs) + objs.used()`` after 100 and after ``versions`` versions,
    each measured in a fresh process (which reads the log from the start)."""
    import allye_data_connector as adc

    objs = adc.objects(secret_dir=where)
    for i in range(versions):
        objs[f"n{i % 10}"] = i
    return {"versions": versions}


def _time_bookkeeping(where: str) -> list[float]:
    """``[first call, later calls]``: the first call of a process reads the log once."""
    import allye_data_connector as adc

    objs = adc.objects(secret_dir=where)
    t0 = time.perf_counter()
    len(objs)
    objs.used()
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    for _ in range(20):
        len(objs)
        objs.used()
    return [first, (time.perf_counter() - t0) / 20]


def worker(argv: list[str]) -> None:
    op, kind, case, mb, rows, where = argv[0], argv[1], argv[2], int(argv[3]), int(argv[4]), argv[5]
    if op == "put":
        print(json.dumps(_put(kind, case, mb, rows, where)))
    elif op == "get":
        print(json.dumps(_get(kind, case, mb, rows, where)))
    elif op == "create":
        print(json.dumps(_create(kind, mb, where)))
    elif op == "rt":
        print(json.dumps(_round_trip(kind, case, mb, rows, where)))
    elif op == "fill":
        print(json.dumps(_bookkeeping(kind, rows, where)))
    elif op == "book":
        print(json.dumps(_time_bookkeeping(where)))


# ---- driver --------------------------------------------------------------------------


def _run(python: str, *args: Any) -> Any:
    env = {**os.environ, "ALLYE_NOTIFY_CANVAS": "0"}
    out = subprocess.run([python, __file__, "--worker", *map(str, args)], capture_output=True, text=True, env=env,
                         cwd=ROOT, timeout=1800)
    if out.returncode != 0:
        raise RuntimeError(f"worker {args} failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


class Contender:
    def __init__(self, kind: str, python: str) -> None:
        self.kind, self.python = kind, python
        self.server: Any = None

    def where(self, tag: str) -> str:
        if self.kind == "ours":
            return tempfile.mkdtemp(prefix="bench_objects_")
        if self.kind == "brain":
            return self._plasma()
        return f"bench_objects_{os.getpid()}_{tag}"

    def _plasma(self) -> str:
        self.stop()
        sock = tempfile.mktemp(prefix="plasma_")
        server = Path(self.python).parent / "plasma_store"
        self.server = subprocess.Popen([str(server), "-m", str(4 * 1024**3), "-s", sock],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(100):
            if os.path.exists(sock):
                break
            time.sleep(0.05)
        return sock

    def stop(self) -> None:
        if self.server is not None:
            self.server.terminate()
            self.server.wait()
            self.server = None

    def cleanup(self, where: str) -> None:
        if self.kind == "ours":
            import allye_data_connector as adc

            shutil.rmtree(where, ignore_errors=True)
            adc.cleanup_orphans(dry_run=False)  # the deleted store's segments
        elif self.kind == "brain":
            self.stop()
        else:
            try:
                os.unlink(os.path.join("/dev/shm", where))
            except FileNotFoundError:
                pass


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--mb", type=int, default=800)
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--versions", type=int, default=5000)
    ap.add_argument("--brain-python", default=None)
    args = ap.parse_args()
    contenders = [Contender("ours", sys.executable), Contender("pickle5", sys.executable),
                  Contender("mp_shm", sys.executable)]
    if args.brain_python:
        contenders.append(Contender("brain", args.brain_python))
    results: dict[tuple[str, str, str], list[float]] = {}
    for rep in range(args.reps):
        for case in ("array", "frame"):
            for c in contenders:
                if c.kind == "mp_shm" and case != "array":
                    continue
                where = c.where(f"{case}{rep}")
                try:
                    results.setdefault((case, "put", c.kind), []).append(_run(c.python, "put", c.kind, case, args.mb, args.rows, where))
                    results.setdefault((case, "get", c.kind), []).append(_run(c.python, "get", c.kind, case, args.mb, args.rows, where))
                finally:
                    c.cleanup(where)
        for kind in ("ours", "mp_shm", "memset"):
            c = Contender(kind, sys.executable)
            where = c.where(f"create{rep}")
            try:
                results.setdefault(("array", "create+fill", kind), []).append(_run(sys.executable, "create", kind, "-", args.mb, 0, where))
            finally:
                if kind != "memset":
                    c.cleanup(where)
        for c in contenders:
            if c.kind == "mp_shm":
                continue
            where = c.where(f"dict{rep}")
            try:
                results.setdefault(("dict100", "put+get", c.kind), []).append(_run(c.python, "rt", c.kind, "dict100", 0, 0, where))
            finally:
                c.cleanup(where)
        print(f"rep {rep + 1}/{args.reps} done", file=sys.stderr)
    book: dict[int, list[float]] = {}
    for n in (100, args.versions):
        where = tempfile.mkdtemp(prefix="bench_objects_")
        try:
            _run(sys.executable, "fill", "ours", "-", 0, n, where)
            book[n] = [_run(sys.executable, "book", "ours", "-", 0, 0, where) for _ in range(args.reps)]
        finally:
            shutil.rmtree(where, ignore_errors=True)
    print(f"\nmedians of {args.reps} runs; array {args.mb} MB, frame {args.rows:,} x 10 float64, contenders alternating\n")
    print(f"| case | op | {' | '.join(c.kind for c in contenders)} | ours vs best other |")
    print("|---|---|" + "---|" * len(contenders) + "---|")
    for (case, op) in dict.fromkeys((k[0], k[1]) for k in results):
        kinds = [c.kind for c in contenders] + (["memset"] if op == "create+fill" else [])
        meds = {k: statistics.median(results[(case, op, k)]) for k in kinds if (case, op, k) in results}
        others = [v for k, v in meds.items() if k not in ("ours", "memset")]
        ratio = f"{min(others) / meds['ours']:.1f}x faster" if others and meds["ours"] <= min(others) else \
            (f"{meds['ours'] / min(others):.1f}x slower" if others else "")
        cells = [_fmt(meds[c.kind]) if c.kind in meds else "-" for c in contenders]
        if "memset" in meds:
            ratio += f" (memset of a fresh mapping {_fmt(meds['memset'])}: ours {meds['ours'] / meds['memset']:.2f}x)"
        print(f"| {case} | {op} | {' | '.join(cells)} | {ratio} |")
    for n, runs in book.items():
        print(f"len(objs) + objs.used() after {n:,} versions: first call of a process "
              f"{_fmt(statistics.median(r[0] for r in runs))}, later calls {_fmt(statistics.median(r[1] for r in runs))}")


def _fmt(sec: float) -> str:
    return f"{sec * 1e6:.0f} µs" if sec < 1e-3 else f"{sec * 1e3:.1f} ms" if sec < 1 else f"{sec:.2f} s"


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        worker(sys.argv[2:])
    else:
        main()
