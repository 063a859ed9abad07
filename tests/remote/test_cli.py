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


def _one_line_error(out: subprocess.CompletedProcess) -> str:
    lines = out.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), out.stderr
    for noise in ("E0000", "ArrowException", "Traceback", "did not start properly"):
        assert noise not in out.stderr, out.stderr
    return lines[0]


def test_serve_on_a_port_in_use_says_which_port_and_who_holds_it(start_server, tmp_path):
    s = start_server("first", "--no-auth")
    port = s.location.rsplit(":", 1)[1]
    out = _adc("-d", str(tmp_path / "second"), "serve", "--no-auth", "--port", port)
    assert out.returncode == 1
    line = _one_line_error(out)
    assert f"port {port} on 127.0.0.1 is in use by pid {s.proc.pid}" in line and "--port" in line, line


def test_serve_with_bad_tls_files_names_the_file_and_the_fault(tmp_path):
    import shutil

    if shutil.which("openssl") is None:
        pytest.skip("the openssl command makes the test certificates")
    for name in ("a", "b"):
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", f"/CN={name}",
                        "-keyout", str(tmp_path / f"{name}.key"), "-out", str(tmp_path / f"{name}.pem")],
                       check=True, capture_output=True)
    garbage = tmp_path / "garbage.pem"
    garbage.write_bytes(b"\x00\x01 not a certificate\n")
    cases = [
        (["--tls-cert", str(garbage), "--tls-key", str(tmp_path / "a.key")], f"{garbage}: holds no PEM certificate"),
        (["--tls-cert", str(tmp_path / "a.pem"), "--tls-key", str(tmp_path / "a.pem")], "holds no PEM private key"),
        (["--tls-cert", str(tmp_path / "a.pem"), "--tls-key", str(tmp_path / "b.key")],
         "the private key does not belong to the certificate"),
        (["--tls-cert", str(tmp_path / "a.pem"), "--tls-key", str(tmp_path / "a.key"), "--tls-client-ca", str(garbage)],
         f"--tls-client-ca) {garbage}: holds no PEM certificate"),
        (["--tls-client-ca", str(tmp_path / "a.pem")], "mutual TLS: pass tls_cert and tls_key"),
        (["--host", "0.0.0.0", "--no-auth", "--tls-cert", str(tmp_path / "a.pem"), "--tls-key", str(tmp_path / "a.key")],
         "without authentication"),
    ]
    for args, expected in cases:
        out = _adc("-d", str(tmp_path / "s"), "serve", "--port", "0", *args)
        assert out.returncode == 2, (args, out.stderr)
        assert expected in _one_line_error(out), (args, out.stderr)


def test_push_refusals_are_printed_once_and_blame_the_right_cause(start_server, client_store):
    closed = start_server("closed")
    opened = start_server("opened", "--allow-put")
    adc.send_dataframe(_df(10), "mine", secret_dir=client_store, shm_unlink_on_read=False)
    adc.send_dataframe(_df(10), "../up", secret_dir=client_store, shm_unlink_on_read=False)
    out = _adc("-d", str(client_store), "push", closed.location, "mine", env={"ALLYE_REMOTE_TOKEN": closed.token})
    line = _one_line_error(out)
    assert out.returncode == 1 and "--allow-put" in line and "token" not in line and "certificate" not in line, line
    assert line.count("does not accept pushed tables") == 1, line
    out = _adc("-d", str(client_store), "push", opened.location, "../up", env={"ALLYE_REMOTE_TOKEN": opened.token})
    line = _one_line_error(out)
    assert out.returncode == 2 and "reads as a path" in line and "token" not in line, line
    out = _adc("-d", str(client_store), "push", opened.location, "mine", env={"ALLYE_REMOTE_TOKEN": "wrong"})
    line = _one_line_error(out)
    assert out.returncode == 1 and "bearer token" in line and line.count("bearer token") == 1, line
    assert [t["table_name"] for t in adc.list_tables(secret_dir=opened.store)] == []


def test_a_repeated_pull_of_an_unchanged_table_says_it_is_current(start_server, client_store):
    s = start_server("srv", "--no-auth")
    adc.send_dataframe(_df(), "t", secret_dir=s.store, shm_unlink_on_read=False)
    first = _adc("-d", str(client_store), "pull", s.location, "t")
    again = _adc("-d", str(client_store), "pull", s.location, "t")
    assert first.returncode == again.returncode == 0, (first.stderr, again.stderr)
    assert "already current" not in first.stdout and "shape" in first.stdout
    assert "already current" in again.stdout and "nothing moved" in again.stdout, again.stdout
    as_json = json.loads(_adc("--json", "-d", str(client_store), "pull", s.location, "t").stdout)
    assert as_json["pulled"] is False
    adc.send_dataframe(_df(5), "t", secret_dir=s.store, shm_unlink_on_read=False)
    assert json.loads(_adc("--json", "-d", str(client_store), "pull", s.location, "t").stdout)["pulled"] is True


def test_pull_exit_codes(start_server, client_store):
    s = start_server("srv", "--no-auth")
    adc.send_dataframe(_df(), "t", secret_dir=s.store, shm_unlink_on_read=False)
    for args, code in ((["t", "--start", "notadate"], 2), (["t", "--columns", "nope"], 2), (["../t"], 2),
                       (["nope"], 3), (["t", "--timeout", "0"], 2)):
        out = _adc("-d", str(client_store), "pull", s.location, *args)
        assert out.returncode == code, (args, out.stderr)
        _one_line_error(out)
    down = _adc("-d", str(client_store), "pull", "127.0.0.1:1", "t", "--timeout", "2")
    assert down.returncode == 1, down.stderr
    _one_line_error(down)


_NO_KAZOO = "import sys; sys.modules['kazoo'] = None\n"


def test_the_registry_without_kazoo_names_the_extra(tmp_path):
    code = _NO_KAZOO + (
        "import allye_data_connector as adc\n"
        "from allye_data_connector.errors import MissingDependencyError\n"
        "try:\n"
        f"    adc.connect(registry='zk://127.0.0.1:1', secret_dir={str(tmp_path / 'c')!r})\n"
        "except MissingDependencyError as exc:\n"
        "    print(exc)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "pip install 'allye_data_connector[remote]'" in out.stdout, out.stderr
    code = _NO_KAZOO + "from allye_data_connector.cli import main\nmain(sys.argv[1:])\n"
    out = subprocess.run([sys.executable, "-c", code, "-d", str(tmp_path / "s"), "serve", "--port", "0",
                          "--registry", "zk://127.0.0.1:1"], capture_output=True, text=True, timeout=120)
    line = _one_line_error(out)
    assert out.returncode == 1 and "pip install 'allye_data_connector[remote]'" in line, out.stderr
    assert "ModuleNotFoundError" not in out.stderr
