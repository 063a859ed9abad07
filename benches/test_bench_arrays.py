"""Shared arrays under pytest-benchmark (ours only), and a smoke run of the side-by-side
script's workers (benches/bench_arrays.py gives the table against ataraxis and
multiprocessing)."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from benches import bench_arrays

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="shared arrays are Linux only")


@pytest.fixture
def sma(store):
    from allye_data_connector.compat.ataraxis import SharedMemoryArray

    arr = SharedMemoryArray.create_array("bench", np.zeros(8, dtype=np.uint64), secret_dir=store)
    yield arr
    arr.destroy()


def test_locked_scalar_write_read_through_the_shim(benchmark, sma):
    def round_trip():
        sma.write_data(0, 7)
        return sma.read_data(0)

    assert benchmark(round_trip) == 7


def test_locked_increment_in_place(benchmark, store):
    from allye_data_connector import SharedArray

    arr = SharedArray.create("incr", 1, np.int64, secret_dir=store)

    def incr():
        with arr.locked() as v:
            v[0] += 1

    benchmark(incr)
    assert arr.read(0) >= 1
    arr.destroy()


def test_locked_increment_through_the_shims_atomic_form(benchmark, sma):
    """ataraxis' atomic form, ``with sma.array(with_lock=True) as a: a[0] += 1``, one
    process (no contention): the attribute, the call and the block, as its users loop it."""

    def incr():
        with sma.array(with_lock=True) as a:
            a[0] += 1

    benchmark(incr)
    assert sma.read_data(0) >= 1


def test_unlocked_8mb_slice_is_a_view(benchmark, store):
    from allye_data_connector import SharedArray

    n = bench_arrays.VIEW_BYTES // 8
    arr = SharedArray.from_array("view", np.arange(n + 8, dtype=np.float64), secret_dir=store)
    s = benchmark(lambda: arr.array[8 : 8 + n])
    assert np.shares_memory(s, arr.array) and s.nbytes == bench_arrays.VIEW_BYTES and s[0] == 8
    arr.destroy()


@pytest.mark.parametrize("kind", ["ours", "ours-block", "multiprocessing"])
def test_side_by_side_workers_count_exactly(kind):
    assert bench_arrays._incr(kind, 500) > 0  # exits if the final count is not exact
    if kind != "ours-block":
        assert bench_arrays._scalar(kind, 100) > 0
