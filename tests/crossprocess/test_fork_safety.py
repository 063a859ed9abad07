"""A process forked while other threads of its parent are inside the library (a stream's
background consolidation and publication, sends, gets, object puts) works in the child:
``multiprocessing``'s default start method on Linux is ``fork``, and a lock held by a
parent's thread at the fork must not hang the child (the core's caches are
``sys::fork::ForkLocal``; the package's locks start afresh ``os.register_at_fork``)."""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import allye_data_connector as adc

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="fork is a POSIX start method")

FORKS = 40
CHILD_BUDGET_SEC = 20


def _child(store: str, k: int) -> None:
    # Everything a child typically does, each path through the core's caches.
    adc.append("events", [{"k": k, "who": "child"}], secret_dir=store, publish=False)
    adc.append("events", [{"k": k, "who": "child"}], secret_dir=store)
    df = pd.DataFrame({"x": np.arange(100) + k})
    adc.send_dataframe(df, f"child{k}", secret_dir=store)
    got = adc.get_dataframe(f"child{k}", secret_dir=store)
    assert got["x"].tolist() == df["x"].tolist()
    objs = adc.objects(secret_dir=store)
    objs[f"o{k}"] = {"k": k}
    assert objs[f"o{k}"] == {"k": k}
    assert len(adc.get_arrow("events", secret_dir=store)) >= 2


def _busy(store: str, stop: threading.Event, errors: list[BaseException]) -> None:
    """Keeps a parent's thread inside the library: appends (which wake the background
    publisher and consolidation), sends and gets."""
    df = pd.DataFrame({"y": np.arange(1000)})
    i = 0
    try:
        while not stop.is_set():
            adc.append("events", [{"k": -i, "who": "parent"}], secret_dir=store)
            adc.send_dataframe(df, "parent", secret_dir=store)
            adc.get_dataframe("parent", secret_dir=store)
            adc.objects(secret_dir=store)["p"] = i
            i += 1
    except BaseException as exc:  # noqa: BLE001 - reported by the test
        errors.append(exc)


def test_children_forked_while_parent_threads_are_inside_the_library_finish(tmp_path: Path) -> None:
    store = str(tmp_path / "store")
    # Every module the children use is imported before the threads start: a fork while
    # another thread imports leaves that module's import lock held in the child (CPython's
    # own limit, not the library's), which the library's lazy attributes would otherwise hit.
    _child(str(tmp_path / "warm-up"), 0)
    adc.append("events", [{"k": 0, "who": "seed"}], secret_dir=store)
    stop = threading.Event()
    errors: list[BaseException] = []
    busy = [threading.Thread(target=_busy, args=(store, stop, errors), daemon=True) for _ in range(2)]
    for t in busy:
        t.start()
    ctx = mp.get_context("fork")
    hung = []
    try:
        for k in range(1, FORKS + 1):
            child = ctx.Process(target=_child, args=(store, k))
            child.start()
            child.join(CHILD_BUDGET_SEC)
            if child.exitcode is None:
                hung.append(k)
                os.kill(child.pid, signal.SIGKILL)
                child.join()
                break
            else:
                assert child.exitcode == 0, f"child {k} failed (exit {child.exitcode})"
    finally:
        stop.set()
        for t in busy:
            t.join(60)
    assert not hung, f"children forked while the parent was busy hung: {hung}"
    assert not errors, errors
    rows = adc.get_arrow("events", secret_dir=store).to_pylist()
    assert sorted(r["k"] for r in rows if r["who"] == "child") == sorted(list(range(1, FORKS + 1)) * 2)
    objs = adc.objects(secret_dir=store)
    assert all(objs[f"o{k}"] == {"k": k} for k in range(1, FORKS + 1))
