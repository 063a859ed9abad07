"""Superseded versions are freed by sends themselves (issue 11, item 7): a loop of sends
holds a bounded number of payloads without gc(), after a grace period, keeping
``keep_versions``; the setting ``auto_gc`` turns it off."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

import allye_data_connector as adc
from allye_data_connector import _core, settings
from tests.helpers import segments_named_in, shm_exists


def _frame(v: int) -> pd.DataFrame:
    return pd.DataFrame({"x": np.full(1000, float(v))})


def _alive(store) -> int:
    return sum(shm_exists(s) for s in segments_named_in(store))


def test_a_loop_of_sends_frees_superseded_versions_without_gc(store, monkeypatch):
    monkeypatch.setenv("ALLYE_AUTO_GC_GRACE_SEC", "0")
    for v in range(200):
        adc.send_dataframe(_frame(v), "loop", secret_dir=store, transport="shm")
    assert _alive(store) == 1, "only the current version is left"
    assert adc.get_dataframe("loop", secret_dir=store)["x"].iloc[0] == 199.0


def test_keep_versions_applies_and_other_tables_are_untouched(store, monkeypatch):
    monkeypatch.setenv("ALLYE_AUTO_GC_GRACE_SEC", "0")
    monkeypatch.setenv("ALLYE_KEEP_VERSIONS", "3")
    adc.send_dataframe(_frame(-1), "other", secret_dir=store, transport="shm")
    for v in range(20):
        adc.send_dataframe(_frame(v), "loop", secret_dir=store, transport="shm")
    assert _alive(store) == 3 + 1
    assert adc.get_dataframe("other", secret_dir=store)["x"].iloc[0] == -1.0


def test_the_grace_period_keeps_versions_a_reader_may_just_have_looked_up(store, monkeypatch):
    monkeypatch.setenv("ALLYE_AUTO_GC_GRACE_SEC", "2")
    for v in range(10):
        adc.send_dataframe(_frame(v), "g", secret_dir=store, transport="shm")
    assert _alive(store) == 10, "superseded less than 2 s ago: kept"
    time.sleep(2.2)
    # v0..v8 were superseded more than 2 s ago (v9 only now, by v10); each send frees at
    # most 4, so the cost of a send stays bounded after a pause.
    adc.send_dataframe(_frame(10), "g", secret_dir=store, transport="shm")
    assert _alive(store) == 11 - 4
    for v in range(11, 13):
        adc.send_dataframe(_frame(v), "g", secret_dir=store, transport="shm")
    assert _alive(store) == 13 - 9
    assert _core.DEFAULT_AUTO_GC_GRACE_SEC >= 1




def test_the_setting_turns_it_off(store, monkeypatch):
    monkeypatch.setenv("ALLYE_AUTO_GC", "0")
    monkeypatch.setenv("ALLYE_AUTO_GC_GRACE_SEC", "0")
    for v in range(15):
        adc.send_dataframe(_frame(v), "off", secret_dir=store, transport="shm")
    assert _alive(store) == 15
    freed = adc.gc(secret_dir=store, dry_run=False)
    assert len(freed) == 14 and _alive(store) == 1


def test_file_payloads_are_freed_too(store, monkeypatch):
    monkeypatch.setenv("ALLYE_AUTO_GC_GRACE_SEC", "0")
    for v in range(12):
        adc.send_dataframe(_frame(v), "f", secret_dir=store, transport="file")
    assert len(list((store / "payloads").glob("*.arrow"))) == 1


def test_settings_vocabulary_and_file(store, monkeypatch):
    s = settings.Settings()
    assert (s.auto_gc, s.auto_gc_grace_sec, s.keep_versions) == (True, _core.DEFAULT_AUTO_GC_GRACE_SEC, _core.DEFAULT_KEEP_VERSIONS)
    assert settings.ENV["auto_gc"] == "ALLYE_AUTO_GC"
    settings.save(settings.Settings(auto_gc=False), store)
    for v in range(5):
        adc.send_dataframe(_frame(v), "file_off", secret_dir=store, transport="shm")
    assert _alive(store) == 5, "auto_gc: false in settings.yaml"
    monkeypatch.setenv("ALLYE_KEEP_VERSIONS", "0")
    with pytest.raises(adc.errors.InvalidArgumentError, match="keep_versions"):
        adc.send_dataframe(_frame(0), "bad", secret_dir=store)
