"""Smoke run of benches/bench_wait_latency.py (CI runs benches once each): the waiting
reader in another process gets every version. The numbers come from running the script."""

from benches import bench_wait_latency


def test_wait_latency_smoke():
    results = bench_wait_latency.main(["--rounds", "2", "--no-peer", "--json"])
    assert [r["rounds"] for r in results] == [2, 2, 2]
