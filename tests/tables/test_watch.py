"""wait=True and watch(): woken by file-system notifications on the manifest (or by
polling), across processes, interruptible. Latency is measured in benches/, not here."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pandas as pd
import pytest

import allye_data_connector as adc
from allye_data_connector import _core
from allye_data_connector.errors import TableNotFoundError

DF = pd.DataFrame({"x": np.arange(100.0)})


def send_later(store, name, delay, df=DF, **kw):
    def run():
        time.sleep(delay)
        adc.send_dataframe(df, name, secret_dir=store, **kw)

    t = threading.Thread(target=run)
    t.start()
    return t


def test_watcher_uses_events_on_linux(store):
    store.mkdir(parents=True)
    w = _core.ManifestWatcher(secret_dir=str(store))
    if sys.platform.startswith("linux"):
        assert w.mode == "events"
    assert _core.ManifestWatcher(secret_dir=str(store), force_polling=True).mode == "polling"
    assert w.wait(0.05) is False


@pytest.mark.parametrize("polling", [False, True])
def test_get_waits_for_a_version_from_another_process(store, polling, monkeypatch):
    if polling:
        monkeypatch.setenv("ALLYE_WATCH_POLLING", "1")
    store.mkdir(parents=True)
    child = subprocess.Popen(
        [sys.executable, "-c",
         "import time, pandas as pd, allye_data_connector as a; time.sleep(0.5); "
         f"a.send_dataframe(pd.DataFrame({{'v': [1, 2, 3]}}), 'late', secret_dir={str(store)!r})"]
    )
    try:
        df = adc.get_dataframe("late", secret_dir=store, wait=True, timeout_sec=60)
    finally:
        child.wait(60)
    assert df["v"].tolist() == [1, 2, 3]


def test_wait_times_out_and_store_may_not_exist_yet(store):
    t0 = time.monotonic()
    with pytest.raises(TableNotFoundError):
        adc.get_dataframe("never", secret_dir=store, wait=True, timeout_sec=0.3)
    assert time.monotonic() - t0 >= 0.3
    # The store directory appears only when the sender creates it.
    t = send_later(store, "born", 0.3)
    df = adc.get_dataframe("born", secret_dir=store, wait=True, timeout_sec=30)
    t.join()
    assert len(df) == 100


def test_watch_yields_every_new_version_in_order(store):
    adc.send_dataframe(DF, "old", secret_dir=store)
    got = []

    def sender():
        time.sleep(0.2)
        for i in range(3):
            adc.send_dataframe(DF.head(i + 1), "w", secret_dir=store)
        adc.send_dataframe(DF, "other", secret_dir=store)
        adc.remove_table("w", secret_dir=store)

    t = threading.Thread(target=sender)
    t.start()
    for rec in adc.watch("w", secret_dir=store, timeout_sec=3, include_errors=True):
        got.append(rec)
        if len(got) == 4:
            break
    t.join()
    assert [r["shape"] for r in got[:3]] == [(1, 1), (2, 1), (3, 1)]
    assert got[3]["status"] == "error" and got[3]["metadata"]["error"] == "removed by user"
    # All tables, and nothing that existed before the watch started.
    t = send_later(store, "later", 0.1)
    seen = [r["table_name"] for r in adc.watch(secret_dir=store, timeout_sec=1.0)]
    t.join()
    assert seen == ["later"]


def test_watch_callback_in_background(store):
    got = []
    done = threading.Event()

    def cb(rec):
        got.append(rec["table_name"])
        if len(got) == 2:
            done.set()

    with adc.watch(secret_dir=store, callback=cb) as w:
        assert w.running
        send_later(store, "a", 0.1).join()
        send_later(store, "b", 0.0).join()
        assert done.wait(10)
    assert not w.running
    assert got == ["a", "b"] and w.errors == []


def test_tail_survives_compaction_by_rename(store):
    adc.send_dataframe(DF, "c", secret_dir=store)
    it = adc.watch("c", secret_dir=store, timeout_sec=5)
    # Compact: rewrite the manifest with only the ready lines, replace it by rename.
    manifest = store / "manifest.jsonl"
    kept = [line for line in manifest.read_text().splitlines() if '"status":"ready"' in line]
    tmp = store / "manifest.tmp"
    tmp.write_text("\n".join(kept) + "\n")
    tmp.replace(manifest)
    send_later(store, "c", 0.2, df=DF.head(7))
    rec = next(it)
    assert rec["shape"] == (7, 1)  # the old version, re-read after the rename, is not news
    it.close()


def test_cli_watch_is_interrupted_by_ctrl_c(store):
    store.mkdir(parents=True)
    proc = subprocess.Popen([sys.executable, "-m", "allye_data_connector", "-d", str(store), "watch"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(1.5)
    t0 = time.monotonic()
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=10)
    assert time.monotonic() - t0 < 2
    assert proc.returncode == 130, (out, err)
    assert "Traceback" not in err
