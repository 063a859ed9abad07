"""compat.pullframe against pullframe's README and its own tests: ``with pullframe(hosts,
directory, sync_timeout) as pf``, ``load(name, start, end)`` inclusive on the
DatetimeIndex with None for an open end, ``save(name, df)`` merging into the cache, and a
load syncing only the rows newer than the cache from the node that has them."""

from __future__ import annotations

from datetime import datetime
from io import StringIO

import numpy as np
import pandas as pd
import pytest

import allye_data_connector as adc
from allye_data_connector.compat.pullframe import pullframe
from allye_data_connector.errors import TableNotFoundError
from tests.helpers import unlink_segments


def to_df(lines: list[str]) -> pd.DataFrame:
    df = pd.read_csv(StringIO("\n".join(lines)), index_col=0, parse_dates=True, na_values=["   "])
    df.columns = [c.strip() for c in df.columns]
    df.index.name = None
    return df


def sample_df() -> pd.DataFrame:
    df = to_df([
        "          ,1, 2 ,3, 4,    5    ,     6     ",
        "2020-01-01,1,   ,2, a,2020-01-01,2020-01-04",
        "2020-01-02,1,   ,2, a,2020-01-02,2020-01-05",
        "2020-01-05,1,1.0,2, a,2020-01-03,2020-01-06",
    ])
    df["3"] = df["3"].astype(np.int32)
    df["5"] = pd.to_datetime(df["5"])
    df["6"] = pd.to_datetime(df["6"])
    return df


@pytest.fixture
def node(start_server, tmp_path):
    """A remote node: its store served by `adc serve --no-auth` (pullframe's model)."""
    s = start_server("remote", "--no-auth")
    yield s


def test_load_syncs_from_a_node_on_demand(node, tmp_path):
    df = sample_df()
    with pullframe([], node.store) as remote_pf:
        remote_pf.save("fake", df)
    local = tmp_path / "local"
    try:
        with pullframe([node.location], local, sync_timeout=60.0) as pf:
            pd.testing.assert_frame_equal(pf.load("fake"), df)
            # Once synced, a load makes no remote call (cache locality 1).
            calls = pf.remote.stats(node.location)["total_calls"]
            pd.testing.assert_frame_equal(pf.load("fake", None, None), df)
            assert pf.remote.stats(node.location)["total_calls"] == calls
    finally:
        unlink_segments(local)


def test_start_and_end_are_inclusive_and_none_is_open(node, tmp_path):
    df = sample_df()
    with pullframe([], node.store) as pf:
        pf.save("fake", df)
        pd.testing.assert_frame_equal(pf.load("fake", datetime(2020, 1, 2), datetime(2020, 1, 5)), df.iloc[1:3])
        pd.testing.assert_frame_equal(pf.load("fake", None, datetime(2020, 1, 2)), df.iloc[:2])
        pd.testing.assert_frame_equal(pf.load("fake", datetime(2020, 1, 2), None), df.iloc[1:])


def test_sync_update_appends_only_rows_newer_than_the_cache(node, tmp_path):
    # pullframe's test_sync_update_from_node: the cache's rows stay, the node's newer rows come.
    local_df = to_df(["          , 1 , 2 ", "2020-01-01,1.0,2.0", "2020-01-02,1.0,2.0", "2020-01-05,1.0,2.0"])
    remote_df = to_df(["          , 1 , 2 ", "2020-01-01,1.0,2.0", "2020-01-02,1.0,2.0", "2020-01-05,2.0,3.0",
                       "2020-01-06,3.0,3.0"])
    expected = to_df(["          , 1 , 2 ", "2020-01-01,1.0,2.0", "2020-01-02,1.0,2.0", "2020-01-05,1.0,2.0",
                      "2020-01-06,3.0,3.0"])
    with pullframe([], node.store) as remote_pf:
        remote_pf.save("fake", remote_df)
    local = tmp_path / "local"
    try:
        with pullframe([node.location], local) as pf:
            pf.save("fake", local_df)
            loaded = pf.load("fake", None, datetime(2020, 1, 6))
            pd.testing.assert_frame_equal(loaded, expected, check_freq=False)
            assert pf.remote.stats(node.location)["rows_sent"] == 1
    finally:
        unlink_segments(local)


def test_save_merges_like_pullframes_cache(tmp_path):
    prev = to_df(["          , 1 , 2 ", "2020-01-01,1.0,2.0", "2020-01-02,1.0,2.0", "2020-01-05,1.0,2.0"])
    new = to_df(["          , 2 , 3 ", "2020-01-05,   ,2.0", "2020-01-06,3.0,3.0"])
    expected = to_df(["          , 1 , 2 , 3 ", "2020-01-01,1.0,2.0,   ", "2020-01-02,1.0,2.0,   ",
                      "2020-01-05,1.0,   ,2.0", "2020-01-06,   ,3.0,3.0"])
    d = tmp_path / "s"
    try:
        with pullframe(None, d) as pf:
            pf.save("fake", prev)
            pf.save("fake", new)
            pd.testing.assert_frame_equal(pf.load("fake"), expected, check_freq=False)
        # The cache is an ordinary table of the store.
        pd.testing.assert_frame_equal(adc.get_dataframe("fake", secret_dir=d), expected, check_freq=False)
    finally:
        unlink_segments(d)


def test_int_column_names_and_missing_name(node, tmp_path):
    df = sample_df()
    df.columns = [int(c) for c in df.columns]
    with pullframe([node.location], tmp_path / "l") as pf:
        pf.save("ints", df)
        pd.testing.assert_frame_equal(pf.load("ints"), df)
        with pytest.raises(TableNotFoundError):
            pf.load("nothing-anywhere")
    unlink_segments(tmp_path / "l")
