"""`adc ls --objects`, `adc ls --namespace`, `adc show --object` as a user types them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

import allye_data_connector as adc
from tests.cli.conftest import _run


def _fill(store: Path) -> None:
    adc.objects(secret_dir=store)["arr"] = np.arange(10.0)
    adc.objects("app", secret_dir=store).put("df", pd.DataFrame({"a": [1]}), description="a frame")
    adc.objects(secret_dir=store)["d"] = {"a": 1}


def test_ls_objects_lists_every_namespace_and_ls_alone_no_objects(store: Path) -> None:
    _fill(store)
    rows = json.loads(_run("ls", "--objects", "--json", store=store).stdout)
    assert [(r["namespace"], r["name"], r["kind"]) for r in rows] == [
        ("app", "df", "pandas.DataFrame"), ("default", "arr", "numpy"), ("default", "d", "pickle")]
    text = _run("ls", "--objects", store=store).stdout
    assert "a frame" in text and "float64" in text
    only = json.loads(_run("ls", "--namespace", "app", "--json", store=store).stdout)
    assert [r["name"] for r in only] == ["df"]
    assert json.loads(_run("ls", "--json", store=store).stdout) == []


def test_show_an_object(store: Path) -> None:
    _fill(store)
    out = _run("show", "arr", "--object", store=store).stdout
    assert "kind: numpy" in out and "float64" in out and "(10,)" in out
    info = json.loads(_run("show", "df", "--namespace", "app", "--json", store=store).stdout)
    assert info["kind"] == "pandas.DataFrame" and info["description"] == "a frame"
    assert [f["name"] for f in info["schema"]] == ["a"]
    missing = _run("show", "ar", "--object", store=store, check=3)
    assert "did you mean 'arr'" in missing.stderr and "adc ls --objects" in missing.stderr


def test_config_sets_the_quota_with_units_and_allow_pickle(store: Path) -> None:
    _run("config", "--set", "max_store_bytes=1MiB", "--set", "allow_pickle=false", store=store)
    assert adc.capacity(store)["quota"] == 1024 * 1024
    import pytest

    from allye_data_connector.errors import InvalidInputError, StoreFullError

    objs = adc.objects(secret_dir=store)
    with pytest.raises(InvalidInputError, match="allow_pickle"):
        objs["d"] = {"a": 1}
    with pytest.raises(StoreFullError):
        objs["big"] = np.zeros(1_000_000)
