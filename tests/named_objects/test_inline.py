"""Small objects travel inside their `ready` line (transport `inline_arrow_stream_v1`):
one append per put, no segment. What a user sees must not change: values, removal, waits,
read-only results, other processes' views, and an explicit transport still honoured."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import allye_data_connector as adc
from tests.helpers import run_python, segments_named_in

INLINE = "inline_arrow_stream_v1"


def _lines(store: Path, namespace: str = "default") -> list[dict]:
    log = store / "objects" / namespace / "manifest.jsonl"
    return [json.loads(x) for x in log.read_text().splitlines()]


def test_a_small_put_is_one_line_and_no_segment(store: Path) -> None:
    objs = adc.objects(secret_dir=store)
    values = {
        "dict": {f"k{i}": [i, str(i), float(i)] for i in range(50)},
        "array": np.arange(12, dtype="f4").reshape(3, 4),
        "frame": pd.DataFrame({"a": [1, 2, 3], "b": ["x", None, "z"]}),
        "text": "hello",
    }
    for name, value in values.items():
        objs[name] = value
    assert not segments_named_in(store / "objects" / "default"), "no segment for a small object"
    assert not (store / "objects" / "default" / "payloads").exists(), "nor a payloads/ folder"
    lines = _lines(store)
    assert [ev["status"] for ev in lines] == ["ready"] * 4, "no `writing` lines"
    for name, value in values.items():
        assert objs.info(name)["transport"] == INLINE
        got = objs[name]
        if isinstance(value, pd.DataFrame):
            pd.testing.assert_frame_equal(got, value)
        elif isinstance(value, np.ndarray):
            np.testing.assert_array_equal(got, value)
            assert got.dtype == value.dtype and got.shape == value.shape and not got.flags.writeable
        else:
            assert got == value


@pytest.mark.parametrize(
    "value",
    [np.zeros(0), np.array(3.5), np.asfortranarray(np.arange(12.0).reshape(3, 4)),
     np.zeros(3, dtype=[("a", "<i4"), ("b", ">f8")]), np.array(["ab", "c"]), np.zeros((0, 3), dtype="u2")],
    ids=["empty", "0-d", "fortran", "structured", "str", "zero-rows"],
)
def test_inline_arrays_come_back_equal_and_read_only_whatever_their_layout(store: Path, value: np.ndarray) -> None:
    """An inline value reaches Python as bytes (its private decoded copy), not a mapping:
    the array built over them keeps dtype, shape, order and read-only as a mapped one."""
    objs = adc.objects(secret_dir=store)
    objs["a"] = value
    assert objs.info("a")["transport"] == INLINE
    got = objs["a"]
    assert got.dtype == value.dtype and got.shape == value.shape
    assert got.flags.f_contiguous == value.flags.f_contiguous and got.flags.c_contiguous == value.flags.c_contiguous
    np.testing.assert_array_equal(got, value)
    assert not got.flags.writeable
    with pytest.raises(ValueError):
        got[...] = 0 if got.dtype.names is None else got


def test_an_inline_pickle_with_out_of_band_buffers_round_trips(store: Path) -> None:
    """A pickle's out-of-band buffers (protocol 5) travel inline too; the arrays rebuilt
    over them are equal and read-only."""
    objs = adc.objects(secret_dir=store)
    value = {"xs": [np.arange(10), np.linspace(0, 1, 5)], "s": "text", "n": None}
    objs["p"] = value
    assert objs.info("p")["transport"] == INLINE
    got = objs["p"]
    assert got.keys() == value.keys() and got["s"] == "text" and got["n"] is None
    for a, b in zip(got["xs"], value["xs"]):
        np.testing.assert_array_equal(a, b)
        assert a.dtype == b.dtype and not a.flags.writeable


def test_an_explicit_transport_and_a_large_value_keep_their_own_payload(store: Path) -> None:
    objs = adc.objects(secret_dir=store)
    objs.put("small_shm", np.arange(4), transport="shm")
    objs.put("small_file", np.arange(4), transport="file")
    objs["large"] = np.zeros(10_000)
    assert objs.info("small_shm")["transport"] == "shm_arrow_stream_v1"
    assert objs.info("small_file")["transport"] == "file_arrow_ipc_v1"
    assert objs.info("large")["transport"] != INLINE


def test_another_process_reads_removes_and_waits_for_inline_objects(store: Path) -> None:
    objs = adc.objects("app", secret_dir=store)
    objs["cfg"] = {"lr": 0.1}
    assert objs["cfg"] == {"lr": 0.1}  # this process's index now knows the name
    out = run_python(f"""
        import allye_data_connector as adc
        objs = adc.objects("app", secret_dir={str(store)!r})
        print(objs["cfg"]["lr"])
        objs["cfg"] = {{"lr": 0.2}}
        del objs["cfg"]
        objs["other"] = [1, 2]
    """)
    assert out.strip() == "0.1"
    assert "cfg" not in objs and sorted(objs) == ["other"]
    with pytest.raises(KeyError):
        objs["cfg"]
    # A fresh process that never saw the name finds it removed too.
    run_python(f"""
        import allye_data_connector as adc
        objs = adc.objects("app", secret_dir={str(store)!r})
        try:
            objs["cfg"]
        except KeyError:
            pass
        else:
            raise SystemExit("a removed inline object was served")
        assert objs["other"] == [1, 2]
    """)
    objs["cfg"] = {"lr": 0.3}
    assert run_python(f"""
        import allye_data_connector as adc
        print(adc.objects("app", secret_dir={str(store)!r}).wait("cfg", timeout_sec=10)["lr"])
    """).strip() == "0.3"


def test_a_value_growing_past_the_bound_moves_out_of_the_line_and_back(store: Path) -> None:
    objs = adc.objects(secret_dir=store)
    objs["x"] = np.arange(3)
    objs["x"] = np.arange(100_000)
    assert objs.info("x")["transport"] != INLINE and objs["x"][99_999] == 99_999
    objs["x"] = np.arange(5)
    assert objs.info("x")["transport"] == INLINE and list(objs["x"]) == [0, 1, 2, 3, 4]
