"""The main job, end to end: send real DataFrames from this process, read them in
another process, show that the reader got them without a copy, and clean up.

Run it with ``python -m allye_data_connector demo`` or ``adc demo`` (see README.md). It
uses the store named by ``--secret-dir`` or ``$ALLYE_SECRET_DIR`` (removing only its own
``demo_*`` tables at the end), else a temporary store that it deletes. Only the public
API is used, as a user's program would.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np
import pandas as pd

#: (table name, frame key, transport) of every send the demo makes, in the order the
#: other process reads them (the small one first: its get also loads pandas' lazy parts).
SENDS = (
    ("demo_people", "people", "shm"),
    ("demo_sensors_shm", "sensors", "shm"),
    ("demo_sensors_file", "sensors", "file"),
)


def _say(text: str = "") -> None:
    print(text, flush=True)


def _mib(n: float) -> str:
    return f"{n / 2**20:,.1f} MiB"


def _size(n: int) -> str:
    return f"{n:,} B" if n < 1024 else f"{n / 1024:,.1f} KiB" if n < 2**20 else _mib(n)


def _payloads(n: int) -> str:
    return f"{n} payload" + ("" if n == 1 else "s")


def frames(rows: int = 1_000_000) -> dict[str, pd.DataFrame]:
    """A big numeric frame with a time-zone-aware DatetimeIndex (sensor readings), and a
    small one with what pandas users have: strings with gaps and non-ASCII text,
    categories, NaN, NaT."""
    rng = np.random.default_rng(42)
    sensors = pd.DataFrame(
        {f"s{i}": rng.standard_normal(rows) for i in range(8)}
        | {"count": rng.integers(0, 1000, rows), "flag": rng.integers(0, 2, rows).astype(bool)},
        index=pd.date_range("2025-01-01", periods=rows, freq="s", tz="Asia/Tokyo", name="ts"),
    )
    people = pd.DataFrame(
        {
            "name": ["Ada", "Grace", None, "Jürgen", "美咲"],
            "team": pd.Categorical(["x", "y", "x", None, "y"]),
            "score": [1.5, np.nan, 3.0, 4.25, 5.0],
            "joined": pd.to_datetime(["2020-01-01", "2021-06-30", "NaT", "2023-03-03", "2024-12-24"]),
        }
    )
    return {"sensors": sensors, "people": people}


def fingerprint(df: pd.DataFrame) -> dict[str, Any]:
    """What must match on both sides: shape, dtypes, index type and a hash of every value
    and index label."""
    return {
        "shape": list(df.shape),
        "dtypes": [str(t) for t in df.dtypes],
        "index": f"{type(df.index).__name__}[{df.index.dtype}] {df.index.name!r}",
        "hash": int(pd.util.hash_pandas_object(df, index=True).to_numpy().sum(dtype=np.uint64)),
    }


def _anon_rss() -> Optional[int]:
    """This process's anonymous resident memory (RssAnon, Linux), in bytes: what a copy
    of the data would add to; pages mapped from a file or segment are not counted."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("RssAnon:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _mapped_file(address: int) -> Optional[str]:
    """The file or shared-memory segment mapped at ``address`` in this process (Linux),
    or None when it is ordinary memory (or /proc is not there)."""
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                parts = line.split(maxsplit=5)
                lo, hi = (int(x, 16) for x in parts[0].split("-"))
                if lo <= address < hi:
                    path = parts[5].strip() if len(parts) == 6 else ""
                    return path if path.startswith("/") else None
    except OSError:
        pass
    return None


def read_tables(store: str, names: list[str]) -> None:
    """The reader (run in a separate process): reads each table and prints one JSON line
    with how long the get took, how much memory it added, where its first column lives,
    and the fingerprint of what it read."""
    import gc

    import allye_data_connector as adc

    column = None
    for name in names:
        gc.collect()
        before = _anon_rss()
        t0 = time.perf_counter()
        df = adc.get_dataframe(name, secret_dir=store)
        seconds = time.perf_counter() - t0
        after = _anon_rss()
        numeric = [c for c in df.columns if df[c].dtype.kind == "f"]
        mapped = None
        if numeric:
            column = df[numeric[0]].to_numpy()
            mapped = {"column": str(numeric[0]), "file": _mapped_file(column.__array_interface__["data"][0]),
                      "writeable": bool(column.flags.writeable)}
        print(json.dumps({
            "table": name, "pid": os.getpid(), "seconds": seconds,
            "anon_growth": None if before is None or after is None else after - before,
            "mapped": mapped, "fingerprint": fingerprint(df),
        }), flush=True)
        del df, numeric, mapped
        column = None


def _read_elsewhere(store: Path, names: list[str]) -> list[dict[str, Any]]:
    code = f"from allye_data_connector.demo import read_tables; read_tables({str(store)!r}, {names!r})"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"the reader process failed (exit {proc.returncode}): {proc.stderr.strip()}")
    return [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]


