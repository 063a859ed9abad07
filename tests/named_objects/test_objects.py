"""adc.objects(): every kind of object, the mapping protocol, namespaces, quota, privacy,
allow_pickle, create(), TTL, wait, gc, and objects staying out of the v1 manifest."""

from __future__ import annotations

import dataclasses
import json
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

import allye_data_connector as adc
from allye_data_connector import _core
from allye_data_connector.errors import (
    InvalidArgumentError,
    InvalidInputError,
    StoreFullError,
    StoreNotPrivateError,
    TableNotFoundError,
    WaitTimeoutError,
)
from allye_data_connector.settings import Settings, save
from tests.helpers import shm_exists


@dataclasses.dataclass
class Point:
    x: int
    y: float


ARRAYS = {
    "float_c": np.arange(12.0).reshape(3, 4),
    "int_f": np.asfortranarray(np.arange(24, dtype=np.int32).reshape(2, 3, 4)),
    "bool": np.array([True, False, True]),
    "datetime": np.array(["2020-01-01T00:00:01", "NaT"], dtype="datetime64[ns]"),
    "timedelta": np.array([1, -2], dtype="timedelta64[s]"),
    "unicode": np.array(["ab", "cdé"]),
    "bytes": np.array([b"ab", b"c"]),
    "structured": np.array([(1, 2.5, b"ab"), (3, 4.5, b"cd")], dtype=[("a", "<i4"), ("b", "<f8"), ("c", "S2")]),
    "nested": np.zeros(2, dtype=[("p", [("x", "<f4"), ("y", "<f4")]), ("n", "<i8", (2,))]),
    "complex": np.array([1 + 2j, 3 - 4j]),
    "big_endian": np.arange(4, dtype=">i8"),
    "zero_d": np.array(7.5),
    "empty": np.empty((0, 3)),
    "float16": np.arange(5, dtype=np.float16),
}


@pytest.mark.parametrize("key", sorted(ARRAYS))
def test_numpy_arrays_come_back_as_read_only_views_of_the_mapping(store: Path, key: str) -> None:
    objs = adc.objects(secret_dir=store)
    a = ARRAYS[key]
    objs[key] = a
    got = objs[key]
    assert type(got) is np.ndarray
    assert got.dtype == a.dtype and got.shape == a.shape
    assert np.array_equal(got, a, equal_nan=False) if a.dtype.kind not in "Mm" else (got.view("i8") == a.view("i8")).all()
    assert not got.flags.writeable
    assert got.flags.f_contiguous == a.flags.f_contiguous or a.ndim < 2
    with pytest.raises(ValueError):
        got[...] = 0 if a.dtype.kind not in "SUV" else got


def test_a_non_contiguous_array_is_stored_as_its_values(store: Path) -> None:
    objs = adc.objects(secret_dir=store)
    a = np.arange(100).reshape(10, 10)[::2, 1::3]
    objs["v"] = a
    assert np.array_equal(objs["v"], a)


def test_a_large_array_is_not_copied_on_read(store: Path) -> None:
    objs = adc.objects(secret_dir=store)
    objs["big"] = np.full(10_000_000, 3.0)  # 80 MB: shared memory (tables would use a file)
    got = objs["big"]
    base = got
    while isinstance(base, np.ndarray) and base.base is not None:
        base = base.base
    # The array's memory belongs to the Arrow buffer over the mapping, not to NumPy.
    assert not isinstance(base, np.ndarray) and not got.flags.owndata
    assert got[12345] == 3.0 and objs.info("big")["transport"] == "shm_arrow_stream_v1"
    objs.put("big", np.full(10_000_000, 4.0), transport="file")
    got = objs["big"]
    assert got[12345] == 4.0 and not got.flags.owndata and objs.info("big")["transport"] == "file_arrow_ipc_v1"


PYTHON_OBJECTS = {
    "str": "a text object",
    "bytes": b"\x00bytes",
    "int": 2**70,
    "float": 1.5,
    "list": [1, 2, 3, 4],
    "dict": {"a": 1, "b": [1, 2]},
    "set": {1, 2, 3},
    "frozenset": frozenset("ab"),
    "tuple": (3, 4, 5),
    "none": None,
    "dataclass": Point(1, 2.5),
    "type": str,
    "function": np.mean,
}


