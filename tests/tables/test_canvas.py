"""Canvas notification after a send, against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import json
import logging
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pandas as pd
import pytest

import allye_data_connector as adc
from allye_data_connector.tables import canvas


class Canvas:
    """A fake Allye canvas API: records requests, answers with ``reply``."""

    def __init__(self, reply=None, delay=0.0, status=200):
        self.requests: list[tuple[str, dict, dict]] = []
        self.reply = reply if reply is not None else {"ok": True, "created": True, "loaded": True, "error": ""}
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                outer.requests.append((self.path, dict(self.headers), json.loads(body)))
                time.sleep(delay)
                data = outer.reply if isinstance(outer.reply, bytes) else json.dumps(outer.reply).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def home(tmp_path, monkeypatch):
    h = tmp_path / "home"
    h.mkdir()
    monkeypatch.setenv("HOME", str(h))
    monkeypatch.delenv("ALLYE_CANVAS_API_URL", raising=False)
    monkeypatch.delenv("ALLYE_NOTIFY_CANVAS", raising=False)
    return h


DF = pd.DataFrame({"x": [1.0, 2.0]})


def test_send_notifies_the_canvas_as_the_protocol_says(store, home, monkeypatch, caplog):
    c = Canvas()
    try:
        monkeypatch.setenv("ALLYE_CANVAS_API_URL", c.url + "/")
        with caplog.at_level(logging.INFO, logger="allye_data_connector"):
            adc.send_dataframe(DF, "iris", secret_dir=store)
            adc.send_dataframe(DF, "iris2", secret_dir=store, notify_create_widget=False, notify_create_new_widget=False,
                               notify_refresh_manifest=False)
            adc.send_dataframe(DF, "quiet", secret_dir=store, notify_canvas=False)
    finally:
        c.close()
    assert [r[0] for r in c.requests] == ["/v1/data-receiver/load"] * 2
    assert c.requests[0][1]["Content-Type"] == "application/json"
    assert c.requests[0][2] == {"table_name": "iris", "create_if_missing": True, "create_new": True, "refresh_manifest": True}
    assert list(c.requests[0][2]) == ["table_name", "create_if_missing", "create_new", "refresh_manifest"]
    assert c.requests[1][2] == {"table_name": "iris2", "create_if_missing": False, "create_new": False, "refresh_manifest": False}
    assert "created and loaded table 'iris'" in caplog.text


def test_base_url_from_the_api_file(store, home):
    c = Canvas(reply={"ok": True, "created": False, "loaded": True, "error": ""})
    try:
        (home / ".allye_secrets").mkdir()
        (home / ".allye_secrets" / "allye_canvas_api.json").write_text(json.dumps({"base_url": c.url}))
        assert canvas.resolve_api_url() == c.url
        assert canvas.notify_receiver("t")["ok"] is True
    finally:
        c.close()
    assert c.requests[0][2]["table_name"] == "t"


def test_an_api_file_others_could_write_is_not_used(store, home, caplog):
    """The API file names where table names are sent: one in a directory another user
    can write is ignored (logged), as the store's trust rule says."""
    secrets_dir = home / ".allye_secrets"
    secrets_dir.mkdir()
    (secrets_dir / "allye_canvas_api.json").write_text(json.dumps({"base_url": "http://127.0.0.1:9"}))
    secrets_dir.chmod(0o777)
    with caplog.at_level(logging.WARNING, logger="allye_data_connector"):
        assert canvas.resolve_api_url() is None
    assert "writable by" in caplog.text and "not notifying" in caplog.text
    secrets_dir.chmod(0o755)
    assert canvas.resolve_api_url() == "http://127.0.0.1:9"


def test_no_canvas_is_silent_and_never_fails_the_send(store, home, monkeypatch, caplog):
    with caplog.at_level(logging.DEBUG, logger="allye_data_connector"):
        assert adc.send_dataframe(DF, "a", secret_dir=store) == "a"
    assert "no Allye canvas API configured" in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    # Configured but nobody listening: a debug line, the send succeeds.
    c = Canvas()
    url = c.url
    c.close()
    monkeypatch.setenv("ALLYE_CANVAS_API_URL", url)
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="allye_data_connector"):
        assert adc.send_dataframe(DF, "b", secret_dir=store) == "b"
    assert "not reachable" in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert adc.get_dataframe("b", secret_dir=store)["x"].tolist() == [1.0, 2.0]


@pytest.mark.parametrize(
    "reply,status,expect",
    [({"ok": False, "error": "receiver_busy"}, 200, "receiver_busy"), (b"<html>", 200, "invalid_response"), ({"ok": False}, 500, "request_failed")],
)
def test_refusals_and_garbage_are_reported_not_raised(store, home, monkeypatch, reply, status, expect):
    c = Canvas(reply=reply, status=status)
    try:
        monkeypatch.setenv("ALLYE_CANVAS_API_URL", c.url)
        out = canvas.notify_receiver("t")
        assert adc.send_dataframe(DF, "t", secret_dir=store) == "t"
    finally:
        c.close()
    assert out["ok"] is False and expect in str(out.get("error"))


def test_slow_canvas_times_out_about_the_timeout(store, home, monkeypatch):
    c = Canvas(delay=3.0)
    try:
        monkeypatch.setenv("ALLYE_CANVAS_API_URL", c.url)
        t0 = time.monotonic()
        adc.send_dataframe(DF, "slow", secret_dir=store, notify_timeout_sec=0.3)
        assert time.monotonic() - t0 < 2.5
    finally:
        c.close()
    assert len(c.requests) == 1
