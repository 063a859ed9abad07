"""Crash safety (SIGKILL at random moments of large sends), gc of what crashes leave, and
a full store (ENOSPC on /dev/shm and on the disk, in a private mount namespace)."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

import allye_data_connector as adc
from allye_data_connector import errors
from tests.helpers import own, segments_named_in, shm_exists

# x 10 int64 columns = 32 MB per version. Integers: a float frame's send first looks for
# NaN (before its `writing` line), which in the tests' debug build takes most of a send,
# so few kills would land inside the manifest's window this test is about.
ROWS = 400_000
COLS = 10

SENDER = """
import sys, numpy as np, pandas as pd, allye_data_connector as adc
store, transport, start = sys.argv[1], sys.argv[2], int(sys.argv[3])
base = pd.DataFrame({{f"c{{j}}": np.arange({rows}, dtype="int64") * (j + 1) for j in range({cols} - 1)}})
print("ready", flush=True)
k = start
while True:
    df = base.assign(k=np.full({rows}, k, dtype="int64"))  # the other columns are shared, not copied
    adc.send_dataframe(df, "big", secret_dir=store, transport=transport, chunk_rows=100_000,
                       shm_unlink_on_read=False)
    print("sent", k, flush=True)
    k += 1
"""


def make_frame(k: float):
    import pandas as pd

    df = pd.DataFrame({f"c{j}": np.arange(ROWS, dtype="int64") * (j + 1) for j in range(COLS - 1)})
    return df.assign(k=np.full(ROWS, int(k), dtype="int64"))


def manifest_lines(store: Path) -> list[bytes]:
    return (store / "manifest.jsonl").read_bytes().split(b"\n")


def check_version(df, at_least: int) -> int:
    """The frame is one complete version: its data columns hold exactly what was sent and
    its `k` column one version number k >= at_least."""
    assert df.shape == (ROWS, COLS)
    expected = np.arange(ROWS, dtype="int64")
    for j in range(COLS - 1):
        assert np.array_equal(df[f"c{j}"].to_numpy(), expected * (j + 1)), f"column c{j} is torn"
    k = df["k"].to_numpy()
    assert (k == k[0]).all(), "a torn version mixes values"
    assert k[0] >= at_least, f"version {k[0]} read after the sender reported {at_least}"
    return int(k[0])


def test_sigkill_at_random_moments_loses_and_leaks_nothing(store):
    """30 senders (15 shm, 15 file) of a 32 MB frame killed with SIGKILL at random moments:
    the previous version stays readable and intact, no `ready` line points at an
    incomplete payload, and gc then removes everything the dead senders left. The shm
    senders run without their pool of pre-mapped segments: a pooled send copies into its
    segment before its `writing` line, so a kill there lands outside the manifest's
    window (the pool's own steps are killed one by one in tests/pool)."""
    rng = random.Random(1234)
    adc.send_dataframe(make_frame(-1), "big", secret_dir=store, transport="file")
    script = textwrap.dedent(SENDER.format(rows=ROWS, cols=COLS))
    reported = -1
    killed_mid_send: set[str] = set()
    kills = 0
    for round_ in range(30):
        transport = "shm" if round_ % 2 == 0 else "file"
        start = (round_ + 1) * 1000
        pool = {"ALLYE_POOL_MAX_BYTES": "0"}
        child = subprocess.Popen(
            [sys.executable, "-c", script, str(store), transport, str(start)],
            stdout=subprocess.PIPE, text=True, env={**os.environ, **pool},
        )
        assert child.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.0, 0.6))
        child.send_signal(signal.SIGKILL)
        out, _ = child.communicate()
        kills += 1
        sent = [int(line.split()[1]) for line in out.splitlines() if line.startswith("sent")]
        # Did the kill land inside a send (a `writing` line without its `ready`)?
        events = [json.loads(l) for l in manifest_lines(store) if l.strip()]
        last = events[-1]
        if last["status"] == "writing":
            killed_mid_send.add(last["id"])
        # Every line is whole and parses (appends are single writes under the lock).
        assert all(isinstance(e, dict) and e["version"] == 1 for e in events)
        # Every ready line points at a complete payload; the latest is a whole version.
        if sent:
            reported = sent[-1]
        df = adc.get_dataframe("big", secret_dir=store)
        got = check_version(df, reported)
        if sent:
            # A kill between a send's `ready` line and its "sent" print leaves the next
            # version current, unreported: only then may it be one ahead.
            ahead_ok = last["status"] == "ready" and got == reported + 1
            assert got == reported or ahead_ok, "the last reported send is the current version"
    assert kills == 30
    mid_send = len(killed_mid_send)
    # The kills must have hit sends, not only the gaps between them.
    assert mid_send >= 10, f"only {mid_send} of 30 kills landed inside a send"

    # Every ready version is complete (before gc frees the superseded ones).
    ready = [e for e in (json.loads(l) for l in manifest_lines(store) if l.strip()) if e["status"] == "ready"]
    assert len(ready) >= 2

    # gc: dead senders' leftovers and superseded versions go; the current one stays.
    before = adc.get_dataframe("big", secret_dir=store)
    actions = adc.gc(secret_dir=store, dry_run=False)
    assert {a["action"] for a in actions} <= {"delete", "record"}
    records = [a for a in actions if a["action"] == "record"]
    assert len(records) == mid_send, "one error line per send killed mid-way"
    current = json.loads(
        [l for l in manifest_lines(store) if b'"status":"ready"' in l][-1]
    )["payload"]["locator"]
    left_segments = {n for n in segments_named_in(store) if shm_exists(n)}
    left_files = sorted(p.name for p in (store / "payloads").iterdir())
    assert left_segments <= {current}
    assert len(left_segments) + len(left_files) == 1, (left_segments, left_files)
    assert not any(".tmp-" in f for f in left_files)
    after = adc.get_dataframe("big", secret_dir=store)
    assert check_version(after, reported) == check_version(before, reported)
    # Every killed transfer now ends in an error line naming the dead sender.
    by_id: dict[str, list[str]] = {}
    for line in manifest_lines(store):
        if line.strip():
            e = json.loads(line)
            by_id.setdefault(e["id"], []).append(e["status"])
    assert all(s[-1] in ("ready", "error") for s in by_id.values())
    assert own(adc.gc(secret_dir=store, dry_run=False)) == []
    print(f"kills {kills}, inside a send {mid_send}, ready versions {len(ready)}, gc actions {len(actions)}, "
          f"left: {len(left_segments)} segments, {len(left_files)} files")