@pytest.mark.parametrize("key", sorted(PYTHON_OBJECTS))
def test_python_objects_round_trip_through_pickle(store: Path, key: str) -> None:
    objs = adc.objects(secret_dir=store)
    objs[key] = PYTHON_OBJECTS[key]
    assert objs[key] == PYTHON_OBJECTS[key]
    assert objs.info(key)["kind"] == "pickle"


def test_arrays_inside_a_dict_are_out_of_band_buffers_read_in_place(store: Path) -> None:
    objs = adc.objects(secret_dir=store)
    value = {"a": np.arange(1_000_000.0), "b": [np.ones((3, 3), order="F")], "label": "x"}
    objs["d"] = value
    info = objs.info("d")
    assert info["kind"] == "pickle" and info["buffers"] == 2
    got = objs["d"]
    assert np.array_equal(got["a"], value["a"]) and np.array_equal(got["b"][0], value["b"][0])
    assert got["label"] == "x"
    assert not got["a"].flags.writeable and not got["a"].flags.owndata


def test_pandas_objects_come_back_as_pandas(store: Path) -> None:
    objs = adc.objects(secret_dir=store)
    df = pd.DataFrame({"this": [1, 2, 3, 4], "that": [4.0, 5, 6, 7], "s": list("abcd")})
    objs["df"] = df
    objs["series"] = pd.Series([1, 2, 3], name="n")
    pd.testing.assert_frame_equal(objs["df"], df)
    pd.testing.assert_series_equal(objs["series"], pd.Series([1, 2, 3], name="n"))
    assert objs.info("df")["kind"] == "pandas.DataFrame" and objs.info("df")["shape"] == (4, 3)
    assert ("this", "int64") in objs.info("df")["schema"] and ("that", "double") in objs.info("df")["schema"]


def test_a_frame_arrow_cannot_hold_is_pickled(store: Path) -> None:
    objs = adc.objects(secret_dir=store)
    df = pd.DataFrame({"this": [{"a": 1}, "b", b"c", [1], {2}, None, (3,), 5]})
    objs["n"] = df
    assert objs.info("n")["kind"] == "pickle"
    got = objs["n"]
    assert list(got["this"]) == list(df["this"])


def test_arrow_objects_come_back_as_they_were_sent(store: Path) -> None:
    objs = adc.objects(secret_dir=store)
    values = {
        "table": pa.table({"a": [1, 2], "b": ["x", None]}),
        "batch": pa.record_batch({"a": [1.0]}),
        "array": pa.array([1, None, 3]),
        "chunked": pa.chunked_array([[1], [2, 3]]),
    }
    for k, v in values.items():
        objs[k] = v
    for k, v in values.items():
        got = objs[k]
        assert type(got) is type(v) and got.equals(v), k


class CStream:
    """A minimal producer of the Arrow PyCapsule interface (not pyarrow)."""

    def __init__(self, table: pa.Table) -> None:
        self._t = table

    def __arrow_c_stream__(self, requested_schema: object = None) -> object:
        return self._t.__arrow_c_stream__(requested_schema)


class CArray:
    def __init__(self, array: pa.Array) -> None:
        self._a = array

    def __arrow_c_array__(self, requested_schema: object = None) -> object:
        return self._a.__arrow_c_array__(requested_schema)


def test_arrow_capsule_producers_are_stored_as_arrow(store: Path) -> None:
    objs = adc.objects(secret_dir=store)
    objs["s"] = CStream(pa.table({"a": [1, 2]}))
    objs["a"] = CArray(pa.array([1.5, 2.5]))
    assert objs["s"].equals(pa.table({"a": [1, 2]}))
    assert objs["a"].equals(pa.array([1.5, 2.5]))


def test_polars_comes_back_as_polars_and_arrow_as_polars_on_request(store: Path) -> None:
    objs = adc.objects(secret_dir=store)
    df = pl.DataFrame({"a": [1, 2], "b": ["x", "y"]})
    objs["df"] = df
    objs["s"] = pl.Series("q", [1.0, 2.0])
    assert objs["df"].equals(df)
    assert isinstance(objs["s"], pl.Series) and objs["s"].equals(pl.Series("q", [1.0, 2.0]))
    objs["t"] = pa.table({"a": [1]})
    assert isinstance(objs.get_object("t", as_polars=True), pl.DataFrame)
    assert isinstance(objs.get_object("df", as_polars=False), pa.Table)


