"""Loading from sources, side by side (issue 15).

CSV into the store: ``adc.load`` (16 MiB slices cut at line ends, each parsed by
``read_csv``'s threads and written as the next is parsed) against ``pyarrow.csv.read_csv``
alone (no store at all) and against ``pandas.read_csv`` + ``send_dataframe``; time and
peak RSS growth, each run in a fresh child process, contenders alternating.

PostgreSQL through ADBC: ``adc.load`` of a table (by default 2 page ranges on 2
connections in one snapshot; and with ``partitions=1``, one connection) against the driver's own
``fetch_arrow_table`` (no store) and ``pandas.read_sql`` over SQLAlchemy + psycopg (then
``send_dataframe``). A server is started in a temporary directory (as the ``postgres``
user when run as root) unless ``--pg-uri`` names one.

    python benches/bench_sources.py --csv-mb 256 --pg-rows 2000000 --reps 3
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Optional

CHILD = r"""
import json, resource, sys, time
kind, arg, store = sys.argv[1], sys.argv[2], sys.argv[3]
import numpy, pandas, pyarrow, pyarrow.csv
import allye_data_connector as adc
if kind.startswith("pg"):
    import adbc_driver_postgresql.dbapi
    import sqlalchemy
def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1])
# Peak RSS from here on: reset the high-water mark (VmHWM) after the imports.
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")
before = status("VmRSS")
t0 = time.perf_counter()
if kind == "csv_ours":
    rows = adc.load(arg, "csv", secret_dir=store, progress=False)["rows"]
elif kind == "csv_pyarrow":
    rows = pyarrow.csv.read_csv(arg).num_rows
elif kind == "csv_pandas":
    df = pandas.read_csv(arg)
    adc.send_dataframe(df, "csv", secret_dir=store)
    rows = len(df)
elif kind in ("pg_ours", "pg_ours_1conn"):
    uri, table = arg.rsplit("#", 1)
    params = {"table": table, "count": "false", "partitions": "1" if kind == "pg_ours_1conn" else "auto"}
    rows = adc.load(uri, "pg", secret_dir=store, params=params, progress=False)["rows"]
elif kind == "pg_adbc":
    uri, table = arg.rsplit("#", 1)
    with adbc_driver_postgresql.dbapi.connect(uri) as conn, conn.cursor() as cur:
        cur.execute(f"SELECT * FROM {table}")
        rows = cur.fetch_arrow_table().num_rows
elif kind == "pg_pandas":
    uri, table = arg.rsplit("#", 1)
    engine = sqlalchemy.create_engine(uri.replace("postgresql://", "postgresql+psycopg://", 1))
    df = pandas.read_sql(f"SELECT * FROM {table}", engine)
    adc.send_dataframe(df, "pg", secret_dir=store)
    rows = len(df)
else:
    raise SystemExit(f"unknown {kind}")
