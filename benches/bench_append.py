"""Incremental appends, side by side (issue 15): what one ``load(..., mode="append")`` of a
few new rows costs when the table already holds many.

- ``chunk``: ``mode="append"`` as built, ``publish=False`` (only this package reads the
  table): the new rows become one chunk, O(new rows).
- ``chunk+publish``: the same with the default publication of the stream as a v1 version
  (for 0.1.2 and the widgets), which rewrites the whole table.
- ``rewrite``: the previous behaviour of ``mode="append"``: one new version holding the
  previous version's rows (read from its mapping) followed by the new ones.

Each contender appends ``--loads`` times ``--new`` rows to its own table of ``--rows``
rows; contenders alternate load by load. Times are medians per load.

    python benches/bench_append.py --rows 10000000 --new 100000 --loads 5
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any, Optional

import numpy as np
import pyarrow as pa

import allye_data_connector as adc
from allye_data_connector import _core


def _rows(start: int, n: int) -> pa.Table:
    ids = np.arange(start, start + n, dtype=np.int64)
    return pa.table({"id": ids, "x": ids * 0.5})


class New(adc.DataSource):
    """``n`` rows after ``start``, in batches of 65,536."""

    cursor = "id"

    def __init__(self, start: int, n: int) -> None:
        super().__init__({})
        self.batches = _rows(start, n).to_batches(max_chunksize=65_536)

    def read(self, n: Optional[int] = None) -> Any:
        return self.batches.pop(0) if self.batches else None


class Rewrite(adc.DataSource):
    """The previous ``mode="append"``: the current version's rows, then the new ones."""

    cursor = "id"

    def __init__(self, store: str, table: str, start: int, n: int) -> None:
        super().__init__({})
        _, data = _core.get_live(table, secret_dir=store, record_read=False)
        self.batches = pa.table(data).to_batches() + _rows(start, n).to_batches(max_chunksize=65_536)

    def read(self, n: Optional[int] = None) -> Any:
        return self.batches.pop(0) if self.batches else None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--new", type=int, default=100_000)
    ap.add_argument("--loads", type=int, default=5)
    ap.add_argument("--dir", default=None, help="where the store goes (default: the system's temp dir; "
                    "/dev/shm keeps disk write-back out of the numbers)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="adc-bench-append-", dir=args.dir) as tmp:
        store = str(Path(tmp) / "store")
        base = _rows(0, args.rows)
        for name in ("chunk", "publish", "rewrite"):
            if name == "rewrite":
                adc.send_dataframe(base, name, secret_dir=store)  # a plain version
            else:
                adc.append(name, base, secret_dir=store, publish=False)  # a stream's first chunk
        times: dict[str, list[float]] = {"chunk": [], "publish": [], "rewrite": []}
        at = args.rows
        for _ in range(args.loads):
            for name in times:
                t0 = time.perf_counter()
                if name == "rewrite":
                    adc.load(Rewrite(store, name, at, args.new), name, secret_dir=store, progress=False)
                else:
                    adc.load(New(at, args.new), name, secret_dir=store, mode="append", publish=name == "publish",
                             progress=False)
                times[name].append(time.perf_counter() - t0)
            at += args.new
        final = args.rows + args.loads * args.new
        for name in times:
            got = adc.get_arrow(name, secret_dir=store)
            assert got.num_rows == final and got["id"][final - 1].as_py() == final - 1, name
        chunk = statistics.median(times["chunk"])
        print(f"{args.rows:,} rows + {args.loads} loads of {args.new:,} new rows; median per load:")
        for name, label in (("chunk", "append (chunk, publish=False)"), ("publish", "append (chunk + publication)"),
                            ("rewrite", "previous append (rewrite)")):
            med = statistics.median(times[name])
            print(f"  {label:32s} {med * 1000:9.1f} ms  ({med / chunk:6.1f}x the chunk)")


if __name__ == "__main__":
    main()