def test_repeated_shm_sends_leave_one_segment_after_gc(store):
    df = __import__("pandas").DataFrame({"x": np.arange(1000.0)})
    for _ in range(5):
        adc.send_dataframe(df, "t", secret_dir=store, transport="shm", shm_unlink_on_read=False)
    assert sum(shm_exists(n) for n in segments_named_in(store)) == 5
    dry = own(adc.gc(secret_dir=store))
    assert [a["action"] for a in dry] == ["delete"] * 4
    assert all("superseded" in a["reason"] for a in dry)
    assert sum(shm_exists(n) for n in segments_named_in(store)) == 5, "dry run deletes nothing"
    adc.gc(secret_dir=store, dry_run=False)
    assert sum(shm_exists(n) for n in segments_named_in(store)) == 1
    assert adc.get_dataframe("t", secret_dir=store)["x"].sum() == df["x"].sum()
    with pytest.raises(errors.InvalidArgumentError, match="keep_versions"):
        adc.gc(secret_dir=store, keep_versions=0)


def test_shm_unlink_on_read_is_honoured_by_gc(store):
    import pandas as pd

    df = pd.DataFrame({"x": np.arange(10.0)})
    adc.send_dataframe(df, "once", secret_dir=store, transport="shm")  # flag on (0.1.2's default)
    adc.send_dataframe(df, "many", secret_dir=store, transport="shm", shm_unlink_on_read=False)
    assert own(adc.gc(secret_dir=store, dry_run=False)) == [], "nothing read yet"
    held = adc.get_dataframe("once", secret_dir=store)
    adc.get_dataframe("many", secret_dir=store)
    actions = own(adc.gc(secret_dir=store, dry_run=False))
    assert [(a["table_name"], a["action"]) for a in actions] == [("once", "delete")]
    assert held["x"].sum() == 45.0, "a frame read before gc keeps its data"
    with pytest.raises(errors.PayloadMissingError, match="shm_unlink_on_read=False"):
        adc.get_dataframe("once", secret_dir=store)
    assert adc.get_dataframe("many", secret_dir=store)["x"].sum() == 45.0


def test_compact_keeps_what_readers_need(store):
    import pandas as pd

    for v in range(20):
        adc.send_dataframe(pd.DataFrame({"v": [v]}), f"t{v % 3}", secret_dir=store, transport="file")
    with pytest.raises(errors.ConversionError):
        adc.send_dataframe(pd.DataFrame({"m": [1, "a", 2.5]}), "bad", secret_dir=store)
    adc.gc(secret_dir=store, dry_run=False)
    report = adc.compact(secret_dir=store)
    assert report["lines_before"] == 40 and report["lines_after"] == 3, report
    assert {t["table_name"]: adc.get_dataframe(t["table_name"], secret_dir=store)["v"][0] for t in adc.list_tables(secret_dir=store)} == {
        "t0": 18, "t1": 19, "t2": 17,
    }
    assert (store / "manifest.jsonl").stat().st_mode & 0o777 == 0o600
    assert not list(store.glob("manifest.jsonl.compact-*"))


