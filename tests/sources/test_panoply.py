"""panoply-python-sdk's DataSource, as its README writes one, run by adc.load after
changing one import."""

from __future__ import annotations

import logging
import sys
import types
from pathlib import Path

import pytest

import allye_data_connector as adc
from allye_data_connector.compat import panoply
from allye_data_connector.errors import SourceError
from allye_data_connector.sources import describe_sources, params_of


class MyDataSource(panoply.DataSource):
    def __init__(self, source, options):
        super(MyDataSource, self).__init__(source, options)
        self.pages = int(source.get("pages", 3))
        self.page = 0
        self.closed = False

    def read(self, n=None):
        # read up to n objects
        if self.page >= self.pages:
            return None
        self.page += 1
        self.progress(self.page, self.pages, "%d/%d pages loaded" % (self.page, self.pages))
        self.log("read page", self.page)
        return [{"hello": "world", "page": self.page, "i": i} for i in range(n or 10)][:10]

    def close(self):
        self.closed = True


CONFIG = {
    "title": "My Data Source",
    "icon": "data:image/png;base64,iVBORw...",
    "params": [
        {"name": "user", "title": "User name", "placeholder": "Example: myuser1234"},
        {"name": "database", "placeholder": "Example: 127.0.0.1", "help": "Host name or IP address"},
        {"name": "password", "title": "Password", "secret": True},
    ],
}
Stream = MyDataSource


def test_the_readme_data_source_loads_into_the_store(store: Path, caplog: pytest.LogCaptureFixture) -> None:
    src = MyDataSource({"user": "me", "database": "127.0.0.1", "pages": 4}, {})
    events: list[dict] = []
    src.on("progress", events.append)
    with caplog.at_level(logging.INFO):
        out = adc.load(src, "panoply", secret_dir=store, progress=False)
    assert out["rows"] == 40
    df = adc.get_dataframe("panoply", secret_dir=store)
    assert set(df["hello"]) == {"world"} and sorted(set(df["page"])) == [1, 2, 3, 4]
    assert events[-1] == {"loaded": 4, "total": 4, "msg": "4/4 pages loaded"}
    assert src.closed, "load() closes the source"
    assert "read page 4" in caplog.text


def test_panoply_contract_details() -> None:
    source = {"user": "me", "password": "pw-9"}
    got: list[tuple] = []
    src = MyDataSource(source, {"logger": got.append})
    assert src.source is source, "the source dict itself, as panoply keeps it"
    src.log("connecting as", "me", "with", "pw-9")
    assert got == [("connecting as", "me", "with", "***")]
    fired: list[tuple] = []
    src.on("*", lambda name, data: fired.append((name, data)))
    src.state("s1", {"cursor": 5})
    assert fired == [("source-state", {"stateId": "s1", "state": {"cursor": 5}})]
    assert src.raw("tag", b"abc", {"m": 1}) == {"type": "raw", "tag": "tag", "raw": b"YWJj", "metadata": {"m": 1}}

    class NoRead(panoply.DataSource):
        pass

    with pytest.raises(NotImplementedError):
        NoRead({}, {}).read()


def test_state_is_recorded_with_the_rows(store: Path) -> None:
    class Stateful(MyDataSource):
        def read(self, n=None):
            rows = super().read(n)
            if rows is not None:
                self.state("since", self.page)
            return rows

    adc.load(Stateful({"pages": 2}, {}), "st", secret_dir=store, progress=False)
    ev = adc.describe_table("st", secret_dir=store)
    from .helpers import manifest_lines

    ready = [e for e in manifest_lines(store) if e["status"] == "ready"][-1]
    assert ev["id"] == ready["id"]
    assert ready["metadata"]["allye_load"]["state"] == {"stateId": "since", "state": 2}


def test_a_panoply_module_is_a_source_by_its_stream_and_config(monkeypatch: pytest.MonkeyPatch) -> None:
    from allye_data_connector.sources import registry

    module = types.ModuleType("my_panoply_source")
    module.Stream = type("Plain", (panoply.DataSource,), {"read": lambda self, n=None: None})  # type: ignore[attr-defined]
    module.CONFIG = CONFIG  # type: ignore[attr-defined]

    class EP:
        name, value = "mine", "my_panoply_source"

        def load(self):
            return module

    monkeypatch.setattr(registry, "_entry_points", lambda: {"mine": EP()})
    listed = {s["name"]: s for s in describe_sources()}
    assert listed["mine"]["title"] == "My Data Source"
    assert [p["name"] for p in listed["mine"]["params"]] == ["user", "database", "password"]
    assert params_of(module.Stream)[2]["secret"] is True  # type: ignore[attr-defined]


def test_a_failing_panoply_source_is_a_source_error(store: Path) -> None:
    class Broken(MyDataSource):
        def read(self, n=None):
            if self.page == 2:
                raise ValueError("HTTP 500 from the API")
            return super().read(n)

    with pytest.raises(SourceError, match="HTTP 500"):
        adc.load(Broken({}, {}), "broken", secret_dir=store, progress=False)
    with pytest.raises(adc.TableNotFoundError):
        adc.get_arrow("broken", secret_dir=store)
    assert adc.describe_table("broken", secret_dir=store)["state"] == "error"
