"""Objects between real processes: a reader after the writer exited, four writers of one
name at once, and writers killed with SIGKILL during a put and inside create()."""

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

import allye_data_connector as adc
from tests.helpers import run_python, segments_named_in, shm_exists


def test_a_reader_gets_objects_after_the_writer_exited(store: Path) -> None:
    run_python(f"""
        import numpy as np, pandas as pd, allye_data_connector as adc
        objs = adc.objects("app", secret_dir={str(store)!r})
        objs["arr"] = np.arange(1_000_000, dtype="i8").reshape(1000, 1000)
        objs["df"] = pd.DataFrame({{"a": range(5), "b": list("abcde")}})
        objs["dict"] = {{"w": np.ones(10), "name": "model"}}
        objs.put("file", np.full(10, 7), transport="file")
    """)
    objs = adc.objects("app", secret_dir=store)
    assert sorted(objs) == ["arr", "df", "dict", "file"]
    arr = objs["arr"]
    assert arr[999, 999] == 999_999 and not arr.flags.writeable
    pd.testing.assert_frame_equal(objs["df"], pd.DataFrame({"a": range(5), "b": list("abcde")}))
    assert objs["dict"]["name"] == "model" and objs["dict"]["w"].sum() == 10
    assert (objs["file"] == 7).all()
    assert objs.info("arr")["writer"]["pid"] != os.getpid()


def test_four_processes_putting_one_name_leave_one_whole_version(store: Path) -> None:
    code = textwrap.dedent(f"""
        import sys, numpy as np, allye_data_connector as adc
        me = int(sys.argv[1])
        objs = adc.objects(secret_dir={str(store)!r})
        for i in range(15):
            objs["shared"] = np.full(50_000, me, dtype="i8")
            got = objs["shared"]
            assert (got == got[0]).all(), "torn read"
    """)
    procs = [subprocess.Popen([sys.executable, "-c", code, str(i)]) for i in range(4)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0, 0]
    objs = adc.objects(secret_dir=store)
    got = objs["shared"]
    assert got[0] in (0, 1, 2, 3) and (got == got[0]).all()
    assert list(objs) == ["shared"] and len(objs) == 1
    lines = [json.loads(x) for x in (store / "objects" / "default" / "manifest.jsonl").read_text().splitlines()]
    assert sum(ev["status"] == "ready" for ev in lines) == 60
    assert not any(ev["status"] == "error" for ev in lines)


def _spawn(code: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], stdout=subprocess.PIPE, text=True)


def test_kill_9_during_puts_leaves_a_whole_version_and_gc_frees_the_rest(store: Path) -> None:
    ns_store = store / "objects" / "default"
    proc = _spawn(f"""
        import numpy as np, allye_data_connector as adc
        objs = adc.objects(secret_dir={str(store)!r})
        objs.put("x", np.full(1000, -1.0), transport="shm")
        print("ready", flush=True)
        i = 0
        while True:
            objs.put("x", np.full(4_000_000, float(i)), transport="shm")
            i += 1
    """)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    time.sleep(0.5)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    objs = adc.objects(secret_dir=store)
    got = objs["x"]
    assert (got == got[0]).all()
    adc.gc(secret_dir=store, dry_run=False)
    current = json.loads([ln for ln in (ns_store / "manifest.jsonl").read_text().splitlines()
                          if '"ready"' in ln][-1])["payload"]["locator"]
    left = {s for s in segments_named_in(ns_store) if shm_exists(s)}
    assert left == {current}
    assert (objs["x"] == got[0]).all()


def test_kill_9_inside_create_publishes_nothing_and_gc_frees_the_segment(store: Path) -> None:
    proc = _spawn(f"""
        import time, allye_data_connector as adc
        objs = adc.objects(secret_dir={str(store)!r})
        objs["before"] = 1
        with objs.create("frame", shape=(1_000_000,), dtype="float64") as arr:
            arr[:] = 1.0
            print("inside", flush=True)
            time.sleep(60)
    """)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "inside"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    objs = adc.objects(secret_dir=store)
    assert "frame" not in objs and objs["before"] == 1
    ns_store = store / "objects" / "default"
    lines = [json.loads(x) for x in (ns_store / "manifest.jsonl").read_text().splitlines()]
    segment = [ev for ev in lines if ev["table_name"] == "frame"][0]["metadata"]["adc"]["locator"]
    assert shm_exists(segment)  # named by the writing line: gc can find it
    actions = adc.gc(secret_dir=store, dry_run=False)
    assert any(a["locator"] == segment and a["action"] == "delete" for a in actions)
    assert not shm_exists(segment)
    assert "frame" not in objs and objs["before"] == 1


def _locator(ns_store: Path, name: str) -> str:
    lines = [json.loads(x) for x in (ns_store / "manifest.jsonl").read_text().splitlines()]
    return [ev for ev in lines if ev["table_name"] == name and ev["status"] == "ready"][-1]["payload"]["locator"]


def test_a_deleted_store_leaves_no_object_segments_after_cleanup(store: Path, tmp_path: Path) -> None:
    import shutil

    objs = adc.objects("ns", secret_dir=store)
    objs.put("x", np.zeros(1000), transport="shm")
    seg = _locator(store / "objects" / "ns", "x")
    assert shm_exists(seg)
    shutil.rmtree(store)
    adc.cleanup_orphans(dry_run=False)
    assert not shm_exists(seg)
