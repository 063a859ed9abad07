"""Arrays and pickles are handed to Python as views of the mapped payload (no copy, no
Arrow table in between): a view alone keeps the mapping alive after every other
reference, the object and its segment are gone; and the per-process caches a put and
a get fill (settings) are not trusted by a forked child."""

from __future__ import annotations

import gc
import multiprocessing as mp
import sys
from pathlib import Path

import numpy as np
import pytest

import allye_data_connector as adc
from allye_data_connector import _core
from tests.helpers import shm_exists


def _owner(a: np.ndarray) -> object:
    base: object = a
    while isinstance(base, np.ndarray) and base.base is not None:
        base = base.base
    return base


def _payload_gone(locator: str, transport: str) -> bool:
    return not shm_exists(locator) if transport == "shm" else not Path(locator).exists()


@pytest.mark.parametrize("transport", ["shm", "file"])
def test_an_array_view_alone_keeps_its_mapping(store: Path, transport: str) -> None:
    objs = adc.objects(secret_dir=store)
    objs.put("a", np.arange(1_000_000, dtype=np.int64), transport=transport)
    locator = _core.object_latest("a", secret_dir=str(store))["payload"]["locator"]
    view = objs["a"]
    assert isinstance(_owner(view), _core.MappedBytes), "the bytes of the mapping, not a copy"
    assert not view.flags.owndata and not view.flags.writeable
    del objs["a"]
    adc.gc(secret_dir=store, dry_run=False)
    del objs
    gc.collect()
    assert _payload_gone(locator, transport), "the payload is freed: only the mapping holds the bytes"
    assert view[999_999] == 999_999 and int(view.sum()) == 999_999 * 1_000_000 // 2


@pytest.mark.parametrize("transport", ["shm", "file"])
def test_a_pickle_and_its_buffers_stay_readable_after_the_object_is_freed(store: Path, transport: str) -> None:
    objs = adc.objects(secret_dir=store)
    objs.put("d", {"a": np.full(100_000, 2.5), "s": "text"}, transport=transport)
    locator = _core.object_latest("d", secret_dir=str(store))["payload"]["locator"]
    got = objs["d"]
    assert isinstance(_owner(got["a"]), _core.MappedBytes), "an out-of-band buffer read in place"
    del objs["d"]
    adc.gc(secret_dir=store, dry_run=False)
    a = got.pop("a")
    del objs, got
    gc.collect()
    assert _payload_gone(locator, transport)
    assert a.sum() == 250_000.0 and a[-1] == 2.5


def test_get_object_bytes_hands_arrow_data_as_a_table(store: Path) -> None:
    import pyarrow as pa

    objs = adc.objects(secret_dir=store)
    objs["t"] = pa.table({"bytes": pa.array([b"x"], pa.large_binary())})
    _, data = _core.get_object_bytes("t", secret_dir=str(store))
    assert not isinstance(data, list), "only arrays and pickles come back as bytes"
    assert objs["t"].column(0).to_pylist() == [b"x"]


def _child(store: str, q: "mp.Queue[object]") -> None:
    try:
        objs = adc.objects(secret_dir=store)
        before = objs["x"]
        objs["x"] = {"from": "child", "n": before["n"] + 1}
        q.put(objs["x"])
    except BaseException as exc:  # reported to the parent, which fails the test
        q.put(repr(exc))


@pytest.mark.skipif(sys.platform != "linux", reason="fork")
def test_a_forked_child_puts_and_gets_and_the_parent_still_works(store: Path, monkeypatch) -> None:
    from allye_data_connector.settings import config

    objs = adc.objects(secret_dir=store)
    for n in range(3):  # fills the settings cache and the store's log state
        objs["x"] = {"from": "parent", "n": n}
        assert objs["x"]["n"] == n
    assert config._resolved, "the settings are cached in the parent"
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    p = ctx.Process(target=_child, args=(str(store), q))
    p.start()
    got = q.get(timeout=60)
    p.join(60)
    assert p.exitcode == 0 and got == {"from": "child", "n": 3}
    assert objs["x"] == {"from": "child", "n": 3}
    objs["x"] = {"from": "parent", "n": 4}
    assert objs["x"]["n"] == 4
    monkeypatch.setenv("ALLYE_ALLOW_PICKLE", "0")  # an environment change is seen at once
    with pytest.raises(Exception, match="allow_pickle"):
        objs["x"]
