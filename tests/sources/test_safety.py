"""Cancel, errors and crashes during a load: the previous version stays current and nothing
half-written is left (no temporary payload, no ready line); secrets are never logged or
stored."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pyarrow as pa
import pytest

import allye_data_connector as adc
from allye_data_connector.errors import CancelledError, InvalidArgumentError, SourceError

from .helpers import leftovers, manifest_lines, payload_files, sample, statuses


class Batches(adc.DataSource):
    """``count`` batches of ``rows`` rows; ``fail_at``: raise on that read."""

    def __init__(self, count: int = 10, rows: int = 1000, fail_at: int = -1, error: BaseException | None = None):
        super().__init__({})
        self.count, self.rows, self.fail_at, self.error, self.reads = count, rows, fail_at, error, 0

    def read(self, n=None):
        if self.reads == self.fail_at:
            raise self.error or RuntimeError("the API went away")
        if self.reads >= self.count:
            return None
        self.reads += 1
        self.progress(self.reads, self.count)
        return sample(self.rows, (self.reads - 1) * self.rows).to_batches()[0]


def _previous(store: Path) -> tuple[str, list[str]]:
    adc.load(Batches(count=2), "t", secret_dir=store, progress=False)
    return adc.describe_table("t", secret_dir=store)["id"], payload_files(store)


def _intact(store: Path, prev_id: str, files: list[str]) -> None:
    d = adc.describe_table("t", secret_dir=store)
    assert d["id"] == prev_id and d["shape"][0] == 2000
    assert adc.get_arrow("t", secret_dir=store)["id"].to_pylist() == list(range(2000))
    assert payload_files(store) == files, "no temporary or half-written payload"
    assert statuses(store, "t")[-1] == "error" and statuses(store, "t").count("ready") == 1


def test_cancel_by_event_between_batches(store: Path) -> None:
    prev, files = _previous(store)
    stop = threading.Event()

    def progress(done: int, total: object) -> None:
        if done >= 3:
            stop.set()

    src = Batches(count=10)
    with pytest.raises(CancelledError, match="previous version is intact"):
        adc.load(src, "t", secret_dir=store, cancel=stop, progress=progress)
    assert src.reads < 10
    _intact(store, prev, files)


def test_cancel_by_callable(store: Path) -> None:
    prev, files = _previous(store)
    calls = {"n": 0}

    def cancel() -> bool:
        calls["n"] += 1
        return calls["n"] > 4

    with pytest.raises(CancelledError):
        adc.load(Batches(count=10), "t", secret_dir=store, cancel=cancel, progress=False)
    _intact(store, prev, files)
    # mode="append" keeps the chunks it appended: tests/sources/test_append.py.


def test_a_source_raising_mid_way_is_a_source_error(store: Path) -> None:
    prev, files = _previous(store)
    src = Batches(count=10, fail_at=4)
    closed: list[bool] = []
    src.close = lambda: closed.append(True)  # type: ignore[method-assign]
    with pytest.raises(SourceError, match="the API went away") as info:
        adc.load(src, "t", secret_dir=store, progress=False)
    assert isinstance(info.value.__cause__, RuntimeError)
    assert closed == [True], "the source is closed after a failure too"
    _intact(store, prev, files)
    # The error line says why.
    assert "the API went away" in manifest_lines(store)[-1]["metadata"]["error"]


def _adc(store: Path, *args: str) -> str:
    exe = Path(sys.executable).with_name("adc")
    return subprocess.run([str(exe), "-d", str(store), *args], capture_output=True, text=True, check=True).stdout


def test_a_failed_or_cancelled_load_records_one_line_and_logs_the_traceback(
        store: Path, caplog: pytest.LogCaptureFixture) -> None:
    prev, files = _previous(store)
    caplog.set_level(logging.INFO, logger="allye_data_connector")
    with pytest.raises(SourceError):
        adc.load(Batches(count=10, fail_at=4, error=RuntimeError("the API went away\nat page 4")), "t",
                 secret_dir=store, progress=False)
    reason = adc.describe_table("t", secret_dir=store)["error"]
    assert reason == "the source Batches failed: the API went away", reason
    assert manifest_lines(store)[-1]["metadata"]["error"] == reason
    logged = [r for r in caplog.records if r.exc_info and "the API went away" in str(r.exc_info[1])]
    assert logged and "Traceback" in caplog.text and "in read" in caplog.text, "the traceback goes to the log"
    with pytest.raises(CancelledError):
        calls = iter(range(100))
        adc.load(Batches(count=10), "t", secret_dir=store, cancel=lambda: next(calls) > 4, progress=False)
    cancelled = adc.describe_table("t", secret_dir=store)["error"]
    assert "\n" not in cancelled and "cancelled" in cancelled and "Traceback" not in cancelled
    _intact(store, prev, files)
    # What the command line shows: one line per table, the reason whole.
    listed = _adc(store, "ls", "--all")
    assert "Traceback" not in listed and len(listed.splitlines()) == 2 and cancelled in listed
    shown = _adc(store, "show", "t")
    assert "Traceback" not in shown and cancelled in shown.splitlines()[0]


def test_the_sources_own_allye_errors_and_ctrl_c_pass_through(store: Path) -> None:
    prev, files = _previous(store)
    with pytest.raises(InvalidArgumentError, match="bad page size"):
        adc.load(Batches(fail_at=2, error=InvalidArgumentError("bad page size")), "t", secret_dir=store, progress=False)
    with pytest.raises(KeyboardInterrupt):
        adc.load(Batches(fail_at=3, error=KeyboardInterrupt()), "t", secret_dir=store, progress=False)
    # Raised on the very first read (before the stream starts): nothing written at all.
    lines = len(manifest_lines(store))
    with pytest.raises(SourceError):
        adc.load(Batches(fail_at=0), "t", secret_dir=store, progress=False)
    assert len(manifest_lines(store)) == lines
    _intact(store, prev, files)


def test_batches_whose_columns_change_are_refused(store: Path) -> None:
    prev, files = _previous(store)

    class Drift(Batches):
        def read(self, n=None):
            b = super().read(n)
            return pa.table({"other": ["x"]}) if self.reads == 3 else b

    with pytest.raises(SourceError, match="do not match"):
        adc.load(Drift(count=5), "t", secret_dir=store, progress=False)
    _intact(store, prev, files)


CRASHING_CHILD = """
import os, sys
import allye_data_connector as adc
from tests.sources.helpers import sample

