"""SharedArray: a writable view of shared memory, the robust cross-process lock, lifetime
and gc, across real processes."""

from __future__ import annotations

import multiprocessing as mp
import os
import pickle
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import allye_data_connector as adc
from tests.helpers import own
from allye_data_connector import SharedArray, errors
from allye_data_connector.cli import main as cli
from allye_data_connector.arrays import HolderDiedWarning, list_arrays

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="shared arrays are Linux only")

ROOT = Path(__file__).resolve().parents[2]


def run_python(code: str) -> str:
    """Runs `code` in a fresh interpreter; its stdout; fails the test on error."""
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"child failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout

CTX = mp.get_context("spawn")


def _segments() -> set[str]:
    return {n for n in os.listdir("/dev/shm") if n.startswith("adca_")}


def test_array_is_a_writable_view_shared_by_handles(astore):
    a = SharedArray.create("v", (3, 4), np.float64, secret_dir=astore)
    assert (a.shape, a.dtype, a.nbytes, a.name) == ((3, 4), np.dtype("<f8"), 96, "v")
    view = a.array
    assert view.flags.writeable and not view.flags.owndata and view.shape == (3, 4)
    assert a.array is view, "the view is made once"
    assert not view.any(), "new arrays are zeros"
    b = SharedArray.open("v", secret_dir=astore)
    view[1, 2] = 2.5
    assert b.array[1, 2] == 2.5, "another mapping sees the write at once"
    b.array[:, 0] = 7
    assert a.read((slice(None), 0)).tolist() == [7, 7, 7]
    assert b.segment == a.segment and Path(f"/dev/shm/{a.segment}").exists()
    b.close()
    assert b.closed and not a.closed
    with pytest.raises(errors.ArrayClosedError) as e:
        b.array
    assert isinstance(e.value, RuntimeError)
    for call in (lambda: b.read(0), lambda: b.write(0, 1), lambda: b.locked().__enter__()):
        with pytest.raises(errors.ArrayClosedError):
            call()
    assert view[1, 2] == 2.5, "a view taken before close stays valid memory"


def test_fill_dtypes_and_dimensions(astore):
    cases = [(np.bool_, True), (np.int8, -3), (np.uint16, 65535), (np.int32, -7), (np.uint64, 2**64 - 1),
             (np.float16, 1.5), (np.float32, 0.25), (np.complex64, 1 + 2j), (np.complex128, -1j)]
    for i, (dt, fill) in enumerate(cases):
        a = SharedArray.create(f"d{i}", (2, 3), dt, secret_dir=astore, fill=fill)
        assert a.array.dtype == np.dtype(dt) and (a.array == np.asarray(fill, dtype=dt)).all(), dt
        a.write((1, 2), 0)
        assert a.read((1, 2)) == 0
        a.destroy()
    scalar = SharedArray.create("s", (), np.int64, secret_dir=astore, fill=5)
    assert scalar.read() == 5 and scalar.array.shape == ()
    deep = SharedArray.create("deep", (1,) * 16, np.uint8, secret_dir=astore)
    assert deep.array.ndim == 16
    with pytest.raises(errors.InvalidArgumentError, match="at most 16"):
        SharedArray.create("deeper", (1,) * 17, np.uint8, secret_dir=astore)
    for bad in (object, "U4", ">i8", "datetime64[ns]"):
        with pytest.raises(errors.InvalidArgumentError, match="dtype"):
            SharedArray.create("bad", 3, bad, secret_dir=astore)
    with pytest.raises(errors.InvalidArgumentError, match="negative"):
        SharedArray.create("bad", (2, -1), np.int8, secret_dir=astore)
    with pytest.raises(errors.InvalidArgumentError, match="one value"):
        SharedArray.create("bad", 3, np.int8, secret_dir=astore, fill=[1, 2, 3])
    with pytest.raises(errors.InvalidArgumentError, match="name"):
        SharedArray.create("a/b", 3, np.int8, secret_dir=astore)
    assert [i["name"] for i in list_arrays(secret_dir=astore)] == ["deep", "s"]


