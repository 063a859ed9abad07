"""Arrays and pickles are put as their raw values (``_core.put_object`` with a list of
``bytes`` / ``uint8`` arrays, no Arrow wrapping): every byte arrives, whatever shape the
out-of-band buffers have, and a value that is not raw bytes, or raw values for a kind
that is not raw, is refused with nothing written."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

import allye_data_connector as adc
from allye_data_connector import _core
from allye_data_connector.errors import InvalidArgumentError


def _arrays() -> dict[str, np.ndarray]:
    base = np.arange(60, dtype=np.float64).reshape(6, 10)
    return {
        "c": base.copy(),
        "f": np.asfortranarray(base),
        "strided": base[:, ::3],  # neither C nor F: its pickle buffer is copied once
        "empty": np.empty((0, 4), dtype=np.int32),
        "bytes": np.frombuffer(b"\x00\x01\xfe\xff", dtype=np.uint8),
        "record": np.array([(1, 2.5)], dtype=[("a", "<i4"), ("b", "<f8")]),
    }


def test_every_byte_of_a_pickle_and_its_buffers_arrives(store: Path) -> None:
    objs = adc.objects(secret_dir=store)
    value = {"arrays": _arrays(), "text": "x" * 1000, "nested": [b"\x00" * 3, 1.5, None]}
    objs["v"] = value
    got = objs["v"]
    assert got.keys() == value.keys() and got["text"] == value["text"] and got["nested"] == value["nested"]
    for name, a in value["arrays"].items():
        assert got["arrays"][name].dtype == a.dtype and got["arrays"][name].shape == a.shape, name
        assert np.array_equal(got["arrays"][name], a), name
    assert _core.object_latest("v", secret_dir=str(store))["metadata"]["adc_object"]["buffers"] >= 4


@pytest.mark.parametrize("name", list(_arrays()))
def test_every_byte_of_an_array_arrives(store: Path, name: str) -> None:
    objs = adc.objects(secret_dir=store)
    a = _arrays()[name]
    objs[name] = a
    got = objs[name]
    assert got.dtype == a.dtype and got.shape == a.shape and np.array_equal(got, a)
    if name == "f":
        assert got.flags.f_contiguous and not got.flags.c_contiguous, "kept in Fortran order, not copied to C"


@pytest.mark.parametrize(
    "bad",
    [
        "text",
        np.arange(4, dtype=np.int64),  # not uint8
        np.arange(16, dtype=np.uint8)[::2],  # not contiguous
        np.zeros((2, 2), dtype=np.uint8),  # not one-dimensional
        memoryview(b"abc"),  # a buffer without the array interface
    ],
    ids=["str", "int64", "strided", "2d", "memoryview"],
)
def test_a_value_that_is_not_raw_bytes_is_refused_and_nothing_written(store: Path, bad: object) -> None:
    objs = adc.objects(secret_dir=store)
    objs["x"] = {"kept": 1}
    before = _core.object_latest("x", secret_dir=str(store))["id"]
    with pytest.raises(TypeError, match="bytes or a contiguous uint8 NumPy array"):
        _core.put_object([pickle.dumps(1), bad], "x", metadata={"adc_object": {"kind": "pickle"}}, secret_dir=str(store))
    assert _core.object_latest("x", secret_dir=str(store))["id"] == before
    assert objs["x"] == {"kept": 1}


def test_raw_values_for_a_kind_that_is_arrow_data_are_refused(store: Path) -> None:
    with pytest.raises(InvalidArgumentError, match="raw bytes are stored for the kinds"):
        _core.put_object([b"\x00"], "t", metadata={"adc_object": {"kind": "pyarrow.Table"}}, secret_dir=str(store))
    assert "t" not in adc.objects(secret_dir=store)


def test_a_put_returns_its_record_only_when_asked_and_a_get_hands_the_objects_metadata(store: Path) -> None:
    objs = adc.objects(secret_dir=store)
    info = objs.put("a", {"x": 1}, description="first")
    assert info["name"] == "a" and info["kind"] == "pickle" and info["description"] == "first"
    meta = {"adc_object": {"kind": "pickle", "description": "second"}}
    assert _core.put_object([pickle.dumps({"x": 2})], "a", metadata=meta, secret_dir=str(store), record=False) is None
    ev = _core.put_object([pickle.dumps({"x": 3})], "a", metadata=meta, secret_dir=str(store))
    assert ev is not None and ev["status"] == "ready" and ev["table_name"] == "a"
    # What a decoder needs of the current version, and only that.
    got, data = _core.get_object_bytes("a", secret_dir=str(store))
    assert got == {"kind": "pickle", "description": "second"}
    assert pickle.loads(np.asarray(data[0])) == {"x": 3}
    objs["a"] = np.arange(3)  # `objs[name] = obj` builds no record, and the value is whole
    assert objs["a"].tolist() == [0, 1, 2] and objs.info("a")["kind"] == "numpy"