def test_the_mapping_protocol(store: Path) -> None:
    objs = adc.objects(secret_dir=store)
    assert len(objs) == 0 and list(objs) == [] and "x" not in objs
    objs["b"] = 1
    objs["a"] = 2
    objs["a"] = 3  # a new version, not a new name
    assert len(objs) == 2 and list(objs) == ["a", "b"] and list(objs.keys()) == ["a", "b"]
    assert dict(objs.items()) == {"a": 3, "b": 1}
    assert objs.get("missing", "default") == "default"
    with pytest.raises(KeyError):
        objs["missing"]
    del objs["a"]
    assert "a" not in objs and len(objs) == 1
    with pytest.raises(KeyError):
        del objs["a"]
    objs["a"] = 4  # a removed name can be published again
    assert objs["a"] == 4
    objs.update({"c": 5})
    assert objs.pop("c") == 5 and "c" not in objs


def test_a_reader_keeps_the_version_it_read(store: Path) -> None:
    objs = adc.objects(secret_dir=store)
    objs.put("x", np.full(1000, 1.0), transport="shm")
    old = objs["x"]
    objs.put("x", np.full(1000, 2.0), transport="shm")
    adc.gc(secret_dir=store, dry_run=False)  # frees the superseded version's segment
    assert (old == 1.0).all() and (objs["x"] == 2.0).all()


def test_put_returns_info_with_description_and_writer(store: Path) -> None:
    objs = adc.objects(secret_dir=store)
    info = objs.put("x", np.zeros((2, 3), "f4"), description="weights", transport="file")
    assert info == objs.info("x")
    assert info["kind"] == "numpy" and info["dtype"] == "float32" and info["shape"] == (2, 3)
    assert info["description"] == "weights" and info["transport"] == "file_arrow_ipc_v1"
    assert info["writer"]["pid"] == os.getpid() and info["bytes"] >= 24 and info["created_at"]
    with pytest.raises(KeyError):
        objs.info("missing")


def test_objects_never_reach_the_protocol_v1_manifest(store: Path) -> None:
    objs = adc.objects(secret_dir=store)
    objs["df"] = pd.DataFrame({"a": [1]})
    adc.send_dataframe(pd.DataFrame({"t": [1]}), table_name="table", secret_dir=store)
    assert [t["table_name"] for t in adc.list_tables(secret_dir=store)] == ["table"]
    text = (store / "manifest.jsonl").read_text()
    assert "adc_object" not in text and '"df"' not in text
    with pytest.raises(TableNotFoundError):
        adc.get_dataframe("df", secret_dir=store)


def test_namespaces_isolate_names(store: Path) -> None:
    a = adc.objects("app1", secret_dir=store)
    b = adc.objects("app 2/ü", secret_dir=store)
    a["x"] = "from a"
    b["x"] = "from b"
    assert a["x"] == "from a" and b["x"] == "from b"
    assert "x" not in adc.objects(secret_dir=store)
    assert adc.namespaces(store) == ["app 2/ü", "app1"]
    assert adc.remove_namespace("app1", store) == 1
    assert adc.namespaces(store) == ["app 2/ü"] and "x" not in a
    with pytest.raises(InvalidArgumentError, match="cannot be removed"):
        adc.remove_namespace("default", store)
    with pytest.raises(InvalidArgumentError, match="does not exist"):
        adc.remove_namespace("never", store)
    for bad in ["", "a\nb", "x" * 2000]:
        with pytest.raises(InvalidArgumentError):
            adc.objects(bad, secret_dir=store)


def test_used_counts_live_versions_only(store: Path) -> None:
    objs = adc.objects(secret_dir=store)
    other = adc.objects("other", secret_dir=store)
    objs.put("a", np.zeros(100_000), transport="file")
    one = objs.used()
    assert one >= 800_000
    for _ in range(3):
        objs.put("a", np.zeros(100_000), transport="file")
    assert objs.used() == one  # superseded versions are not counted
    other.put("b", np.zeros(50_000), transport="file")
    assert objs.used() == one and other.used() >= 400_000
    assert objs.store_used() == one + other.used()
    del objs["a"]
    assert objs.used() == 0


