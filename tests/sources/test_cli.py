"""`adc load` and `adc sources` as a user runs them: subprocesses of the installed entry
point, the progress bar on a pseudo-terminal, Ctrl-C, and a third-party source registered
through the entry point group."""

from __future__ import annotations

import json
import os
import pty
import select
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Optional

import pyarrow.csv as pacsv
import pytest

import allye_data_connector as adc

from .helpers import leftovers, manifest_lines, payload_files, sample

ADC = shutil.which("adc", path=str(Path(sys.executable).parent)) or shutil.which("adc")

SLOW_SOURCE = '''
import time
import pyarrow as pa
from allye_data_connector.compat.panoply import DataSource

class Slow(DataSource):
    """Endless batches, one every 50 ms (a slow API)."""
    def __init__(self, source, options=None):
        super().__init__(source, options)
        self.n = 0
    def read(self, n=None):
        time.sleep(0.05)
        self.n += 1
        self.progress(self.n, None, "page %d" % self.n)
        return [{"page": self.n}]

Stream = Slow
CONFIG = {"title": "A slow API", "params": [
    {"name": "path", "title": "Endpoint"},
    {"name": "api_key", "title": "API key", "secret": True},
]}
'''


@pytest.fixture
def plugin_env(tmp_path: Path) -> dict:
    """A third-party source installed the way a package installs it: a module and a
    dist-info whose entry_points.txt names it under allye_data_connector.sources."""
    site = tmp_path / "site"
    (site / "adc_slow_source-1.0.dist-info").mkdir(parents=True)
    (site / "adc_slow.py").write_text(SLOW_SOURCE)
    (site / "adc_slow_source-1.0.dist-info" / "METADATA").write_text("Metadata-Version: 2.1\nName: adc-slow-source\nVersion: 1.0\n")
    (site / "adc_slow_source-1.0.dist-info" / "entry_points.txt").write_text(
        "[allye_data_connector.sources]\nslow = adc_slow\n")
    return {"PYTHONPATH": str(site)}


def _env(extra: Optional[dict] = None) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALLYE_")}
    env["ALLYE_NOTIFY_CANVAS"] = "0"
    env.update(extra or {})
    return env


def _adc(*args: str, store: Path, env: Optional[dict] = None, check: int = 0) -> subprocess.CompletedProcess:
    assert ADC, "the adc entry point is not installed"
    proc = subprocess.run([ADC, "--secret-dir", str(store), *args], capture_output=True, text=True,
                          timeout=120, env=_env(env))
    assert proc.returncode == check, f"{args} -> {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc


def test_adc_load_files_and_append(tmp_path: Path, store: Path) -> None:
    path = tmp_path / "events.csv"
    pacsv.write_csv(sample(100), path)
    out = _adc("load", str(path), store=store)
    assert "loaded 'events': 100 rows from csv:" in out.stdout
    pacsv.write_csv(sample(150), path)
    out = _adc("--json", "load", str(path), "--append", "--cursor", "id", "--table", "events", store=store)
    got = json.loads(out.stdout)
    assert got["rows"] == 150 and got["rows_loaded"] == 50 and got["last_cursor"] == 149
    assert adc.get_arrow("events", secret_dir=store)["id"].to_pylist() == list(range(150))
    # --append made "events" a stream: a replace onto it says what to do instead.
    refused = _adc("load", str(path), "--table", "events", store=store, check=2)
    assert "streaming table" in refused.stderr and "adc rm 'events'" in refused.stderr
    bad = _adc("load", str(tmp_path / "nope.csv"), store=store, check=3)
    assert bad.stderr.startswith("error: ") and "No such file or directory" in bad.stderr
    usage = _adc("load", "postgresql://u@h/db", "--query", "select 1", store=store, check=2)
    assert "--table" in usage.stderr


def test_adc_load_shows_progress_on_a_terminal(tmp_path: Path, store: Path) -> None:
    path = tmp_path / "big.csv"
    pacsv.write_csv(sample(300_000), path)
    master, slave = pty.openpty()
    proc = subprocess.Popen([ADC, "--secret-dir", str(store), "load", str(path), "--param", "block_size=1000000"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=slave, env=_env({"COLUMNS": "100"}))
    os.close(slave)
    seen = b""
    while True:
        r, _, _ = select.select([master], [], [], 60)
        if not r:
            break
        try:
            chunk = os.read(master, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        seen += chunk
    assert proc.wait(timeout=60) == 0
    os.close(master)
    text = seen.decode(errors="replace")
    assert "loading big" in text
    assert "━" in text, text  # rich's bar
    assert "300,000 rows loaded" in text
    assert proc.stdout is not None and "300,000 rows" in proc.stdout.read().decode()
    # Piped stderr: no bar.
    piped = _adc("load", str(path), "--table", "piped", store=store)
    assert "━" not in piped.stderr


def test_ctrl_c_cancels_cleanly_and_third_party_sources_register(tmp_path: Path, store: Path, plugin_env: dict) -> None:
    listed = json.loads(_adc("--json", "sources", store=store, env=plugin_env).stdout)
    slow = [s for s in listed if s["name"] == "slow"]
    assert slow and slow[0]["title"] == "A slow API"
    assert {"name": "api_key", "title": "API key", "secret": True} in slow[0]["params"]
    assert "api_key (secret)" in _adc("sources", store=store, env=plugin_env).stdout

    adc.load(str(_csv(tmp_path)), "t", secret_dir=store, progress=False)
    prev = adc.describe_table("t", secret_dir=store)["id"]
    files = payload_files(store)
    master, slave = pty.openpty()
    proc = subprocess.Popen([ADC, "--secret-dir", str(store), "load", "slow://api", "--table", "t",
                             "--param", "api_key=k-123"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=slave, env=_env(plugin_env))
    os.close(slave)
    deadline = time.monotonic() + 30
    seen = b""
    while b"page 5" not in seen and time.monotonic() < deadline:
        r, _, _ = select.select([master], [], [], 1)
        if r:
            seen += os.read(master, 65536)
    assert b"page 5" in seen, seen
    assert any(ev["status"] == "writing" for ev in manifest_lines(store)[-1:])
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=30) == 130
    try:
        while True:
            r, _, _ = select.select([master], [], [], 1)
            if not r:
                break
            chunk = os.read(master, 65536)
            if not chunk:
                break
            seen += chunk
    except OSError:
        pass
    os.close(master)
    assert b"interrupted" in seen
    assert b"k-123" not in seen
    d = adc.describe_table("t", secret_dir=store)
    assert d["id"] == prev, "the previous version is still current"
    assert payload_files(store) == files and leftovers(store) == []
    assert manifest_lines(store)[-1]["status"] == "error"
    assert "k-123" not in (store / "manifest.jsonl").read_text()


def _csv(tmp_path: Path) -> Path:
    path = tmp_path / "t.csv"
    pacsv.write_csv(sample(10), path)
    return path
