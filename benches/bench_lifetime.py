"""Memory a store holds after a loop of sends, and the cost per send, with superseded
versions freed inside sends (``auto_gc``, the default) and without (``ALLYE_AUTO_GC=0``,
what every send did before: nothing was freed until ``gc()``).

    python benches/bench_lifetime.py [--sends 10000] [--off-sends 300] [--mb 10] [--grace 2] [--json]

One process sends the same ``--mb`` MB numeric frame ``--sends`` times under one name
(``transport="auto"``: shared memory). Held memory is the bytes of this store's segments
in /dev/shm plus its payload files, read from the file system at the end. Without
auto_gc every send leaves its segment, so the loop is cut at ``--off-sends`` (10,000
sends of 10 MB would need 100 GB); held memory then grows by exactly one frame per send,
and the report extrapolates linearly to ``--sends``, saying so. The two variants run in
alternating blocks of 50 sends (off first), each in its own store, so both see the same
machine state; per-send times are the median and mean of the individual sends. Without
auto_gc the freeing is only postponed: the report also times the ``gc(dry_run=False)``
that frees what the "off" loop left, per version freed.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

import allye_data_connector as adc  # noqa: E402
from benches.storetools import payload_locators, remove_store  # noqa: E402


def held_bytes(store: Path) -> int:
    segments, files = payload_locators(store)
    total = 0
    for name in segments:
        try:
            total += os.stat(f"/dev/shm/{name}").st_size
        except FileNotFoundError:
            pass
    for f in (store / "payloads").glob("*"):
        total += f.stat().st_size
    return total


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sends", type=int, default=10_000)
    ap.add_argument("--off-sends", type=int, default=300)
    ap.add_argument("--mb", type=float, default=10.0)
    ap.add_argument("--grace", type=int, default=None, help="auto_gc_grace_sec (default: the library's)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    os.environ["ALLYE_NOTIFY_CANVAS"] = "0"
    if args.grace is not None:
        os.environ["ALLYE_AUTO_GC_GRACE_SEC"] = str(args.grace)
    cols = 10
    rows = int(args.mb * 1e6 / 8 / cols)
    df = pd.DataFrame(np.random.default_rng(0).random((rows, cols)), columns=[f"c{i}" for i in range(cols)])
    root = Path(tempfile.mkdtemp(prefix="adc-bench-lifetime-"))
    stores = {"off": root / "off", "on": root / "on"}
    budget = {"off": args.off_sends, "on": args.sends}
    done = {"off": 0, "on": 0}
    times: dict[str, list[float]] = {"off": [], "on": []}
    try:
        while any(done[k] < budget[k] for k in done):
            for variant in ("off", "on"):
                if variant == "off":
                    os.environ["ALLYE_AUTO_GC"] = "0"
                else:
                    os.environ.pop("ALLYE_AUTO_GC", None)
                for _ in range(min(50, budget[variant] - done[variant])):
                    t0 = time.perf_counter()
                    adc.send_dataframe(df, "loop", secret_dir=stores[variant])
                    times[variant].append(time.perf_counter() - t0)
                    done[variant] += 1
        held = {k: held_bytes(stores[k]) for k in stores}
        # What "off" leaves for later: the explicit gc that frees it (per send it freed).
        t0 = time.perf_counter()
        freed = len(adc.gc(secret_dir=stores["off"], dry_run=False))
        gc_ms_per_freed = (time.perf_counter() - t0) * 1e3 / max(1, freed)
        result = {
            "frame_mb": round(df.memory_usage(index=False).sum() / 1e6, 2),
            "grace_sec": adc.settings.effective().auto_gc_grace_sec,
            "sends": done,
            "held_mb": {k: round(v / 1e6, 1) for k, v in held.items()},
            "off_held_mb_extrapolated_to_sends": round(held["off"] / done["off"] * args.sends / 1e6, 1),
            "send_ms_median": {k: round(statistics.median(v) * 1e3, 3) for k, v in times.items()},
            "send_ms_mean": {k: round(statistics.mean(v) * 1e3, 3) for k, v in times.items()},
            "off_gc_ms_per_freed_version": round(gc_ms_per_freed, 3),
        }
    finally:
        for s in stores.values():
            remove_store(s)
        root.rmdir() if root.exists() and not any(root.iterdir()) else None
    if args.json:
        print(json.dumps(result))
        return
    print(f"frame {result['frame_mb']} MB, grace {result['grace_sec']} s")
    print(f"auto_gc on : {done['on']:>6} sends -> held {result['held_mb']['on']:>10} MB; "
          f"per send median {result['send_ms_median']['on']} ms, mean {result['send_ms_mean']['on']} ms")
    print(f"auto_gc off: {done['off']:>6} sends -> held {result['held_mb']['off']:>10} MB "
          f"(x {args.sends}/{done['off']}: {result['off_held_mb_extrapolated_to_sends']} MB); "
          f"per send median {result['send_ms_median']['off']} ms, mean {result['send_ms_mean']['off']} ms; "
          f"the gc() that frees them afterwards: {result['off_gc_ms_per_freed_version']} ms per version")


if __name__ == "__main__":
    main()
