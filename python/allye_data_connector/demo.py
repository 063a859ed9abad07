"""The main job, end to end: send real DataFrames from one process and read them in
others, through both transports, and print what happened.

Run it with ``python -m allye_data_connector demo`` (see README.md).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd

from . import _core, api


def _frames() -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(42)
    n = 1_000_000
    sensors = pd.DataFrame(
        {f"s{i}": rng.standard_normal(n) for i in range(8)}
        | {"count": rng.integers(0, 1000, n), "flag": rng.integers(0, 2, n).astype(bool)},
        index=pd.date_range("2025-01-01", periods=n, freq="s", tz="Asia/Tokyo", name="ts"),
    )
    people = pd.DataFrame(
        {
            "name": ["Ada", "Grace", None, "Jürgen", "美咲"],
            "team": pd.Categorical(["x", "y", "x", None, "y"]),
            "score": [1.5, np.nan, 3.0, 4.25, 5.0],
            "joined": pd.to_datetime(["2020-01-01", "2021-06-30", None, "2023-03-03", "2024-12-24"]),
        }
    )
    return {"sensors": sensors, "people": people}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m allye_data_connector demo")
    parser.add_argument("--secret-dir", help="store directory (default: a fresh temporary one)")
    args = parser.parse_args(argv)
    store = Path(args.secret_dir) if args.secret_dir else Path(tempfile.mkdtemp(prefix="adc-demo-"))
    print(f"store: {store}")
    frames = _frames()
    for name, df in frames.items():
        for transport in ("shm", "file"):
            t0 = time.perf_counter()
            api.send_dataframe(df, f"{name}_{transport}", secret_dir=store, transport=transport, notify_canvas=False)
            dt = time.perf_counter() - t0
            print(f"sent {name}_{transport:<5} {df.shape[0]:>9,} rows x {df.shape[1]} cols via {transport:<4} in {dt * 1e3:8.1f} ms")

    # Read everything back in another process, as a widget or a second notebook would.
    reader = textwrap.dedent(
        f"""
        import time, allye_data_connector as adc
        for t in adc.list_tables(secret_dir={str(store)!r}):
            t0 = time.perf_counter()
            df = adc.get_dataframe(t["table_name"], secret_dir={str(store)!r})
            dt = time.perf_counter() - t0
            print(f"  got  {{t['table_name']:<13}} {{df.shape[0]:>9,}} rows x {{df.shape[1]}} cols "
                  f"({{t['transport']}}, {{t['bytes']:,}} bytes) in {{dt*1e3:8.1f}} ms")
        """
    )
    print("reading in a separate process:")
    subprocess.run([sys.executable, "-c", reader], check=True)

    for name, df in frames.items():
        for transport in ("shm", "file"):
            back = api.get_dataframe(f"{name}_{transport}", secret_dir=store)
            # The index separately: assert_frame_equal boxes a tz-aware index element by
            # element (minutes for 1M rows); Index.equals compares the int64 values.
            assert back.index.equals(df.index) and back.index.dtype == df.index.dtype and back.index.name == df.index.name
            pd.testing.assert_frame_equal(back.reset_index(drop=True), df.reset_index(drop=True))
    print("all frames read back equal to what was sent (index, dtypes and values)")
    removed = api.gc(secret_dir=store, dry_run=False)
    print(f"gc removed {len(removed)} expired payloads (none were sent with a ttl)")
    if not args.secret_dir:
        # The demo's store is temporary: unlink its segments so nothing outlives the demo.
        import _posixshmem  # CPython's shm_open/shm_unlink wrapper (POSIX)

        for t in api.list_tables(secret_dir=store):
            if t["transport"] == "shm_arrow_stream_v1":
                locator = _core.latest(t["table_name"], secret_dir=str(store))["payload"]["locator"]
                _posixshmem.shm_unlink("/" + locator)
        print("unlinked the demo's shared-memory segments")
    return 0
