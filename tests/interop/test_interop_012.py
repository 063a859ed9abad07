"""Interop with the real peer: the published allye_data_connector 0.1.2, in its own venv,
on the same store, through subprocesses (it has the same import name as ours)."""

from __future__ import annotations

import json
import subprocess
import textwrap

import numpy as np
import pandas as pd
import pytest

import allye_data_connector as adc
from allye_data_connector import errors
from tests.helpers import run_python, shm_exists


def frame() -> pd.DataFrame:
    n = 1000
    return pd.DataFrame(
        {
            "x": np.arange(n) * 0.5,
            "n": np.arange(n, dtype="int64"),
            "s": [None if i % 9 == 0 else f"ü{i}" for i in range(n)],
            "t": pd.date_range("2025-01-01", periods=n, freq="h", tz="Asia/Tokyo"),
        },
        index=pd.Index(np.arange(n) * 2, name="key"),
    )


PEER_READ = """
import json, allye_data_connector as adc, importlib.metadata as m
assert m.version("allye_data_connector") == "0.1.2"
df = adc.get_dataframe("ours", secret_dir={store!r})
tables = adc.list_tables(secret_dir={store!r})
print(json.dumps({{"index_name": df.index.name, "index_last": int(df.index[-1]), "x": float(df["x"].sum()),
                   "s3": df["s"].iloc[3], "s0_null": bool(df["s"].isna().iloc[0]), "tz": str(df["t"].dt.tz), "cols": list(df.columns),
                   "tables": [(t["table_name"], t["transport"], list(t["shape"])) for t in tables]}}))
"""


@pytest.mark.parametrize("transport", ["file", "shm"])
def test_ours_to_012(store, peer_python, transport):
    df = frame()
    adc.send_dataframe(df, "ours", secret_dir=store, transport=transport)
    got = json.loads(run_python(PEER_READ.format(store=str(store)), python=peer_python))
    assert got["cols"] == ["x", "n", "s", "t"]
    assert got["index_name"] == "key" and got["index_last"] == 1998  # 0.1.2 restores our index too
    assert got["x"] == float(df["x"].sum())
    assert got["s3"] == "ü3" and got["s0_null"] and got["tz"] == "Asia/Tokyo"
    kind = {"file": "file_arrow_ipc_v1", "shm": "shm_arrow_stream_v1"}[transport]
    assert got["tables"] == [["ours", kind, [1000, 4]]]
    if transport == "shm":
        # PROTOCOL.md, known defect: 0.1.2's reader registers the segment with Python's
        # resource tracker, which unlinks it when the reader exits. We must say so clearly.
        # (The peer runs on Python 3.11, whose SharedMemory always registers.)
        locator = json.loads((store / "manifest.jsonl").read_text().splitlines()[-1])["payload"]["locator"]
        assert not shm_exists(locator)
        with pytest.raises(errors.PayloadMissingError, match="resource tracker"):
            adc.get_dataframe("ours", secret_dir=store)
    else:
        pd.testing.assert_frame_equal(adc.get_dataframe("ours", secret_dir=store), df)


PEER_SEND = """
import sys, numpy as np, pandas as pd, allye_data_connector as adc
n = 1000
df = pd.DataFrame({{"x": np.arange(n) * 0.5, "n": np.arange(n, dtype="int64"),
                   "s": [None if i % 9 == 0 else f"ü{{i}}" for i in range(n)]}})
adc.send_dataframe(df, "theirs", secret_dir={store!r}, transport={transport!r}, notify_canvas=False)
print("sent", flush=True)
if {hold!r}:
    sys.stdin.readline()  # keep the process (and its resource tracker) alive until told
"""


def check_theirs(store):
    df = adc.get_dataframe("theirs", secret_dir=store)
    assert list(df.columns) == ["x", "n", "s"] and len(df) == 1000
    assert df["x"].sum() == (np.arange(1000) * 0.5).sum()
    assert df["s"].iloc[3] == "ü3" and pd.isna(df["s"].iloc[0])
    (t,) = adc.list_tables(secret_dir=store)
    assert (t["table_name"], t["producer"], t["shape"]) == ("theirs", "python", (1000, 3))
    return t


def test_012_file_to_ours_zstd(store, peer_python):
    run_python(PEER_SEND.format(store=str(store), transport="file", hold=False), python=peer_python)
    t = check_theirs(store)
    assert t["transport"] == "file_arrow_ipc_v1"
    path = json.loads((store / "manifest.jsonl").read_text().splitlines()[-1])["payload"]["locator"]
    import pyarrow as pa

    with pa.memory_map(path) as src:  # 0.1.2 compresses with zstd by default; we decoded it above
        assert pa.ipc.open_file(src).get_batch(0).num_rows == 1000


