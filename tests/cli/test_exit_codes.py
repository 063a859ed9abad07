"""One exit-code table for every command (0 ok, 1 failure, 2 usage and bad option
values, 3 not found, 4 unreadable, 5 timeout, 130 cancelled), each failure one line;
``--json``/``--debug`` on every command; the wording of counts, states and errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import allye_data_connector as adc
from allye_data_connector.cli import main as cli_main

from .conftest import ADC


def send(df, name, store, **kw):
    return adc.send_dataframe(df, name, secret_dir=store, notify_canvas=False, **kw)


@pytest.fixture
def prepared(store: Path, tmp_path: Path) -> Path:
    """A store with a table ``t``, an expired ``old``, a CSV and a file that is not Parquet."""
    send(pd.DataFrame({"v": np.arange(3.0)}, index=pd.date_range("2025-01-01", periods=3, name="ts")), "t", store,
         shm_unlink_on_read=False)
    send(pd.DataFrame({"v": [1]}), "old", store, transport="file", ttl_sec=0)
    pd.DataFrame({"a": [1, 2], "b": ["x", "y"]}).to_csv(tmp_path / "in.csv", index=False)
    (tmp_path / "garbage.parquet").write_bytes(b"PAR1\x00\x01 not parquet at all \xff\xfe")
    time.sleep(1.1)  # `old` expires
    return tmp_path


CASES = [
    # 0: success
    (("ls",), 0), (("ls", "--all"), 0), (("show", "t"), 0), (("get", "t", "-o", "OUT/t.csv"), 0),
    (("send", "OUT/in.csv", "--name", "fromcsv"), 0), (("rm", "t"), 0), (("gc",), 0), (("cleanup", "--dry-run"), 0),
    (("config",), 0), (("sources",), 0), (("load", "OUT/in.csv", "--table", "loaded"), 0),
    (("ls", "--objects"), 0), (("ls", "--arrays"), 0),
    # 2: usage and option values the command cannot use
    (("frobnicate",), 2), (("ls", "--frob"), 2), (("get", "t"), 2),
    (("get", "t", "-o", "OUT/x.csv", "--start", "notadate"), 2),
    (("get", "t", "-o", "OUT/x.csv", "--columns", "nope"), 2),
    (("get", "t", "-o", "OUT/x.csv", "--rows", "a:b"), 2),
    (("config", "--set", "compression=gzip"), 2), (("config", "--set", "nokey"), 2),
    (("load", "OUT/in.csv", "--param", "nokv"), 2), (("load", "postgresql://x/db"), 2),
    (("send", "OUT/in.csv", "--name", ""), 2), (("send", "OUT/in.csv", "--name", "  "), 2),
    (("show", "t", "--head", "-1"), 2), (("gc", "--delete", "--dry-run"), 2), (("demo", "--rows", "0"), 2),
    (("watch", "--timeout", "-1"), 2), (("serve", "--port", "70000"), 2), (("pull", "127.0.0.1:1", "t", "--timeout", "0"), 2),
    (("push", "127.0.0.1:1"), 2), (("cleanup", "--frob"), 2), (("sources", "extra"), 2),
    # 3: not found: a table (missing, expired), an input file, a named object
    (("get", "nope", "-o", "OUT/x.csv"), 3), (("get", "old", "-o", "OUT/x.csv"), 3), (("show", "nope"), 3),
    (("show", "old"), 3), (("rm", "nope"), 3), (("send", "OUT/missing.csv"), 3), (("load", "OUT/missing.csv"), 3),
    (("show", "--object", "nope"), 3),
    # 4: unreadable: an input file that is not what its name says
    (("send", "OUT/garbage.parquet"), 4), (("load", "OUT/garbage.parquet", "--table", "g"), 4),
    # 5: timed out
    (("get", "late", "-o", "OUT/x.csv", "--wait", "--timeout", "0.2"), 5), (("watch", "w", "--timeout", "0.2"), 5),
]


@pytest.mark.parametrize("args,code", CASES, ids=[" ".join(a) for a, _ in CASES])
def test_exit_code(prepared, store, adc_cmd, args, code):
    args = tuple(a.replace("OUT", str(prepared)) for a in args)
    proc = adc_cmd(*args, store=store, check=code)
    if code:
        # one error line, the last (`watch` says what it watches first)
        lines = proc.stderr.strip().splitlines()
        assert lines[-1].startswith("error: ") and sum(x.startswith("error") for x in lines) == 1, proc.stderr
        assert len(lines) == 1 or args[0] == "watch", proc.stderr
        assert "Traceback" not in proc.stderr and "(run with --debug" not in proc.stderr, proc.stderr


def test_every_command_has_a_case():
    # (serve, pull and push's failures against a real server: tests/remote/test_cli.py)
    covered = {args[0] for args, _ in CASES}
    assert set(cli_main.commands) <= covered, set(cli_main.commands) - covered


def test_send_and_load_of_a_missing_file_say_the_same(prepared, store, adc_cmd):
    missing = str(prepared / "missing.csv")
    sent = adc_cmd("send", missing, store=store, check=3).stderr.strip()
    loaded = adc_cmd("load", missing, store=store, check=3).stderr.strip()
    assert sent == loaded == f"error: {missing}: No such file or directory"


def test_interrupted_is_130(store):
    store.mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALLYE_")}
    proc = subprocess.Popen([ADC, "-d", str(store), "watch", "w"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)
    assert proc.stderr is not None
    assert "watching" in proc.stderr.readline()
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=60) == 130
    assert "interrupted" in proc.stderr.read()


@pytest.mark.parametrize("command", sorted(cli_main.commands))
def test_every_command_takes_json_and_debug(command, adc_cmd):
    helped = adc_cmd(command, "--help").stdout
    assert "--json" in helped and "--debug" in helped, helped


def test_demo_takes_json_and_debug(tmp_path, adc_cmd):
    out = adc_cmd("demo", "--rows", "2000", "--json", "--secret-dir", str(tmp_path / "s"))
    report = json.loads(out.stdout)
    assert report["ok"] is True and any("another process" in line for line in report["lines"])
    adc_cmd("demo", "--rows", "2000", "--debug")


def test_counts_and_states_read_as_english(prepared, store, adc_cmd):
    assert "(1 payload deleted)" in adc_cmd("rm", "t", store=store).stdout
    assert "1 payload of this store would be deleted" in adc_cmd("gc", store=store).stdout
    send(pd.DataFrame({"v": [1]}), "gone", store)
    watcher = subprocess.Popen([ADC, "-d", str(store), "watch", "gone", "--errors", "--count", "1"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert watcher.stderr is not None and "watching" in watcher.stderr.readline()
    adc.remove_table("gone", secret_dir=store)
    out, _ = watcher.communicate(timeout=60)
    assert "  gone  removed  " in out and "error" not in out, out
    from allye_data_connector import streams

    streams.append("s", pd.DataFrame({"v": [1]}), secret_dir=str(store))
    follower = subprocess.Popen([ADC, "-d", str(store), "watch", "s", "--count", "1"], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
    assert follower.stderr is not None and "following" in follower.stderr.readline()
    streams.append("s", pd.DataFrame({"v": [2]}), secret_dir=str(store))
    out, _ = follower.communicate(timeout=60)
    assert "s  +1 row\n" in out, out


def test_errors_name_the_commands_options(prepared, store, adc_cmd):
    csv = str(prepared / "in.csv")
    adc_cmd("load", csv, "--table", "ap", "--append", store=store)
    line = adc_cmd("load", csv, "--table", "ap", store=store, check=2).stderr
    assert "--append" in line and "`adc rm 'ap'`" in line, line
    assert "mode=" not in line and "remove_table" not in line, line
    assert "shared memory" in adc_cmd("send", "--help").stdout.split("--transport")[1]


def test_a_binary_settings_file_is_a_typed_error(store, adc_cmd):
    store.mkdir(parents=True)
    (store / "settings.yaml").write_bytes(b"\xff\xfe\x00garbage")
    line = adc_cmd("config", store=store, check=2).stderr
    assert "not UTF-8" in line and "UnicodeDecodeError" not in line, line
    with pytest.raises(adc.errors.InvalidArgumentError, match="not UTF-8"):
        adc.send_dataframe(pd.DataFrame({"v": [1]}), "x", secret_dir=store, notify_canvas=False)


def test_a_polars_series_is_sent_as_its_one_column_frame(store):
    pl = pytest.importorskip("polars")
    send(pl.Series("price", [1.5, 2.5]), "prices", store)
    got = adc.get_dataframe("prices", secret_dir=store)
    assert list(got.columns) == ["price"] and got["price"].tolist() == [1.5, 2.5]
