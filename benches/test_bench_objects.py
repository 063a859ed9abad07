"""Named objects under pytest-benchmark (ours only), and a smoke run of the side-by-side
script's workers (benches/bench_objects.py gives the table against pickle-5 files,
multiprocessing.shared_memory and brain-plasma)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest

from benches import bench_objects
from benches.storetools import unlink_segments


@pytest.fixture
def store():
    """A fresh store; the segments its namespaces' logs name are unlinked afterwards."""
    d = Path(tempfile.mkdtemp(prefix="adc-bench-objects-"))
    try:
        yield d
    finally:
        for ns in (d / "objects").glob("*"):
            unlink_segments(ns)
        shutil.rmtree(d, ignore_errors=True)


def test_put_get_round_trip_of_a_100_key_dict(benchmark, store):
    import allye_data_connector as adc

    objs = adc.objects(secret_dir=store)
    value = bench_objects._make("dict100", 0, 0)

    def round_trip():
        objs["d"] = value
        return objs["d"]

    assert benchmark(round_trip) == value


def test_get_of_an_8_mb_array_is_a_view(benchmark, store):
    import allye_data_connector as adc

    objs = adc.objects(secret_dir=store)
    objs["a"] = np.full(1024 * 1024, 2.0)
    got = benchmark(objs.__getitem__, "a")
    assert got[12345] == 2.0 and not got.flags.owndata


def test_the_side_by_side_workers_run(store, tmp_path):
    import os

    where = str(store)
    assert bench_objects._put("ours", "array", 1, 0, where) > 0
    assert bench_objects._get("ours", "array", 1, 0, where) > 0
    name = f"bench_objects_smoke_{os.getpid()}"
    try:
        assert bench_objects._put("mp_shm", "array", 1, 0, name) > 0
        assert bench_objects._get("mp_shm", "array", 1, 0, name) > 0
    finally:
        if os.path.exists(f"/dev/shm/{name}"):
            os.unlink(f"/dev/shm/{name}")
    pick = f"bench_objects_pickle_{os.getpid()}"
    try:
        assert bench_objects._put("pickle5", "frame", 0, 1000, pick) > 0
        assert bench_objects._get("pickle5", "frame", 0, 1000, pick) > 0
    finally:
        os.unlink(f"/dev/shm/{pick}")
    rows = bench_objects._time_bookkeeping(where)
    assert len(rows) == 2
