"""Settings: arguments, then environment, then <store>/settings.yaml, then defaults;
the YAML dataclass loads and saves itself; sends use the effective values."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import allye_data_connector as adc
from allye_data_connector import settings
from allye_data_connector.settings import config as settings_config
from allye_data_connector.errors import InvalidArgumentError


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for var in settings.ENV.values():
        monkeypatch.delenv(var, raising=False)


def test_yaml_round_trip(tmp_path):
    s = settings.Settings(max_shm_bytes=123, chunk_rows=7, compression="lz4", default_ttl_sec=60, notify_canvas=False)
    path = tmp_path / "sub" / "x.yaml"
    s.to_yaml(path)
    assert "max_shm_bytes: 123" in path.read_text()
    assert settings.Settings.from_yaml(path) == s


def test_precedence_and_sources(tmp_path, monkeypatch):
    store = tmp_path
    r = settings.load(store)
    assert r.settings == settings.Settings() and set(r.sources.values()) == {"default"}
    settings.save(settings.Settings(chunk_rows=10, max_shm_bytes=2048, default_ttl_sec=5), store)
    monkeypatch.setenv("ALLYE_MAX_SHM_BYTES", "4096")
    monkeypatch.setenv("ALLYE_NOTIFY_CANVAS", "off")
    r = settings.load(store, default_ttl_sec=9)
    assert (r.settings.chunk_rows, r.sources["chunk_rows"]) == (10, f"file:{store / 'settings.yaml'}")
    assert (r.settings.max_shm_bytes, r.sources["max_shm_bytes"]) == (4096, "env:ALLYE_MAX_SHM_BYTES")
    assert (r.settings.notify_canvas, r.sources["notify_canvas"]) == (False, "env:ALLYE_NOTIFY_CANVAS")
    assert (r.settings.default_ttl_sec, r.sources["default_ttl_sec"]) == (9, "argument")
    # 0.1.2's variable: empty means no compression, and is a value, not "unset".
    monkeypatch.setenv("ALLYE_ARROW_COMPRESSION", "")
    r = settings.load(store, )
    assert r.settings.compression is None and r.sources["compression"] == "env:ALLYE_ARROW_COMPRESSION"


def test_bad_values_say_what_to_fix(tmp_path, monkeypatch):
    (tmp_path / "settings.yaml").write_text("chunk_rows: [1, 2\n")
    with pytest.raises(InvalidArgumentError, match="not valid YAML"):
        settings.load(tmp_path)
    (tmp_path / "settings.yaml").write_text("chunk_rows: many\n")
    with pytest.raises(InvalidArgumentError, match="chunk_rows='many'"):
        settings.load(tmp_path)
    (tmp_path / "settings.yaml").write_text("compression: brotli\n")
    with pytest.raises(InvalidArgumentError, match="compression"):
        settings.load(tmp_path)
    (tmp_path / "settings.yaml").write_text("")
    monkeypatch.setenv("ALLYE_MAX_SHM_BYTES", "0")
    with pytest.raises(InvalidArgumentError, match="out of range"):
        settings.load(tmp_path)


def test_an_out_of_range_setting_is_named_alone_with_its_origin(tmp_path, monkeypatch):
    (tmp_path / "settings.yaml").write_text("keep_versions: 0\nchunk_rows: 5\n")
    with pytest.raises(InvalidArgumentError) as err:
        settings.load(tmp_path)
    text = str(err.value)
    assert "keep_versions=0" in text and str(tmp_path / "settings.yaml") in text and "at least 1" in text
    assert "chunk_rows" not in text and "max_shm_bytes" not in text, "only the bad setting"
    monkeypatch.setenv("ALLYE_AUTO_GC_GRACE_SEC", "-1")
    with pytest.raises(InvalidArgumentError, match=r"auto_gc_grace_sec=-1 from env:ALLYE_AUTO_GC_GRACE_SEC.*ALLYE_AUTO"):
        settings.load(tmp_path)


@pytest.mark.parametrize("text,value", [("1GB", 10**9), ("128MiB", 128 * 2**20), ("4096", 4096), ("1_000", 1000)])
def test_sizes_take_units_from_the_environment_and_the_file(tmp_path, monkeypatch, text, value):
    monkeypatch.setenv("ALLYE_MAX_SHM_BYTES", text)
    assert settings.effective(str(tmp_path)).max_shm_bytes == value
    monkeypatch.delenv("ALLYE_MAX_SHM_BYTES")
    (tmp_path / "settings.yaml").write_text(f"max_store_bytes: {text}\n")
    assert settings.effective(str(tmp_path)).max_store_bytes == value
    monkeypatch.setenv("ALLYE_MAX_SHM_BYTES", "12XB")
    with pytest.raises(InvalidArgumentError, match=r"max_shm_bytes from \$ALLYE_MAX_SHM_BYTES: '12XB' is not a size"):
        settings.effective(str(tmp_path))


def test_send_uses_the_settings_file(store):
    df = pd.DataFrame({"x": np.arange(1000.0)})
    store.mkdir(parents=True)
    settings.save(settings.Settings(max_shm_bytes=100, chunk_rows=300, default_ttl_sec=3600, notify_canvas=False), store)
    adc.send_dataframe(df, "t", secret_dir=store)
    ready = [json.loads(line) for line in (store / "manifest.jsonl").read_text().splitlines()][-1]
    assert ready["payload"]["transport"] == "file_arrow_ipc_v1"  # 8 KB > max_shm_bytes=100
    assert ready["ttl_sec"] == 3600 and ready["payload"]["expires_at"]
    assert adc.describe_table("t", secret_dir=store)["num_batches"] == 4  # chunk_rows=300
    # Arguments still win.
    adc.send_dataframe(df, "t2", secret_dir=store, max_shm_bytes=1 << 20, ttl_sec=0)
    ready = [json.loads(line) for line in (store / "manifest.jsonl").read_text().splitlines()][-1]
    assert ready["payload"]["transport"] == "shm_arrow_stream_v1" and ready["ttl_sec"] == 0


def test_defaults_are_the_cores():
    """The package declares no default of its own: the settings' and the API's come from
    the Rust core's vocabulary."""
    import inspect

    from allye_data_connector import _core

    assert settings.Settings().max_shm_bytes == _core.DEFAULT_MAX_SHM_BYTES == 64 * 1024 * 1024
    params = inspect.signature(adc.send_dataframe).parameters
    assert params["producer"].default == _core.DEFAULT_PRODUCER == "python"
    assert inspect.signature(adc.gc).parameters["keep_versions"].default == _core.DEFAULT_KEEP_VERSIONS == 1
    assert _core.TRANSPORTS == ("auto", "shm", "file") and _core.COMPRESSIONS == ("zstd", "lz4")
    assert _core.DEFAULT_COMPRESSED_CHUNK_ROWS == 500_000


