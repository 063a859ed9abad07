"""``adc`` commands across machines: ``serve`` (this store over Arrow Flight), ``pull``,
``push``, and ``ls --remote``.

Their exit codes are the table's (``_app``): a value the command, the local store or the
peer finds unusable (``--start notadate``, ``--columns nope``, a bad certificate, a
non-loopback ``--host`` without ``--insecure``) is 2; a peer that stayed silent for
``timeout_sec`` is 5; a table no peer has is 3; anything else that failed (a port in use,
a refused token, a peer that is down) is 1. Each failure is one line."""

from __future__ import annotations

import contextlib
import json
import os
import sys
import logging
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

import click

from .. import _core, errors
from ._app import EXIT_ERROR, EXIT_TIMEOUT, EXIT_USAGE, Ctx, common_options, main
from ._output import emit_json, human_bytes, one_line, print_table


def _failed(message: str, code: int) -> click.ClickException:
    """A failure printed as one line (``error: ...``) with its exit code."""
    exc = click.ClickException(one_line(message))
    exc.exit_code = code  # type: ignore[misc]  # click reads it per instance
    return exc


@contextlib.contextmanager
def _exit_codes() -> Iterator[None]:
    """The remote failures that are not ``_app``'s exit 1: a bad value (2), a silent peer
    (5), a server that cannot start (1, without a traceback hint: the message says what
    to do)."""
    try:
        yield
    except errors.InvalidArgumentError as exc:
        raise _failed(str(exc), EXIT_USAGE) from exc
    except errors.RemoteUnavailableError as exc:
        if getattr(exc, "timed_out", False):
            raise _failed(str(exc), EXIT_TIMEOUT) from exc
        raise
    except OSError as exc:
        if isinstance(exc, errors.AllyeError):
            raise
        raise _failed(exc.strerror or str(exc), EXIT_ERROR) from exc


def _token_option(f: Callable[..., Any]) -> Callable[..., Any]:
    f = click.option("--token-file", type=click.Path(dir_okay=False, exists=True),
                     help="File holding the peer's bearer token (its <store>/remote/token).")(f)
    return click.option("--token", envvar="ALLYE_REMOTE_TOKEN", help="The peer's bearer token (default: $ALLYE_REMOTE_TOKEN).")(f)


def _timeout_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--timeout", "timeout_sec", type=click.FloatRange(min=0, min_open=True),
                        default=_core.DEFAULT_REMOTE_TIMEOUT_SEC, show_default=True, metavar="SEC",
                        help="Longest silence of the peer: no answer, or no data in a transfer, for this long "
                             "fails (exit 5); a long transfer that keeps sending never does.")(f)


def _remote(obj: Ctx, peer: str, token: Optional[str], token_file: Optional[str], **kw: Any) -> Any:
    from ..remote import connect

    if token_file is not None:
        token = Path(token_file).read_text().strip()
    return connect([peer], secret_dir=obj.secret_dir, token=token, **kw)


def ls_remote(obj: Ctx, peer: str, token: Optional[str], token_file: Optional[str]) -> None:
    with _exit_codes(), _remote(obj, peer, token, token_file) as r:
        rows = r.list_tables(peer)
    if obj.json:
        emit_json(rows)
        return
    if not rows:
        click.echo(f"no tables at {peer}", err=True)
        return
    print_table(("table", "rows", "cols", "size", "created", "id"),
                 [[x["table_name"], f"{x['rows']:,}", str((x.get("shape") or [0, 0])[1]), human_bytes(x["bytes"]),
                   x.get("created_at") or "", x["id"]] for x in rows], right=("rows", "cols", "size"))


@main.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (loopback by default).")
@click.option("--port", default=_core.DEFAULT_REMOTE_PORT, show_default=True, type=click.IntRange(0, 65535), help="Port (0: any free one).")
@click.option("--allow-put", is_flag=True, help="Accept tables pushed by clients (DoPut; adc push).")
@click.option("--no-auth", is_flag=True, help="No bearer token: any client that reaches the port may read (trusted network).")
@click.option("--insecure", is_flag=True, help="Allow a non-loopback address without TLS.")
@click.option("--tls-cert", type=click.Path(dir_okay=False, exists=True), help="PEM certificate chain of the server.")
@click.option("--tls-key", type=click.Path(dir_okay=False, exists=True), help="PEM private key of the server.")
@click.option("--tls-client-ca", type=click.Path(dir_okay=False, exists=True),
              help="PEM CA whose client certificates are accepted (mutual TLS, replaces the token).")
@click.option("--registry", metavar="zk://HOST:PORT", help="Register this node and its tables in ZooKeeper.")
@click.option("--advertise", metavar="URI", help="The location clients should use (default: the bound address).")
@click.option("--max-message-bytes", envvar="ALLYE_FLIGHT_MAX_MESSAGE_BYTES", type=click.IntRange(min=1024), default=None,
              help="Largest record batch message of a DoGet (default 16 MiB).")
