"""compat.ataraxis.SharedMemoryArray: the API of ataraxis-data-structures' README, every
index form and the errors its users expect."""

from __future__ import annotations

import multiprocessing as mp
import pickle
import sys

import numpy as np
import pytest

from allye_data_connector import errors
from allye_data_connector.compat.ataraxis import SharedMemoryArray, YamlConfig
from allye_data_connector.settings import YamlConfig as NativeYamlConfig

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="shared arrays are Linux only")


@pytest.fixture
def sma(astore):
    arr = SharedMemoryArray.create_array("unique_buffer", np.array([1, 2, 3, 4, 5, 6], dtype=np.uint64), secret_dir=astore)
    yield arr
    arr.destroy()


def test_readme_creation(astore):
    prototype = np.array([1, 2, 3, 4, 5, 6], dtype=np.uint64)
    sma = SharedMemoryArray.create_array(name="unique_buffer", prototype=prototype, exist_ok=True, secret_dir=astore)
    assert sma.name == "unique_buffer" and sma.shape == prototype.shape and sma.datatype == prototype.dtype
    assert sma.is_connected
    sma.disconnect()
    assert not sma.is_connected
    sma.destroy()
    assert YamlConfig is NativeYamlConfig


def test_readme_read_and_write(sma):
    sma.connect()  # a no-op on the creator
    out = sma.read_data(index=2)
    assert out == np.uint64(3) and isinstance(out, np.uint64)
    out = sma.read_data(index=(1, 4), convert_output=False, with_lock=False)
    assert np.array_equal(out, np.array([2, 3, 4], dtype=np.uint64)) and isinstance(out, np.ndarray)
    sma.write_data(index=1, data=7, with_lock=True)
    assert sma.read_data(index=1, convert_output=True) == 7
    assert type(sma.read_data(index=1, convert_output=True)) is int
    sma.write_data(index=(1, 3), data=[10, 11], with_lock=False)
    assert sma.read_data(index=(0,), convert_output=True) == [1, 10, 11, 4, 5, 6]


def test_every_index_form(sma):
    assert sma.read_data(-1) == 6 and sma.read_data(-6) == 1 and sma.read_data(0) == 1
    assert sma.read_data((3,), convert_output=True) == [4, 5, 6]
    assert sma.read_data((-2,), convert_output=True) == [5, 6]
    assert sma.read_data((-3, -1), convert_output=True) == [4, 5]
    assert sma.read_data((2, 2), convert_output=True) == []
    assert sma.read_data((0, 6), convert_output=True) == [1, 2, 3, 4, 5, 6]
    sma.write_data(-1, 60)
    sma.write_data((4,), [50, 61])
    sma.write_data((0, 2), np.array([0, 0], dtype=np.uint64))
    assert sma.read_data((0,), convert_output=True) == [0, 0, 3, 4, 50, 61]
    sma.write_data((0,), 9)  # a scalar broadcasts, as NumPy does
    assert sma.read_data((0,), convert_output=True) == [9] * 6


def test_errors_users_expect(sma, astore):
    for bad in (6, -7, (6,), (-7,), (0, 7), (2, -8)):
        with pytest.raises(IndexError):
            sma.read_data(bad)
        with pytest.raises(IndexError):
            sma.write_data(bad, 1)
    # ataraxis' own test suite matches these phrases and classes.
    with pytest.raises(ValueError, match=r"the start index \(4\) is greater than the end index \(2\)"):
        sma.read_data((4, 2))
    with pytest.raises(ValueError, match="the start index .* is greater than the end index"):
        sma.write_data((5, 1), [1])
    with pytest.raises(IndexError, match=r"The index is outside the valid start index range \(0:5\)"):
        sma.read_data(-7)
    with pytest.raises(IndexError, match=r"The index is outside the valid stop index range \(1:6\)"):
        sma.write_data((0, 7), [1] * 7)
    with pytest.raises(ValueError, match="Unable write data"):
        sma.write_data(0, "invalid_data")
    for bad in ((1, 2, 3), (), "1", 1.0, (1.0,)):
        with pytest.raises(ValueError, match="integer index"):
            sma.read_data(bad)
    with pytest.raises(TypeError, match="ndarray"):
        SharedMemoryArray.create_array("other", [1, 2, 3], secret_dir=astore)
    with pytest.raises(FileExistsError):
        SharedMemoryArray.create_array("unique_buffer", np.zeros(6, dtype=np.uint64), secret_dir=astore)
    reused = SharedMemoryArray.create_array("unique_buffer", np.zeros(6, dtype=np.uint64), exist_ok=True, secret_dir=astore)
    assert sma.read_data(0) == 0, "exist_ok reuses the buffer with the prototype's data"
    with pytest.raises(ValueError, match="destroy it"):
        SharedMemoryArray.create_array("unique_buffer", np.zeros(3, dtype=np.float32), exist_ok=True, secret_dir=astore)
    reused.disconnect()
    for call in (lambda: reused.read_data(0), lambda: reused.write_data(0, 1)):
        with pytest.raises(RuntimeError, match="connect"):
            call()


