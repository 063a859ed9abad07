"""Side by side with the peers' own stores (issue 25): our compat shims against Ray's object
store, brain-plasma 0.3.3 on pyarrow 11's Plasma server, ataraxis-data-structures 7.2,
allye_data_connector 0.1.2 and the machine's floors, on the same work:

- ``array``: an ``--mb`` MB float64 array; ``frame``: ``--rows`` x 10 float64 DataFrame.
  ``put`` in a fresh process: the first put of that process, then ``--puts`` - 1 more of
  the same name ``--pause`` s apart (steady state: what a process putting in a loop pays);
  ``get``: in another fresh process (Ray: the putting process, its objects die with it).
  Each get touches one element of the array / of every column.
- ``dict``: a 100-key dict, put (median of 200 in one process) and get in another process
  (median of 200).
- ``small``: a 1,000-row x 10 frame sent (median of 200 sends in one process) and got in
  another process (median of 200 gets): ours and 0.1.2's ``send_dataframe`` /
  ``get_dataframe``; the core's native floor when ``target/release/examples/send_timing``
  is built (``cargo build --release -p allye-core --example send_timing``).
- ``scalar``: one locked scalar write + read (the ataraxis shim, ataraxis 7.2,
  ``multiprocessing.Array`` + its lock); ``incr``: 4 processes x ``--incr`` locked
  increments in ataraxis' atomic form ``with sma.array(with_lock=True) as a: a[0] += 1``
  (exact count checked).
- floors: ``pwrite`` of the bytes into a fresh ``/dev/shm`` file, pickle-5 to a
  ``/dev/shm`` file (and back, in another process), pickle-5 with out-of-band buffers
  (the buffers in a ``/dev/shm`` file, loaded in another process over its mapping: the
  zero-copy get of this interpreter's numpy and pandas, their first use included),
  ``multiprocessing.shared_memory`` attach + ``np.ndarray`` over it.

Memory: each put reports the putting process's RSS, ``/dev/shm`` held by the machine
after the puts minus before, and (ours) the pool's resident bytes.

Every measurement runs in fresh processes, contenders alternating within each repetition;
tables report medians of ``--reps``. The peers live in side venvs made by
``bash benches/peers/setup.sh``; a peer whose venv is missing is left out. Run::

    bash benches/peers/setup.sh && python benches/compare_peers.py [--reps 3]

This file is run by the side venvs' interpreters too: it imports only the standard
library at module level.
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
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

ROOT = Path(__file__).resolve().parent.parent
VENVS = {"ray": ".venv-ray", "brain": ".venv-brain", "ataraxis": ".venv-ataraxis", "v012": ".venv-peer"}


# ---- helpers of the workers ----------------------------------------------------------------


def _rss() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def _shm_used() -> int:
    st = os.statvfs("/dev/shm")
    return (st.f_blocks - st.f_bfree) * st.f_frsize


def _make(case: str, mb: int, rows: int) -> Any:
    import numpy as np

    if case == "array":
        return np.full(mb * 1024 * 1024 // 8, 1.5)
    if case in ("frame", "small"):
        import pandas as pd

        n = rows if case == "frame" else 1000
        return pd.DataFrame({f"c{i}": np.arange(n, dtype=np.float64) + i for i in range(10)})
    if case == "dict":
        return {f"k{i}": ("v" * 10 if i % 4 == 0 else i if i % 4 == 1 else float(i) if i % 4 == 2 else [i, i])
                for i in range(100)}
    raise ValueError(case)


def _touch(value: Any) -> Any:
    if hasattr(value, "iloc"):
        return [value[c].iloc[len(value) // 2] for c in value.columns]
    if hasattr(value, "dtype"):
        return value[len(value) // 2]
    return len(value)


def _pool_bytes() -> Optional[int]:
    """This process's pool: free and quarantined bytes (None for a build without one)."""
    from allye_data_connector import _core

    if not hasattr(_core, "pool_stats"):
        return None
    s = _core.pool_stats()
    return int(s["free_bytes"] + s["quarantined_bytes"])


