"""TLS and mutual TLS: certificates made here with the ``openssl`` command; a plaintext
client, or a client without a certificate the server's CA signed, is refused."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import allye_data_connector as adc
from allye_data_connector.errors import RemoteUnavailableError

if shutil.which("openssl") is None:
    pytest.skip("the openssl command is needed to make test certificates", allow_module_level=True)


def _run(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("pki")
    _run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=adc-test-ca",
         "-keyout", str(d / "ca.key"), "-out", str(d / "ca.pem"))
    ext = d / "san.ext"
    ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    for name in ("server", "client"):
        _run("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}", "-keyout", str(d / f"{name}.key"),
             "-out", str(d / f"{name}.csr"))
        _run("x509", "-req", "-in", str(d / f"{name}.csr"), "-CA", str(d / "ca.pem"), "-CAkey", str(d / "ca.key"),
             "-CAcreateserial", "-days", "2", "-extfile", str(ext), "-out", str(d / f"{name}.pem"))
    return d


def _df() -> pd.DataFrame:
    return pd.DataFrame({"v": np.arange(100.0)})


def test_tls_with_token_and_plaintext_refused(start_server, pki, client_store):
    s = start_server("tls", "--tls-cert", str(pki / "server.pem"), "--tls-key", str(pki / "server.key"))
    assert s.location.startswith("grpc+tls://")
    adc.send_dataframe(_df(), "t", secret_dir=s.store, shm_unlink_on_read=False)
    ca = (pki / "ca.pem").read_bytes()
    with adc.connect([s.location], secret_dir=client_store, token=s.token, tls_root_certs=ca) as r:
        pd.testing.assert_frame_equal(r.get_dataframe("t"), _df())
    plain = s.location.replace("grpc+tls://", "grpc+tcp://")
    with adc.connect([plain], secret_dir=client_store, token=s.token, timeout_sec=3, check_ttl_sec=0) as r:
        with pytest.raises(RemoteUnavailableError):
            r.versions(["t"])


def test_mutual_tls_needs_a_client_certificate(start_server, pki, client_store):
    s = start_server("mtls", "--tls-cert", str(pki / "server.pem"), "--tls-key", str(pki / "server.key"),
                     "--tls-client-ca", str(pki / "ca.pem"))
    adc.send_dataframe(_df(), "t", secret_dir=s.store, shm_unlink_on_read=False)
    ca = (pki / "ca.pem").read_bytes()
    assert not (s.store / "remote" / "token").exists(), "mutual TLS replaces the token"
    with adc.connect([s.location], secret_dir=client_store, tls_root_certs=ca, timeout_sec=3) as r:
        with pytest.raises(RemoteUnavailableError):
            r.get_dataframe("t")
    with adc.connect([s.location], secret_dir=client_store, tls_root_certs=ca, cert_chain=(pki / "client.pem").read_bytes(),
                     private_key=(pki / "client.key").read_bytes()) as r:
        pd.testing.assert_frame_equal(r.get_dataframe("t"), _df())


def test_refused_handshakes_are_unavailable_and_the_server_goes_on(start_server, pki, client_store):
    """A TLS server refuses a plaintext client, and a mutual-TLS server a client without a
    certificate its CA signed, in the TLS handshake: before any call exists, so gRPC can
    only report UNAVAILABLE (pyarrow: FlightUnavailableError); there is no status for the
    server to choose (docs/PROTOCOL.md 8.16). Our client's message says what to pass;
    the server's log stays free of gRPC's handshake lines, and it serves on."""
    import pyarrow.flight as flight

    s = start_server("mtls", "--tls-cert", str(pki / "server.pem"), "--tls-key", str(pki / "server.key"),
                     "--tls-client-ca", str(pki / "ca.pem"))
    adc.send_dataframe(_df(), "t", secret_dir=s.store, shm_unlink_on_read=False)
    ca = (pki / "ca.pem").read_bytes()
    options = flight.FlightCallOptions(timeout=5)
    for client in (flight.FlightClient(s.location.replace("grpc+tls", "grpc+tcp")),
                   flight.FlightClient(s.location, tls_root_certs=ca)):
        with pytest.raises(flight.FlightUnavailableError):
            client.get_flight_info(flight.FlightDescriptor.for_path("t"), options)
        client.close()
    with adc.connect([s.location], secret_dir=client_store, tls_root_certs=ca, timeout_sec=3) as r:
        with pytest.raises(RemoteUnavailableError, match="pass cert_chain and private_key"):
            r.versions(["t"])
    plain = s.location.replace("grpc+tls://", "grpc+tcp://")
    with adc.connect([plain], secret_dir=client_store, timeout_sec=3) as r:
        with pytest.raises(RemoteUnavailableError, match="a TLS server closes plaintext connections"):
            r.versions(["t"])
    good = flight.FlightClient(s.location, tls_root_certs=ca, cert_chain=(pki / "client.pem").read_bytes(),
                               private_key=(pki / "client.key").read_bytes())
    info = good.get_flight_info(flight.FlightDescriptor.for_path("t"), options)
    assert good.do_get(info.endpoints[0].ticket, options).read_all().num_rows == len(_df())
    good.close()
    log = s.log()
    assert "Handshake failed" not in log and "I0000" not in log, log


def test_a_wrong_token_over_tls_is_unauthenticated(start_server, pki):
    import pyarrow.flight as flight

    s = start_server("tls", "--tls-cert", str(pki / "server.pem"), "--tls-key", str(pki / "server.key"))
    client = flight.FlightClient(s.location, tls_root_certs=(pki / "ca.pem").read_bytes())
    options = flight.FlightCallOptions(timeout=5, headers=[(b"authorization", b"Bearer wrong")])
    with pytest.raises(flight.FlightUnauthenticatedError, match=r"a wrong bearer token.*\(request [0-9a-f]{8}\)"):
        list(client.list_flights(options=options))
    client.close()