def _pickle_round_trip(df: pd.DataFrame) -> tuple[float, float]:
    """Seconds to pickle the frame into a file and to read it back: the usual way to hand
    a frame to another process, which copies it both ways."""
    with tempfile.TemporaryDirectory(prefix="adc-demo-pickle-") as d:
        path = Path(d) / "frame.pkl"
        t0 = time.perf_counter()
        with open(path, "wb") as fh:
            pickle.dump(df, fh, protocol=5)
        t1 = time.perf_counter()
        with open(path, "rb") as fh:
            pickle.load(fh)
        return t1 - t0, time.perf_counter() - t1


def run(secret_dir: Optional[str] = None, *, keep: bool = False, rows: int = 1_000_000,
        say: Callable[[str], None] = _say) -> int:
    """Runs the demo; returns the exit status (0 when everything read back as sent)."""
    import allye_data_connector as adc

    temporary = secret_dir is None
    store = Path(tempfile.mkdtemp(prefix="adc-demo-")) if temporary else Path(secret_dir).expanduser()  # type: ignore[arg-type]
    sent: list[str] = []
    try:
        return _run(adc, store, temporary, keep, rows, sent, say)
    finally:
        if not keep:
            freed = 0
            for name in sent:
                try:
                    freed += len(adc.remove_table(name, secret_dir=store)["deleted"])
                except adc.TableNotFoundError:
                    pass
            if temporary:
                shutil.rmtree(store, ignore_errors=True)
            if sent:
                where = "deleted the temporary store" if temporary else f"left the rest of {store} as it was"
                say(f"cleaned up: removed the demo tables ({_payloads(freed)} deleted) and {where}")


def _run(adc: Any, store: Path, temporary: bool, keep: bool, rows: int, sent: list[str], say: Callable[[str], None]) -> int:
    say(f"allye_data_connector {adc.__version__}: DataFrames from one process to another, without copying them")
    say(f"store: {store}" + (" (temporary; --secret-dir or $ALLYE_SECRET_DIR to use another)" if temporary else ""))
    say("")
    data = frames(rows)
    for name, key, transport in SENDS:
        df = data[key]
        t0 = time.perf_counter()
        adc.send_dataframe(df, name, secret_dir=store, transport=transport, notify_canvas=False)
        seconds = time.perf_counter() - t0
        sent.append(name)
        size = adc.describe_table(name, secret_dir=store)["bytes"]
        where = "shared memory" if transport == "shm" else "an Arrow file"
        say(f"sent {name:<18} {df.shape[0]:>9,} rows x {df.shape[1]:>2} cols ({_size(size):>10}) into {where:<13} "
            f"in {seconds * 1e3:7.1f} ms")

    say("")
    results = _read_elsewhere(store, [name for name, _, _ in SENDS])
    say(f"another process (pid {results[0]['pid']}) read them:")
    ok = True
    for r, (name, key, _) in zip(results, SENDS):
        df = data[key]
        same = r["fingerprint"] == fingerprint(df)
        ok &= same
        line = (f"got  {name:<18} {r['fingerprint']['shape'][0]:>9,} rows x {r['fingerprint']['shape'][1]:>2} cols "
                f"in {r['seconds'] * 1e3:7.1f} ms, " + ("same values, dtypes and index as sent" if same else "DIFFERENT from what was sent"))
        say(line)
        if key == "sensors":
            size = int(df.memory_usage(index=True).sum())
            if r["anon_growth"] is not None:
                say(f"     its memory grew by {_mib(r['anon_growth'])} while it holds {_mib(size)} of data (columns and index)")
            m = r["mapped"]
            if m and m["file"]:
                say(f"     column {m['column']!r} is a read-only view of {m['file']} (mapped, not copied)")
    if not ok:
        say("error: a frame read in the other process differs from what was sent")
        return 1

    big = data["sensors"]
    write, read = _pickle_round_trip(big)
    fastest = min(r["seconds"] for r, (_, key, _) in zip(results, SENDS) if key == "sensors")
    say("")
    say(f"for comparison, pickle through a file: {write * 1e3:.0f} ms to write and {read * 1e3:.0f} ms to read "
        f"the same {big.shape[0]:,} rows (a full copy each way); the get above took {fastest * 1e3:.1f} ms")

    if temporary:
        # gc only in the demo's own store: in a user's store it would free their tables too.
        freed = [a for a in adc.gc(secret_dir=store, dry_run=False) if a["action"] == "delete"]
        say("")
        say(f"gc(dry_run=False) freed {_payloads(len(freed))}" + (":" if freed else ""))
        for a in freed:  # a deleted store's leftover has no table: its segment names it
            say(f"     {a['table_name'] or a['locator']}: {a['reason']}")
    if keep:
        say("")
        say(f"kept the demo tables: try  adc --secret-dir {store} ls  (and show, get -o out.parquet, rm)")
    return 0


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m allye_data_connector.demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--secret-dir", default=os.environ.get("ALLYE_SECRET_DIR") or None,
                        help="store to run in (default: $ALLYE_SECRET_DIR, else a temporary one)")
    parser.add_argument("--keep", action="store_true", help="leave the demo tables in the store")
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of the big frame")
    args = parser.parse_args(argv)
    return run(args.secret_dir, keep=args.keep, rows=args.rows)


if __name__ == "__main__":
    sys.exit(main())