sec = time.perf_counter() - t0
after = status("VmHWM")
print(json.dumps({"sec": sec, "rows": rows, "rss_mib": (after - before) / 1024}))
"""


def child(kind: str, arg: str, store: str) -> dict[str, Any]:
    out = subprocess.run([sys.executable, "-c", CHILD, kind, arg, store], capture_output=True, text=True,
                         env={**os.environ, "ALLYE_NOTIFY_CANVAS": "0"})
    if out.returncode != 0:
        raise RuntimeError(f"{kind} failed:\n{out.stderr}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def alternate(kinds: list[str], arg: str, reps: int, workdir: Path) -> dict[str, dict[str, float]]:
    runs: dict[str, list[dict[str, Any]]] = {k: [] for k in kinds}
    for rep in range(reps):
        for k in kinds:
            store = workdir / f"store-{k}-{rep}"
            runs[k].append(child(k, arg, str(store)))
            print(f"  rep {rep + 1} {k}: {runs[k][-1]['sec']:.2f} s, load average {os.getloadavg()[0]:.1f}",
                  file=sys.stderr, flush=True)
            shutil.rmtree(store, ignore_errors=True)
    return {k: {"sec": statistics.median(r["sec"] for r in v), "rss_mib": max(r["rss_mib"] for r in v),
                "rows": v[0]["rows"]} for k, v in runs.items()}


def make_csv(path: Path, target_mb: int) -> int:
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pacsv

    rows_per_chunk = 1_000_000
    rng = np.random.default_rng(0)
    written = 0
    with pacsv.CSVWriter(str(path), pa.schema([("id", pa.int64()), ("a", pa.float64()), ("b", pa.float64()),
                                               ("c", pa.int64()), ("name", pa.string())])) as w:
        k = 0
        while path.stat().st_size < target_mb << 20:
            ids = np.arange(k * rows_per_chunk, (k + 1) * rows_per_chunk)
            w.write_table(pa.table({"id": ids, "a": rng.random(rows_per_chunk), "b": rng.standard_normal(rows_per_chunk),
                                    "c": rng.integers(0, 1000, rows_per_chunk),
                                    "name": pa.array(np.char.add("n", (ids % 10007).astype(str)))}))
            written += rows_per_chunk
            k += 1
    return written


class Server:
    def __init__(self, root: Path):
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
        self.bindir = os.path.dirname(found[-1]) if found else os.path.dirname(shutil.which("pg_ctl") or "")
        self.root = root
        self.user = "postgres" if os.geteuid() == 0 else None
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        if self.user:
            shutil.chown(root, self.user)

    def run(self, *args: str) -> None:
        subprocess.run([os.path.join(self.bindir, args[0]), *args[1:]], user=self.user, check=True,
                       capture_output=True, cwd=self.root)

    def __enter__(self) -> str:
        data = str(self.root / "data")
        self.run("initdb", "-D", data, "-A", "trust", "-U", "adc", "--no-sync")
        self.run("pg_ctl", "-D", data, "-o", f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off",
                 "-l", str(self.root / "log"), "-w", "start")
        return f"postgresql://adc@127.0.0.1:{self.port}/postgres"

    def __exit__(self, *exc: Any) -> None:
        self.run("pg_ctl", "-D", str(self.root / "data"), "-m", "immediate", "stop")


def report(title: str, results: dict[str, dict[str, float]], ours: str, arrow_mib: Optional[float]) -> None:
    print(f"\n### {title}\n")
    print("| contender | median s | / ours | peak RSS growth MiB |" + (" / Arrow size |" if arrow_mib else ""))
    print("|---|---|---|---|" + ("---|" if arrow_mib else ""))
    for k, r in results.items():
        ratio = r["sec"] / results[ours]["sec"]
        extra = f" {r['rss_mib'] / arrow_mib:.2f} |" if arrow_mib else ""
        print(f"| {k} | {r['sec']:.2f} | {ratio:.2f} | {r['rss_mib']:.0f} |{extra}")


def bench_csv(args: argparse.Namespace, workdir: Path) -> None:
    csv = workdir / "data.csv"
    rows = make_csv(csv, args.csv_mb)
    import pyarrow.csv as pacsv

    arrow_mib = pacsv.read_csv(csv).nbytes / (1 << 20)
    print(f"CSV: {csv.stat().st_size / (1 << 20):.0f} MiB, {rows:,} rows, Arrow {arrow_mib:.0f} MiB")
    res = alternate(["csv_ours", "csv_pyarrow", "csv_pandas"], str(csv), args.reps, workdir)
    report(f"CSV ({csv.stat().st_size >> 20} MiB) into the store", res, "csv_ours", arrow_mib)
    csv.unlink()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--csv-mb", type=int, default=256, help="CSV size (0: no CSV comparison)")
    ap.add_argument("--pg-rows", type=int, default=2_000_000)
    ap.add_argument("--pg-uri", help="An existing server (default: start one)")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--skip-pg", action="store_true")
    args = ap.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="adc-bench-sources-"))
    try:
        if args.csv_mb > 0:
            bench_csv(args, workdir)
        if args.skip_pg:
            return
        # Its own temporary directory: the server's user must be able to reach it.
        pgroot = Path(tempfile.mkdtemp(prefix="adc-bench-pg-"))
        import adbc_driver_postgresql.dbapi as pg

        def run(uri: str) -> None:
            with pg.connect(uri) as conn, conn.cursor() as cur:
                cur.execute("DROP TABLE IF EXISTS bench")
                cur.execute(f"CREATE TABLE bench AS SELECT g AS id, g * 0.5 AS x, random() AS y, 'name' || (g % 10007) AS name "
                            f"FROM generate_series(1, {args.pg_rows}) AS g")
                conn.commit()
            res = alternate(["pg_ours", "pg_ours_1conn", "pg_adbc", "pg_pandas"], f"{uri}#bench", args.reps, workdir)
            report(f"PostgreSQL table of {args.pg_rows:,} rows", res, "pg_ours", None)

        if args.pg_uri:
            run(args.pg_uri)
        else:
            try:
                with Server(pgroot) as uri:
                    run(uri)
            finally:
                shutil.rmtree(pgroot, ignore_errors=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
