"""Bad input gets a clear, typed error, and the store stays usable."""

from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import pytest

import allye_data_connector as adc
from tests.helpers import own
from allye_data_connector import errors


def send(df, name, store, **kw):
    return adc.send_dataframe(df, name, secret_dir=store, **kw)


GOOD = pd.DataFrame({"a": [1, 2, 3]})


@pytest.mark.parametrize(
    "kwargs, exc, words",
    [
        ({"df": [1, 2, 3]}, errors.InvalidInputError, "pandas.DataFrame"),
        ({"df": {"a": [1, 2]}}, errors.InvalidInputError, "builtins.dict"),
        ({"table_name": ""}, errors.InvalidArgumentError, "empty"),
        ({"table_name": "a\nb"}, errors.InvalidArgumentError, "line break"),
        ({"table_name": "a\0b"}, errors.InvalidArgumentError, "NUL"),
        ({"table_name": "x" * 2000}, errors.InvalidArgumentError, "limit"),
        ({"table_name": 5}, errors.InvalidArgumentError, "str"),
        ({"transport": "pigeon"}, errors.InvalidArgumentError, "unknown transport"),
        ({"ttl_sec": -5}, errors.InvalidArgumentError, "ttl_sec"),
        ({"max_shm_bytes": 0}, errors.InvalidArgumentError, "max_shm_bytes"),
        ({"chunk_rows": -1}, errors.InvalidArgumentError, "chunk_rows"),
        ({"compression": "brotli"}, errors.InvalidArgumentError, "compression"),
        ({"metadata": {"x": object()}}, errors.InvalidArgumentError, "JSON"),
        ({"df": pd.DataFrame({"m": [1, "two", 3.0]})}, errors.ConversionError, "'m'"),
        ({"df": pd.DataFrame({"c": np.array([1 + 2j, 3j])})}, errors.ConversionError, "complex128"),
        ({"df": pd.DataFrame({"o": [object(), object()]})}, errors.ConversionError, "'o'"),
        ({"producer": ""}, errors.InvalidArgumentError, "producer"),
        ({"producer": "a\nb"}, errors.InvalidArgumentError, "producer"),
    ],
)
def test_bad_send_arguments(store, kwargs, exc, words):
    args = {"df": GOOD, "table_name": "t", **kwargs}
    with pytest.raises(exc) as info:
        send(args.pop("df"), args.pop("table_name"), store, **args)
    assert words in str(info.value)
    assert isinstance(info.value, errors.AllyeError)
    # Nothing half-done is left, and the store still works.
    assert not list((store / "payloads").glob("*")) if (store / "payloads").exists() else True
    send(GOOD, "ok", store)
    pd.testing.assert_frame_equal(adc.get_dataframe("ok", secret_dir=store), GOOD)