class Dies(adc.DataSource):
    cursor = "id"
    reads = 0
    def read(self, n=None):
        self.reads += 1
        if self.reads == 4:
            os._exit(9)   # the process dies between reading and committing
        return sample(100, 2000 + (self.reads - 1) * 100)

adc.load(Dies(), "t", secret_dir=sys.argv[1], progress=False)
"""


def test_a_crash_between_read_and_commit_leaves_the_previous_version(store: Path, tmp_path: Path) -> None:
    prev, files = _previous(store)
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.run([sys.executable, "-c", CRASHING_CHILD, str(store)], cwd=root, capture_output=True)
    assert proc.returncode == 9, proc.stderr
    # The dead writer's temporary file is there until gc; readers still get the old version.
    assert leftovers(store)
    d = adc.describe_table("t", secret_dir=store)
    assert d["id"] == prev
    actions = adc.gc(secret_dir=store, dry_run=False)
    assert any(a["action"] == "record" for a in actions)
    assert leftovers(store) == []
    assert adc.get_arrow("t", secret_dir=store)["id"].to_pylist() == list(range(2000))
    # A killed mode="append" and its resume (no row skipped or twice): test_append.py.


def test_secrets_are_masked_in_logs_and_never_stored(store: Path, caplog: pytest.LogCaptureFixture) -> None:
    class Api(adc.DataSource):
        CONFIG = {"title": "API", "params": [
            {"name": "endpoint", "title": "Endpoint"},
            {"name": "token", "title": "Token", "secret": True},
        ]}

        def read(self, n=None):
            if getattr(self, "done", False):
                return None
            self.done = True
            self.log("calling", self.source["endpoint"], "with", self.source["token"],
                     "via postgresql://bob:hunter2@db/x")
            return [{"a": 1}]

        def describe(self) -> str:
            return f"api:{self.source['endpoint']}"

    with caplog.at_level(logging.INFO, logger="allye_data_connector"):
        adc.load(Api({"endpoint": "https://api", "token": "s3cr3t-t0ken"}), "api", secret_dir=store, progress=False)
    text = caplog.text
    assert "calling https://api with ***" in text
    assert "s3cr3t-t0ken" not in text and "hunter2" not in text
    assert "s3cr3t-t0ken" not in json.dumps(manifest_lines(store))
    got: list[tuple] = []
    src = Api({"endpoint": "e", "token": "zzz-secret"}, {"logger": got.append})
    src.log("token", "zzz-secret")
    assert got == [("token", "***")]
