"""The ZooKeeper registry against a real ZooKeeper (Debian's package, which .ci/run
installs), started by this module on a free port with its data in a temporary directory
and stopped at the end. Nodes register themselves; clients learn of versions by watches."""

from __future__ import annotations

import json
import os
import shutil
import time

import numpy as np
import pandas as pd
import pytest

import allye_data_connector as adc
from allye_data_connector.remote.zookeeper import NODES, TABLES

from tests.remote.conftest import ZK_JAR, _free_port, zookeeper_server

if shutil.which("java") is None or not ZK_JAR.exists():
    if os.environ.get("ADC_REQUIRE_ZOOKEEPER"):
        raise RuntimeError(f"ZooKeeper is required here (ADC_REQUIRE_ZOOKEEPER) but java or {ZK_JAR} is missing")
    pytest.skip("no ZooKeeper: apt-get install zookeeper (Debian) to run the registry suite", allow_module_level=True)

kazoo = pytest.importorskip("kazoo", reason="pip install kazoo to run the registry suite")


@pytest.fixture(scope="module")
def zookeeper(tmp_path_factory):
    with zookeeper_server(tmp_path_factory.mktemp("zk")) as url:
        yield url


@pytest.fixture
def zk_url(zookeeper, request):
    """A chroot of its own per test, so tests do not see each other's nodes."""
    return f"{zookeeper}/t{abs(hash(request.node.name)) % 10**8}"


def _series(n: int, start: str = "2024-01-01") -> pd.DataFrame:
    return pd.DataFrame({"v": np.arange(n, dtype="float64")}, index=pd.date_range(start, periods=n, freq="s"))


def _wait(cond, timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return False


def test_nodes_register_and_versions_are_pushed(start_server, zk_url, client_store):
    s = start_server("a", "--no-auth", "--registry", zk_url)
    df = _series(100)
    adc.send_dataframe(df, "t", secret_dir=s.store, shm_unlink_on_read=False)
    with adc.connect(registry=zk_url, secret_dir=client_store, check_ttl_sec=0) as r:
        assert _wait(lambda: s.location in r.peers)
        assert _wait(lambda: r.registry.version("t") is not None)
        pd.testing.assert_frame_equal(r.get_dataframe("t"), df)
        st = r.stats(s.location)
        assert st["calls"]["do_get"] == 1
        # With the registry, the version is pushed: a load of an unchanged table calls no peer.
        for _ in range(3):
            pd.testing.assert_frame_equal(r.get_dataframe("t"), df)
        assert r.stats(s.location)["total_calls"] == st["total_calls"]
        # A new version reaches the client by the watch and is pulled once.
        df2 = _series(150)
        adc.send_dataframe(df2, "t", secret_dir=s.store, shm_unlink_on_read=False)
        new_id = adc._core.latest("t", secret_dir=str(s.store))["id"]
        assert _wait(lambda: (r.registry.version("t") or {}).get("id") == new_id)
        pd.testing.assert_frame_equal(r.get_dataframe("t"), df2)
        pd.testing.assert_frame_equal(r.get_dataframe("t"), df2)
        assert r.stats(s.location)["calls"]["do_get"] == 2
        # A node that stops is gone from the registry (its ephemeral node).
        s.stop()
        assert _wait(lambda: s.location not in r.peers)


def _original_and_replica(start_server, zk_url):
    """Nodes a and b on the registry; table t sent at a and pulled into b's store, which
    b's server then publishes as a replica."""
    a = start_server("a", "--no-auth", "--registry", zk_url)
    b = start_server("b", "--no-auth", "--registry", zk_url)
    df = _series(1000)
    adc.send_dataframe(df, "t", secret_dir=a.store, shm_unlink_on_read=False)
    with adc.connect(registry=zk_url, secret_dir=b.store, check_ttl_sec=0) as rb:
        assert _wait(lambda: rb.registry.version("t") is not None)
        rb.get_dataframe("t")
        assert _wait(lambda: set(rb.registry.replicas("t")) == {a.location, b.location})
        assert rb.registry.replicas("t")[0] == a.location, "the original first"
    return a, b, df


def test_replicas_are_recorded_and_serve_when_the_original_is_killed(start_server, zk_url, client_store):
    a, b, df = _original_and_replica(start_server, zk_url)
    # The record in ZooKeeper names the original's version.
    from kazoo.client import KazooClient

    hosts, chroot = zk_url[len("zk://"):].split("/", 1)
    zk = KazooClient(hosts=f"{hosts}/{chroot}")
    zk.start(timeout=5)
    try:
        record = json.loads(zk.get(f"{TABLES}/t")[0])
        assert record["id"] == adc._core.latest("t", secret_dir=str(a.store))["id"] and record["location"] == a.location
        assert len(zk.get_children(NODES)) == 2
    finally:
        zk.stop()
        zk.close()
    a.kill()
    with adc.connect(registry=zk_url, secret_dir=client_store, timeout_sec=5) as r:
        assert _wait(lambda: r.registry.version("t") is not None)
        pd.testing.assert_frame_equal(r.get_dataframe("t"), df)
        assert r.stats(b.location)["calls"]["do_get"] == 1


def test_flight_info_lists_the_replicas_and_any_of_them_redeems_the_ticket(start_server, zk_url):
    import pyarrow as pa
    import pyarrow.flight as flight

    a, b, df = _original_and_replica(start_server, zk_url)
    # A plain Flight client: the endpoint of a's FlightInfo names a first, then b.
    descriptor = flight.FlightDescriptor.for_command(json.dumps({"table": "t"}))
    info = flight.connect(a.location).get_flight_info(descriptor)
    (endpoint,) = info.endpoints
    assert [loc.uri.decode() for loc in endpoint.locations] == [a.location, b.location]
    # The ticket pins the original's version; b holds a copy of it and serves it.
    table = flight.connect(b.location).do_get(endpoint.ticket).read_all()
    pd.testing.assert_frame_equal(table.to_pandas(), df, check_freq=False)
    # Once a has a newer version, b's copy is no longer the ticket's version's peer:
    # a ticket of the new version is refused at b (the client re-plans).
    adc.send_dataframe(_series(10), "t", secret_dir=a.store, shm_unlink_on_read=False)
    info = flight.connect(a.location).get_flight_info(descriptor)
    with pytest.raises(pa.ArrowKeyError, match="re-plan"):  # NOT_FOUND
        flight.connect(b.location).do_get(info.endpoints[0].ticket).read_all()


def test_registry_down_is_remote_unavailable(tmp_path):
    port = _free_port()
    t0 = time.monotonic()
    with pytest.raises(adc.errors.RemoteUnavailableError, match="ZooKeeper"):
        adc.connect(registry=f"zk://127.0.0.1:{port}", secret_dir=tmp_path / "c", timeout_sec=2)
    assert time.monotonic() - t0 < 10


def test_pullframe_with_a_registry_host(start_server, zk_url, tmp_path):
    from allye_data_connector.compat.pullframe import pullframe
    from tests.helpers import unlink_segments

    s = start_server("a", "--no-auth", "--registry", zk_url)
    df = _series(10)
    with pullframe([], s.store) as origin:
        origin.save("frame", df)
    try:
        with pullframe([zk_url], tmp_path / "node") as pf:
            assert _wait(lambda: pf.remote.registry.version("frame") is not None)
            pd.testing.assert_frame_equal(pf.load("frame", df.index[2], df.index[5]), df.iloc[2:6])
            assert pf.remote.stats(s.location)["calls"]["do_get"] == 1
    finally:
        unlink_segments(tmp_path / "node")
