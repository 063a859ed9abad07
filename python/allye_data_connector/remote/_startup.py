"""What a Flight server checks before it starts, so that a start that cannot work fails
with one line saying what to change (``adc serve``), rather than with gRPC's log lines and
pyarrow's "Server did not start properly": the TLS files (each readable, PEM, a key that
matches the certificate), and the port (free; else who holds it, when this user may
know)."""

from __future__ import annotations

import errno
import ipaddress
import os
import socket
import ssl
from pathlib import Path
from typing import Optional

from ..errors import InvalidArgumentError


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback address (or ``localhost``)."""
    bare = host.strip("[]")
    if bare == "localhost":
        return True
    try:
        return ipaddress.ip_address(bare).is_loopback
    except ValueError:
        return False


# ---- TLS files ---------------------------------------------------------------------------


def _read(path: str, option: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise InvalidArgumentError(f"{option} {path}: cannot read it ({exc.strerror or exc})") from None


def _ssl_reason(exc: ssl.SSLError) -> str:
    reason = (exc.reason or "").upper()
    if "KEY_VALUES_MISMATCH" in reason:
        return "the private key does not belong to the certificate"
    if "NO_START_LINE" in reason or "PEM" in reason:
        return "it is not PEM data OpenSSL can read"
    return f"OpenSSL cannot use it ({exc.reason or exc})"


def check_tls_files(cert: Optional[str], key: Optional[str], client_ca: Optional[str]) -> None:
    """Raises :class:`InvalidArgumentError` naming the file and what is wrong with it
    (unreadable, no PEM certificate or key, an encrypted key, a key of another
    certificate, a CA file without a certificate); returns when gRPC can use them."""
    if cert is None or key is None:
        return
    cert_pem, key_pem = _read(cert, "tls_cert (--tls-cert)"), _read(key, "tls_key (--tls-key)")
    if b"-----BEGIN CERTIFICATE-----" not in cert_pem:
        raise InvalidArgumentError(
            f"tls_cert (--tls-cert) {cert}: holds no PEM certificate (a '-----BEGIN CERTIFICATE-----' block); "
            "pass the server's certificate chain in PEM")
    if b"PRIVATE KEY-----" not in key_pem:
        raise InvalidArgumentError(
            f"tls_key (--tls-key) {key}: holds no PEM private key (a '-----BEGIN PRIVATE KEY-----' block); "
            "pass the key of the server's certificate in PEM")
    if b"ENCRYPTED" in key_pem:
        raise InvalidArgumentError(
            f"tls_key (--tls-key) {key}: the key is encrypted; gRPC needs it unencrypted "
            f"(openssl pkey -in {key} -out key.pem), readable only by this user")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(cert, key)
    except ssl.SSLError as exc:
        raise InvalidArgumentError(f"tls_cert/tls_key (--tls-cert {cert} --tls-key {key}): {_ssl_reason(exc)}") from None
    if client_ca is not None:
        ca_pem = _read(client_ca, "tls_client_ca (--tls-client-ca)")
        if b"-----BEGIN CERTIFICATE-----" not in ca_pem:
            raise InvalidArgumentError(
                f"tls_client_ca (--tls-client-ca) {client_ca}: holds no PEM certificate; pass the CA certificate "
                "that signs the clients' certificates")
        try:
            context.load_verify_locations(cafile=client_ca)
        except ssl.SSLError as exc:
            raise InvalidArgumentError(f"tls_client_ca (--tls-client-ca) {client_ca}: {_ssl_reason(exc)}") from None


# ---- the port ----------------------------------------------------------------------------


def _listening_inodes(port: int) -> set[str]:
    """Inodes of the sockets listening on ``port`` (Linux: ``/proc/net/tcp``, ``tcp6``)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 9 and fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(fields[9])
    return inodes


def port_holder(port: int) -> Optional[str]:
    """``pid N (command)`` of a process listening on ``port``, when this user can see it
    (its own processes; root: all); else None."""
    wanted = {f"socket:[{i}]" for i in _listening_inodes(port)}
    if not wanted:
        return None
    for pid in (p for p in os.listdir("/proc") if p.isdigit()):
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") in wanted:
                    cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
                    return f"pid {pid} ({cmd[:80] or '?'})"
            except OSError:
                continue
    return None


def _in_use(host: str, port: int) -> OSError:
    holder = port_holder(port)
    who = f" by {holder}" if holder else ""
    return OSError(errno.EADDRINUSE,
                   f"port {port} on {host} is in use{who}: pick another port (--port), or 0 for any free one")


def check_port(host: str, port: int) -> None:
    """Raises ``OSError(EADDRINUSE)`` saying who holds the port when ``host:port`` cannot
    be bound now (another server listens there); other bind errors are left to the
    server, which reports them through :func:`start_failure`."""
    if port == 0:
        return
    bare = host.strip("[]")
    try:
        infos = socket.getaddrinfo(bare, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise InvalidArgumentError(f"host {host!r}: not an address this machine can listen on ({exc.strerror})") from None
    for family, kind, proto, _, addr in infos:
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gRPC binds
            try:
                probe.bind(addr)
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    raise _in_use(host, port) from None
                return


def start_failure(host: str, port: int, exc: Exception) -> OSError:
    """The error of a server that did not start although :func:`check_port` passed (the
    port was taken meanwhile, or the address is not this machine's)."""
    try:
        check_port(host, port)
    except OSError as taken:
        return taken
    return OSError(f"the Flight server could not listen on {host}:{port} ({exc}); check --host and --port")