@common_options
@click.pass_obj
def serve_cmd(obj: Ctx, host: str, port: int, allow_put: bool, no_auth: bool, insecure: bool, tls_cert: Optional[str],
              tls_key: Optional[str], tls_client_ca: Optional[str], registry: Optional[str], advertise: Optional[str],
              max_message_bytes: Optional[int]) -> None:
    """Serve this store over Arrow Flight until SIGTERM or Ctrl-C. The bearer token is in
    <store>/remote/token (created on first use, mode 0600). Off loopback it needs TLS and
    authentication (the token or --tls-client-ca), or --insecure. gRPC's own log is kept
    to errors (GRPC_VERBOSITY=INFO shows refused TLS handshakes)."""
    # gRPC reads it once, when the server starts: its INFO lines (a client's failed TLS
    # handshake) are not this server's log.
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
    from ..remote.server import serve, token_path

    # A server's log (stderr): each call it refuses or fails, with the request id its
    # client was told. `adc`'s group configured warnings only; a server says more.
    logging.basicConfig(level=logging.DEBUG if obj.debug else logging.INFO, force=True,
                        format="%(asctime)s %(levelname)s %(message)s")

    def ready(location: str) -> None:
        auth = "mutual TLS" if tls_client_ca else "no auth" if no_auth else f"token in {token_path(obj.secret_dir)}"
        if obj.json:  # one line: scripts read it to learn the port
            click.echo(json.dumps({"location": location, "auth": auth}))
        else:
            click.echo(f"serving {location} ({auth})")
        sys.stdout.flush()

    with _exit_codes():
        serve(secret_dir=obj.secret_dir, host=host, port=port, allow_put=allow_put, no_auth=no_auth,
              insecure=insecure, tls_cert=tls_cert, tls_key=tls_key, tls_client_ca=tls_client_ca, registry=registry,
              advertise=advertise, max_message_bytes=max_message_bytes, ready=ready)


@main.command("pull")
@click.argument("peer")
@click.argument("name")
@click.option("--columns", help="Comma-separated columns (a partial pull).")
@click.option("--start", help="First time of the index (or --time-column), inclusive.")
@click.option("--end", help="End time, exclusive.")
@click.option("--time-column", help="Time column for --start/--end instead of the index.")
@click.option("--as", "local_name", help="Store the pulled table under this name (default: NAME).")
@_timeout_option
@_token_option
@common_options
@click.pass_obj
def pull_cmd(obj: Ctx, peer: str, name: str, columns: Optional[str], start: Optional[str], end: Optional[str],
             time_column: Optional[str], local_name: Optional[str], timeout_sec: float, token: Optional[str],
             token_file: Optional[str]) -> None:
    """Pull a table from PEER into this store (only if it changed); with --columns,
    --start, --end only that part moves and is stored."""
    cols = None if columns is None else [c.strip() for c in columns.split(",") if c.strip()]
    target = local_name or name
    with _exit_codes():
        try:
            before: Optional[str] = _core.latest(target, secret_dir=obj.secret_dir)["id"]
        except (errors.TableNotFoundError, errors.InvalidArgumentError):
            before = None
        with _remote(obj, peer, token, token_file, check_ttl_sec=0, timeout_sec=timeout_sec) as r:
            ev = r.pull(name, columns=cols, start=start, end=end, time_column=time_column, local_name=local_name)
    adc = (ev.get("metadata") or {}).get("adc") or {}
    payload = ev.get("payload") or {}
    pulled = ev["id"] != before
    out = {"table_name": ev["table_name"], "id": ev["id"], "remote_id": adc.get("remote_id"),
           "shape": payload.get("shape"), "bytes": payload.get("data_size"), "pulled": pulled}
    if obj.json:
        emit_json(out)
    elif pulled:
        click.echo(f"{out['table_name']}: version {out['id']} (remote {out['remote_id']}), shape {out['shape']}")
    else:
        click.echo(f"{out['table_name']}: already current (version {out['id']}, remote {out['remote_id']}); "
                   "nothing moved")


@main.command("push")
@click.argument("peer")
@click.argument("name")
@_timeout_option
@_token_option
@common_options
@click.pass_obj
def push_cmd(obj: Ctx, peer: str, name: str, timeout_sec: float, token: Optional[str], token_file: Optional[str]) -> None:
    """Send this store's current version of NAME to PEER (which must run adc serve --allow-put)."""
    with _exit_codes(), _remote(obj, peer, token, token_file, timeout_sec=timeout_sec) as r:
        out = r.push(name, peer)
    if obj.json:
        emit_json(out)
    else:
        click.echo(f"{name}: pushed to {peer} as version {out.get('id')}")