@pytest.mark.parametrize(("spelling", "canonical"), [("ZSTD", "zstd"), (" lz4 ", "lz4"), ("none", None), ("Uncompressed", None)])
def test_compression_spellings_are_the_cores(tmp_path, monkeypatch, spelling, canonical):
    monkeypatch.setenv("ALLYE_ARROW_COMPRESSION", spelling)
    assert settings.load(tmp_path).settings.compression == canonical


def test_the_settings_file_is_private_and_read_only_under_the_trust_rule(tmp_path):
    """settings.yaml is written 0600 (its store 0700) whatever the umask, and never read
    from a store another user could write, nor through a symbolic link: a planted file
    (allow_pickle: true, say) would change what the store does."""
    import os

    from allye_data_connector.errors import StoreNotPrivateError

    store = tmp_path / "store"
    old = os.umask(0)
    try:
        settings.save(settings.Settings(chunk_rows=10), store)
    finally:
        os.umask(old)
    assert (store.stat().st_mode & 0o777, (store / "settings.yaml").stat().st_mode & 0o777) == (0o700, 0o600)
    assert [p.name for p in store.iterdir()] == ["settings.yaml"], "written atomically, no temporary left"
    assert settings.load(store).settings.chunk_rows == 10
    store.chmod(0o770)
    settings_config._cache.clear()
    with pytest.raises(StoreNotPrivateError, match="chmod 700"):
        settings.load(store)
    with pytest.raises(StoreNotPrivateError):
        settings.save(settings.Settings(chunk_rows=20), store)
    store.chmod(0o700)
    elsewhere = tmp_path / "elsewhere.yaml"
    elsewhere.write_text("chunk_rows: 99\n")
    (store / "settings.yaml").unlink()
    (store / "settings.yaml").symlink_to(elsewhere)
    settings_config._cache.clear()
    with pytest.raises(StoreNotPrivateError, match="symbolic link"):
        settings.load(store)


@pytest.mark.parametrize("ask", ["shared", "shared_for"])
def test_shared_settings_are_cached_until_the_file_or_the_environment_changes(tmp_path, monkeypatch, ask):
    """Every send and get resolves the settings: cached, but a change of settings.yaml
    (a rewrite by save, a hand edit, its removal) or of an ALLYE_ variable is seen by the
    next call. ``shared_for`` (what puts and gets call: the store resolved and the file's
    stamp taken by the core) answers as ``shared`` does."""
    import os

    store = str(tmp_path / "store")
    fn = getattr(settings, ask)

    def get(**arguments):
        return fn(store, **arguments)

    settings.save(settings.Settings(chunk_rows=10), store)
    first = get()
    assert get() is first and first.chunk_rows == 10
    settings.save(settings.Settings(chunk_rows=20), store)  # a new file renamed over it
    assert get().chunk_rows == 20
    path = tmp_path / "store" / "settings.yaml"
    st = path.stat()
    with open(path, "w") as f:  # an edit in place that keeps the mtime: the size differs
        f.write("chunk_rows: 300\n")
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert get().chunk_rows == 300
    monkeypatch.setenv("ALLYE_CHUNK_ROWS", "7")
    assert get().chunk_rows == 7
    monkeypatch.delenv("ALLYE_CHUNK_ROWS")
    assert get().chunk_rows == 300
    assert get(chunk_rows=5).chunk_rows == 5, "arguments still win"
    path.unlink()  # no file: the defaults
    assert get().chunk_rows == settings.Settings().chunk_rows


def test_the_settings_a_caller_gets_are_its_own(tmp_path):
    """effective() is cached for the package's sends and gets; a caller changing the object
    it got changes nothing for them, nor for the next caller."""
    from allye_data_connector import settings

    store = str(tmp_path / "store")
    mine = settings.effective(store)
    before = mine.compression
    mine.compression = "something else"
    assert settings.effective(store).compression == before
    assert settings.shared(store).compression == before