def test_read_write_one_element_and_slices(astore):
    a = SharedArray.create("rw", 5, np.int64, secret_dir=astore)
    a.write(0, 3)
    a.write(-1, np.int64(9))
    a.write(1, 2.7)  # NumPy's conversion: truncated
    a.write(2, 4, lock=False)
    a.write(slice(3, 4), [8])
    got = a.read(0)
    assert type(got) is np.int64 and got == 3
    assert [a.read(i) for i in range(-5, 0)] == [3, 2, 4, 8, 9]
    assert a.read(4, lock=False) == 9
    s = a.read(slice(1, 3))
    assert s.tolist() == [2, 4]
    s[0] = 100
    assert a.read(1) == 2, "read returns a copy"
    for bad in (5, -6):
        with pytest.raises(IndexError):
            a.read(bad)
        with pytest.raises(IndexError):
            a.write(bad, 1)
    with pytest.raises(OverflowError):
        SharedArray.create("u", 2, np.uint8, secret_dir=astore).write(0, 300)
    f = SharedArray.create("f", 2, np.float32, secret_dir=astore)
    f.write(0, 1)
    assert f.read(0) == np.float32(1.0) and type(f.read(0)) is np.float32
    b = SharedArray.create("b", 2, bool, secret_dir=astore)
    b.write(1, True)
    assert b.read(1) is np.True_ or b.read(1) == True  # noqa: E712


def test_nested_lock_is_an_error_not_a_deadlock(astore):
    a = SharedArray.create("n", 1, np.int64, secret_dir=astore)
    with a.locked() as view:
        view[0] = 1
        with pytest.raises(errors.InvalidArgumentError, match="already holds"):
            a.read(0)
        assert a.read(0, lock=False) == 1
    assert a.read(0) == 1
    with pytest.raises(errors.InvalidArgumentError, match="does not hold"):
        a.release()


def test_child_writes_parent_reads(astore):
    a = SharedArray.create("cw", (2, 2), np.float64, secret_dir=astore)
    out = run_python(f"""
        import numpy as np
        from allye_data_connector import SharedArray
        a = SharedArray.open("cw", secret_dir={str(astore)!r})
        with a.locked() as v:
            v[:] = [[1.5, 2.5], [3.5, 4.5]]
        a.close()
        print("ok")
    """)
    assert out.strip() == "ok"
    assert a.read().tolist() == [[1.5, 2.5], [3.5, 4.5]]
    assert list_arrays(secret_dir=astore)[0]["openers"] == [os.getpid()], "the child's handle is gone"


def _increment(arr: SharedArray, n: int) -> None:
    for _ in range(n):
        with arr.locked() as v:
            v[0] += 1
    arr.close()


