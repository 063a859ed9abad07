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
