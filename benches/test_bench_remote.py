"""A smoke run of benches/bench_remote.py on a small frame: a real ``adc serve`` process,
the Flight pull, the DoGet alone, the loopback sendfile and pickle contenders, the cached load and the
version check of many tables (the side-by-side numbers come from the script itself)."""

from __future__ import annotations

import pytest

from benches import bench_remote


@pytest.mark.parametrize("kind", ["float64", "strings"])
def test_bench_remote_smoke(kind):
    out = bench_remote.run(mb=4, reps=1, tables=10, kind=kind)
    # One DoGet for each pull (in place, whole) and one for the split's DoGet-only read:
    # the cached load made none.
    assert out["server_calls"]["do_get"] == 3, "the cached load made no DoGet"
    assert out["server_calls"]["do_action:versions"] >= 2
    assert all(v > 0 for v in out["median_sec"].values())
