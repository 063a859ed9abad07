"""The pool of pre-mapped segments (``allye_core::pool``) seen from Python: sends and puts
through it, its bound and its settings, and the proofs that recycling a freed version's
segment never changes what a reader in another process holds (ours: a zero-copy view;
0.1.2's: the segment it opened), and that a party killed at any step leaves the store
consistent and nothing behind once gc has run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import allye_data_connector as adc
from allye_data_connector import _core

MB8 = 1 << 20  # float64 values: 8 MiB, above the pool's minimum


def wait_for(what: str, cond, timeout: float = 30.0) -> None:
    t0 = time.monotonic()
    while not cond():
        assert time.monotonic() - t0 < timeout, f"timed out waiting for {what}: {_core.pool_stats()}"
        time.sleep(0.02)


def own_pool_segments() -> set[str]:
    uid = os.geteuid()
    return {p.name for p in Path("/dev/shm").iterdir()
            if p.name.startswith("adc_") and len(p.name) == 30 and p.name[14] == "p" and p.stat().st_uid == uid}


@pytest.fixture
def no_grace(monkeypatch: pytest.MonkeyPatch) -> None:
    """Superseded versions are freed (so retired) by the very next put."""
    monkeypatch.setenv("ALLYE_AUTO_GC_GRACE_SEC", "0")


def test_puts_go_through_the_pool_and_capacity_shows_it(store: Path, no_grace: None) -> None:
    objs = adc.objects(secret_dir=store)
    objs["x"] = np.full(MB8, 0.0)
    wait_for("a free segment", lambda: _core.pool_stats()["free_segments"] >= 1)
    payload = _core.object_latest("x", secret_dir=str(store))["payload"]
    assert _core.pool_stats()["free_bytes"] == payload["data_size"], "sized as the put was"
    cap = adc.capacity(secret_dir=store)
    assert cap["pool_bytes"] >= payload["data_size"] and cap["pool_segments"] >= 1
    assert cap["pool_max_bytes"] == _core.default_pool_max_bytes() > 0
    for i in range(1, 6):
        objs["x"] = np.full(MB8, float(i))
        assert float(objs["x"][MB8 - 1]) == i
        time.sleep(0.1)
    s = _core.pool_stats()
    assert s["hits"] >= 4 and s["recycled"] >= 1, s
    payload = _core.object_latest("x", secret_dir=str(store))["payload"]
    assert Path("/dev/shm", payload["locator"]).stat().st_size == payload["data_size"], "a segment of exactly its payload"
    _core.pool_release()
    assert _core.pool_stats()["free_segments"] == 0


def test_pool_max_bytes_zero_means_no_pool(store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALLYE_POOL_MAX_BYTES", "0")
    objs = adc.objects(secret_dir=store)
    before = _core.pool_stats()
    for i in range(3):
        objs["x"] = np.full(MB8, float(i))
    time.sleep(0.2)
    after = _core.pool_stats()
    assert (after["free_segments"], after["hits"], after["misses"]) == (0, before["hits"], before["misses"])
    monkeypatch.setenv("ALLYE_POOL_MAX_BYTES", "-1")
    with pytest.raises(adc.errors.InvalidArgumentError, match="pool_max_bytes"):
        objs["x"] = 1


HOLD_OURS = """
import sys, numpy as np, allye_data_connector as adc
a = adc.objects(secret_dir={store!r})["x"]          # a zero-copy view of the version's segment
first = float(a[0])
print(first, flush=True)
sys.stdin.readline()                                  # the writer recycles meanwhile
print("same" if bool((a == first).all()) else "CHANGED", flush=True)
"""

HOLD_012 = """
import sys, pyarrow as pa, pyarrow.ipc as ipc, importlib.metadata as m
from multiprocessing.shared_memory import SharedMemory
assert m.version("allye_data_connector") == "0.1.2"
locator, size = sys.argv[1], int(sys.argv[2])
shm = SharedMemory(name=locator, create=False)        # what 0.1.2's reader opens first ...
print("open", flush=True)
sys.stdin.readline()                                  # ... a slow reader: the writer recycles meanwhile
data = bytes(shm.buf[:size])                          # ... then what it copies and decodes
shm.close()
col = ipc.open_stream(pa.BufferReader(data)).read_all().column(0).to_numpy()
print("same" if bool((col == col[0]).all()) and col[0] == 1.0 else "CHANGED", flush=True)
"""


def test_a_reader_in_another_process_keeps_its_view_across_recycles(store: Path, no_grace: None) -> None:
    objs = adc.objects(secret_dir=store)
    objs["x"] = np.full(MB8, 1.0)
    reader = subprocess.Popen([sys.executable, "-c", textwrap.dedent(HOLD_OURS.format(store=str(store)))],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert reader.stdout is not None and reader.stdin is not None
        assert float(reader.stdout.readline()) == 1.0
        held = _core.object_latest("x", secret_dir=str(store))["payload"]["locator"]
        for i in range(2, 12):  # each put frees (retires) the version before it
            objs["x"] = np.full(MB8, float(i))
            time.sleep(0.05)
        wait_for("recycled segments", lambda: _core.pool_stats()["recycled"] >= 2)
        assert not Path("/dev/shm", held).exists(), "the held version left its name"
        waiting = _core.pool_stats()["quarantined_segments"]
        reader.stdin.write("go\n")
        reader.stdin.flush()
        assert reader.stdout.readline().strip() == "same", "the reader's view changed under it"
        assert waiting >= 1, "the held segment waits"
        assert reader.wait(30) == 0
    finally:
        reader.kill()
    # Once its reader is gone, the held segment is reused too.
    wait_for("the held segment to leave quarantine", lambda: _core.pool_stats()["quarantined_segments"] == 0)


def test_a_012_reader_that_opened_a_segment_reads_it_whole_across_recycles(
        store: Path, no_grace: None, peer_python: str) -> None:
    df = pd.DataFrame({"v": np.full(MB8, 1.0)})
    adc.send_dataframe(df, "t", secret_dir=store, transport="shm")
    payload = _core.latest("t", secret_dir=str(store))["payload"]
    locator, size = payload["locator"], payload["data_size"]
    reader = subprocess.Popen([peer_python, "-c", textwrap.dedent(HOLD_012), locator, str(size)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert reader.stdout is not None and reader.stdin is not None
        assert reader.stdout.readline().strip() == "open"
        for i in range(2, 12):
            adc.send_dataframe(pd.DataFrame({"v": np.full(MB8, float(i))}), "t", secret_dir=store, transport="shm")
            time.sleep(0.05)
        wait_for("recycled segments", lambda: _core.pool_stats()["recycled"] >= 2)
        waiting = _core.pool_stats()["quarantined_segments"]
        reader.stdin.write("go\n")
        reader.stdin.flush()
        assert reader.stdout.readline().strip() == "same", "the segment changed under 0.1.2's reader"
        assert waiting >= 1, "the segment 0.1.2 holds open waits"
        assert reader.wait(30) == 0
    finally:
        reader.kill()
    got = adc.get_dataframe("t", secret_dir=store)
    assert float(got["v"].iloc[0]) == 11.0 and len(got) == MB8


# ---- kill -9 of every party at every step -------------------------------------------------

PUTTER = """
import time, numpy as np, allye_data_connector as adc
objs = adc.objects(secret_dir={store!r})
for i in range(40):
    objs["x"] = np.full({n}, float(i))
    print(i, flush=True)
    time.sleep(0.15)