class _Store:
    """One contender's put/get calls (``where``: a store directory, a Plasma socket, a path)."""

    def __init__(self, kind: str, where: str) -> None:
        self.kind, self.where = kind, where
        if kind == "ours":
            from allye_data_connector.compat.brain_plasma import Brain

            self.brain = Brain(path=where, size=64 * 1024**3)
        elif kind == "brain":
            from brain_plasma import Brain

            self.brain = Brain(path=where)
        elif kind in ("pickle5", "pickle5oob"):
            # Imported before the clock starts, as every contender's store imports them:
            # a load would otherwise time numpy's and pandas' imports (0.25 s), not the load.
            import numpy  # noqa: F401
            import pandas  # noqa: F401
        elif kind == "ray":
            import ray

            ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
            self.ray, self.ref = ray, None

    def put(self, value: Any) -> None:
        if self.kind in ("ours", "brain"):
            self.brain["x"] = value
        elif self.kind == "ray":
            self.ref = self.ray.put(value)
        elif self.kind == "pickle5":
            import pickle

            with open(self.where, "wb") as f:
                pickle.dump(value, f, protocol=5)
        elif self.kind == "pickle5oob":
            import pickle

            buffers: list[Any] = []
            head = pickle.dumps(value, protocol=5, buffer_callback=buffers.append)
            raws = [b.raw() for b in buffers]
            with open(self.where + ".bufs", "wb") as f:
                for r in raws:
                    f.write(r)
            with open(self.where, "wb") as f:
                f.write(json.dumps([len(r) for r in raws]).encode() + b"\n" + head)
        elif self.kind == "pwrite":
            fd = os.open(self.where + f".{time.perf_counter_ns()}", os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
            try:
                os.pwrite(fd, memoryview(value).cast("B"), 0)
            finally:
                os.close(fd)
        else:
            raise ValueError(self.kind)

    def get(self) -> Any:
        if self.kind in ("ours", "brain"):
            return self.brain["x"]
        if self.kind == "ray":
            return self.ray.get(self.ref)
        if self.kind == "pickle5":
            import pickle

            with open(self.where, "rb") as f:
                return pickle.load(f)
        if self.kind == "pickle5oob":
            import mmap
            import pickle

            with open(self.where, "rb") as f:
                lens, head = f.read().split(b"\n", 1)
            with open(self.where + ".bufs", "rb") as f:
                view = memoryview(mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ))
            views, at = [], 0
            for n in json.loads(lens):
                views.append(view[at:at + n])
                at += n
            return pickle.loads(head, buffers=views)
        raise ValueError(self.kind)


def w_put(kind: str, case: str, mb: int, rows: int, where: str, puts: int, pause: float) -> dict[str, Any]:
    value = _make(case, mb, rows)
    shm0 = _shm_used()
    s = _Store(kind, where)
    times = []
    for i in range(puts):
        if i:
            time.sleep(pause)
        t0 = time.perf_counter()
        s.put(value)
        times.append(time.perf_counter() - t0)
    out: dict[str, Any] = {"first": times[0], "steady": statistics.median(times[1:]) if puts > 1 else None,
                           "rss": _rss(), "shm_held": _shm_used() - shm0}
    if kind == "ours":
        out["pool"] = _pool_bytes()
        from allye_data_connector import _core

        if hasattr(_core, "pool_stats"):  # hits and misses: was each steady put served by the pool?
            out["pool_stats"] = _core.pool_stats()
        out["times"] = times
    if kind == "ray":  # Ray's objects die with their driver: get in the same process
        t0 = time.perf_counter()
        _touch(s.get())
        out["get"] = time.perf_counter() - t0
    return out


