"""The `adc` command as a user types it (a subprocess of the installed entry point)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.feather as feather
import pyarrow.parquet as pq
import pytest

import allye_data_connector as adc
from tests.helpers import own

ADC = shutil.which("adc", path=str(Path(sys.executable).parent)) or shutil.which("adc")


@pytest.fixture
def df() -> pd.DataFrame:
    n = 1000
    return pd.DataFrame(
        {"x": np.arange(n, dtype=np.float64), "n": np.arange(n), "s": [f"r{i}" for i in range(n)]},
        index=pd.date_range("2025-01-01", periods=n, freq="h", name="ts"),
    )


def test_send_ls_show_get_rm(store, tmp_path, df, adc_cmd):
    run = adc_cmd
    src = tmp_path / "sensors.parquet"
    pq.write_table(pa.Table.from_pandas(df), src)
    out = run("send", str(src), "--no-notify", store=store).stdout
    assert "sent 'sensors'" in out and "1,000 rows x 3 columns" in out
    csv_src = tmp_path / "small.csv"
    df.reset_index().head(10).to_csv(csv_src, index=False)
    run("send", str(csv_src), "--name", "csvtab", "--transport", "file", "--no-notify", store=store)

    listed = json.loads(run("--json", "ls", store=store).stdout)
    assert [t["table_name"] for t in listed] == ["csvtab", "sensors"]
    assert listed[1]["shape"] == [1000, 3] and listed[0]["transport"] == "file_arrow_ipc_v1"
    human = run("ls", store=store).stdout
    assert "sensors" in human and "1,000" in human and "ready" in human

    shown = json.loads(run("--json", "show", "sensors", "--head", "3", store=store).stdout)
    assert shown["state"] == "ready" and shown["shape"] == [1000, 3]
    assert [f["name"] for f in shown["schema"]] == ["x", "n", "s", "ts"]
    assert shown["head"]["data"][2][0] == 2.0
    assert "schema" in run("show", "sensors", store=store).stdout

    for suffix in (".parquet", ".csv", ".feather"):
        out_file = tmp_path / f"out{suffix}"
        res = json.loads(run("--json", "get", "sensors", "-o", str(out_file), "--columns", "n,s", "--rows", "10:20", store=store).stdout)
        assert res["rows"] == 10 and res["columns"] == 2
        if suffix == ".parquet":
            back = pq.read_table(out_file).to_pandas()
        elif suffix == ".feather":
            back = feather.read_table(out_file).to_pandas()
        else:
            back = pd.read_csv(out_file, index_col=0, parse_dates=True)
        assert back["n"].tolist() == list(range(10, 20)) and list(back.columns) == ["n", "s"]
    rng = json.loads(run("--json", "get", "sensors", "-o", str(tmp_path / "r.parquet"), "--start", "2025-01-02", "--end", "2025-01-03", store=store).stdout)
    assert rng["rows"] == 24

    rm = json.loads(run("--json", "rm", "sensors", store=store).stdout)
    assert rm[0]["table_name"] == "sensors" and len(rm[0]["deleted"]) == 1
    assert [t["table_name"] for t in json.loads(run("--json", "ls", store=store).stdout)] == ["csvtab"]
    all_states = json.loads(run("--json", "ls", "--all", store=store).stdout)
    assert {t["table_name"]: t["state"] for t in all_states} == {"csvtab": "ready", "sensors": "removed"}
    assert adc.list_tables(secret_dir=store)[0]["table_name"] == "csvtab"


def test_exit_codes_and_errors_without_traceback(store, tmp_path, df, adc_cmd):
    run = adc_cmd
    missing = run("get", "nope", "-o", str(tmp_path / "x.parquet"), store=store, check=3)
    assert missing.stderr.startswith("error: no ready version of table \"nope\"") and "Traceback" not in missing.stderr
    assert "Traceback" in run("--debug", "show", "nope", store=store, check=None).stderr
    run("rm", "nope", store=store, check=3)
    bad = run("get", "nope", "-o", str(tmp_path / "x.txt"), store=store, check=2)
    assert "format" in bad.stderr
    run("frobnicate", store=store, check=2)
    run("get", "late", "-o", str(tmp_path / "x.csv"), "--wait", "--timeout", "0.3", store=store, check=5)
    # A payload that vanished under the manifest: exit 4.
    adc.send_dataframe(df, "f", secret_dir=store, transport="file")
    for p in (store / "payloads").iterdir():
        p.unlink()
    gone = run("get", "f", "-o", str(tmp_path / "f.csv"), store=store, check=4)
    assert "no longer exists" in gone.stderr
    assert run("--json", "ls", store=tmp_path / "empty").stdout.strip() == "[]"


def test_gc_dry_run_and_real(store, df, adc_cmd):
    run = adc_cmd
    import time

    adc.send_dataframe(df, "short", secret_dir=store, transport="file", ttl_sec=0)
    time.sleep(1.1)
    dry = own(json.loads(run("--json", "gc", "--dry-run", store=store).stdout))
    assert [a["action"] for a in dry] == ["delete"] and any((store / "payloads").iterdir())
    assert "1 payloads of this store deleted" in run("gc", "--delete", store=store).stdout
    assert not any((store / "payloads").iterdir())


def test_watch_prints_json_lines(store, df, adc_cmd):
    run = adc_cmd
    store.mkdir(parents=True)
    proc = subprocess.Popen([ADC, "--secret-dir", str(store), "--json", "watch", "w", "--count", "2", "--timeout", "30"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert "watching w" in proc.stderr.readline()  # set up: what lands from now on is news
    adc.send_dataframe(df.head(1), "w", secret_dir=store)
    adc.send_dataframe(df.head(2), "other", secret_dir=store)
    adc.send_dataframe(df.head(3), "w", secret_dir=store)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    lines = [json.loads(line) for line in out.splitlines()]
    assert [(r["table_name"], r["shape"]) for r in lines] == [("w", [1, 3]), ("w", [3, 3])]
    run("watch", "--timeout", "0.2", store=store, check=5)


def test_config_shows_sources_and_saves(store, tmp_path, adc_cmd):
    run = adc_cmd
    store.mkdir(parents=True)
    shown = json.loads(run("--json", "config", store=store).stdout)
    assert {r["name"]: r["source"] for r in shown["settings"]}["chunk_rows"] == "default"
    run("config", "--set", "chunk_rows=1000", "--set", "compression=zstd", store=store)
    shown = json.loads(run("--json", "config", store=store, env={"ALLYE_MAX_SHM_BYTES": "1024"}).stdout)
    rows = {r["name"]: r for r in shown["settings"]}
    assert rows["chunk_rows"]["value"] == 1000 and rows["chunk_rows"]["source"].startswith("file:")
    assert rows["compression"]["value"] == "zstd"
    assert rows["max_shm_bytes"]["value"] == 1024 and rows["max_shm_bytes"]["source"] == "env:ALLYE_MAX_SHM_BYTES"
    run("config", "--set", "chunk_rows=lots", store=store, check=1)
    run("config", "--set", "nonsense=1", store=store, check=2)


def test_config_refuses_an_out_of_range_value_before_saving_it(store, df, adc_cmd):
    store.mkdir(parents=True)
    adc_cmd("config", "--set", "chunk_rows=1000", store=store)
    saved = (store / "settings.yaml").read_text()
    bad = adc_cmd("config", "--set", "keep_versions=0", "--set", "auto_gc=false", store=store, check=1)
    assert "keep_versions=0 from --set is out of range" in bad.stderr
    assert "chunk_rows" not in bad.stderr and "max_shm_bytes" not in bad.stderr
    assert (store / "settings.yaml").read_text() == saved, "nothing saved"
    # The store still works: config and sends.
    rows = {r["name"]: r for r in json.loads(adc_cmd("--json", "config", store=store).stdout)["settings"]}
    assert rows["keep_versions"]["value"] == adc._core.DEFAULT_KEEP_VERSIONS and rows["chunk_rows"]["value"] == 1000
    adc.send_dataframe(df, "t", secret_dir=store)
    adc_cmd("config", "--set", "keep_versions=2", store=store)
    rows = {r["name"]: r for r in json.loads(adc_cmd("--json", "config", store=store).stdout)["settings"]}
    assert rows["keep_versions"]["value"] == 2