def test_one_element_slice_converts_to_a_scalar(sma):
    assert sma.read_data((0, 1), convert_output=True) == 1
    assert sma.read_data((-1,), convert_output=True) == 6
    assert sma.read_data((0, 1)).tolist() == [1], "without convert_output a slice stays an array"


def _orphan(name: str, store: str) -> None:
    SharedMemoryArray.create_array(name, np.arange(3, dtype=np.int32), secret_dir=store)
    # exits without disconnect() or destroy(), as a crashed run would


def test_a_dead_runs_leftover_does_not_block_create(astore):
    ctx = mp.get_context("spawn")
    p = ctx.Process(target=_orphan, args=("leftover", str(astore)))
    p.start()
    p.join(120)
    assert p.exitcode == 0
    sma = SharedMemoryArray.create_array("leftover", np.array([7, 8], dtype=np.int64), secret_dir=astore)
    try:
        assert sma.shape == (2,) and sma.read_data((0,), convert_output=True) == [7, 8]
        with pytest.raises(FileExistsError):  # a live creator's array is still refused
            SharedMemoryArray.create_array("leftover", np.zeros(2, dtype=np.int64), secret_dir=astore)
    finally:
        sma.destroy()


def _peer_style_worker(name: str, store: str) -> None:
    # ataraxis' tests build the instance directly in the child: (name, shape, datatype, buffer)
    sma = SharedMemoryArray(name, (5,), np.dtype(np.int32), store)
    sma.connect()
    for _ in range(100):
        sma.write_data(1, sma.read_data(1) + 1)
    sma.disconnect()


def test_children_built_from_name_shape_and_dtype(astore):
    sma = SharedMemoryArray.create_array("direct", np.zeros(5, dtype=np.int32), secret_dir=astore)
    try:
        ctx = mp.get_context("spawn")
        p = ctx.Process(target=_peer_style_worker, args=("direct", str(astore)))
        p.start()
        p.join(120)
        assert p.exitcode == 0 and sma.read_data(1) == 100
    finally:
        sma.destroy()


def test_destroy_when_disconnected_and_twice(astore):
    sma = SharedMemoryArray.create_array("gone", np.zeros(2, dtype=np.int32), secret_dir=astore)
    sma.disconnect()
    sma.destroy()
    sma.destroy()
    with pytest.raises(FileNotFoundError):
        sma.connect()


def test_two_dimensional_rows(astore):
    sma = SharedMemoryArray.create_array("grid", np.arange(6, dtype=np.float64).reshape(3, 2), secret_dir=astore)
    try:
        assert sma.read_data(1, convert_output=True) == [2.0, 3.0]
        assert sma.read_data((1,), convert_output=True) == [[2.0, 3.0], [4.0, 5.0]]
        sma.write_data(-1, [9, 9])
        assert sma.read_data((2, 3), convert_output=True) == [[9.0, 9.0]]
    finally:
        sma.destroy()


def _child(sma: SharedMemoryArray, n: int) -> None:
    assert sma.is_connected  # unpickling connects, as in ataraxis 7
    sma.connect()  # the README's children call it: a no-op
    for _ in range(n):
        with sma._arr.locked() as v:
            v[0] += 1
    sma.write_data(1, 1)
    sma.disconnect()


def test_children_connect_and_write(sma):
    state = pickle.loads(pickle.dumps(sma))
    assert state.is_connected and state.name == sma.name and state.shape == sma.shape
    state.disconnect()
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_child, args=(sma, 200)) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    assert sma.read_data((0, 2), convert_output=True) == [601, 1]


# ---- ataraxis 7's API beside the README's, and its layout and value checks ----


def test_connect_refuses_another_layout(astore):
    sma = SharedMemoryArray.create_array("layout", np.arange(6, dtype=np.int32), secret_dir=astore)
    try:
        for shape, dtype in (((100,), np.float64), ((6,), np.float64), ((3,), np.int32), ((6,), np.int64)):
            other = SharedMemoryArray("layout", shape, np.dtype(dtype), str(astore))
            with pytest.raises(errors.ArrayLayoutError, match="exists with shape \\(6,\\) and dtype int32"):
                other.connect()
            assert not other.is_connected
        assert sma.read_data((0,), convert_output=True) == [0, 1, 2, 3, 4, 5]
        same = SharedMemoryArray("layout", (6,), np.dtype(np.int32), str(astore))
        same.connect()
        same.write_data(0, 7)
        assert sma.read_data(0) == 7
        same.disconnect()
    finally:
        sma.destroy()


def test_a_value_out_of_the_dtype_is_a_value_error(astore):
    sma = SharedMemoryArray.create_array("narrow", np.zeros(3, dtype=np.int32), secret_dir=astore)
    try:
        with pytest.raises(ValueError, match="Unable write data"):
            sma.write_data(0, 2**40)
        assert sma.read_data((0,), convert_output=True) == [0, 0, 0]
    finally:
        sma.destroy()