NAMESPACE_CHILD = """
import json, os, sys, numpy as np, pandas as pd, allye_data_connector as adc
from allye_data_connector import errors
store = sys.argv[1]
df = pd.DataFrame({"x": np.arange(2_000_000, dtype="float64")})  # 16 MB, /dev/shm holds 4 MB
out = {}
try:
    adc.send_dataframe(df, "big", secret_dir=store, transport="shm")
except errors.StorageFullError as exc:
    out["shm_error"] = str(exc)
out["shm_left"] = os.listdir("/dev/shm")
adc.send_dataframe(df, "big", secret_dir=store, transport="auto", max_shm_bytes=1 << 40)
out["auto"] = adc.list_tables(secret_dir=store)[0]["transport"]
out["auto_sum"] = float(adc.get_dataframe("big", secret_dir=store)["x"].sum())
out["shm_left_after_auto"] = os.listdir("/dev/shm")
small = sys.argv[2]
try:
    adc.send_dataframe(df, "big", secret_dir=small, transport="file")
except errors.StorageFullError as exc:
    out["file_error"] = str(exc)
out["small_payloads"] = os.listdir(os.path.join(small, "payloads"))
out["small_lines"] = [json.loads(l) for l in open(os.path.join(small, "manifest.jsonl"))]
out["big_sum"] = float(adc.get_dataframe("big", secret_dir=store)["x"].sum())
print(json.dumps(out))
"""


def test_full_shm_and_full_disk(store, tmp_path):
    """In a private mount namespace, /dev/shm is a 4 MB tmpfs and a second store lives on
    a 6 MB tmpfs: sends fail with StorageFullError, leave no partial payload, record an
    `error` line, and `auto` falls back from the full /dev/shm to a file."""
    small = tmp_path / "small"
    small.mkdir()
    script = tmp_path / "child.py"
    script.write_text(NAMESPACE_CHILD)
    shell = (
        # The store on its own tmpfs is mounted private (0700): a tmpfs's default 1777 is a
        # directory everyone can write, which the store's trust rule refuses.
        f"mount -t tmpfs -o size=4m tmpfs /dev/shm && mount -t tmpfs -o size=6m,mode=0700 tmpfs {small} && "
        f"exec {sys.executable} {script} {store} {small}"
    )
    proc = subprocess.run(["unshare", "--mount", "sh", "-c", shell], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert "No space left" in out["shm_error"] or "full" in out["shm_error"], out["shm_error"]
    # What is left is the store's record (adc_store_<tag>, naming the store so that its
    # segments can be found once it is deleted), never the partial segment.
    records = [n for n in out["shm_left"] if n.startswith("adc_store_")]
    assert len(records) == 1 and out["shm_left"] == records, "the partial segment is removed"
    assert out["auto"] == "file_arrow_ipc_v1" and out["auto_sum"] == float(np.arange(2_000_000).sum())
    assert out["shm_left_after_auto"] == records
    assert "No space left" in out["file_error"]
    assert out["small_payloads"] == [], "no partial or temporary file is left"
    statuses = [e["status"] for e in out["small_lines"]]
    assert statuses == ["writing", "error"]
    assert "No space left" in out["small_lines"][1]["metadata"]["error"]
    assert out["big_sum"] == out["auto_sum"]


@pytest.mark.parametrize("transport", ["shm", "file"])
def test_durable_send_round_trips(store, transport):
    import pandas as pd

    df = pd.DataFrame({"x": np.arange(1000.0)})
    adc.send_dataframe(df, "d", secret_dir=store, transport=transport, durable=True)
    pd.testing.assert_frame_equal(adc.get_dataframe("d", secret_dir=store), df)


def test_describing_a_table_is_not_a_read_for_shm_unlink_on_read(store):
    import pandas as pd

    adc.send_dataframe(pd.DataFrame({"x": np.arange(10.0)}), "once", secret_dir=store, transport="shm")
    assert adc.describe_table("once", secret_dir=store)["schema"] == [{"name": "x", "type": "double"}]
    adc.list_tables(secret_dir=store, all_states=True)
    assert own(adc.gc(secret_dir=store, dry_run=False)) == [], "looking at the schema is not a load"
    adc.get_dataframe("once", secret_dir=store)
    assert [a["table_name"] for a in own(adc.gc(secret_dir=store, dry_run=False))] == ["once"]