def test_012_shm_to_ours_while_sender_lives(store, peer_python):
    code = textwrap.dedent(PEER_SEND.format(store=str(store), transport="shm", hold=True))
    proc = subprocess.Popen([peer_python, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "sent"
        t = check_theirs(store)
        assert t["transport"] == "shm_arrow_stream_v1"
        # Reading did not unlink their segment (we use no resource tracker).
        locator = json.loads((store / "manifest.jsonl").read_text().splitlines()[-1])["payload"]["locator"]
        assert locator.startswith("psm_") and shm_exists(locator)
        check_theirs(store)
    finally:
        proc.communicate("\n", timeout=60)
    assert proc.returncode == 0


def test_both_writers_share_one_manifest(store, peer_python):
    adc.send_dataframe(pd.DataFrame({"v": [1]}), "a", secret_dir=store)
    run_python(
        f"""
        import pandas as pd, allye_data_connector as adc
        adc.send_dataframe(pd.DataFrame({{"v": [2]}}), "a", secret_dir={str(store)!r}, transport="file", notify_canvas=False)
        adc.send_dataframe(pd.DataFrame({{"v": [3]}}), "b", secret_dir={str(store)!r}, transport="file", notify_canvas=False)
        """,
        python=peer_python,
    )
    adc.send_dataframe(pd.DataFrame({"v": [4]}), "b", secret_dir=store, transport="file")
    assert adc.get_dataframe("a", secret_dir=store)["v"].tolist() == [2]
    assert adc.get_dataframe("b", secret_dir=store)["v"].tolist() == [4]
    out = run_python(
        f"""
        import allye_data_connector as adc
        print(adc.get_dataframe("a", secret_dir={str(store)!r})["v"].tolist(), adc.get_dataframe("b", secret_dir={str(store)!r})["v"].tolist())
        """,
        python=peer_python,
    )
    assert out.strip() == "[2] [4]"


PEER_READS_AS_PYARROW = """
import json, pandas as pd, pyarrow as pa, allye_data_connector as adc
store = {store!r}
out = {{}}
for name, locator in {tables!r}:
    df = adc.get_dataframe(name, secret_dir=store)
    with pa.memory_map(locator) as src:
        table = pa.ipc.open_file(src).read_all()
    meta = dict(table.schema.metadata)
    had_key = meta.pop(b"allye_pandas", None) is not None
    plain = table.replace_schema_metadata(meta).to_pandas()
    pd.testing.assert_frame_equal(df, plain)
    out[name] = had_key
print(json.dumps(out))
"""


def test_012_reads_frames_with_our_fidelity_metadata_as_pyarrow_does(store, peer_python):
    """Our own schema metadata (an index's freq, string dtypes, a Series, ...) changes
    nothing for 0.1.2: it reads each table as pyarrow reads the same table without it."""
    from tests.frames.test_fidelity import LOST_BY_PYARROW

    sent = {**LOST_BY_PYARROW, "series": pd.Series([1.5, 2.5], name="v")}
    tables = []
    for name, df in sent.items():
        adc.send_dataframe(df, name, secret_dir=store, transport="file")
        lines = (store / "manifest.jsonl").read_text().splitlines()
        tables.append((name, json.loads(lines[-1])["payload"]["locator"]))
    got = json.loads(run_python(PEER_READS_AS_PYARROW.format(store=str(store), tables=tables), python=peer_python))
    assert set(got) == set(sent)
    assert sum(got.values()) >= len(sent) - 2, "most of these carry our key (bool labels use allye_columns)"


PEER_READ_LOOP = """
import time, allye_data_connector as adc
ok = failed = 0
end = time.monotonic() + {seconds}
while time.monotonic() < end:
    try:
        adc.get_dataframe("loop", secret_dir={store!r})
        ok += 1
    except Exception as exc:
        failed += 1
        print("failed:", type(exc).__name__, exc)
print("ok", ok, "failed", failed)
"""


def test_sends_freeing_superseded_versions_wait_for_012_readers(store, peer_python):
    """A 0.1.2 reader does not retry when the version it looked up is freed: the grace
    period of the sends' own gc (1 s by default) must cover its lookup-to-open gap while
    our sends supersede versions as fast as they can (file payloads: 0.1.2's reader of a
    segment would unlink it when it exits, PROTOCOL.md section 9)."""
    df = pd.DataFrame({"x": np.arange(10_000.0)})
    adc.send_dataframe(df, "loop", secret_dir=store, transport="file")
    proc = subprocess.Popen([peer_python, "-c", textwrap.dedent(PEER_READ_LOOP.format(store=str(store), seconds=3))],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    sent = 0
    while proc.poll() is None:
        adc.send_dataframe(df, "loop", secret_dir=store, transport="file")
        sent += 1
    out, err = proc.communicate()
    assert proc.returncode == 0, err
    ok, failed = int(out.split()[-3]), int(out.split()[-1])
    assert failed == 0 and ok > 10, out
    assert sent > 100
    held = len(list((store / "payloads").glob("*.arrow")))
    assert held < sent / 2, f"{held} of {sent} versions still held: sends freed the superseded ones"


def test_012_stores_under_the_usual_umask_work_and_group_writable_ones_are_refused(store, peer_python):
    """0.1.2 makes its store with the process's umask. Under the usual 022 (0755 directories,
    0644 files: readable by others, writable by nobody else) we read and write it as
    before; under 002 (group-writable) the trust rule refuses it until it is made private."""
    import stat

    from allye_data_connector.errors import StoreNotPrivateError

    run_python("import os; os.umask(0o022)\n" + PEER_SEND.format(store=str(store), transport="file", hold=False),
               python=peer_python)
    assert stat.S_IMODE(store.stat().st_mode) == 0o755
    assert stat.S_IMODE((store / "manifest.jsonl").stat().st_mode) == 0o644
    check_theirs(store)
    adc.send_dataframe(frame(), "ours", secret_dir=store, transport="file")
    assert stat.S_IMODE((store / "payloads").stat().st_mode) == 0o755  # 0.1.2's, left as it is
    other = store.parent / "group_store"
    run_python("import os; os.umask(0o002)\n" + PEER_SEND.format(store=str(other), transport="file", hold=False),
               python=peer_python)
    assert stat.S_IMODE(other.stat().st_mode) == 0o775
    with pytest.raises(StoreNotPrivateError, match=f"chmod -R go-w {other}"):
        adc.get_dataframe("theirs", secret_dir=other)
    subprocess.run(["chmod", "-R", "go-w", str(other)], check=True)  # as the message says
    check_theirs(other)