"""

STEPS = ["pool-created", "pool-taken", "pool-published", "pool-retired", "pool-recycling"]


def _stopped(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "T"
    except FileNotFoundError:
        return False


def _flocked_inodes() -> set[int]:
    out = set()
    for line in Path("/proc/locks").read_text().splitlines():
        if "FLOCK" in line:
            for w in line.split():
                if w.count(":") == 2:
                    out.add(int(w.rsplit(":", 1)[1]))
                    break
    return out


def test_a_writer_killed_at_every_step_leaves_a_consistent_store_and_nothing_after_gc(tmp_path: Path) -> None:
    stores = {step: tmp_path / step for step in STEPS}
    env = {**os.environ, "ALLYE_AUTO_GC_GRACE_SEC": "0"}
    children = {}
    for step, store in stores.items():
        children[step] = subprocess.Popen([sys.executable, "-c", textwrap.dedent(PUTTER.format(store=str(store), n=MB8))],
                                          env={**env, "ALLYE_STOP_AT": step}, stdout=subprocess.DEVNULL)
    try:
        t0 = time.monotonic()
        while not all(_stopped(c.pid) for c in children.values()):
            exited = [s for s, c in children.items() if c.poll() is not None]
            assert not exited, f"never reached {exited}"
            assert time.monotonic() - t0 < 120, {s: _stopped(c.pid) for s, c in children.items()}
            time.sleep(0.05)
        for c in children.values():
            c.send_signal(signal.SIGKILL)
            c.wait()
    finally:
        for c in children.values():
            c.kill()
    for step, store in stores.items():
        adc.gc(secret_dir=store, dry_run=False)
        objs = adc.objects(secret_dir=store)
        if "x" in objs:  # the version published last is whole
            a = objs["x"]
            assert len(a) == MB8 and bool((a == a[0]).all()), step
        live = {_core.object_latest(name, secret_dir=str(store))["payload"]["locator"] for name in objs}
        ns_dir = store / "objects"
        manifest_segments = set()
        for m in ns_dir.glob("*/manifest.jsonl"):
            for line in m.read_text().splitlines():
                ev = json.loads(line)
                if ev.get("payload"):
                    manifest_segments.add(ev["payload"]["locator"])
                manifest_segments.add(((ev.get("metadata") or {}).get("adc") or {}).get("locator"))
        tags = {loc[4:14] for loc in manifest_segments if loc}
        left = {p.name for p in Path("/dev/shm").iterdir() if p.name[4:14] in tags and p.name.startswith("adc_")}
        assert left <= live, f"{step}: left behind {left - live}"
    locked = _flocked_inodes()
    unheld = {n for n in own_pool_segments() if os.stat(f"/dev/shm/{n}").st_ino not in locked}
    assert not unheld, f"pool segments of dead processes left after gc: {unheld}"
