"""Serving a store over Apache Arrow Flight (``adc serve`` / :func:`serve`).

One Flight server per store (see docs/PROTOCOL.md, "remote"):

- ``ListFlights``: the live tables, one ``FlightInfo`` each;
- ``GetFlightInfo(descriptor)``: schema, rows and bytes of the requested slice, one
  endpoint whose ticket pins the current version id, ``app_metadata`` with the version;
- ``DoGet(ticket)``: the pinned version's record batches, sliced from the mapped payload
  (no copy on the server) into messages of at most :data:`MAX_MESSAGE_BYTES`;
- ``DoPut``: only when the server was started with ``allow_put``;
- actions ``versions`` (the current version of many tables in one round trip) and
  ``stats`` (calls and bytes by method; not counted itself).

Serving never counts as a consuming read (``record_read=False``). Auth: a bearer token
read from (or created in) ``<store>/remote/token`` (mode 0600), compared in constant
time, or mutual TLS, or none (``no_auth``, a trusted network; off loopback only with
``insecure``).

The server trusts no client (docs/PROTOCOL.md 10.1, "The Flight server"): every
request is decoded and checked by :mod:`._wire` (size, keys, types, the network name
rule), and every failure reaches the client through :mod:`._refusals`: one line, the
right status, a request id that the log line about it carries too.
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import secrets
import signal
import threading
from pathlib import Path
from typing import Any, Callable, Iterator, Optional, Sequence

import pyarrow as pa
import pyarrow.flight as flight

from .. import _core
from .._args import PathLike, store_arg, store_dir
from ..errors import (AllyeError, ArrowDataError, InvalidArgumentError, StorageFullError, StoreFullError,
                      TableNotFoundError)
from ..frames import Selection, index_fields, slice_rows
from . import _refusals, _startup, _wire
from ._layout import layout
from ._refusals import InvalidRequest, NotFound, StreamFailed, Unsupported, guarded, quote

logger = logging.getLogger(__name__)

#: Largest record batch message DoGet sends (a gRPC message must stay under 2 GiB; smaller
#: messages keep the client's memory bounded and the stream interleaved).
MAX_MESSAGE_BYTES: int = _core.DEFAULT_MAX_MESSAGE_BYTES
#: Seconds a shutdown waits for calls in progress.
SHUTDOWN_GRACE_SEC = 5.0
#: The port ``adc serve`` listens on when none is given.
DEFAULT_PORT: int = _core.DEFAULT_REMOTE_PORT
#: Where the bearer token lives inside the store.
TOKEN_FILE = os.path.join(_core.REMOTE_DIR, "token")


def token_path(secret_dir: Optional[PathLike] = None) -> Path:
    """The bearer token file of a store."""
    return Path(store_dir(secret_dir)) / TOKEN_FILE


def ensure_token(secret_dir: Optional[PathLike] = None) -> str:
    """The store's bearer token, created (random, mode 0600) on first use."""
    path = token_path(secret_dir)
    # The store and its remote/ are made private (or checked) by the core's trust rule
    # before the token in them is trusted.
    _core.ensure_store_dir(_core.REMOTE_DIR, secret_dir=store_arg(secret_dir))
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    token = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(token + "\n")
    return token


# ---- what a request serves ---------------------------------------------------------------


def _time_values(table: pa.Table, time_column: Optional[str]) -> Optional[pa.ChunkedArray]:
    name = time_column or next(iter(index_fields(table)), None)
    if name is None or name not in table.column_names:
        return None
    return table.column(name)


def select(table: pa.Table, req: dict[str, Any]) -> pa.Table:
    """The part of a stored table a request asks for: the selection, then (``after``) only
    the rows whose time is strictly later (a tail sync)."""
    after = req.get("after")
    if after is not None:
        sel_after = Selection(start=after, time_column=req.get("time_column"))
        table = sel_after.apply(table)  # t >= after, by binary search
        times = _time_values(table, req.get("time_column"))
        if times is not None and table.num_rows:
            import pyarrow.compute as pc

            # Sorted, so the rows equal to `after` lead; they are in the cache already.
            head = times.slice(0, min(table.num_rows, 1 << 16))
            bound = pa.scalar(sel_after.start, type=pa.timestamp("ns", getattr(head.type, "tz", None))).cast(head.type)
            equal = pc.sum(pc.equal(head, bound)).as_py() or 0
            table = slice_rows(table, equal)
    sel = _wire.selection_of(req)
    return table if sel == _EVERYTHING else sel.apply(table)


_EVERYTHING = Selection()