def w_get(kind: str, case: str, mb: int, rows: int, where: str) -> dict[str, Any]:
    if kind == "mp_attach":
        import numpy as np
        from multiprocessing import resource_tracker, shared_memory

        resource_tracker.ensure_running()  # its first use starts a process: not the attach
        t0 = time.perf_counter()
        shm = shared_memory.SharedMemory(name=where)
        _touch(np.ndarray((mb * 1024 * 1024 // 8,), np.float64, buffer=shm.buf))
        dt = time.perf_counter() - t0
        resource_tracker.unregister(shm._name, "shared_memory")  # type: ignore[attr-defined]
        return {"get": dt}
    s = _Store(kind, where)
    t0 = time.perf_counter()
    _touch(s.get())
    return {"get": time.perf_counter() - t0, "rss": _rss()}


def w_mp_create(mb: int, where: str) -> dict[str, Any]:
    """A ``shared_memory`` segment holding the array, for the attach floor (not timed)."""
    import numpy as np
    from multiprocessing import resource_tracker, shared_memory

    value = _make("array", mb, 0)
    shm = shared_memory.SharedMemory(name=where, create=True, size=value.nbytes)
    np.ndarray(value.shape, value.dtype, buffer=shm.buf)[...] = value
    resource_tracker.unregister(shm._name, "shared_memory")  # type: ignore[attr-defined]
    shm.close()
    return {}


def _median_of(n: int, fn: Callable[[], Any]) -> float:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def w_dict(kind: str, op: str, where: str) -> dict[str, Any]:
    value = _make("dict", 0, 0)
    s = _Store(kind, where)
    if op == "put":
        out: dict[str, Any] = {"put": _median_of(200, lambda: s.put(value))}
        if kind == "ray":
            out["get"] = _median_of(200, lambda: s.get())
        return out
    return {"get": _median_of(200, lambda: s.get())}


def w_small(kind: str, op: str, where: str) -> dict[str, Any]:
    import allye_data_connector as adc

    if op == "send":
        # The reader runs while the sender lives: 0.1.2's segments die with their sender
        # (its resource tracker unlinks them).
        df = _make("small", 0, 0)
        out = {"send": _median_of(200, lambda: adc.send_dataframe(df, "small", secret_dir=where))}
        got = subprocess.run([sys.executable, __file__, "--worker", "small", kind, "get", where], capture_output=True,
                             text=True, check=True)
        return {**out, **json.loads(got.stdout.strip().splitlines()[-1])}
    return {"get": _median_of(200, lambda: adc.get_dataframe("small", secret_dir=where))}


def w_scalar(kind: str) -> dict[str, Any]:
    import numpy as np

    n = 200_000
    if kind == "ours":
        from allye_data_connector.compat.ataraxis import SharedMemoryArray

        sma: Any = SharedMemoryArray.create_array("bench_scalar", np.zeros(8, dtype=np.uint64),
                                                  secret_dir=tempfile.mkdtemp())
    elif kind == "ataraxis":
        from ataraxis_data_structures import SharedMemoryArray as Atx

        sma = Atx.create_array(f"bench_scalar_{os.getpid()}", np.zeros(8, dtype=np.uint64), exists_ok=True)
        array = sma.array  # 7.x: every access goes through its array(with_lock=...) block
        t0 = time.perf_counter()
        for i in range(n):
            with array(with_lock=True) as a:
                a[0] = i
            with array(with_lock=True) as a:
                a[0]
        dt = time.perf_counter() - t0
        sma.disconnect()
        sma.destroy()
    if kind == "ours":
        write, read = sma.write_data, sma.read_data
        t0 = time.perf_counter()
        for i in range(n):
            write(0, i)
            read(0)
        dt = time.perf_counter() - t0
        sma.disconnect()
        sma.destroy()
    elif kind == "multiprocessing":
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
    return {"scalar": dt / n}


def _incr_child(kind: str, obj: Any, n: int, ready: Any, go: Any) -> None:
    if kind == "multiprocessing":
        lock = obj.get_lock()
        ready.put(1)
        go.wait()
        for _ in range(n):
            with lock:
                obj[0] += 1
        return
    if hasattr(obj, "connect"):  # ataraxis and our shim: its atomic form
        if not obj.is_connected:
            obj.connect()
        ready.put(1)
        go.wait()
        for _ in range(n):
            with obj.array(with_lock=True) as a:
                a[0] += 1
        obj.disconnect()
    else:  # our shim without ataraxis' array(): the SharedArray's own locked block
        ready.put(1)
        go.wait()
        locked = obj.locked
        for _ in range(n):
            with locked() as a:
                a[0] += 1
        obj.close()


def w_incr(kind: str, n: int) -> dict[str, Any]:
    import multiprocessing as mp

    import numpy as np

    ctx = mp.get_context("fork")  # ataraxis' lock is a default-context Lock, which spawn cannot pass
    form = "sma.array(with_lock=True)"
    if kind == "ours":
        from allye_data_connector.compat.ataraxis import SharedMemoryArray

        if hasattr(SharedMemoryArray, "array"):
            obj: Any = SharedMemoryArray.create_array("bench_incr", np.zeros(1, dtype=np.int64),
                                                      secret_dir=tempfile.mkdtemp())
            final = lambda: int(obj.read_data(0))  # noqa: E731
        else:  # the next wave adds ataraxis' array() to the shim
            from allye_data_connector import SharedArray

            form = "SharedArray.locked(): the shim has no array() yet"
            obj = SharedArray.create("bench_incr", 1, np.int64, fill=0, secret_dir=tempfile.mkdtemp())
            final = lambda: int(obj.read(0))  # noqa: E731
    elif kind == "ataraxis":
        from ataraxis_data_structures import SharedMemoryArray as Atx

        obj = Atx.create_array(f"bench_incr_{os.getpid()}", np.zeros(1, dtype=np.int64), exists_ok=True)

        def final() -> int:
            with obj.array(with_lock=False) as a:
                return int(a[0])
    else:
        obj = ctx.Array("q", 1)
        final = lambda: int(obj[0])  # noqa: E731
        form = "with lock: a[0] += 1"
    ready, go = ctx.Queue(), ctx.Event()
    procs = [ctx.Process(target=_incr_child, args=(kind, obj, n, ready, go)) for _ in range(4)]
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
    if got != 4 * n:
        raise SystemExit(f"{kind}: final count {got}, expected {4 * n}")
    if kind != "multiprocessing":
        obj.destroy()
    return {"incr": 4 * n / dt, "form": form}


def worker(argv: list[str]) -> None:
    op, rest = argv[0], argv[1:]
    if op == "put":
        kind, case, mb, rows, where, puts, pause = rest
        out = w_put(kind, case, int(mb), int(rows), where, int(puts), float(pause))
    elif op == "get":
        kind, case, mb, rows, where = rest
        out = w_get(kind, case, int(mb), int(rows), where)
    elif op == "mp_create":
        out = w_mp_create(int(rest[0]), rest[1])
    elif op == "dict":
        out = w_dict(*rest)
    elif op == "small":
        out = w_small(*rest)
    elif op == "scalar":
        out = w_scalar(rest[0])
    elif op == "incr":
        out = w_incr(rest[0], int(rest[1]))
    else:
        raise SystemExit(f"unknown worker {op}")
    print(json.dumps(out))


# ---- the driver ----------------------------------------------------------------------------


def run(python: str, *args: Any, env: Optional[dict[str, str]] = None) -> dict[str, Any]:
    env = {**os.environ, "ALLYE_NOTIFY_CANVAS": "0", "RAY_DEDUP_LOGS": "0", **(env or {})}
    if python != sys.executable:
        # A side venv's interpreter imports its own packages: a PYTHONPATH that points
        # this run at another build of ours (a release wheel unpacked beside) is not for it.
        env.pop("PYTHONPATH", None)
    out = subprocess.run([python, __file__, "--worker", *map(str, args)], capture_output=True, text=True, env=env,
                         cwd=ROOT, timeout=1800)
    if out.returncode != 0:
        raise RuntimeError(f"worker {args} failed:\n{out.stdout[-2000:]}\n{out.stderr[-4000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


class Plasma:
    """brain-plasma's server: ``plasma_store`` from the side venv's pyarrow 11."""

    def __init__(self, python: str, gb: int = 4) -> None:
        self.sock = tempfile.mktemp(prefix="plasma_")
        server = Path(python).parent / "plasma_store"
        self.proc = subprocess.Popen([str(server), "-m", str(gb * 1024**3), "-s", self.sock],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(200):
            if os.path.exists(self.sock):
                break
            time.sleep(0.05)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait()


def _ours_cleanup(where: str) -> None:
    subprocess.run([sys.executable, "-c", "import allye_data_connector as adc; adc.cleanup_orphans(dry_run=False)"],
                   check=False, env={**os.environ, "ALLYE_NOTIFY_CANVAS": "0"})


@contextmanager
def ours_store(prefix: str = "cmp_peers_") -> Iterator[str]:
    """A temporary store for one contender's run; deleted after, with its segments."""
    where = tempfile.mkdtemp(prefix=prefix)
    try:
        yield where
    finally:
        shutil.rmtree(where, ignore_errors=True)
        _ours_cleanup(where)


def _fmt(sec: Optional[float]) -> str:
    if sec is None:
        return ""
    return f"{sec * 1e6:.2f} µs" if sec < 1e-4 else f"{sec * 1e3:.2f} ms" if sec < 1 else f"{sec:.2f} s"


def _mb(n: Optional[float]) -> str:
    return "" if n is None else f"{n / 1e6:,.0f} MB"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--mb", type=int, default=800)
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--puts", type=int, default=4, help="puts per put worker: the first, then the steady ones")
    ap.add_argument("--pause", type=float, default=1.5, help="seconds between puts of a put worker")
    ap.add_argument("--incr", type=int, default=100_000)
    ap.add_argument("--only", nargs="*", choices=["array", "frame", "dict", "small", "scalar", "incr"])
    ap.add_argument("--json", help="also write the raw results here")
    ap.add_argument("--no-peers", action="store_true", help="ours and the floors only (the CI smoke run)")
    ap.add_argument("--worker", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args.worker)
        return

    py = {k: str(ROOT / v / "bin" / "python") for k, v in VENVS.items()}
    have = {k for k, p in py.items() if os.path.exists(p) and not args.no_peers}
    missing = set(VENVS) - have
    if missing and not args.no_peers:
        print(f"left out (no side venv; run benches/peers/setup.sh): {', '.join(sorted(missing))}", file=sys.stderr)
    ours = sys.executable
    only = set(args.only or ["array", "frame", "dict", "small", "scalar", "incr"])
    res: dict[tuple[str, str], list[dict[str, Any]]] = {}

    def add(what: str, kind: str, r: dict[str, Any]) -> None:
        res.setdefault((what, kind), []).append(r)

    for rep in range(args.reps):
        for case in ("array", "frame"):
            if case not in only:
                continue
            kinds = ("ours", "ours-nopool", "brain", "ray", "pickle5", "pickle5oob", "pwrite", "mp_attach")
            # Who goes first moves each repetition: the first process after the previous
            # case's teardown (its memory given back) measured slower whoever it was.
            shift = (rep * 3) % len(kinds)
            for kind in kinds[shift:] + kinds[:shift]:
                if kind in ("brain", "ray") and kind not in have or kind in ("pwrite", "mp_attach") and case != "array":
                    continue
                common = (case, args.mb, args.rows)
                if kind == "ours-nopool":  # the same build without its pool: the path sends took before it
                    with ours_store() as where:
                        add(case, kind, run(ours, "put", "ours", *common, where, args.puts, args.pause,
                                            env={"ALLYE_POOL_MAX_BYTES": "0"}))
                elif kind == "ours":
                    with ours_store() as where:
                        add(case, kind, run(ours, "put", kind, *common, where, args.puts, args.pause))
                        add(case + ":get", kind, run(ours, "get", kind, *common, where))
                elif kind == "brain":
                    plasma = Plasma(py["brain"], gb=max(4, 3 * args.mb // 1000 + 1))
                    try:
                        add(case, kind, run(py["brain"], "put", kind, *common, plasma.sock, args.puts, args.pause))
                        add(case + ":get", kind, run(py["brain"], "get", kind, *common, plasma.sock))
                    finally:
                        plasma.stop()
                elif kind == "ray":
                    add(case, kind, run(py["ray"], "put", kind, *common, "-", args.puts, args.pause))
                elif kind in ("pickle5", "pickle5oob", "pwrite"):
                    where = f"/dev/shm/cmp_peers_{os.getpid()}_{kind}"
                    try:
                        add(case, kind, run(ours, "put", kind, *common, where, 1, 0))
                        if kind != "pwrite":
                            add(case + ":get", kind, run(ours, "get", kind, *common, where))
                    finally:
                        for f in Path("/dev/shm").glob(f"cmp_peers_{os.getpid()}_*"):
                            f.unlink()
                else:
                    name = f"cmp_peers_{os.getpid()}_mp"
                    run(ours, "mp_create", args.mb, name)
                    try:
                        add(case + ":get", kind, run(ours, "get", kind, *common, name))
                    finally:
                        Path("/dev/shm", name).unlink(missing_ok=True)
        if "dict" in only:
            for kind in ("ours", "brain", "ray", "pickle5"):
                if kind in ("brain", "ray") and kind not in have:
                    continue
                python = py.get(kind, ours) if kind in ("brain", "ray") else ours
                plasma = Plasma(py["brain"]) if kind == "brain" else None
                where = plasma.sock if plasma else tempfile.mkdtemp(prefix="cmp_peers_") if kind == "ours" else \
                    f"/dev/shm/cmp_peers_{os.getpid()}_dict"
                try:
                    add("dict", kind, run(python, "dict", kind, "put", where))
                    if kind != "ray":
                        add("dict:get", kind, run(python, "dict", kind, "get", where))
                finally:
                    if plasma:
                        plasma.stop()
                    elif kind == "ours":
                        shutil.rmtree(where, ignore_errors=True)
                        _ours_cleanup(where)
                    else:
                        Path(where).unlink(missing_ok=True)
        if "small" in only:
            for kind in ("ours", "v012"):
                if kind == "v012" and kind not in have:
                    continue
                python = ours if kind == "ours" else py["v012"]
                with ours_store() as where:
                    add("small", kind, run(python, "small", kind, "send", where))
        if "scalar" in only:
            for kind in ("ours", "ataraxis", "multiprocessing"):
                if kind == "ataraxis" and kind not in have:
                    continue
                add("scalar", kind, run(py["ataraxis"] if kind == "ataraxis" else ours, "scalar", kind))
        if "incr" in only:
            for kind in ("ours", "ataraxis", "multiprocessing"):
                if kind == "ataraxis" and kind not in have:
                    continue
                add("incr", kind, run(py["ataraxis"] if kind == "ataraxis" else ours, "incr", kind, args.incr))
        print(f"repetition {rep + 1}/{args.reps} done", file=sys.stderr)

    if args.json:
        Path(args.json).write_text(json.dumps({f"{w}|{k}": v for (w, k), v in res.items()}, indent=1))
    report(res, args)


def _med(res: dict[tuple[str, str], list[dict[str, Any]]], what: str, kind: str, key: str) -> Optional[float]:
    vals = [r[key] for r in res.get((what, kind), []) if r.get(key) is not None]
    return statistics.median(vals) if vals else None


def report(res: dict[tuple[str, str], list[dict[str, Any]]], args: argparse.Namespace) -> None:
    def m(what: str, kind: str, key: str) -> Optional[float]:
        return _med(res, what, kind, key)

    print(f"\nmedians of {args.reps}; array {args.mb} MB, frame {args.rows:,} x 10 float64; "
          f"{args.puts} puts per process, {args.pause} s apart (steady = median of puts 2..{args.puts})\n")
    print("| operation | ours | brain-plasma 0.3.3 | Ray | floor / other |")
    print("|---|---:|---:|---:|---|")
    for case, label in (("array", f"{args.mb} MB float64 array"), ("frame", f"{args.rows:,} x 10 float DataFrame")):
        if not any(k[0] == case for k in res):
            continue
        floor = (f"pwrite into fresh tmpfs {_fmt(m(case, 'pwrite', 'first'))}" if case == "array"
                 else f"pickle-5 to /dev/shm {_fmt(m(case, 'pickle5', 'first'))}")
        print(f"| {label} put, first of a process | {_fmt(m(case, 'ours', 'first'))} | {_fmt(m(case, 'brain', 'first'))} "
              f"| {_fmt(m(case, 'ray', 'first'))} | {floor} |")
        print(f"| {label} put, steady | {_fmt(m(case, 'ours', 'steady'))} | {_fmt(m(case, 'brain', 'steady'))} "
              f"| {_fmt(m(case, 'ray', 'steady'))} | |")
        if (case, "ours-nopool") in res:
            print(f"| &nbsp;&nbsp;ours without the pool (`ALLYE_POOL_MAX_BYTES=0`): first / steady | "
                  f"{_fmt(m(case, 'ours-nopool', 'first'))} / {_fmt(m(case, 'ours-nopool', 'steady'))} | | | |")
        get_floor = (f"`shared_memory` attach {_fmt(m(case + ':get', 'mp_attach', 'get'))}; " if case == "array" else "") + \
            f"pickle-5 load {_fmt(m(case + ':get', 'pickle5', 'get'))}; " \
            f"pickle-5 out-of-band over the mapping {_fmt(m(case + ':get', 'pickle5oob', 'get'))}"
        print(f"| {label} get, other process | {_fmt(m(case + ':get', 'ours', 'get'))} "
              f"| {_fmt(m(case + ':get', 'brain', 'get'))} | {_fmt(m(case, 'ray', 'get'))} (same process) | {get_floor} |")
        print(f"| &nbsp;&nbsp;memory after the puts: RSS / `/dev/shm` held / pool | {_mb(m(case, 'ours', 'rss'))} / "
              f"{_mb(m(case, 'ours', 'shm_held'))} / {_mb(m(case, 'ours', 'pool'))} | {_mb(m(case, 'brain', 'rss'))} / "
              f"{_mb(m(case, 'brain', 'shm_held'))} | {_mb(m(case, 'ray', 'rss'))} / {_mb(m(case, 'ray', 'shm_held'))} | |")
    if ("dict", "ours") in res:
        print(f"| 100-key dict put | {_fmt(m('dict', 'ours', 'put'))} | {_fmt(m('dict', 'brain', 'put'))} | "
              f"{_fmt(m('dict', 'ray', 'put'))} | pickle-5 file {_fmt(m('dict', 'pickle5', 'put'))} |")
        print(f"| 100-key dict get, other process | {_fmt(m('dict:get', 'ours', 'get'))} | {_fmt(m('dict:get', 'brain', 'get'))} | "
              f"{_fmt(m('dict', 'ray', 'get'))} (same process) | pickle-5 file {_fmt(m('dict:get', 'pickle5', 'get'))} |")
    if ("small", "ours") in res:
        for kind, label in (("ours", "ours"), ("v012", "0.1.2")):
            s, g = m("small", kind, "send"), m("small", kind, "get")
            if s is None or g is None:
                continue
            print(f"| 1,000-row send + get, other process ({label}) | {_fmt(s + g)} (send {_fmt(s)}, get {_fmt(g)}) | | | |")
        native = ROOT / "target" / "release" / "examples" / "send_timing"
        if native.exists():
            out = subprocess.run([str(native), "1000", "2000"], capture_output=True, text=True).stdout.strip()
            print(f"| &nbsp;&nbsp;native floor (`send_timing 1000`) | {out.splitlines()[-1] if out else ''} | | | |")
    if ("scalar", "ours") in res:
        print(f"| locked scalar write + read (ataraxis shim) | {_fmt(m('scalar', 'ours', 'scalar'))} | | | "
              f"ataraxis 7.2: {_fmt(m('scalar', 'ataraxis', 'scalar'))}, `mp.Array`+Lock {_fmt(m('scalar', 'multiprocessing', 'scalar'))} |")
    if ("incr", "ours") in res:
        form = res[("incr", "ours")][0].get("form")
        o, a, mp_ = m("incr", "ours", "incr"), m("incr", "ataraxis", "incr"), m("incr", "multiprocessing", "incr")
        print(f"| 4-process locked increments /s ({form}) | {o:,.0f} | | | ataraxis 7.2 "
              f"`with sma.array(with_lock=True)`: {a or 0:,.0f}; `mp.Array`+Lock: {mp_ or 0:,.0f} |")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        worker(sys.argv[2:])
    else:
        main()
