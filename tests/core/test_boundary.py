"""The `_core` boundary: the vocabulary it exports (the core's, written once), the
exception classes it creates, and the records it builds (dicts equal to the manifest
lines, metadata held to json.dumps' rules)."""

from __future__ import annotations

import json
import math
import os

import pyarrow as pa
import pytest

from allye_data_connector import _core, errors


def test_vocabulary_is_the_cores():
    assert _core.DEFAULT_MAX_SHM_BYTES == 64 * 1024 * 1024
    assert _core.DEFAULT_COMPRESSED_CHUNK_ROWS == 500_000
    assert _core.DEFAULT_KEEP_VERSIONS == 1
    assert _core.DEFAULT_PRODUCER == "python"
    assert _core.TRANSPORTS == ("auto", "shm", "file")
    assert _core.COMPRESSIONS == ("zstd", "lz4")
    assert _core.METADATA_KEY == "adc"


@pytest.mark.parametrize("value", [None, "", "none", " None ", "UNCOMPRESSED"])
def test_normalize_compression_spells_no_compression_as_none(value):
    assert _core.normalize_compression(value) is None


@pytest.mark.parametrize(("value", "canonical"), [("zstd", "zstd"), (" ZSTD", "zstd"), ("lz4", "lz4"), ("LZ4_frame", "lz4")])
def test_normalize_compression_returns_the_canonical_name(value, canonical):
    assert _core.normalize_compression(value) == canonical


@pytest.mark.parametrize("value", ["gzip", "zst", 3])
def test_normalize_compression_refuses_other_spellings_naming_the_accepted_ones(value):
    with pytest.raises(errors.InvalidArgumentError) as e:
        _core.normalize_compression(value)
    assert "zstd" in str(e.value) and "lz4" in str(e.value)


def test_check_table_name_returns_a_good_name_and_refuses_bad_ones():
    assert _core.check_table_name("iris") == "iris"
    for bad in ["", "a\nb", "nul\0", "x" * 1025, 5, None]:
        with pytest.raises(errors.InvalidArgumentError):
            _core.check_table_name(bad)


def test_check_transport_accepts_exactly_the_choices():
    for t in _core.TRANSPORTS:
        assert _core.check_transport(t) == t
    for bad in ["file_arrow_ipc_v1", "SHM", "", None, 1]:
        with pytest.raises(errors.InvalidArgumentError, match="auto"):
            _core.check_transport(bad)


@pytest.mark.parametrize(
    ("name", "bases"),
    [
        ("TableNotFoundError", (errors.AllyeError, KeyError)),
        ("TableExpiredError", (errors.TableNotFoundError,)),
        ("PayloadMissingError", (errors.PayloadError, FileNotFoundError)),
        ("PayloadCorruptError", (errors.PayloadError, ValueError)),
        ("UnknownTransportError", (errors.PayloadError, ValueError)),
        ("InvalidArgumentError", (errors.AllyeError, ValueError)),
        ("InvalidInputError", (errors.AllyeError, TypeError)),
        ("ConversionError", (errors.AllyeError, TypeError)),
        ("ArrowDataError", (errors.AllyeError, ValueError)),
        ("StoreError", (errors.AllyeError, OSError)),
        ("StoreUnusableError", (errors.StoreError,)),
        ("StoreIOError", (errors.StoreError,)),
        ("StorageFullError", (errors.StoreIOError,)),
        ("CancelledError", (errors.AllyeError,)),
        ("WaitTimeoutError", (errors.TableNotFoundError, TimeoutError)),
        ("StoreNotPrivateError", (errors.StoreUnusableError,)),
    ],
)
def test_exception_classes_come_from_core_with_their_bases(name, bases):
    cls = getattr(_core, name)
    assert getattr(errors, name) is cls
    assert cls.__bases__ == bases
    assert cls.__module__ == "allye_data_connector.errors"
    assert cls.__doc__


def test_table_not_found_prints_its_message_not_its_repr(store):
    with pytest.raises(errors.TableNotFoundError) as e:
        _core.get_live("nope", secret_dir=str(store))
    assert str(e.value).startswith("no ready version of table 'nope'") or str(e.value).startswith('no ready version of table "nope"')


def test_records_equal_the_manifest_lines(store):
    table = pa.table({"x": [1.0, 2.0], "n": [1, 2]})
    meta = {"note": "ü", "nested": {"a": [1, 2.5, None, True]}, 7: "int key", None: "none key"}
    ready = _core.send(table, secret_dir=str(store), table_name="t", transport="file", metadata=meta)
    lines = [json.loads(line) for line in (store / "manifest.jsonl").read_text(encoding="utf-8").splitlines()]
    assert ready == lines[-1]
    assert list(ready) == ["version", "id", "table_name", "producer", "status", "created_at", "ttl_sec", "payload", "metadata"]
    # Keys as json.dumps spells them.
    assert ready["metadata"]["7"] == "int key" and ready["metadata"]["null"] == "none key"
    assert ready["metadata"]["nested"] == {"a": [1, 2.5, None, True]}
    assert _core.latest("t", secret_dir=str(store)) == ready
    assert _core.list_tables(secret_dir=str(store)) == [ready]
    event, data = _core.get_live("t", secret_dir=str(store))
    assert event == ready and pa.table(data).equals(table)
    assert [s["state"] for s in _core.table_states(secret_dir=str(store))] == ["ready"]
    tail = _core.ManifestTail(secret_dir=str(store), from_start=True)
    assert tail.read_new() == lines


@pytest.mark.parametrize("bad", [math.nan, math.inf, object(), {1.5j: "x"}, {"k": {1, 2}}, 2**70])
def test_metadata_that_json_cannot_hold_is_refused_before_anything_is_written(store, bad):
    with pytest.raises(errors.InvalidArgumentError, match="JSON"):
        _core.send(pa.table({"x": [1]}), secret_dir=str(store), table_name="t", metadata={"m": bad})
    assert not (store / "manifest.jsonl").exists()


def test_store_files_are_made_read_and_written_by_the_core_under_the_trust_rule(store):
    """What Python keeps in a store goes through the core: made private, written
    atomically (exclusive when asked), read never through a link or outside the store."""
    import stat

    assert _core.read_store_file("remote/token", secret_dir=str(store)) is None  # no store yet: nothing made
    assert not store.exists()
    path = _core.ensure_store_dir(_core.REMOTE_DIR, secret_dir=str(store))
    assert path == str(store / "remote") and stat.S_IMODE(os.stat(path).st_mode) == 0o700
    assert _core.write_store_file("remote/token", b"one", secret_dir=str(store), exclusive=True) is True
    assert _core.write_store_file("remote/token", b"two", secret_dir=str(store), exclusive=True) is False
    assert _core.read_store_file("remote/token", secret_dir=str(store)) == b"one"
    assert _core.write_store_file("remote/token", b"three", secret_dir=str(store)) is True
    assert _core.read_store_file("remote/token", secret_dir=str(store)) == b"three"
    assert stat.S_IMODE((store / "remote" / "token").stat().st_mode) == 0o600
    assert sorted(p.name for p in (store / "remote").iterdir()) == ["token"]
    for bad in ("../x", "/etc/passwd", "remote/../../x"):
        with pytest.raises(errors.InvalidArgumentError):
            _core.read_store_file(bad, secret_dir=str(store))
    (store / "link").symlink_to(store / "remote" / "token")
    with pytest.raises(errors.StoreNotPrivateError, match="symbolic link"):
        _core.read_store_file("link", secret_dir=str(store))