def chunked(table: pa.Table, max_bytes: int = MAX_MESSAGE_BYTES) -> Iterator[pa.RecordBatch]:
    """The table's batches, each sliced (no copy) into pieces of at most about
    ``max_bytes``."""
    for batch in table.to_batches():
        n = batch.num_rows
        size = batch.nbytes
        if n == 0 or size <= max_bytes:
            yield batch
            continue
        step = max(1, int(n * max_bytes / size))
        for off in range(0, n, step):
            yield batch.slice(off, step)


# ---- the server --------------------------------------------------------------------------


class _Stats:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.calls: dict[str, int] = {}
        self.bytes_sent = 0
        self.rows_sent = 0
        self.bytes_received = 0

    def call(self, method: str) -> None:
        with self.lock:
            self.calls[method] = self.calls.get(method, 0) + 1

    def sent(self, batch: pa.RecordBatch) -> None:
        with self.lock:
            self.bytes_sent += batch.nbytes
            self.rows_sent += batch.num_rows

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {
                "calls": dict(self.calls),
                "total_calls": sum(self.calls.values()),
                "bytes_sent": self.bytes_sent,
                "rows_sent": self.rows_sent,
                "bytes_received": self.bytes_received,
            }


def _secret_bytes(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    return str(value).encode("utf-8", "surrogatepass")


class _TokenMiddlewareFactory(flight.ServerMiddlewareFactory):  # type: ignore[misc]
    """Refuses (``UNAUTHENTICATED``) every call without the bearer token, comparing each
    ``authorization`` value with it in constant time (``hmac.compare_digest``)."""

    def __init__(self, token: str) -> None:
        super().__init__()
        self._expected = _secret_bytes(_wire.bearer(token))

    def start_call(self, info: Any, headers: dict[str, list[Any]]) -> None:
        try:
            got = headers.get(_wire.AUTH_HEADER) or []
            if any(hmac.compare_digest(_secret_bytes(v), self._expected) for v in got[:8]):
                return None
            refusal = flight.FlightUnauthenticatedError(
                f"{'a wrong' if got else 'no'} bearer token: pass the server's token (its <store>/remote/token) "
                "as token= or $ALLYE_REMOTE_TOKEN")
        except Exception as exc:  # a fault of ours: INTERNAL, never a traceback
            refusal = exc
        raise _refusals.refused(refusal, _refusals.request_id(), str(getattr(info, "method", "call")))


class StoreFlightServer(flight.FlightServerBase):  # type: ignore[misc]
    """A Flight server for one store (use :func:`serve` or ``adc serve``)."""

    def __init__(
        self,
        location: str,
        *,
        secret_dir: Optional[str] = None,
        allow_put: bool = False,
        token: Optional[str] = None,
        tls_certificates: Optional[Sequence[tuple[bytes, bytes]]] = None,
        verify_client: bool = False,
        root_certificates: Optional[bytes] = None,
        max_message_bytes: int = MAX_MESSAGE_BYTES,
        advertise: Optional[str] = None,
    ) -> None:
        _refusals.install_format_hook()
        middleware = {"auth": _TokenMiddlewareFactory(token)} if token else None
        kwargs: dict[str, Any] = {}
        if tls_certificates:
            kwargs.update(tls_certificates=list(tls_certificates), verify_client=verify_client,
                          root_certificates=root_certificates)
        super().__init__(location, middleware=middleware, **kwargs)
        self.secret_dir = secret_dir
        self.allow_put = allow_put
        self.max_message_bytes = max_message_bytes
        self.stats = _Stats()
        scheme = "grpc+tls" if tls_certificates else "grpc+tcp"
        host = location.split("://", 1)[-1].rsplit(":", 1)[0]
        self.location = advertise or f"{scheme}://{host}:{self.port}"
        #: ``(table, source_id) -> locations`` holding that version (the registry's
        #: replicas, set by :func:`serve`): listed in each FlightInfo's endpoint.
        self.replicas: Optional[Callable[[str, str], list[str]]] = None

    # -- helpers --
    def _live(self, name: str, producer: Optional[str]) -> tuple[_core.Version, pa.Table]:
        try:
            ev, data = _core.get_live(name, secret_dir=self.secret_dir, producer=producer, record_read=False)
        except TableNotFoundError as exc:  # also expired and removed tables
            raise NotFound(f"{_wire.NO_TABLE} {quote(name)} on this server", detail=str(exc)) from None
        except InvalidArgumentError as exc:  # the producer: the name was checked already
            raise InvalidRequest(str(exc)) from None
        return ev, pa.table(data)

    @staticmethod
    def _select(table: pa.Table, req: dict[str, Any]) -> pa.Table:
        try:
            return select(table, req)
        except InvalidArgumentError as exc:  # a column, a time or a range the table cannot give
            raise InvalidRequest(str(exc)) from None

    def _replicas(self, name: str, source_id: str) -> list[str]:
        if self.replicas is None:
            return []
        try:
            return self.replicas(name, source_id)
        except Exception as exc:  # the registry is advisory: this server still serves
            logger.warning("could not look up the replicas of %r: %s", name, exc)
            return []

    def _info(self, req: dict[str, Any], descriptor: flight.FlightDescriptor) -> flight.FlightInfo:
        ev, table = self._live(req["table"], req.get("producer"))
        part = self._select(table, req)
        version = _wire.version_record(ev)
        ticket = _wire.ticket(req, version)
        locations = [self.location] + [loc for loc in self._replicas(ev["table_name"], version["source_id"])
                                       if loc != self.location]
        expiry = None
        if version.get("expires_at"):
            # The version stops being served then: a client may retry DoGet until it.
            import pandas as pd

            expiry = pa.scalar(pd.Timestamp(version["expires_at"]).tz_convert("UTC"), type=pa.timestamp("ns", "UTC"))
        endpoint = flight.FlightEndpoint(ticket, locations, expiration_time=expiry,
                                         app_metadata=json.dumps(version).encode())
        # The nulls of each column let a client lay the table out before it arrives
        # (docs/PROTOCOL.md "remote": a one-copy receive into its store).
        planned = {**version, **layout(part)}
        return flight.FlightInfo(part.schema, descriptor, [endpoint], part.num_rows, part.nbytes,
                                 app_metadata=json.dumps(planned).encode())

    def _served(self) -> list[_core.Version]:
        """The current versions of the tables whose names may cross the network."""
        out = []
        for ev in _core.list_tables(secret_dir=self.secret_dir):
            try:
                _core.check_remote_table_name(ev["table_name"])
            except InvalidArgumentError:
                logger.debug("not serving %r: its name may not cross the network", ev["table_name"])
                continue
            out.append(ev)
        return out

    # -- Flight methods --
    @guarded
    def list_flights(self, context: Any, criteria: bytes) -> Iterator[flight.FlightInfo]:
        self.stats.call("list_flights")
        if criteria:
            raise InvalidRequest("this server lists every table: send ListFlights without criteria")
        for ev in self._served():
            try:
                yield self._info({"table": ev["table_name"], "producer": ev.get("producer")},
                                 flight.FlightDescriptor.for_path(ev["table_name"]))
            except (NotFound, AllyeError) as exc:  # collected meanwhile: leave it out
                logger.debug("list_flights skips %s: %s", ev["table_name"], exc)

    @guarded
    def get_flight_info(self, context: Any, descriptor: flight.FlightDescriptor) -> flight.FlightInfo:
        self.stats.call("get_flight_info")
        return self._info(_wire.request_from_descriptor(descriptor), descriptor)

    @guarded
    def get_schema(self, context: Any, descriptor: flight.FlightDescriptor) -> flight.SchemaResult:
        self.stats.call("get_schema")
        return flight.SchemaResult(self._info(_wire.request_from_descriptor(descriptor), descriptor).schema)

    @guarded
    def do_get(self, context: Any, ticket: flight.Ticket) -> flight.FlightDataStream:
        self.stats.call("do_get")
        req, name, pinned = _wire.request_of_ticket(ticket.ticket)
        ev, table = self._live(name, req.get("producer"))
        if ev["id"] != pinned and _wire.source_id(ev) != req.get("source_id", pinned):
            # The pinned version was superseded (and may be collected): the client re-plans.
            raise NotFound(f"version {quote(pinned)} of {quote(name)} is no longer current ({ev['id']} is): "
                           f"{_wire.REPLAN}")
        part = self._select(table, req)
        stats, limit = self.stats, self.max_message_bytes

        def batches() -> Iterator[pa.RecordBatch]:
            try:
                for b in chunked(part, limit):
                    stats.sent(b)
                    yield b
            except Exception as exc:  # after data went out a status can only be UNKNOWN
                rid = _refusals.request_id()
                logger.error("request %s: do_get of %r failed mid-stream", rid, name, exc_info=exc)
                raise StreamFailed(f"the server failed while streaming {quote(name)} (request {rid}); "
                                   "its log has the detail") from None
            # A long-running server hands back what a big transfer's buffers took.
            pa.default_memory_pool().release_unused()

        # A RecordBatchStream (not a GeneratorStream) writes dictionary batches first.
        return flight.RecordBatchStream(pa.RecordBatchReader.from_batches(part.schema, batches()))

    @guarded
    def do_put(self, context: Any, descriptor: flight.FlightDescriptor, reader: Any, writer: Any) -> None:
        self.stats.call("do_put")
        if not self.allow_put:
            raise flight.FlightUnauthorizedError(
                "this server does not accept pushed tables: start it with --allow-put (allow_put=True)")
        req = _wire.put_request(descriptor)
        try:
            table = reader.read_all()
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
            raise InvalidRequest("the pushed data is not an Arrow stream this server can read",
                                 detail=str(exc)) from None
        with self.stats.lock:
            self.stats.bytes_received += table.nbytes
        rows, cols = table.num_rows, table.num_columns - len(index_fields(table))
        try:
            ev = _core.send(
                table, secret_dir=self.secret_dir, table_name=req["table"],
                metadata={"shm_unlink_on_read": False, "adc": {"pushed": True}},
                shape=(rows, cols), schema_sha256=req.get("schema_sha256"),
            )
        except (InvalidArgumentError, ArrowDataError) as exc:
            raise InvalidRequest(f"the pushed table cannot be stored: {exc}") from None
        except (StorageFullError, StoreFullError) as exc:
            raise flight.FlightUnavailableError("this server's store is full; push again once it has room") from exc
        logger.info("received %r (%d rows, %d bytes)", req["table"], rows, table.nbytes)
        writer.write(pa.py_buffer(json.dumps(_wire.version_record(ev)).encode()))

    @guarded
    def do_exchange(self, context: Any, descriptor: flight.FlightDescriptor, reader: Any, writer: Any) -> None:
        raise Unsupported("this server does not offer DoExchange: pull with GetFlightInfo and DoGet, push with DoPut")

    @guarded
    def list_actions(self, context: Any) -> list[tuple[str, str]]:
        return [
            (_wire.ACTION_VERSIONS, "body: JSON list of table names ([] for all); result: JSON {name: version or null}"),
            (_wire.ACTION_STATS, "result: JSON call and byte counters (not counted itself)"),
        ]

    @guarded
    def do_action(self, context: Any, action: flight.Action) -> Iterator[bytes]:
        kind = action.type
        if kind == _wire.ACTION_STATS:
            return iter([json.dumps(self.stats.snapshot()).encode()])
        if kind == _wire.ACTION_VERSIONS:
            self.stats.call(f"do_action:{kind}")
            names = _wire.names_of(action.body.to_pybytes() if action.body is not None else b"")
            current = {ev["table_name"]: _wire.version_record(ev) for ev in self._served()}
            out = current if not names else {n: current.get(n) for n in names}
            return iter([json.dumps(out).encode()])
        self.stats.call("do_action:unknown")
        raise InvalidRequest(f"unknown action {quote(kind)}; this server's actions are "
                             f"{_wire.ACTION_VERSIONS} and {_wire.ACTION_STATS}")


def make_server(
    *,
    secret_dir: Optional[PathLike] = None,
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    allow_put: bool = False,
    no_auth: bool = False,
    insecure: bool = False,
    tls_cert: Optional[str] = None,
    tls_key: Optional[str] = None,
    tls_client_ca: Optional[str] = None,
    advertise: Optional[str] = None,
    max_message_bytes: Optional[int] = None,
) -> StoreFlightServer:
    """A started server (listening once this returns; ``port=0`` picks a free port).

    Refuses to start (:class:`InvalidArgumentError`) off loopback without TLS, or without
    authentication (``no_auth`` and no ``tls_client_ca``), unless ``insecure``; and with a
    TLS file gRPC could not use (the message names it and what is wrong). A port in use
    is ``OSError(EADDRINUSE)`` naming who holds it when this user can see it."""
    store = store_arg(secret_dir)
    if (tls_cert is None) != (tls_key is None):
        raise InvalidArgumentError("pass both tls_cert and tls_key (--tls-cert/--tls-key, PEM files), or neither")
    tls = tls_cert is not None
    if tls_client_ca is not None and not tls:
        raise InvalidArgumentError("tls_client_ca (--tls-client-ca) is mutual TLS: pass tls_cert and tls_key "
                                   "(--tls-cert/--tls-key) too")
    if not _startup.is_loopback(host) and not insecure:
        if not tls:
            raise InvalidArgumentError(
                f"serving on {host} without TLS would send tables in clear text: pass tls_cert/tls_key "
                "(--tls-cert/--tls-key), or insecure=True (--insecure) on a trusted network")
        if no_auth and tls_client_ca is None:
            raise InvalidArgumentError(
                f"serving on {host} without authentication would let anyone who reaches the port read every table: "
                "drop no_auth (--no-auth) to require the bearer token, or require client certificates with "
                "tls_client_ca (--tls-client-ca), or pass insecure=True (--insecure) on a trusted network")
    _startup.check_tls_files(tls_cert, tls_key, tls_client_ca)
    _startup.check_port(host, port)
    token = None if (no_auth or tls_client_ca) else ensure_token(store)
    certs = None
    if tls:
        certs = [(Path(tls_cert).read_bytes(), Path(tls_key).read_bytes())]  # type: ignore[arg-type]
    scheme = "grpc+tls" if tls else "grpc+tcp"
    bind = f"[{host}]" if ":" in host and not host.startswith("[") else host
    try:
        server = StoreFlightServer(
            f"{scheme}://{bind}:{port}", secret_dir=store, allow_put=allow_put, token=token,
            tls_certificates=certs, verify_client=tls_client_ca is not None,
            root_certificates=Path(tls_client_ca).read_bytes() if tls_client_ca else None,
            advertise=advertise, max_message_bytes=max_message_bytes or MAX_MESSAGE_BYTES,
        )
    except pa.ArrowException as exc:  # "Server did not start properly": gRPC logged why
        raise _startup.start_failure(host, port, exc) from exc
    logger.info("serving %s at %s (%s)", _core.resolve_store(store), server.location,
                "mutual TLS" if tls_client_ca else "no auth" if no_auth else "bearer token")
    return server


def serve(
    *,
    secret_dir: Optional[PathLike] = None,
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    allow_put: bool = False,
    no_auth: bool = False,
    insecure: bool = False,
    tls_cert: Optional[str] = None,
    tls_key: Optional[str] = None,
    tls_client_ca: Optional[str] = None,
    registry: Optional[str] = None,
    advertise: Optional[str] = None,
    max_message_bytes: Optional[int] = None,
    ready: Optional[Any] = None,
) -> None:
    """Serves a store until SIGTERM or SIGINT (then shuts down cleanly). ``ready(location)``
    is called once the server listens. With ``registry="zk://host:port[/chroot]"`` the
    node registers itself and its tables' versions in ZooKeeper while it runs.

    Args:
        secret_dir: The store directory (else ``$ALLYE_SECRET_DIR``, else ``~/.allye_secrets``).
        host: The address to listen on (loopback by default).
        port: The port (0: a free one).
        allow_put: Accept pushes (``DoPut``).
        no_auth: No bearer token (a trusted network only).
        insecure: Allow a non-loopback address without TLS.
        tls_cert: The server's certificate (PEM file).
        tls_key: Its key.
        tls_client_ca: Require client certificates signed by this CA (mutual TLS).
        registry: Register in this ZooKeeper (``zk://...``; the ``remote`` extra).
        advertise: The location clients should use (default: the bound address).
        max_message_bytes: The largest gRPC message.
        ready: Called with the location once the server listens.
    """
    secret_dir = store_arg(secret_dir)
    if registry is not None:
        from .zookeeper import parse_url, require_kazoo

        parse_url(registry)
        require_kazoo()  # before the port is taken: a missing extra is one clear error
    server = make_server(secret_dir=secret_dir, host=host, port=port, allow_put=allow_put, no_auth=no_auth,
                         insecure=insecure, tls_cert=tls_cert, tls_key=tls_key, tls_client_ca=tls_client_ca,
                         advertise=advertise, max_message_bytes=max_message_bytes)
    stop = threading.Event()
    previous = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            previous[sig] = signal.signal(sig, lambda *_: stop.set())
    node = None
    try:
        if registry is not None:
            from .zookeeper import Registry

            node = Registry(registry).publish_node(server.location, secret_dir=secret_dir)
            server.replicas = node.registry.locations
        if ready is not None:
            ready(server.location)
        while not stop.wait(0.2):
            pass
    finally:
        logger.info("shutting down %s", server.location)
        if node is not None:
            node.close()
        # shutdown() waits for the calls in progress; a client that never ends its call
        # must not keep the process alive.
        closer = threading.Thread(target=server.shutdown, daemon=True)
        closer.start()
        closer.join(SHUTDOWN_GRACE_SEC)
        if closer.is_alive():
            logger.warning("calls still open after %ss; exiting without waiting for them", SHUTDOWN_GRACE_SEC)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
