"""Payload lifetime as a user sees it in the terminal (issue 11, items 3 and 5): a table
sent to be read once is not consumed by looking at it, shows as ``consumed`` once read,
and a get then says why it is gone; ``adc gc --orphans`` frees what deleted stores left."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import allye_data_connector as adc


@pytest.fixture
def once(store):
    adc.send_dataframe(pd.DataFrame({"x": np.arange(10.0)}), "once", secret_dir=store, transport="shm")
    return store


def _state(adc_cmd, store, name):
    rows = json.loads(adc_cmd("ls", "--all", "--json", store=store).stdout)
    return {r["table_name"]: r["state"] for r in rows}[name]


def test_looking_does_not_consume(adc_cmd, once, tmp_path):
    adc_cmd("ls", store=once)
    adc_cmd("show", "once", store=once)
    adc_cmd("get", "once", "--head", "3", "-o", str(tmp_path / "h.parquet"), store=once)
    adc.describe_table("once", secret_dir=once)
    adc.get_dataframe("once", secret_dir=once, head=1)
    adc.get_arrow("once", secret_dir=once, selection=adc.Selection(columns=["x"]))
    adc.gc(secret_dir=once, dry_run=False)
    assert _state(adc_cmd, once, "once") == "ready"
    assert adc.get_dataframe("once", secret_dir=once)["x"].sum() == 45.0


def test_a_full_read_consumes_and_a_later_get_says_why(adc_cmd, once, tmp_path):
    adc_cmd("get", "once", "-o", str(tmp_path / "all.parquet"), store=once)
    assert _state(adc_cmd, once, "once") == "consumed"
    assert "consumed" in adc_cmd("ls", store=once).stdout
    assert adc.describe_table("once", secret_dir=once)["state"] == "consumed"
    assert [t["state"] for t in adc.list_tables(secret_dir=once, all_states=True)] == ["consumed"]
    # Served until gc frees it.
    assert adc.get_dataframe("once", secret_dir=once)["x"].sum() == 45.0
    assert [t["table_name"] for t in adc.list_tables(secret_dir=once)] == ["once"], "readable until gc frees it"
    adc_cmd("gc", "--delete", store=once)
    assert _state(adc_cmd, once, "once") == "consumed"
    # A listing names only what a get can read; --all / all_states=True names everything.
    assert adc.list_tables(secret_dir=once) == []
    assert json.loads(adc_cmd("ls", "--json", store=once).stdout) == []
    assert "once" not in adc_cmd("ls", store=once).stdout
    with pytest.raises(adc.errors.PayloadMissingError, match=r"read once \(shm_unlink_on_read=True\).*shm_unlink_on_read=False"):
        adc.get_dataframe("once", secret_dir=once)
    show = adc_cmd("show", "once", store=once, check=4)
    assert "consumed" in show.stdout and "read once" in show.stderr and "Traceback" not in show.stderr
    got = adc_cmd("get", "once", "-o", str(tmp_path / "again.parquet"), store=once, check=4)
    assert "--keep-after-read" in got.stderr


def test_keep_after_read_is_never_consumed(adc_cmd, store, tmp_path):
    src = tmp_path / "in.parquet"
    pd.DataFrame({"x": [1.0, 2.0]}).to_parquet(src)
    adc_cmd("send", str(src), "--name", "many", "--keep-after-read", "--transport", "shm", store=store)
    for i in range(2):
        adc_cmd("get", "many", "-o", str(tmp_path / f"o{i}.parquet"), store=store)
        adc_cmd("gc", "--delete", store=store)
    assert _state(adc_cmd, store, "many") == "ready"


def test_an_expired_version_is_listed_only_with_all(adc_cmd, store):
    import time

    adc.send_dataframe(pd.DataFrame({"x": [1.0]}), "short", secret_dir=store, ttl_sec=0)
    adc.send_dataframe(pd.DataFrame({"x": [1.0]}), "long", secret_dir=store, ttl_sec=3600)
    time.sleep(1.1)
    with pytest.raises(adc.errors.TableExpiredError):
        adc.get_dataframe("short", secret_dir=store)
    assert [t["table_name"] for t in adc.list_tables(secret_dir=store)] == ["long"]
    assert [t["table_name"] for t in json.loads(adc_cmd("ls", "--json", store=store).stdout)] == ["long"]
    listed = {r["table_name"]: r for r in json.loads(adc_cmd("ls", "--all", "--json", store=store).stdout)}
    assert listed["short"]["expired"] and not listed["long"]["expired"]
