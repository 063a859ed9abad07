"""Across a real (virtual) network: the server runs in its own network namespace, joined
to this one by a veth pair whose bandwidth ``tc tbf`` shapes (this kernel has no netem);
taking the link down makes a partition. Needs root and ``ip netns``: where ``ip netns add``
fails the suite is skipped, saying so."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import warnings

import numpy as np
import pandas as pd
import pytest

import allye_data_connector as adc
from allye_data_connector.errors import RemoteUnavailableError

from .conftest import Server


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check)


def _netns_unavailable() -> str:
    if shutil.which("ip") is None or shutil.which("tc") is None:
        return "ip/tc (iproute2) not installed"
    probe = f"adcprobe{os.getpid()}"
    r = _ip("netns", "add", probe, check=False)
    if r.returncode != 0:
        return f"`ip netns add` fails here ({r.stderr.strip() or r.returncode}): needs root and network namespaces"
    _ip("netns", "del", probe, check=False)
    return ""


_REASON = _netns_unavailable()
pytestmark = pytest.mark.skipif(bool(_REASON), reason=f"network-namespace suite skipped: {_REASON}")

RATE = "200mbit"  # a LAN's bandwidth, shaped by tc tbf on the server's side


@pytest.fixture
def lan():
    """(namespace, server address, host-side veth): a namespace behind a shaped veth pair."""
    k = os.getpid() % 200 + 20
    ns, host_if, ns_if = f"adcns{os.getpid()}", f"adch{os.getpid() % 100000}", f"adcn{os.getpid() % 100000}"
    host_ip, ns_ip = f"10.231.{k}.1", f"10.231.{k}.2"
    _ip("netns", "add", ns)
    try:
        _ip("link", "add", host_if, "type", "veth", "peer", "name", ns_if)
        _ip("link", "set", ns_if, "netns", ns)
        _ip("addr", "add", f"{host_ip}/24", "dev", host_if)
        _ip("link", "set", host_if, "up")
        _ip("-n", ns, "addr", "add", f"{ns_ip}/24", "dev", ns_if)
        _ip("-n", ns, "link", "set", ns_if, "up")
        _ip("-n", ns, "link", "set", "lo", "up")
        subprocess.run(["ip", "netns", "exec", ns, "tc", "qdisc", "add", "dev", ns_if, "root", "tbf", "rate", RATE,
                        "burst", "256kb", "latency", "100ms"], check=True, capture_output=True)
        yield ns, ns_ip, host_if, ns_if
    finally:
        _ip("link", "del", host_if, check=False)
        _ip("netns", "del", ns, check=False)


@pytest.fixture
def lan_server(lan, tmp_path):
    ns, ns_ip, host_if, ns_if = lan
    servers = []

    def start(name="srv", *args):
        s = Server(tmp_path / name, "--host", ns_ip, "--no-auth", "--insecure", *args, prefix=["ip", "netns", "exec", ns])
        servers.append(s)
        return s

    def shape(rate: str) -> None:
        subprocess.run(["ip", "netns", "exec", ns, "tc", "qdisc", "change", "dev", ns_if, "root", "tbf", "rate", rate,
                        "burst", "256kb", "latency", "100ms"], check=True, capture_output=True)

    start.shape = shape  # type: ignore[attr-defined]
    yield start, host_if
    for s in servers:
        s.stop()
        from tests.helpers import unlink_segments

        unlink_segments(s.store)


def _frame(n: int) -> pd.DataFrame:
    return pd.DataFrame({"a": np.arange(n, dtype="int64"), "b": np.arange(n, dtype="float64")},
                        index=pd.date_range("2024-01-01", periods=n, freq="s"))


def test_pull_over_a_shaped_lan(lan_server, client_store):
    start, _ = lan_server
    s = start()
    df = _frame(500_000)  # 12 MB: about half a second at 200 Mbit/s
    adc.send_dataframe(df, "t", secret_dir=s.store, shm_unlink_on_read=False)
    with adc.connect([s.location], secret_dir=client_store, check_ttl_sec=0) as r:
        t0 = time.monotonic()
        got = r.get_dataframe("t")
        took = time.monotonic() - t0
        assert got.equals(df)
        assert took > 0.3, f"the shaped link should take time; took {took:.2f}s"
        assert r.stats(s.location)["calls"]["do_get"] == 1
        r.get_dataframe("t")
        assert r.stats(s.location)["calls"]["do_get"] == 1


def test_partition_times_out_and_serves_stale_only_when_asked(lan_server, client_store):
    start, host_if = lan_server
    s = start()
    df = _frame(1000)
    adc.send_dataframe(df, "t", secret_dir=s.store, shm_unlink_on_read=False)
    with adc.connect([s.location], secret_dir=client_store, check_ttl_sec=0, timeout_sec=3) as r:
        r.get_dataframe("t")
        _ip("link", "set", host_if, "down")
        try:
            t0 = time.monotonic()
            with pytest.raises(RemoteUnavailableError):
                r.get_dataframe("t")
            assert time.monotonic() - t0 < 8, "the deadline, not a hang"
            with pytest.warns(RuntimeWarning, match="cached version"):
                assert r.get_dataframe("t", stale_ok=True).equals(df)
        finally:
            _ip("link", "set", host_if, "up")