def test_store_path_that_is_a_file(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(errors.StoreUnusableError, match="not a directory"):
        send(GOOD, "t", f)


def test_store_below_a_file(tmp_path):
    # Creating the store fails (ENOTDIR); as root this is the unwritable case we can test.
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(errors.StoreError, match="unusable"):
        send(GOOD, "t", f / "store")


def test_missing_table_is_a_keyerror_with_a_clear_message(store):
    with pytest.raises(KeyError) as info:
        adc.get_dataframe("nope", secret_dir=store)
    assert isinstance(info.value, errors.TableNotFoundError)
    assert str(info.value).startswith('no ready version of table "nope"')


@pytest.mark.parametrize("transport", ["shm", "file"])
def test_missing_and_corrupt_payloads(store, transport):
    send(GOOD, "t", store, transport=transport)
    ready = json.loads((store / "manifest.jsonl").read_text().splitlines()[-1])
    locator = ready["payload"]["locator"]
    path = locator if transport == "file" else f"/dev/shm/{locator}"
    # Overwrite the schema message of a stream, the footer of a file.
    with open(path, "r+b") as f:
        f.seek(8 if transport == "shm" else os.path.getsize(path) - 74)
        f.write(b"\xff" * 64)
    with pytest.raises(errors.PayloadCorruptError, match="corrupt"):
        adc.get_dataframe("t", secret_dir=store)
    os.unlink(path)
    with pytest.raises(errors.PayloadMissingError, match="no longer exists"):
        adc.get_dataframe("t", secret_dir=store)
    # A new send makes the table readable again.
    send(GOOD, "t", store, transport=transport)
    pd.testing.assert_frame_equal(adc.get_dataframe("t", secret_dir=store), GOOD)


def test_truncated_file_payload(store):
    send(pd.DataFrame({"x": np.arange(10_000.0)}), "t", store, transport="file")
    path = json.loads((store / "manifest.jsonl").read_text().splitlines()[-1])["payload"]["locator"]
    size = os.path.getsize(path)
    os.truncate(path, size // 2)
    with pytest.raises(errors.PayloadCorruptError):
        adc.get_dataframe("t", secret_dir=store)


def test_garbage_torn_and_mistyped_manifest_lines_are_skipped(store):
    send(GOOD, "t", store)
    with open(store / "manifest.jsonl", "ab") as f:
        f.write(b"garbage\n\x00\xff\xfe\n[1,2]\n")
        f.write(b'{"version":1,"id":"x","table_name":"t","producer":"python","status":"ready","created_at":"x","payload":{"transport":5}}\n')
        f.write(b'{"version":"one","id":"x","table_name":"t","status":"ready","created_at":"x"}\n')
        f.write(b'{"version":1,"id":"torn","table_name":"t","status":"rea')  # a writer died here
    pd.testing.assert_frame_equal(adc.get_dataframe("t", secret_dir=store), GOOD)
    assert [t["table_name"] for t in adc.list_tables(secret_dir=store)] == ["t"]
    # The next append closes the torn line off; the new version is found.
    send(pd.DataFrame({"a": [9]}), "t", store)
    assert adc.get_dataframe("t", secret_dir=store)["a"].tolist() == [9]
    lines = (store / "manifest.jsonl").read_bytes().split(b"\n")
    assert json.loads(lines[-2])["status"] == "ready"


def test_unknown_transport_in_a_ready_line(store):
    store.mkdir(parents=True)
    line = {
        "version": 1, "id": "u", "table_name": "t", "producer": "python", "status": "ready",
        "created_at": "2025-12-18T12:34:56+0900", "ttl_sec": None,
        "payload": {"transport": "carrier_pigeon_v9", "locator": "x", "data_size": 1, "shape": [1, 1],
                    "schema_sha256": "", "created_at": "2025-12-18T12:34:56+0900", "expires_at": None},
        "metadata": {},
    }
    (store / "manifest.jsonl").write_text(json.dumps(line) + "\n")
    with pytest.raises(errors.UnknownTransportError, match="carrier_pigeon_v9"):
        adc.get_dataframe("t", secret_dir=store)


def test_expired_version_is_not_served_and_gc_removes_it(store):
    import time

    send(GOOD, "short", store, ttl_sec=1, transport="file")
    send(GOOD, "short_shm", store, ttl_sec=1, transport="shm")
    send(GOOD, "long", store, ttl_sec=3600, shm_unlink_on_read=False)  # read below, kept by gc
    time.sleep(2.1)
    with pytest.raises(errors.TableExpiredError, match="expired at"):
        adc.get_dataframe("short", secret_dir=store)
    plan = own(adc.gc(secret_dir=store))  # dry run by default, as in 0.1.2
    assert sorted(a["table_name"] for a in plan) == ["short", "short_shm"]
    assert all(a["action"] == "delete" for a in plan)
    assert len(list((store / "payloads").glob("*.arrow"))) == 1
    done = own(adc.gc(secret_dir=store, dry_run=False))
    assert done == plan
    assert list((store / "payloads").glob("*.arrow")) == []
    shm = [a["locator"] for a in done if a["transport"] == "shm_arrow_stream_v1"]
    assert shm and not os.path.exists(f"/dev/shm/{shm[0]}")
    pd.testing.assert_frame_equal(adc.get_dataframe("long", secret_dir=store), GOOD)
    assert own(adc.gc(secret_dir=store, dry_run=False)) == []


def test_gc_never_follows_a_locator_outside_the_store(store, tmp_path):
    send(GOOD, "t", store, ttl_sec=0, transport="file")
    victim = tmp_path / "victim.arrow"
    victim.write_bytes(b"precious")
    lines = (store / "manifest.jsonl").read_text().splitlines()
    forged = json.loads(lines[-1])
    forged["id"] = "forged"
    forged["payload"]["locator"] = str(victim)
    with open(store / "manifest.jsonl", "a") as f:
        f.write(json.dumps(forged, separators=(",", ":")) + "\n")
    import time

    time.sleep(1.1)
    actions = adc.gc(secret_dir=store, dry_run=False)
    assert {a["action"] for a in actions} == {"delete", "skip"}
    assert [a["locator"] for a in actions if a["action"] == "skip"] == [str(victim)]
    assert victim.read_bytes() == b"precious"


def test_store_that_cannot_be_created(store):
    # As root no permission bit stops us; /proc refuses any new directory.
    with pytest.raises(errors.StoreUnusableError, match="cannot create"):
        send(GOOD, "t", "/proc/self/allye-store")


# The core's one name rule answers for gets too (its wording: "must be a str", "empty").
@pytest.mark.parametrize(("name", "says"), [(None, "table_name must be a str, got NoneType"), ("", "table name is empty"),
                                            (5, "table_name must be a str, got int")])
def test_bad_table_name_on_get(store, name, says):
    send(GOOD, "ok", store)
    with pytest.raises(errors.InvalidArgumentError, match=says):
        adc.get_dataframe(name, secret_dir=store)
    with pytest.raises(errors.InvalidArgumentError, match=says):
        adc.get_arrow(name, secret_dir=store)


@pytest.mark.parametrize("keep", [0, -1, 1.5, "2"])
def test_bad_gc_arguments(store, keep):
    with pytest.raises(errors.InvalidArgumentError, match="keep_versions"):
        adc.gc(secret_dir=store, keep_versions=keep)


def test_a_wait_that_times_out_raises_wait_timeout_naming_it(store):
    with pytest.raises(errors.WaitTimeoutError, match=r"0\.2 s") as e:
        adc.get_dataframe("never", secret_dir=store, wait=True, timeout_sec=0.2)
    assert isinstance(e.value, errors.TableNotFoundError) and isinstance(e.value, TimeoutError)
    with pytest.raises(errors.TableNotFoundError):  # code written before WaitTimeoutError keeps working
        adc.get_dataframe("never", secret_dir=store, wait=True, timeout_sec=0)
    with pytest.raises(errors.InvalidArgumentError, match="timeout_sec=-1 is negative"):
        adc.get_dataframe("never", secret_dir=store, wait=True, timeout_sec=-1)
