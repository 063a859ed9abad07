"""Two builds side by side on the small paths, alternating, in one run: the 100-key dict
put and its get in another process (the brain-plasma shim, as ``compare_peers.py`` times
them, with pickle-5 to a ``/dev/shm`` file and back as the floor), and the 1,000 x 10
frame ``send_dataframe`` + ``get_dataframe`` in another process; with ``--incr N``, also
4 processes x N locked increments in ataraxis' atomic form (``compare_peers.py``'s
``incr`` worker, the count checked exact), reported as increments per second.

    python benches/ab_small.py --a OLD/venv/bin/python --b NEW/venv/bin/python [--reps 5] [--incr 200000]

``--a`` / ``--b`` are interpreters (a wrapper script setting ``PYTHONPATH`` to another
copy of the package works too). Each repetition runs every case in fresh processes
through ``compare_peers.py``'s workers (each a median of 200 calls), A, B and the floor
in turn (A and B swap places each repetition); the table gives the median over
repetitions and B / A.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from compare_peers import ours_store, run  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--a", required=True, help="interpreter of build A (the baseline)")
    ap.add_argument("--b", required=True, help="interpreter of build B")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--incr", type=int, default=0, help="also time 4 processes x INCR locked increments")
    ap.add_argument("--json", help="also write all medians to this file")
    args = ap.parse_args()
    got: dict[str, dict[str, list[float]]] = {}

    def add(case: str, who: str, value: float) -> None:
        got.setdefault(case, {}).setdefault(who, []).append(value)

    def dict_case(who: str, python: str, kind: str, where: str) -> None:
        add("dict put", who, run(python, "dict", kind, "put", where)["put"])
        add("dict get, other process", who, run(python, "dict", kind, "get", where)["get"])

    for rep in range(args.reps):
        # Which build runs first swaps each repetition: on this machine the second of two
        # back-to-back runs can be slower by a third whichever build it is.
        order = (("A", args.a), ("B", args.b)) if rep % 2 == 0 else (("B", args.b), ("A", args.a))
        for who, python in (*order, ("pickle5", args.a)):
            if who == "pickle5":
                where = f"/dev/shm/ab_small_{who}.pickle"
                try:
                    dict_case(who, python, "pickle5", where)
                finally:
                    Path(where).unlink(missing_ok=True)
                continue
            with ours_store("ab_small_") as where:
                dict_case(who, python, "ours", where)
            with ours_store("ab_small_") as where:
                small = run(python, "small", "ours", "send", where)
            add("1,000-row send", who, small["send"])
            add("1,000-row get, other process", who, small["get"])
            if args.incr:
                add("4-process increments", who, run(python, "incr", "ours", str(args.incr))["incr"])
    for who in ("A", "B"):
        for i in range(args.reps):
            put, get = got["dict put"][who][i], got["dict get, other process"][who][i]
            add("dict put + get", who, put + get)
            add("1,000-row send + get", who, got["1,000-row send"][who][i] + got["1,000-row get, other process"][who][i])
    for i in range(args.reps):
        add("dict put + get", "pickle5", got["dict put"]["pickle5"][i] + got["dict get, other process"]["pickle5"][i])
    med = {case: {who: statistics.median(v) for who, v in by.items()} for case, by in got.items()}
    print(f"{'case':<32}{'A':>11}{'B':>11}{'B / A':>8}{'pickle-5':>11}{'A / p5':>8}{'B / p5':>8}")
    for case, m in med.items():
        if case == "4-process increments":  # a rate: higher is better
            print(f"{case + ' /s':<32}{m['A']:>11,.0f}{m['B']:>11,.0f}{m['B'] / m['A']:>8.3f}")
            continue
        p5 = m.get("pickle5")
        extra = f"{p5 * 1e3:>9.3f}ms{m['A'] / p5:>8.2f}{m['B'] / p5:>8.2f}" if p5 else ""
        print(f"{case:<32}{m['A'] * 1e3:>9.3f}ms{m['B'] * 1e3:>9.3f}ms{m['B'] / m['A']:>8.3f}{extra}")
    if args.json:
        Path(args.json).write_text(json.dumps(got))


if __name__ == "__main__":
    main()
