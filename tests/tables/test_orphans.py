"""Segments of deleted stores (issue 11, item 5): ``rm -rf`` of a store leaves its
segments in /dev/shm; ``adc cleanup`` (and ``gc`` of any store) frees them, and never a
live store's, 0.1.2's or another program's."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import allye_data_connector as adc
from tests.helpers import segments_named_in, shm_exists, unlink_segments

pytestmark = [
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="segments can be listed on Linux only"),
    # What cleanup finds is machine-wide: each test gets a /dev/shm of its own.
    pytest.mark.private_shm,
]

ADC = Path(sys.executable).with_name("adc")


def _fill(store: Path, n: int) -> set[str]:
    for i in range(n):
        adc.send_dataframe(pd.DataFrame({"x": np.arange(100.0)}), f"t{i}", secret_dir=store, transport="shm")
    segs = segments_named_in(store)
    assert len(segs) == n and all(shm_exists(s) for s in segs)
    return segs


def _foreign(prefix: str) -> str:
    """A segment that is not one of our stores' (0.1.2's psm_*, or our shape without a record)."""
    name = prefix + uuid.uuid4().hex[: 28 - len(prefix)]
    Path("/dev/shm", name).write_bytes(b"someone else's data")
    return name


@pytest.fixture
def stores(tmp_path):
    made = {k: tmp_path / k for k in ("deleted", "live", "recreated")}
    yield made
    for s in made.values():
        if s.exists():
            unlink_segments(s)


def test_cleanup_frees_deleted_stores_segments_only(stores, tmp_path):
    deleted = _fill(stores["deleted"], 3)
    live = _fill(stores["live"], 2)
    old = _fill(stores["recreated"], 2)
    foreign = [_foreign("psm_"), _foreign("adc_")]
    try:
        shutil.rmtree(stores["deleted"])
        shutil.rmtree(stores["recreated"])
        new = _fill(stores["recreated"], 1)  # same path, a new store
        assert all(shm_exists(s) for s in deleted | old), "rm -rf leaves the segments"

        dry = subprocess.run([str(ADC), "cleanup", "--dry-run", "--json"], capture_output=True, text=True, check=True)
        assert all(shm_exists(s) for s in deleted | old)
        proc = subprocess.run([str(ADC), "cleanup"], capture_output=True, text=True, check=True)
        assert "freed" in proc.stdout, proc.stdout
        assert not any(shm_exists(s) for s in deleted | old), "segments of deleted stores are freed"
        assert all(shm_exists(s) for s in live | new), "a live store's segments are untouched"
        assert all(shm_exists(s) for s in foreign), "other programs' segments are untouched"
        assert deleted | old <= {a["locator"] for a in json.loads(dry.stdout)}
        assert adc.get_dataframe("t1", secret_dir=stores["live"])["x"].sum() == 4950.0
        assert adc.get_dataframe("t0", secret_dir=stores["recreated"])["x"].sum() == 4950.0
    finally:
        for s in foreign:
            Path("/dev/shm", s).unlink(missing_ok=True)


def test_gc_of_any_store_frees_deleted_stores_segments(stores):
    deleted = _fill(stores["deleted"], 2)
    live = _fill(stores["live"], 1)
    shutil.rmtree(stores["deleted"])
    dry = adc.gc(secret_dir=stores["live"])
    assert {a["locator"] for a in dry} == deleted and all(shm_exists(s) for s in deleted)
    assert {a["scope"] for a in dry} == {"orphan"}, "reported apart from the store's own"
    done = adc.gc(secret_dir=stores["live"], dry_run=False)
    assert {a["locator"] for a in done} == deleted
    assert all(str(stores["deleted"]) in a["reason"] and "deleted store" in a["reason"] for a in done)
    assert not any(shm_exists(s) for s in deleted) and all(shm_exists(s) for s in live)
    assert adc.cleanup_orphans() == []


def test_segment_names_keep_their_shape_and_carry_the_store(stores):
    a = _fill(stores["deleted"], 2)
    b = _fill(stores["live"], 1)
    for s in a | b:
        assert len(s) == 28 and s.startswith("adc_") and all(c in "0123456789abcdef" for c in s[4:])
    tags = {s[4:14] for s in a}  # the first 10 hex digits name the store
    assert len(tags) == 1 and tags.isdisjoint({s[4:14] for s in b})


def test_adc_gc_counts_this_stores_payloads_apart_from_deleted_stores_leftovers(stores):
    import time

    _fill(stores["deleted"], 1)
    shutil.rmtree(stores["deleted"])
    adc.send_dataframe(pd.DataFrame({"x": [1.0]}), "short", secret_dir=stores["live"], transport="file", ttl_sec=0)
    time.sleep(1.1)
    out = subprocess.run([str(ADC), "-d", str(stores["live"]), "gc"], capture_output=True, text=True, check=True).stdout
    assert "1 payload of this store would be deleted; and 1 leftover of deleted stores" in out, out
    actions = json.loads(subprocess.run([str(ADC), "-d", str(stores["live"]), "--json", "gc"], capture_output=True,
                                        text=True, check=True).stdout)
    assert sorted((a["scope"], a["table_name"]) for a in actions) == [("orphan", ""), ("store", "short")]
    assert sorted(a["scope"] for a in adc.gc(secret_dir=stores["live"])) == ["orphan", "store"]
    out = subprocess.run([str(ADC), "-d", str(stores["live"]), "gc", "--delete"], capture_output=True, text=True,
                         check=True).stdout
    assert "1 payload of this store deleted; and 1 leftover of deleted stores and dead loads freed" in out, out