def test_quota_refuses_a_put_and_writes_nothing(store: Path) -> None:
    objs = adc.objects(secret_dir=store)
    objs.put("a", np.zeros(1000), transport="file")
    quota = objs.store_used() + 5000
    save(Settings(max_store_bytes=quota), store)
    before = sorted(p.name for p in (store / "objects" / "default" / "payloads").iterdir())
    log = (store / "objects" / "default" / "manifest.jsonl").read_text()
    with pytest.raises(StoreFullError, match="max_store_bytes") as exc:
        objs["b"] = np.zeros(100_000)
    assert "bytes in use" in str(exc.value)
    assert "b" not in objs
    assert sorted(p.name for p in (store / "objects" / "default" / "payloads").iterdir()) == before
    assert (store / "objects" / "default" / "manifest.jsonl").read_text() == log
    objs["c"] = np.zeros(10)  # still room for a small one
    cap = adc.capacity(store)
    assert cap["quota"] == quota
    assert cap["used"] == objs.store_used() and cap["shm_free"] > 0 and cap["store_free"] > 0


def test_allow_pickle_false_refuses_pickles_but_not_arrow_or_arrays(store: Path) -> None:
    objs = adc.objects(secret_dir=store)
    objs["p"] = {"a": 1}
    strict = adc.objects(secret_dir=store, allow_pickle=False)
    with pytest.raises(InvalidInputError, match="allow_pickle"):
        strict["q"] = {"a": 1}
    with pytest.raises(InvalidArgumentError, match="allow_pickle"):
        strict["p"]
    strict["arr"] = np.arange(3)
    strict["t"] = pa.table({"a": [1]})
    assert list(strict["arr"]) == [0, 1, 2]
    save(Settings(allow_pickle=False), store)
    with pytest.raises(InvalidArgumentError, match="allow_pickle"):
        adc.objects(secret_dir=store)["p"]


@pytest.mark.parametrize("where", ["store", "objects", "namespace", "payloads"])
def test_pickles_are_not_loaded_from_a_store_others_can_write(store: Path, where: str) -> None:
    objs = adc.objects(secret_dir=store)
    objs["p"] = {"a": 1}
    objs["arr"] = np.arange(3)
    # Small objects live in their log lines: a file payload makes payloads/ exist.
    objs.put("f", np.arange(3), transport="file")
    path = {"store": store, "objects": store / "objects", "namespace": store / "objects" / "default",
            "payloads": store / "objects" / "default" / "payloads"}[where]
    path.chmod(0o777)
    try:
        with pytest.raises(StoreNotPrivateError, match=f"chmod 700 {path}") as exc:
            objs["p"]
        assert str(path) in str(exc.value)
        # The store's trust rule holds for every kind, raw arrays included, for every
        # directory a get opens (a segment's get opens nothing in payloads/).
        if where != "payloads":
            with pytest.raises(StoreNotPrivateError):
                objs["arr"]
    finally:
        path.chmod(0o700)
    assert objs["p"] == {"a": 1} and list(objs["arr"]) == [0, 1, 2]


def test_pickles_are_not_loaded_through_a_symlinked_folder(store: Path, tmp_path: Path) -> None:
    objs = adc.objects(secret_dir=store)
    objs["p"] = [1]
    objs.put("f", np.arange(3), transport="file")  # makes payloads/ (small objects live in their lines)
    payloads = store / "objects" / "default" / "payloads"
    elsewhere = tmp_path / "elsewhere"
    payloads.rename(elsewhere)
    payloads.symlink_to(elsewhere)
    with pytest.raises(StoreNotPrivateError, match="symbolic link"):
        objs["p"]