@pytest.mark.parametrize(
    "prototype, index, value",
    [
        (np.array([1, 2, 3, 4, 5], dtype=np.int32), 0, 10),
        (np.array([1, 2, 3, 4, 5], dtype=np.int32), slice(1, None), [20, 30, 40, 50]),
        (np.array([1.1, 2.2, 3.3], dtype=np.float64), -1, 50.5),
        (np.array([True, False, True]), slice(0, 2), [False, True]),
        (np.array(["a", "b", "c", "d", "e"], dtype="<U1"), -1, "z"),
        (np.array(["a", "b", "c", "d", "e"], dtype="<U1"), slice(0, 3), ["x", "y", "z"]),
        (np.array([b"abcdefgh", b"x"], dtype="S8"), 1, b"12345678"),
    ],
)
def test_current_item_access(astore, prototype, index, value):
    sma = SharedMemoryArray.create_array("items", prototype, exists_ok=True, secret_dir=astore)
    try:
        sma[index] = value
        got = sma[index]
        expect = prototype.copy()
        expect[index] = value
        np.testing.assert_array_equal(got, expect[index])
        if isinstance(got, np.ndarray):
            assert got.dtype == prototype.dtype
            got[...] = 0  # a copy: the shared data keeps its values
            np.testing.assert_array_equal(sma[index], expect[index])
        else:
            assert isinstance(got, type(prototype[0]))
    finally:
        sma.destroy()


def test_array_context_manager(astore):
    proto = np.array([1, 2, 3, 4, 5], dtype=np.int32)
    sma = SharedMemoryArray.create_array("cm", proto, secret_dir=astore)
    try:
        with sma.array(with_lock=True) as a:
            assert isinstance(a, np.ndarray)
            np.testing.assert_array_equal(a, proto)
            a[0] = 100
        with sma.array(with_lock=False) as a:
            assert a[0] == 100
        assert sma[0] == 100
        with sma.array() as a:  # the lock is held: a nested locked access is refused, not a deadlock
            with pytest.raises(errors.InvalidArgumentError, match="already holds the lock"):
                sma[1]
        sma[1] = 5  # and released after the block
        sma.disconnect()
        with pytest.raises(RuntimeError, match="connect"):
            sma.array()
        with pytest.raises(RuntimeError, match="connect"):
            sma[0]
    finally:
        sma.destroy()


def test_array_call_takes_what_the_context_takes(astore):
    """``sma.array`` is a native callable answering ``with_lock=`` a bool itself: every other
    call must still behave as the context's own ``__call__`` (its errors included)."""
    sma = SharedMemoryArray.create_array("calls", np.zeros(3, dtype=np.int64), secret_dir=astore)
    try:
        locked = sma.array()
        assert sma.array(with_lock=True) is locked  # the same context, not a new one per call
        unlocked = sma.array(with_lock=False)
        assert unlocked is not locked
        with unlocked as a:
            sma[0] = 7  # no lock held by the block: a locked access inside it works
            assert a[0] == 7
        with sma.array(with_lock=np.bool_(False)) as a:  # NumPy's bool, through the slow path
            sma[1] = 8
            assert a[1] == 8
        with pytest.raises(TypeError):
            sma.array(True)  # with_lock is keyword-only, as ataraxis'
        with pytest.raises(TypeError, match="lock"):
            sma.array(lock=True)
        with pytest.raises(TypeError):
            sma.array(with_lock="yes")
        with pytest.raises(TypeError):
            sma.array(with_lock=True, other=1)
        with sma.array(with_lock=True) as a:  # and nothing was left locked by the refusals
            a[2] += 1
        assert sma[2] == 1
    finally:
        sma.destroy()


def _increment(sma: SharedMemoryArray, n: int) -> None:
    for _ in range(n):
        with sma.array(with_lock=True) as a:
            a[0] += 1


def test_array_block_is_an_atomic_read_modify_write(astore):
    sma = SharedMemoryArray.create_array("rmw", np.zeros(2, dtype=np.int64), secret_dir=astore)
    try:
        ctx = mp.get_context("spawn")
        procs = [ctx.Process(target=_increment, args=(sma, 2000)) for _ in range(4)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(120)
            assert p.exitcode == 0
        assert sma[0] == 8000
    finally:
        sma.destroy()


def test_auto_connect_false_leaves_it_to_connect(astore):
    sma = SharedMemoryArray.create_array("later", np.zeros(2, dtype=np.int32), auto_connect=False, secret_dir=astore)
    try:
        copy = pickle.loads(pickle.dumps(sma))
        assert not copy.is_connected
        copy.connect()
        copy[1] = 3
        assert sma[1] == 3
        copy.disconnect()
    finally:
        sma.destroy()