def test_five_processes_thousand_locked_increments_each(astore):
    a = SharedArray.create("count", 1, np.int64, secret_dir=astore)
    assert pickle.loads(pickle.dumps(a)).name == "count"
    procs = [CTX.Process(target=_increment, args=(a, 1000)) for _ in range(5)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    assert a.read(0) == 5000


def _hold_forever(arr: SharedArray, ready) -> None:
    with arr.locked() as v:
        v[0] = 123  # a write the holder never finishes
        ready.set()
        time.sleep(600)


def test_sigkill_of_a_holder_does_not_block_others(astore):
    a = SharedArray.create("k", 2, np.int64, secret_dir=astore)
    ready = CTX.Event()
    holder = CTX.Process(target=_hold_forever, args=(a, ready))
    holder.start()
    assert ready.wait(60)
    assert a.acquire(timeout=0.2) is False, "the child holds the lock"
    # Waiting for the lock releases the GIL: this thread keeps running meanwhile.
    waited = []
    t = threading.Thread(target=lambda: waited.append(a.acquire(timeout=0.5)))
    t.start()
    ticks = 0
    while t.is_alive():
        ticks += 1
        time.sleep(0.001)
    assert waited == [False] and ticks > 50
    os.kill(holder.pid, signal.SIGKILL)
    holder.join(10)
    with pytest.warns(HolderDiedWarning, match="died holding it"):
        with a.locked(timeout=10) as v:
            assert v[0] == 123
            v[1] = 1
    assert a.holder_died and a.lock_recoveries == 1
    # The lock is consistent again: another process takes it at once, told nothing.
    out = run_python(f"""
        import warnings
        from allye_data_connector import SharedArray
        warnings.simplefilter("error")
        a = SharedArray.open("k", secret_dir={str(astore)!r})
        with a.locked(timeout=5) as v:
            v[1] += 1
        print(a.holder_died, int(a.read(1)))
    """)
    assert out.split() == ["False", "2"]
    assert list_arrays(secret_dir=astore)[0]["openers"] == [os.getpid()], "the killed holder's slot is not counted"


def test_exist_ok_reclaims_a_match_and_refuses_a_mismatch(astore):
    a = SharedArray.create("x", 3, np.int32, secret_dir=astore, fill=4)
    with pytest.raises(errors.ArrayExistsError) as e:
        SharedArray.create("x", 3, np.int32, secret_dir=astore)
    assert isinstance(e.value, FileExistsError) and "exist_ok" in str(e.value)
    b = SharedArray.create("x", 3, np.int32, secret_dir=astore, exist_ok=True)
    assert b.reclaimed and not a.reclaimed and b.read().tolist() == [4, 4, 4], "data kept without fill"
    SharedArray.create("x", 3, "<i4", secret_dir=astore, exist_ok=True, fill=1)
    assert a.read().tolist() == [1, 1, 1]
    for shape, dt in ((3, np.int64), (4, np.int32), ((3, 1), np.int32)):
        with pytest.raises(errors.ArrayLayoutError, match=r"dtype <i4 and shape \[3\]") as e:
            SharedArray.create("x", shape, dt, secret_dir=astore, exist_ok=True)
        assert isinstance(e.value, ValueError)
    # A leftover of a dead process is reclaimed too, and its creator becomes this process.
    run_python(f"""
        from allye_data_connector import SharedArray
        SharedArray.create("left", 2, "u8", secret_dir={str(astore)!r}, fill=9)
    """)
    c = SharedArray.create("left", 2, np.uint64, secret_dir=astore, exist_ok=True)
    assert c.reclaimed and c.read(0) == 9
    info = {i["name"]: i for i in list_arrays(secret_dir=astore)}["left"]
    assert (info["creator_pid"], info["creator_alive"]) == (os.getpid(), True)


def test_failed_create_leaves_nothing(astore):
    before = _segments()
    total = os.statvfs("/dev/shm").f_blocks * os.statvfs("/dev/shm").f_frsize
    with pytest.raises(errors.StoreIOError):
        SharedArray.create("huge", total + 2**30, np.uint8, secret_dir=astore)
    with pytest.raises(errors.InvalidArgumentError):
        SharedArray.create("huge", 2**62, np.float64, secret_dir=astore)
    with pytest.raises(errors.ArrayNotFoundError) as e:
        SharedArray.open("huge", secret_dir=astore)
    assert isinstance(e.value, FileNotFoundError)
    assert _segments() - before == set()
    assert list_arrays(secret_dir=astore) == []
    assert not any((astore / "arrays").iterdir())


def _create_and_exit(store: str, name: str) -> None:
    SharedArray.create(name, 4, np.int16, secret_dir=store)  # never destroyed


def test_gc_frees_abandoned_arrays_and_leaves_held_ones(astore):
    live = SharedArray.create("live", 1, np.int8, secret_dir=astore)
    live.close()  # its creator (this process) is alive: kept even with no opener
    for name in ("abandoned", "held"):
        p = CTX.Process(target=_create_and_exit, args=(str(astore), name))
        p.start()
        p.join(60)
        assert p.exitcode == 0
    held = SharedArray.open("held", secret_dir=astore)
    segment = {i["name"]: i["segment"] for i in list_arrays(secret_dir=astore)}
    assert [a["table_name"] for a in own(adc.gc(secret_dir=astore, dry_run=True))] == ["abandoned"]
    assert Path(f"/dev/shm/{segment['abandoned']}").exists(), "a dry run frees nothing"
    actions = own(adc.gc(secret_dir=astore, dry_run=False))
    assert [(a["table_name"], a["transport"]) for a in actions] == [("abandoned", "shared_array")]
    assert "creator" in actions[0]["reason"] and not Path(f"/dev/shm/{segment['abandoned']}").exists()
    with pytest.raises(errors.ArrayNotFoundError):
        SharedArray.open("abandoned", secret_dir=astore)
    held.write(0, 5)
    assert held.read(0) == 5
    held.close()
    assert [a["table_name"] for a in own(adc.gc(secret_dir=astore, dry_run=False))] == ["held"]
    assert [i["name"] for i in list_arrays(secret_dir=astore)] == ["live"]


def test_destroy_frees_the_name_and_two_stores_do_not_collide(tmp_path, astore):
    a = SharedArray.create("same", 2, np.int8, secret_dir=astore, fill=1)
    other = tmp_path / "other"
    b = SharedArray.create("same", 2, np.int8, secret_dir=other, fill=2)
    try:
        assert a.segment != b.segment and a.read(0) == 1 and b.read(0) == 2
    finally:
        b.destroy()
    view = a.array
    a.destroy()
    assert a.closed and not Path(f"/dev/shm/{a.segment}").exists()
    assert view[0] == 1, "memory stays valid in a process that still maps it"
    with pytest.raises(errors.ArrayNotFoundError):
        SharedArray.open("same", secret_dir=astore)
    a.destroy()  # idempotent
    c = SharedArray.create("same", 3, np.int8, secret_dir=astore)
    assert c.shape == (3,)


def test_context_manager_closes(astore):
    with SharedArray.create("cm", 2, np.int8, secret_dir=astore) as a:
        a.write(0, 1)
    assert a.closed
    assert list_arrays(secret_dir=astore)[0]["openers"] == []


def test_adc_ls_arrays(astore):
    a = SharedArray.create("shown", (2, 3), np.float32, secret_dir=astore)
    runner = CliRunner()
    res = runner.invoke(cli, ["-d", str(astore), "--json", "ls", "--arrays"])
    assert res.exit_code == 0, res.output
    import json

    rows = json.loads(res.output)
    assert [(r["name"], r["dtype"], r["shape"], r["creator_pid"], r["openers"]) for r in rows] == [
        ("shown", "<f4", [2, 3], os.getpid(), [os.getpid()])
    ]
    res = runner.invoke(cli, ["-d", str(astore), "ls", "--arrays"])
    assert res.exit_code == 0 and "shown" in res.output and "<f4" in res.output and "(2, 3)" in res.output
    a.destroy()
    res = runner.invoke(cli, ["-d", str(astore), "ls", "--arrays"])
    assert "no shared arrays" in res.output


def test_a_rust_program_opens_an_array_python_created(astore):
    exe = ROOT / "target" / "debug" / "examples" / "shared_array"
    assert exe.exists(), "build it first: cargo build -p allye-core --example shared_array (.ci/run does)"
    a = SharedArray.from_array("native", np.array([40, 1, 2], dtype=np.int64), secret_dir=astore)
    out = subprocess.run([str(exe), "--secret-dir", str(astore), "--add", "2", "native"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "dtype <i8 shape [3]" in out.stdout and "first element now 42" in out.stdout
    assert a.read(0) == 42
    out = subprocess.run([str(exe), "--secret-dir", str(astore), "missing"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 1 and "no shared array" in out.stderr


def test_dropping_a_handle_unregisters_at_once(astore):
    a = SharedArray.create("drop", 1, np.int8, secret_dir=astore)
    b = SharedArray.open("drop", secret_dir=astore)
    with b.locked() as v:
        v[0] = 1
    assert len(list_arrays(secret_dir=astore)[0]["openers"]) == 2
    del b, v  # the view held the mapping; no reference cycle keeps either until gc runs
    assert list_arrays(secret_dir=astore)[0]["openers"] == [os.getpid()]
    assert a.read(0) == 1


def _add(arr: SharedArray, n: int) -> None:
    for _ in range(n):
        arr.add(1)
    arr.add(0, 0.5)
    arr.close()


def test_add_is_an_atomic_read_modify_write(astore):
    a = SharedArray.create("adds", 2, np.float64, secret_dir=astore)
    procs = [CTX.Process(target=_add, args=(a, 700)) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    assert a.read().tolist() == [1.5, 2100.0]
    m = SharedArray.create("addm", (2, 2), np.int32, secret_dir=astore)
    m.add((slice(None), 1), [10, 20])
    m.add(0, 1, lock=False)
    assert m.read().tolist() == [[1, 11], [0, 20]]
    with pytest.raises(IndexError):
        m.add(5)


@pytest.mark.parametrize("dt", [np.int32, np.int64, np.uint32, np.uint64, np.float32, np.float64, np.int16, np.complex64])
def test_add_follows_numpy_for_every_counter_dtype(astore, dt):
    a = SharedArray.create("c", 3, dt, secret_dir=astore)
    ref = np.zeros(3, dtype=dt)
    for index, value in ((0, 1), (-1, 5), (1, 2), (1, 3)):
        a.add(index, value)
        ref[index] += value
    assert a.read().tolist() == ref.tolist()
    with pytest.raises(IndexError):
        a.add(3, 1)
    with pytest.raises(IndexError):
        a.add(-4, 1)
    if np.dtype(dt).kind == "u":
        with pytest.raises(OverflowError):
            a.add(0, -1)  # NumPy 2 refuses a negative Python int for an unsigned array
    if np.dtype(dt).kind in "iu":
        top = np.iinfo(dt).max
        a.write(2, top)
        ref[2] = top
        with np.errstate(over="ignore"):
            a.add(2, 1)
            ref[2] += np.array(1, dtype=dt)
        assert a.read(2) == ref[2], "wraps like NumPy"


def test_a_relative_store_pickles_as_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    a = SharedArray.create("rel", 1, np.int8, secret_dir="relstore", fill=3)
    try:
        assert a.store == str(tmp_path / "relstore")
        monkeypatch.chdir("/")
        b = pickle.loads(pickle.dumps(a))
        assert b.read(0) == 3
        b.close()
    finally:
        a.destroy()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="shared arrays are Linux only")
def test_the_arrays_of_a_store_deleted_with_rm_rf_are_freed_by_cleanup_and_by_gc_of_another_store(tmp_path):
    import shutil

    gone = tmp_path / "gone"
    arrays = [SharedArray.create(f"a{i}", (8,), np.int32, secret_dir=gone, fill=i) for i in range(2)]
    segments = [a.segment for a in arrays]
    for a in arrays:
        a.close()
    other = tmp_path / "other"
    adc.send_dataframe(__import__("pandas").DataFrame({"x": [1]}), "t", secret_dir=other)
    # A live store's arrays are never an orphan.
    assert not {a["locator"] for a in adc.cleanup_orphans(dry_run=True)} & set(segments)
    shutil.rmtree(gone)
    reported = [a for a in adc.gc(secret_dir=other) if a["locator"] in segments]
    assert sorted(a["locator"] for a in reported) == sorted(segments)
    assert {a["transport"] for a in reported} == {"shared_array"} and {a["scope"] for a in reported} == {"orphan"}
    assert all(os.path.exists(f"/dev/shm/{s}") for s in segments), "the default gc only reports"
    adc.gc(secret_dir=other, dry_run=False)
    assert not any(os.path.exists(f"/dev/shm/{s}") for s in segments)
    assert not [a for a in adc.cleanup_orphans(dry_run=True) if a["locator"] in segments]