def test_create_publishes_on_exit_and_nothing_on_error(store: Path) -> None:
    objs = adc.objects(secret_dir=store)
    with objs.create("frame", shape=(1000, 4), dtype="float64") as arr:
        assert arr.flags.writeable and arr.shape == (1000, 4) and arr.dtype == np.float64
        assert not arr.flags.owndata  # a view of the new segment, not process memory
        assert "frame" not in objs
        arr[:] = 2.0
    assert not arr.flags.writeable  # published: immutable
    assert (objs["frame"] == 2.0).all() and objs["frame"].shape == (1000, 4)
    assert objs.info("frame")["transport"] == "shm_arrow_stream_v1"
    with pytest.raises(RuntimeError):
        with objs.create("broken", shape=10, dtype="int32") as arr:
            arr[:] = 1
            raise RuntimeError("boom")
    assert "broken" not in objs
    lines = [json.loads(x) for x in (store / "objects" / "default" / "manifest.jsonl").read_text().splitlines()]
    broken = [ev for ev in lines if ev["table_name"] == "broken"]
    assert [ev["status"] for ev in broken] == ["writing", "error"]
    assert not shm_exists(broken[0]["metadata"]["adc"]["locator"])
    with objs.create("fortran", shape=(3, 2), dtype="<i2", order="F") as arr:
        arr[:] = [[1, 2], [3, 4], [5, 6]]
    assert objs["fortran"].flags.f_contiguous and objs["fortran"][2, 1] == 6
    with objs.create("rec", shape=2, dtype=[("a", "<i4"), ("b", "S3")]) as arr:
        arr["a"] = [1, 2]
        arr["b"] = [b"x", b"yz"]
    assert list(objs["rec"]["b"]) == [b"x", b"yz"]
    with objs.create("empty", shape=(0, 3)) as arr:
        pass
    assert objs["empty"].shape == (0, 3)
    with objs.create("on_disk", shape=4, dtype="u1", transport="file") as arr:
        arr[:] = 7
    assert list(objs["on_disk"]) == [7, 7, 7, 7] and objs.info("on_disk")["transport"] == "file_arrow_ipc_v1"


def test_create_respects_the_quota(store: Path) -> None:
    save(Settings(max_store_bytes=10_000), store)
    objs = adc.objects(secret_dir=store)
    with pytest.raises(StoreFullError):
        with objs.create("big", shape=100_000, dtype="u1"):
            pass
    assert "big" not in objs


def test_ttl_expires_an_object(store: Path) -> None:
    objs = adc.objects(secret_dir=store)
    objs.put("short", 1, ttl_sec=1, transport="shm")
    objs.put("tiny", 1, ttl_sec=1)  # inside its line: nothing for gc to free
    objs.put("long", 2)
    assert objs["short"] == 1 and objs["tiny"] == 1
    time.sleep(2.1)
    for name in ("short", "tiny"):
        with pytest.raises(KeyError):
            objs[name]
    assert list(objs) == ["long"]
    actions = adc.gc(secret_dir=store, dry_run=False)
    assert any(a["table_name"] == "default/short" and a["action"] == "delete" for a in actions)
    assert not any(a["table_name"] == "default/tiny" for a in actions)


def test_wait_returns_the_first_version_or_times_out(store: Path) -> None:
    import threading

    objs = adc.objects(secret_dir=store)
    with pytest.raises(WaitTimeoutError):
        objs.wait("later", timeout_sec=0.2)
    threading.Timer(0.3, lambda: objs.__setitem__("later", "here")).start()
    assert objs.wait("later", timeout_sec=10) == "here"
    first = objs.info("later")["id"]
    with pytest.raises(WaitTimeoutError):
        objs.wait("later", after=first, timeout_sec=0.2)
    threading.Timer(0.3, lambda: objs.__setitem__("later", "newer")).start()
    assert objs.wait("later", after=first, timeout_sec=10) == "newer"


def test_gc_frees_superseded_object_versions(store: Path) -> None:
    objs = adc.objects("ns", secret_dir=store)
    settings = Settings(auto_gc=False)
    save(settings, store)
    for i in range(3):
        objs.put("x", np.full(10, float(i)), transport="file")
    payloads = store / "objects" / "ns" / "payloads"
    assert len(list(payloads.iterdir())) == 3
    actions = adc.gc(secret_dir=store, dry_run=False)
    assert sum(a["table_name"] == "ns/x" and a["action"] == "delete" for a in actions) == 2
    assert len(list(payloads.iterdir())) == 1 and (objs["x"] == 2.0).all()


def test_vocabulary_comes_from_core() -> None:
    assert _core.DEFAULT_NAMESPACE == "default"
    assert "pickle" in _core.OBJECT_KINDS and "numpy" in _core.OBJECT_KINDS
    assert adc.objects().namespace == "default"
