"""The remote commands: ``adc ls --remote``, ``adc pull`` (whole and partial), ``adc push``;
and the server's answer to a ticket whose version was superseded (the client re-plans)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.flight as flight
import pytest

import allye_data_connector as adc


def _adc(*args: str, env=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "allye_data_connector", *args], capture_output=True, text=True,
                          timeout=120, env={**os.environ, **(env or {})})


def _df(n=1000):
    return pd.DataFrame({"a": np.arange(n), "b": np.arange(n) * 0.5}, index=pd.date_range("2024-01-01", periods=n, freq="h"))


def test_ls_pull_push_commands(start_server, client_store):
    s = start_server("srv", "--allow-put")
    adc.send_dataframe(_df(), "t", secret_dir=s.store, shm_unlink_on_read=False)
    env = {"ALLYE_REMOTE_TOKEN": s.token}
    out = _adc("--json", "ls", "--remote", s.location, env=env)
    assert out.returncode == 0, out.stderr
    assert [t["table_name"] for t in json.loads(out.stdout)] == ["t"]
    out = _adc("--json", "-d", str(client_store), "pull", s.location, "t", env=env)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["remote_id"] == adc._core.latest("t", secret_dir=str(s.store))["id"]
    pd.testing.assert_frame_equal(adc.get_dataframe("t", secret_dir=client_store), _df())
    out = _adc("-d", str(client_store), "pull", s.location, "t", "--columns", "b", "--start", "2024-01-02",
               "--end", "2024-01-03", "--as", "t_day", env=env)
    assert out.returncode == 0, out.stderr
    pd.testing.assert_frame_equal(adc.get_dataframe("t_day", secret_dir=client_store),
                                  _df().loc["2024-01-02":"2024-01-02 23:00", ["b"]], check_freq=False)
    adc.send_dataframe(_df(10), "mine", secret_dir=client_store, shm_unlink_on_read=False)
    out = _adc("-d", str(client_store), "push", s.location, "mine", "--token-file", str(s.store / "remote" / "token"))
    assert out.returncode == 0, out.stderr
    pd.testing.assert_frame_equal(adc.get_dataframe("mine", secret_dir=s.store), _df(10))
    bad = _adc("ls", "--remote", s.location, env={"ALLYE_REMOTE_TOKEN": "wrong"})
    assert bad.returncode != 0 and "refused" in bad.stderr
    good = _adc("ls", "--remote", s.location, "--token-file", str(s.store / "remote" / "token"))
    assert good.returncode == 0 and "t" in good.stdout.split(), good.stderr


def test_peers_from_the_environment(start_server, client_store, monkeypatch):
    s = start_server("srv", "--no-auth")
    adc.send_dataframe(_df(5), "t", secret_dir=s.store, shm_unlink_on_read=False)
    monkeypatch.setenv("ALLYE_PEERS", s.location)
    with adc.connect(secret_dir=client_store) as r:
        pd.testing.assert_frame_equal(r.get_dataframe("t"), _df(5))
    monkeypatch.delenv("ALLYE_PEERS")
    with pytest.raises(adc.errors.InvalidArgumentError, match="no peers"):
        adc.connect(secret_dir=client_store)
    # The settings file of the store names them too (adc config --set peers=...).
    out = _adc("-d", str(client_store), "config", "--set", f"peers={s.location}")
    assert out.returncode == 0, out.stderr
    with adc.connect(secret_dir=client_store) as r:
        assert r.peers == [s.location]


def test_superseded_ticket_asks_to_replan(start_server):
    s = start_server("srv", "--no-auth")
    adc.send_dataframe(_df(5), "t", secret_dir=s.store, shm_unlink_on_read=False)
    client = flight.FlightClient(s.location)
    info = client.get_flight_info(flight.FlightDescriptor.for_path("t"))
    adc.send_dataframe(_df(6), "t", secret_dir=s.store, shm_unlink_on_read=False)
    with pytest.raises(pa.ArrowKeyError, match="re-plan"):  # NOT_FOUND
        client.do_get(info.endpoints[0].ticket).read_all()
    info = client.get_flight_info(flight.FlightDescriptor.for_path("t"))
    assert client.do_get(info.endpoints[0].ticket).read_all().num_rows == 6
    client.close()


def test_public_names_and_get_arrow_through_the_cache(start_server, client_store):
    from allye_data_connector import remote
    from allye_data_connector.remote import server

    assert adc.serve is server.serve and adc.connect is remote.connect and adc.Remote is remote.Remote
    s = start_server("srv", "--no-auth")
    adc.send_dataframe(_df(50), "t", secret_dir=s.store, shm_unlink_on_read=False)
    with adc.connect([s.location], secret_dir=client_store) as r:
        table = r.get_arrow("t", selection=adc.Selection(columns=["a"]))
        assert "a" in table.column_names and "b" not in table.column_names and table.num_rows == 50
        assert r.stats(s.location)["calls"]["do_get"] == 1


def test_flight_info_carries_the_version_and_its_expiry(start_server):
    s = start_server("srv", "--no-auth")
    adc.send_dataframe(_df(5), "t", secret_dir=s.store, shm_unlink_on_read=False, ttl_sec=3600)
    client = flight.FlightClient(s.location)
    info = client.get_flight_info(flight.FlightDescriptor.for_command(json.dumps({"table": "t", "columns": ["a"]})))
    version = json.loads(info.app_metadata)
    assert version["id"] == adc._core.latest("t", secret_dir=str(s.store))["id"] == version["source_id"]
    assert info.total_records == 5 and [f.name for f in info.schema] == ["__index_level_0__", "a"]
    assert info.endpoints[0].expiration_time is not None
    assert json.loads(info.endpoints[0].ticket.ticket)["id"] == version["id"]
    client.close()
