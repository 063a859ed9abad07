"""``timeout_sec`` bounds silence, not a transfer: a real server whose DoGet is slow
(``tests/remote/slow_server.py``: the real ``adc serve`` with a wait between messages)
is pulled completely although the pull takes several times ``timeout_sec``, by both
receive paths (in place for a big table, read whole for a small one); a server that goes
silent (a DoGet that stops sending, one that never starts, a process stopped with
SIGSTOP) fails the pull within a few ``timeout_sec``, with ``timed_out``, leaving
nothing in the client's store; ``adc pull --timeout`` exits 5 for it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import allye_data_connector as adc
from allye_data_connector.errors import RemoteUnavailableError

TIMEOUT = 1.0


def _slow(start_server, mode: str, delay: float = 0.0, message_mb: int = 1):
    return start_server("slow", "--no-auth", "--max-message-bytes", str(message_mb << 20),
                        module=["tests.remote.slow_server", mode, str(delay), "--"])


def _frame(mb: int) -> pd.DataFrame:
    n = mb * (1 << 20) // 16
    return pd.DataFrame({"a": np.arange(n, dtype="int64"), "b": np.arange(n, dtype="float64")})


def _payloads(store: Path) -> list[str]:
    d = store / "payloads"
    return sorted(p.name for p in d.iterdir()) if d.exists() else []


@pytest.mark.parametrize("mb", [8, 72], ids=["read whole", "received in place"])
def test_a_slow_but_live_transfer_longer_than_the_timeout_completes(start_server, client_store, mb):
    s = _slow(start_server, "throttle", delay=TIMEOUT / 3, message_mb=mb // 8)
    df = _frame(mb)
    adc.send_dataframe(df, "t", secret_dir=s.store, shm_unlink_on_read=False)
    with adc.connect([s.location], secret_dir=client_store, timeout_sec=TIMEOUT, check_ttl_sec=0) as r:
        t0 = time.monotonic()
        got = r.get_dataframe("t")
        took = time.monotonic() - t0
    pd.testing.assert_frame_equal(got, df)
    # 8 messages, each after TIMEOUT/3: the whole pull takes over twice the timeout.
    assert took > 1.5 * TIMEOUT, f"the transfer took {took:.2f}s: not longer than the timeout, proves nothing"


@pytest.mark.parametrize("mode", ["hang-mid", "hang-open"])
@pytest.mark.parametrize("mb", [8, 72], ids=["read whole", "received in place"])
def test_a_silent_server_fails_the_pull_after_the_timeout(start_server, client_store, mode, mb):
    s = _slow(start_server, mode)
    adc.send_dataframe(_frame(mb), "t", secret_dir=s.store, shm_unlink_on_read=False)
    with adc.connect([s.location], secret_dir=client_store, timeout_sec=TIMEOUT, check_ttl_sec=0) as r:
        t0 = time.monotonic()
        with pytest.raises(RemoteUnavailableError, match="sent nothing for 1s") as info:
            r.get_dataframe("t")
        took = time.monotonic() - t0
    assert info.value.timed_out is True
    assert took < 8 * TIMEOUT, f"{took:.2f}s: the silence was not noticed"
    assert not adc.list_tables(secret_dir=client_store), "a broken pull stores nothing"
    assert _payloads(client_store) == [], "and leaves no payload behind"
    # The server itself goes on answering.
    with adc.connect([s.location], secret_dir=client_store, timeout_sec=5) as r:
        assert r.versions(["t"])["t"] is not None
    s.kill()  # its DoGet sleeps for an hour: a SIGTERM would wait for it


def test_a_server_stopped_mid_stream_fails_the_pull(start_server, client_store):
    s = _slow(start_server, "throttle", delay=TIMEOUT / 4)
    adc.send_dataframe(_frame(16), "t", secret_dir=s.store, shm_unlink_on_read=False)
    stopper = threading.Timer(1.5 * TIMEOUT, lambda: os.kill(s.proc.pid, signal.SIGSTOP))
    try:
        with adc.connect([s.location], secret_dir=client_store, timeout_sec=TIMEOUT, check_ttl_sec=0) as r:
            stopper.start()
            t0 = time.monotonic()
            with pytest.raises(RemoteUnavailableError) as info:
                r.get_dataframe("t")
            took = time.monotonic() - t0
    finally:
        stopper.cancel()
        os.kill(s.proc.pid, signal.SIGCONT)
    assert took < 1.5 * TIMEOUT + 8, f"{took:.2f}s"
    assert not adc.list_tables(secret_dir=client_store) and _payloads(client_store) == []
    assert "sent nothing" in str(info.value) or "keepalive" in str(info.value).lower(), str(info.value)


def test_adc_pull_of_a_silent_server_exits_5(start_server, client_store):
    s = _slow(start_server, "hang-mid")
    adc.send_dataframe(_frame(8), "t", secret_dir=s.store, shm_unlink_on_read=False)
    out = subprocess.run([sys.executable, "-m", "allye_data_connector", "-d", str(client_store), "pull", s.location, "t",
                          "--timeout", "1"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 5, out.stderr
    assert out.stderr.count("\n") == 1 and "sent nothing for 1s" in out.stderr, out.stderr
    assert out.stderr.count(s.location) == 1, out.stderr
    s.kill()
