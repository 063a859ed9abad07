"""Pulling tables from other machines' stores over Arrow Flight, with the local store as
the cache (``adc.connect(...)``, ``adc pull``).

A pulled version is written into the local store through the core send (crash-safe,
collected by gc, readable by the widgets and 0.1.2, zero-copy to load), its ready line's
``metadata.adc`` saying where it came from (``origin``, ``remote_table``, ``remote_id``,
``pulled_at``). A load then:

- within ``check_ttl_sec`` of the last check (or pull) makes no network call at all;
- else asks the peers for the table's current version (one ``versions`` action, which
  can name many tables) and makes no ``DoGet`` when it is the cached one;
- else pulls the new version once (``sync="tail"``: only the rows newer than the cache's
  last time, appended to it).

With a ZooKeeper registry (``registry="zk://..."``), versions are pushed to the client by
watches, so a load of an unchanged table makes no call to any peer.

When no peer answers within ``timeout_sec`` (gRPC keepalive is always on; a call that
gets no answer, or a stream that sends nothing, for ``timeout_sec`` fails, however long
a live transfer takes), a cached version is served with a warning if ``stale_ok=True``;
otherwise :class:`~..errors.RemoteUnavailableError` is raised (with ``timed_out`` true
when every peer was silent). A peer's refusal is never served around: a wrong token or
certificate is ``RemoteUnavailableError`` with ``refused`` true, a request the peer
finds invalid is :class:`~..errors.InvalidArgumentError`, each with the peer's one-line
reason and its request id.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import os
import time
import warnings
from collections.abc import Iterator, Mapping
from typing import Any, Iterable, Optional, Sequence, Union

import pyarrow as pa
import pyarrow.flight as flight

from .. import _core, frames, settings as _settings
from .._args import PathLike, store_arg
from ..errors import InvalidArgumentError, RemoteUnavailableError, TableNotFoundError
from ..frames import Selection, index_fields
from ..tables import api as tables
from . import _wire
from ._layout import laid_out_bytes, layout
from ._refusals import one_line
from ._silence import Silent, Stream
from ._wire import ADC_ORIGIN, ADC_PULLED_AT, ADC_REMOTE_ID, ADC_REMOTE_TABLE, DATA_BYTES_KEY, NULL_COUNTS_KEY

logger = logging.getLogger(__name__)

#: Seconds after a check (or pull) during which a load trusts the cache without asking.
DEFAULT_CHECK_TTL_SEC: float = _core.DEFAULT_CHECK_TTL_SEC
#: Longest silence of a remote call, seconds: no answer to a call, or no message of a
#: stream, for this long fails it (a long transfer that keeps sending never does).
DEFAULT_TIMEOUT_SEC: float = _core.DEFAULT_REMOTE_TIMEOUT_SEC
#: gRPC keepalive ping interval (and the time to wait for its answer), milliseconds: a
#: partition is noticed within about twice this.
DEFAULT_KEEPALIVE_MS: int = _core.DEFAULT_KEEPALIVE_MS
#: Tables larger than this (bytes) are not pulled whole for a partial load: only the
#: slice asked for moves (and is not cached).
DEFAULT_MAX_FULL_PULL_BYTES: int = _core.DEFAULT_MAX_FULL_PULL_BYTES
#: Environment variable naming peers (comma separated).
PEERS_ENV = "ALLYE_PEERS"
#: Environment variable holding the bearer token of the peers.
TOKEN_ENV = "ALLYE_REMOTE_TOKEN"

SYNC_MODES = ("full", "tail")


def _one_batch(table: pa.Table) -> pa.Table:
    """The received table as one record batch in fresh buffers: the one copy a pull makes
    before the core writes the payload. One batch, because a load converts a one-batch
    payload to NumPy without copying (several batches must be concatenated on every load);
    fresh buffers, because gRPC hands the batches over at any alignment and the core
    (arrow-rs) needs each buffer aligned for its type. The empty table added makes every
    column two chunks, so each one is concatenated (copied), dictionaries unified."""
    if table.num_columns == 0:
        return table  # no buffers; the row count is all there is
    return pa.concat_tables([table, table.schema.empty_table()]).combine_chunks()


_UNAVAILABLE = (
    flight.FlightUnavailableError,
    flight.FlightTimedOutError,
    flight.FlightInternalError,
    flight.FlightCancelledError,
    flight.FlightServerError,  # UNKNOWN: the server failed (mid-stream); another peer may serve
    pa.ArrowIOError,
)
#: A peer refused who we are (UNAUTHENTICATED) or what we may do (PERMISSION_DENIED).
_REFUSED = (flight.FlightUnauthenticatedError, flight.FlightUnauthorizedError)

_FLIGHT_PREFIX = "Flight returned "
_TRAILERS = (". Detail: ", ". gRPC client debug context: ", ". Client context: ")


def server_message(exc: BaseException) -> str:
    """The message of a Flight error as its server wrote it, one line: without the status
    words, the ``Detail:`` and the debug context that gRPC and pyarrow add."""
    text = str(exc)
    if text.startswith(_FLIGHT_PREFIX) and ", with message: " in text:
        text = text.split(", with message: ", 1)[1]
    for marker in _TRAILERS:
        cut = text.find(marker)
        if cut >= 0:
            text = text[:cut]
    return one_line(text)


def peer_location(peer: str, *, tls: bool = False) -> str:
    """A Flight URI for ``host:port`` or a URI (``grpc://``, ``grpc+tcp://``, ``grpc+tls://``)."""
    if not isinstance(peer, str) or not peer.strip():
        raise InvalidArgumentError(f"a peer is 'host:port' or a Flight URI, got {peer!r}")
    peer = peer.strip()
    if "://" in peer:
        scheme = peer.split("://", 1)[0]
        if scheme not in ("grpc", "grpc+tcp", "grpc+tls"):
            raise InvalidArgumentError(f"peer {peer!r}: the scheme must be grpc, grpc+tcp or grpc+tls")
        return peer
    if ":" not in peer:
        raise InvalidArgumentError(f"peer {peer!r} has no port: write it as host:port")
    return f"{'grpc+tls' if tls else 'grpc+tcp'}://{peer}"


def _peers_arg(peers: Union[None, str, Iterable[str]], secret_dir: Optional[str] = None) -> list[str]:
    if peers is None:  # $ALLYE_PEERS, else the store's settings file
        peers = _settings.shared_for(secret_dir).peers or ""
    if isinstance(peers, str):
        peers = [p for p in peers.split(",") if p.strip()]
    return list(peers)


def _current(cached: Optional[Mapping[str, Any]], version: dict[str, Any]) -> bool:
    """Whether the cached local version is (a copy of) the remote one."""
    if cached is None:
        return False
    return _wire.record_source(version) in (_adc(cached).get(ADC_REMOTE_ID), cached["id"])


def _adc(ev: Optional[Mapping[str, Any]]) -> dict[str, Any]:
    meta = (ev or {}).get("metadata") or {}
    adc = meta.get(_core.METADATA_KEY)
    return adc if isinstance(adc, dict) else {}


class Remote:
    """A client of peers' Flight servers with the local store as the cache (see the module
    docs). Made by :func:`connect`; a context manager (``close()`` drops connections)."""

    def __init__(
        self,
        peers: Union[None, str, Iterable[str]] = None,
        *,
        registry: Optional[str] = None,
        secret_dir: Optional[PathLike] = None,
        token: Optional[str] = None,
        tls_root_certs: Optional[bytes] = None,
        cert_chain: Optional[bytes] = None,
        private_key: Optional[bytes] = None,
        check_ttl_sec: float = DEFAULT_CHECK_TTL_SEC,
        timeout_sec: float = DEFAULT_TIMEOUT_SEC,
        keepalive_ms: int = DEFAULT_KEEPALIVE_MS,
        stale_ok: bool = False,
        max_full_pull_bytes: int = DEFAULT_MAX_FULL_PULL_BYTES,
    ) -> None:
        self.secret_dir = store_arg(secret_dir)
        self._tls = tls_root_certs is not None
        self._static_peers = [peer_location(p, tls=self._tls)
                              for p in _peers_arg(peers if registry is None else (peers or []), self.secret_dir)]
        self.registry = None
        if registry is not None:
            from .zookeeper import Registry

            self.registry = Registry(registry, timeout_sec=timeout_sec)
        if not self._static_peers and self.registry is None:
            raise InvalidArgumentError(
                f"no peers: pass peers=[...] or registry='zk://...', set ${PEERS_ENV}, or `adc config --set peers=host:port`"
            )
        if check_ttl_sec < 0 or timeout_sec <= 0:
            raise InvalidArgumentError("check_ttl_sec must be >= 0 and timeout_sec > 0")
        self.token = token if token is not None else os.environ.get(TOKEN_ENV)
        self._tls_args = {k: v for k, v in (("tls_root_certs", tls_root_certs), ("cert_chain", cert_chain),
                                            ("private_key", private_key)) if v is not None}
        self.check_ttl_sec = float(check_ttl_sec)
        self.timeout_sec = float(timeout_sec)
        self.keepalive_ms = int(keepalive_ms)
        self.stale_ok = bool(stale_ok)
        self.max_full_pull_bytes = int(max_full_pull_bytes)
        self._clients: dict[str, flight.FlightClient] = {}
        self._checked: dict[str, float] = {}

    # -- plumbing --
    def __enter__(self) -> "Remote":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        for c in self._clients.values():
            try:
                c.close()
            except Exception:  # closing a dead connection
                pass
        self._clients.clear()
        if self.registry is not None:
            self.registry.close()

    @property
    def peers(self) -> list[str]:
        """Peer locations: the static list, then the registry's live nodes."""
        found = list(self._static_peers)
        if self.registry is not None:
            found += [p for p in self.registry.nodes() if p not in found]
        return found

    def _client(self, location: str) -> flight.FlightClient:
        c = self._clients.get(location)
        if c is None:
            c = flight.FlightClient(
                location,
                generic_options=[
                    ("grpc.keepalive_time_ms", self.keepalive_ms),
                    ("grpc.keepalive_timeout_ms", self.keepalive_ms),
                    # Pings only during calls: an idle connection pinged every few
                    # seconds is closed by the server ("too_many_pings").
                    ("grpc.keepalive_permit_without_calls", 0),
                    ("grpc.http2.max_pings_without_data", 0),
                ],
                **self._tls_args,
            )
            self._clients[location] = c
        return c

    def _options(self, *, no_deadline: bool = False, deadline: Optional[float] = None) -> flight.FlightCallOptions:
        """Call options: the token, and the deadline of a unary call (``timeout_sec``,
        or ``deadline``); a stream's silence is bounded by :class:`._silence.Stream`
        instead (``no_deadline``)."""
        headers = [(_wire.AUTH_HEADER.encode(), _wire.bearer(self.token).encode())] if self.token else None
        timeout = None if no_deadline else (deadline or self.timeout_sec)
        return flight.FlightCallOptions(timeout=timeout, headers=headers)

    def _drop(self, location: str) -> None:
        c = self._clients.pop(location, None)
        if c is not None:
            try:
                c.close()
            except Exception:
                pass

    def _refused(self, location: str, exc: Exception) -> RemoteUnavailableError:
        """A peer's refusal of who we are or what we may do: never served around (a stale
        copy is not served in its place)."""
        err = RemoteUnavailableError(f"peer {location} refused the call: {server_message(exc)}")
        err.refused = True  # type: ignore[attr-defined]
        return err

    @staticmethod
    def _invalid(location: str, exc: Exception) -> InvalidArgumentError:
        return InvalidArgumentError(f"peer {location} refused the request: {server_message(exc)}")

    def _unavailable(self, location: str, exc: BaseException) -> str:
        """Why ``location`` could not serve, for an error message; with a hint when the
        connection was closed before any answer, as a TLS server does to a plaintext
        client and a mutual-TLS server to a client without a certificate it accepts."""
        if isinstance(exc, Silent):
            return f"{location}: sent nothing for {self.timeout_sec:g}s (timeout_sec)"
        text = f"{location}: {server_message(exc)}"
        if "Socket closed" in str(exc) or "handshake" in str(exc).lower():
            if not self._tls:
                text += " (a TLS server closes plaintext connections: name it grpc+tls://... and pass tls_root_certs)"
            elif "cert_chain" not in self._tls_args:
                text += (" (a server started with --tls-client-ca closes the connection of a client without a "
                         "certificate its CA signed: pass cert_chain and private_key)")
        return text

    def _no_peer(self, text: str, failures: list[BaseException]) -> RemoteUnavailableError:
        err = RemoteUnavailableError(text)
        err.timed_out = bool(failures) and all(  # type: ignore[attr-defined]
            isinstance(f, (Silent, flight.FlightTimedOutError)) for f in failures)
        return err

    @contextlib.contextmanager
    def _reading(self, location: str, name: str) -> Iterator[None]:
        """Reading a stream: silence, or a stream that broke, is RemoteUnavailableError."""
        try:
            yield
        except (Silent, *_UNAVAILABLE) as exc:
            self._drop(location)
            raise self._no_peer(f"the stream of {name!r} from {self._unavailable(location, exc)}", [exc]) from exc

    def _stream(self, client: flight.FlightClient, ticket: flight.Ticket) -> Stream:
        """A DoGet bounded by silence (``timeout_sec`` without a message), not by its length."""
        return Stream(client, ticket, self._options(no_deadline=True), self.timeout_sec)

    # -- calls --
    def _action(self, location: str, kind: str, body: bytes = b"") -> Any:
        try:
            results = list(self._client(location).do_action(flight.Action(kind, body), self._options()))
        except _REFUSED as exc:
            raise self._refused(location, exc) from exc
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise self._invalid(location, exc) from exc
        except _UNAVAILABLE:
            self._drop(location)
            raise
        return json.loads(results[0].body.to_pybytes()) if results else None

    def stats(self, peer: str) -> dict[str, Any]:
        """The server's counters (``calls`` by method, ``total_calls``, ``bytes_sent``,
        ``rows_sent``, ``bytes_received``); this call is not counted."""
        loc = peer_location(peer, tls=self._tls)
        try:
            out: dict[str, Any] = self._action(loc, _wire.ACTION_STATS)
        except _UNAVAILABLE as exc:
            raise self._no_peer(f"peer {self._unavailable(loc, exc)}", [exc]) from exc
        return out

    def versions(self, names: Sequence[str] = (), *, peer: Optional[str] = None) -> dict[str, Any]:
        """The current version of each table (``{name: record or None}``; all tables when
        ``names`` is empty), in one round trip per peer asked (the first peer that
        answers, or ``peer``)."""
        body = json.dumps(list(names)).encode()
        locations = [peer_location(peer, tls=self._tls)] if peer else self.peers
        errors: list[BaseException] = []
        for loc in locations:
            try:
                out: dict[str, Any] = self._action(loc, _wire.ACTION_VERSIONS, body)
                return out
            except _UNAVAILABLE as exc:
                errors.append(exc)
        raise self._no_peer("no peer answered: " + "; ".join(self._unavailable(loc, e) for loc, e in zip(locations, errors)),
                            errors)

    def list_tables(self, peer: str) -> list[dict[str, Any]]:
        """The tables a peer serves (``ListFlights``): ``table_name``, ``id``, ``rows``,
        ``bytes``, ``shape``, ``created_at``, ``schema`` (Arrow field names and types)."""
        loc = peer_location(peer, tls=self._tls)
        try:
            infos = list(self._client(loc).list_flights(options=self._options()))
        except _REFUSED as exc:
            raise self._refused(loc, exc) from exc
        except _UNAVAILABLE as exc:
            self._drop(loc)
            raise self._no_peer(f"peer {self._unavailable(loc, exc)}", [exc]) from exc
        out = []
        for info in infos:
            version = json.loads(info.app_metadata or b"{}")
            out.append({**version, "rows": info.total_records, "bytes": info.total_bytes,
                        "schema": [{"name": f.name, "type": str(f.type)} for f in info.schema]})
        return out

    def _find(self, name: str) -> tuple[list[str], Optional[dict[str, Any]]]:
        """(locations that have the table, its current version) from the registry (pushed,
        no call) or by asking the peers in turn."""
        if self.registry is not None:
            version = self.registry.version(name)
            if version is not None:
                replicas = self.registry.replicas(name) or [version["location"]]
                return replicas + [p for p in self._static_peers if p not in replicas], version
        errors: list[tuple[str, BaseException]] = []
        answered = False
        for loc in self._static_peers if self.registry is not None else self.peers:
            try:
                v = self._action(loc, _wire.ACTION_VERSIONS, json.dumps([name]).encode()).get(name)
            except _UNAVAILABLE as exc:
                errors.append((loc, exc))
                continue
            answered = True
            if v is not None:
                # The other peers after it: fallbacks if its stream breaks (asked then).
                order = self._static_peers if self.registry is not None else self.peers
                return [loc] + [p for p in order if p != loc], v
        if not answered and errors:
            raise self._no_peer(f"no peer answered for {name!r}: " + "; ".join(self._unavailable(*e) for e in errors),
                                [e for _, e in errors])
        return [], None

    def _fetch(self, locations: list[str], request: dict[str, Any]) -> tuple[Stream, dict[str, Any], int, str]:
        """Plans (GetFlightInfo) and opens the stream (DoGet) at the first location that
        serves it; a version superseded between the two makes it re-plan once."""
        descriptor = flight.FlightDescriptor.for_command(json.dumps(request))
        errors: list[tuple[str, BaseException]] = []
        for loc in locations:
            for attempt in (0, 1):
                client = self._client(loc)
                try:
                    info = client.get_flight_info(descriptor, self._options())
                    version = json.loads(info.app_metadata or b"{}")
                    ticket = info.endpoints[0].ticket
                    return self._stream(client, ticket), version, info.total_records, loc
                except _REFUSED as exc:
                    raise self._refused(loc, exc) from exc
                except pa.ArrowKeyError as exc:  # NOT_FOUND: superseded meanwhile, or gone
                    if _wire.REPLAN in str(exc) and attempt == 0:
                        logger.info("version of %r changed while planning at %s; planning again", request["table"], loc)
                        continue
                    errors.append((loc, exc))
                    break
                except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                    raise self._invalid(loc, exc) from exc
                except (Silent, *_UNAVAILABLE) as exc:
                    self._drop(loc)
                    errors.append((loc, exc))
                    break
        raise self._no_peer(f"no peer could serve {request['table']!r}: " + "; ".join(self._unavailable(*e) for e in errors),
                            [e for _, e in errors])

    # -- the cache --
    def _cached(self, name: str) -> Optional[_core.Version]:
        try:
            return _core.latest(name, secret_dir=self.secret_dir)
        except (TableNotFoundError, KeyError):
            return None

    def _fresh(self, name: str, cached: Optional[Mapping[str, Any]]) -> bool:
        if cached is None:
            return False
        checked = self._checked.get(name)
        if checked is None:
            pulled_at = _adc(cached).get(ADC_PULLED_AT)
            checked = float(pulled_at) if isinstance(pulled_at, (int, float)) else None
            if checked is None:
                return False
            return time.time() - checked < self.check_ttl_sec
        return time.monotonic() - checked < self.check_ttl_sec

    @staticmethod
    def _adc_entry(name: str, origin: str, version: dict[str, Any]) -> dict[str, Any]:
        return {ADC_ORIGIN: origin, ADC_REMOTE_TABLE: version.get("table_name", name),
                ADC_REMOTE_ID: _wire.record_source(version), ADC_PULLED_AT: time.time()}

    def _auto_gc(self) -> dict[str, Any]:
        """The local store's auto-gc settings: a pull's write frees superseded versions as a send does."""
        eff = _settings.shared_for(self.secret_dir)
        return {"auto_gc": eff.auto_gc, "auto_gc_grace_sec": eff.auto_gc_grace_sec, "keep_versions": eff.keep_versions}

    def _write(self, name: str, data: Any, *, origin: str, version: dict[str, Any], shape: Any) -> _core.Version:
        adc = self._adc_entry(name, origin, version)
        ev: _core.Version = _core.send(
            data, secret_dir=self.secret_dir, table_name=name,
            metadata={"shm_unlink_on_read": False, _core.METADATA_KEY: adc},
            shape=None if shape is None else (int(shape[0]), int(shape[1])),
            schema_sha256=version.get("schema_sha256"), **self._auto_gc(),
        )
        return ev

    def _receive(self, name: str, reader: Stream, planned: dict[str, Any], rows: int,
                 *, origin: str, shape: Any = None, held: Optional[pa.Table] = None) -> Optional[_core.Version]:
        """The stream received in place (one copy, as it arrives, into one batch of a file
        payload) when the server announced each column's nulls (and each string/bytes
        column's bytes of values), the result is larger than a shared-memory payload and
        ``_core.receivable`` lays its columns out; else ``None`` (nothing read but the
        schema: the caller receives it whole). ``held``: rows of the local store the new
        version starts with (a tail sync), copied in before the stream; its schema is the
        new version's. ``shape`` is recorded (default: the announced one)."""
        counts = planned.get(NULL_COUNTS_KEY)
        value_bytes = planned.get(DATA_BYTES_KEY)
        if not isinstance(value_bytes, list):
            value_bytes = None  # a server that announces nulls only: no strings in place
        if not isinstance(counts, list):
            return None
        schema = reader.schema
        if held is not None:
            if held.schema.remove_metadata() != schema.remove_metadata():
                return None
            mine = layout(held)
            counts = [a + b for a, b in zip(mine[NULL_COUNTS_KEY], counts)]
            if value_bytes is not None:
                value_bytes = [None if a is None or b is None else a + b
                               for a, b in zip(mine[DATA_BYTES_KEY], value_bytes)]
            rows += held.num_rows
        if (rows <= 0 or laid_out_bytes(schema, rows, value_bytes) <= _core.DEFAULT_MAX_SHM_BYTES
                or not _core.receivable(schema, value_bytes)):
            return None
        adc = self._adc_entry(name, origin, planned)
        shape = planned.get("shape") if shape is None else shape
        stream: Any = reader.reader()
        if held is not None:
            into = held.schema
            batches = itertools.chain(held.to_batches(),
                                      (pa.RecordBatch.from_arrays(b.columns, schema=into) for b in stream))
            stream = pa.RecordBatchReader.from_batches(into, batches)
        try:
            ev = _core.receive(
                stream, rows=rows, null_counts=counts, data_bytes=value_bytes, secret_dir=self.secret_dir,
                table_name=name, metadata={"shm_unlink_on_read": False, _core.METADATA_KEY: adc},
                shape=None if shape is None else (int(shape[0]), int(shape[1])),
                schema_sha256=planned.get("schema_sha256"), **self._auto_gc(),
            )
        except RemoteUnavailableError as exc:  # the stream broke off, or went silent
            if reader.silent:
                raise Silent(f"the stream sent nothing for {self.timeout_sec:g}s") from exc
            raise RemoteUnavailableError(f"{origin}: {exc}") from exc
        pa.default_memory_pool().release_unused()  # the received messages
        return ev

    def sync(self, name: str, *, sync: str = "full", stale_ok: Optional[bool] = None,
             time_column: Optional[str] = None) -> _core.Version:
        """Makes the local store's current version of ``name`` the peers' current one
        (pulling only when it changed, asking only after ``check_ttl_sec``) and returns
        the local ready event."""
        if sync not in SYNC_MODES:
            raise InvalidArgumentError(f"sync must be one of {SYNC_MODES}, got {sync!r}")
        _core.check_remote_table_name(name)
        stale_ok = self.stale_ok if stale_ok is None else bool(stale_ok)
        cached = self._cached(name)
        if self._fresh(name, cached):
            return cached  # type: ignore[return-value]
        try:
            return self._sync(name, cached, sync=sync, time_column=time_column)
        except RemoteUnavailableError as exc:
            if cached is not None and stale_ok and not getattr(exc, "refused", False):
                warnings.warn(f"serving the cached version of {name!r}: {exc}", RuntimeWarning, stacklevel=3)
                return cached
            raise

    def _sync(self, name: str, cached: Optional[_core.Version], *, sync: str,
              time_column: Optional[str]) -> _core.Version:
        locations, version = self._find(name)
        if version is None:
            if cached is not None:
                self._checked[name] = time.monotonic()
                return cached
            raise TableNotFoundError(f"no peer has a table {name!r} (peers: {', '.join(self.peers) or 'none'})")
        if _current(cached, version):
            self._checked[name] = time.monotonic()
            return cached  # type: ignore[return-value]
        ev = None
        if sync == "tail" and cached is not None:
            ev = self._pull_tail(name, locations, cached, version, time_column)
        if ev is None:
            ev = self._pull(name, locations)
        self._checked[name] = time.monotonic()
        logger.info("pulled %r version %s", name, _wire.record_source(version))
        return ev

    def _pull(self, name: str, locations: list[str]) -> _core.Version:
        """The whole table from the first location whose stream completes, written
        straight from the stream into the local store (a broken stream writes nothing:
        the batches are all received before the first manifest line)."""
        errors: list[str] = []
        failures: list[BaseException] = []
        for loc in locations:
            try:
                reader, planned, rows, _ = self._fetch([loc], {"table": name})
                with self._reading(loc, name):
                    ev = self._receive(name, reader, planned, rows, origin=loc)
                    if ev is not None:
                        return ev
                    table = _one_batch(reader.read_all())
                ev = self._write(name, table, origin=loc, version=planned, shape=planned.get("shape"))
                del table
                pa.default_memory_pool().release_unused()  # the received and combined buffers
                return ev
            except RemoteUnavailableError as exc:
                if getattr(exc, "refused", False):
                    raise
                cause = exc.__cause__
                errors.append(self._unavailable(loc, cause) if isinstance(cause, (Silent, *_UNAVAILABLE)) else str(exc))
                failures.append(Silent() if getattr(exc, "timed_out", False) else exc)
                if loc != locations[-1]:
                    logger.warning("the stream of %r from %s failed (%s); trying the next replica", name, loc, errors[-1])
        raise self._no_peer(f"no peer completed the stream of {name!r}: " + "; ".join(errors), failures)

    def _pull_tail(self, name: str, locations: list[str], cached: _core.Version, version: dict[str, Any],
                   time_column: Optional[str]) -> Optional[_core.Version]:
        data = _core.read_live(name, secret_dir=self.secret_dir, record_read=False)
        local = pa.table(data)
        col = time_column or next(iter(index_fields(local)), None)
        if col is None or col not in local.column_names or local.num_rows == 0:
            return None
        if not pa.types.is_timestamp(local.schema.field(col).type):
            return None
        last = local.column(col)[-1].as_py()
        request = _wire.tail_request(name, last, time_column)
        reader, planned, rows, served_by = self._fetch(locations, request)
        shape = (local.num_rows + rows, local.num_columns - len(index_fields(local)))
        with self._reading(served_by, name):
            ev = self._receive(name, reader, planned, rows, origin=served_by, shape=shape, held=local)
            if ev is not None:
                return ev
            tail = reader.read_all()
        if tail.schema.remove_metadata() != local.schema.remove_metadata():
            logger.info("the columns of %r changed: pulling it whole", name)
            return None
        joined = _one_batch(pa.concat_tables([local, tail.replace_schema_metadata(local.schema.metadata)]))
        shape = (joined.num_rows, joined.num_columns - len(index_fields(joined)))
        return self._write(name, joined, origin=served_by, version=planned, shape=shape)

    # -- loads --
    def get_arrow(
        self, table_name: str, *, selection: Optional[Selection] = None, sync: str = "full",
        stale_ok: Optional[bool] = None,
    ) -> pa.Table:
        """The peers' current version of ``table_name`` (or the part ``selection`` picks)
        as a ``pyarrow.Table``, through the local cache (see :meth:`get_dataframe`)."""
        sel = selection if selection is not None else Selection()
        sliced = self._slice_only(table_name, sel, stale_ok)
        if sliced is not None:
            return frames.restore_arrow(sliced)
        self.sync(table_name, sync=sync, stale_ok=stale_ok, time_column=sel.time_column)
        return tables.get_arrow(table_name, secret_dir=self.secret_dir, selection=selection)

    def _slice_only(self, name: str, sel: Selection, stale_ok: Optional[bool]) -> Optional[pa.Table]:
        """For a partial load of a table over ``max_full_pull_bytes`` that the cache does
        not hold current: only the slice, fetched (and not cached)."""
        if sel == Selection() or sel.sample is not None or sel.head is not None:
            return None
        cached = self._cached(name)
        if self._fresh(name, cached):
            return None
        try:
            locations, version = self._find(name)
        except RemoteUnavailableError:
            return None  # sync() decides between stale and an error
        if version is None or (version.get("bytes") or 0) <= self.max_full_pull_bytes:
            return None
        if _current(cached, version):
            self._checked[name] = time.monotonic()
            return None
        reader, _, _, served_by = self._fetch(locations, _wire.request_of(name, sel))
        with self._reading(served_by, name):
            return reader.read_all()

    def get_dataframe(
        self,
        table_name: str,
        *,
        columns: Optional[Sequence[Any]] = None,
        rows: Optional[tuple[Optional[int], Optional[int]]] = None,
        head: Optional[int] = None,
        start: Any = None,
        end: Any = None,
        time_column: Optional[str] = None,
        dtype_backend: Optional[frames.DtypeBackend] = None,
        sync: str = "full",
        stale_ok: Optional[bool] = None,
    ) -> Any:
        """The peers' current version of ``table_name`` as a DataFrame, loaded zero-copy
        from the local store after :meth:`sync` (no call within ``check_ttl_sec``, no
        ``DoGet`` when unchanged). Partial loads as
        :func:`~allye_data_connector.get_dataframe`; for a table over
        ``max_full_pull_bytes`` only the slice moves."""
        frames.check_dtype_backend(dtype_backend)
        sel = Selection(columns=columns, rows=rows, head=head, start=start, end=end, time_column=time_column)
        sliced = self._slice_only(table_name, sel, stale_ok)
        if sliced is not None:
            return frames.arrow_to_dataframe(sliced, dtype_backend)
        self.sync(table_name, sync=sync, stale_ok=stale_ok, time_column=time_column)
        return tables.get_dataframe(table_name, secret_dir=self.secret_dir, selection=sel,
                                    dtype_backend=dtype_backend)

    def pull(
        self, name: str, *, columns: Optional[Sequence[Any]] = None, start: Any = None, end: Any = None,
        time_column: Optional[str] = None, local_name: Optional[str] = None,
    ) -> _core.Version:
        """Pulls ``name`` into the local store (as ``local_name``, default ``name``) and
        returns the local ready event: the whole table through :meth:`sync` (nothing
        moves when unchanged), or only the part ``columns``/``start``/``end`` pick
        (``start <= t < end``), which then is what the local table holds."""
        target = local_name or name
        _core.check_remote_table_name(name)
        _core.check_table_name(target)
        if columns is None and start is None and end is None and target == name:
            return self.sync(name)
        sel = Selection(columns=columns, start=start, end=end, time_column=time_column)
        locations, version = self._find(name)
        if version is None:
            raise TableNotFoundError(f"no peer has a table {name!r} (peers: {', '.join(self.peers) or 'none'})")
        reader, planned, rows, served_by = self._fetch(locations, _wire.request_of(name, sel))
        with self._reading(served_by, name):
            part = reader.schema.empty_table()
            shape = (rows, part.num_columns - len(index_fields(part)))
            ev = self._receive(target, reader, planned, rows, origin=served_by, shape=shape)
            if ev is not None:
                return ev
            table = _one_batch(reader.read_all())
        shape = (table.num_rows, table.num_columns - len(index_fields(table)))
        return self._write(target, table, origin=served_by, version=planned, shape=shape)

    def push(self, name: str, peer: str, *, data: Any = None) -> dict[str, Any]:
        """Sends ``data`` (a DataFrame or Arrow data; default: the local store's current
        version of ``name``) to ``peer`` as table ``name`` (``DoPut``; the server must
        allow it). Returns the peer's version record."""
        _core.check_remote_table_name(name)
        request: dict[str, Any] = {"table": name}
        if data is None:
            ev, live = _core.get_live(name, secret_dir=self.secret_dir, record_read=False)
            table = pa.table(live)
            request["schema_sha256"] = ev["payload"]["schema_sha256"]
        elif isinstance(data, pa.Table):
            table = data
        else:
            encoded = frames.encode(data)
            table, request["schema_sha256"] = encoded.table, encoded.schema_sha256
        loc = peer_location(peer, tls=self._tls)
        try:
            descriptor = flight.FlightDescriptor.for_command(json.dumps(request))
            # pyarrow cannot cancel a DoPut from another thread, so its silence is bounded
            # by a deadline of timeout_sec per message of MAX_MESSAGE_BYTES (and one more
            # for the answer): a push that keeps a rate above that never fails.
            messages = 2 + table.nbytes // _core.DEFAULT_MAX_MESSAGE_BYTES
            writer, meta = self._client(loc).do_put(descriptor, table.schema,
                                                     self._options(deadline=self.timeout_sec * messages))
            try:
                writer.write_table(table)
                writer.done_writing()
                answer = meta.read()
            except BaseException:
                try:
                    writer.close()  # ends the call, which a server's shutdown waits for
                except flight.FlightError as exc:
                    logger.debug("closing the failed DoPut of %r: %s", name, exc)
                raise
            writer.close()  # the server's refusal, if any, arrives here
        except _REFUSED as exc:
            raise self._refused(loc, exc) from exc
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise self._invalid(loc, exc) from exc
        except _UNAVAILABLE as exc:
            self._drop(loc)
            raise self._no_peer(f"peer {loc} did not take {name!r}: {self._unavailable(loc, exc)}", [exc]) from exc
        return json.loads(answer.to_pybytes()) if answer is not None else {}


def connect(
    peers: Union[None, str, Iterable[str]] = None,
    *,
    registry: Optional[str] = None,
    secret_dir: Optional[PathLike] = None,
    token: Optional[str] = None,
    tls_root_certs: Optional[bytes] = None,
    cert_chain: Optional[bytes] = None,
    private_key: Optional[bytes] = None,
    check_ttl_sec: float = DEFAULT_CHECK_TTL_SEC,
    timeout_sec: float = DEFAULT_TIMEOUT_SEC,
    keepalive_ms: int = DEFAULT_KEEPALIVE_MS,
    stale_ok: bool = False,
    max_full_pull_bytes: int = DEFAULT_MAX_FULL_PULL_BYTES,
) -> Remote:
    """A :class:`Remote` for ``peers`` (``host:port`` or Flight URIs; default
    ``$ALLYE_PEERS``) or a ZooKeeper ``registry`` (``zk://host:port[,host:port][/chroot]``),
    caching into the store ``secret_dir``. ``token``: the peers' bearer token (default
    ``$ALLYE_REMOTE_TOKEN``); ``tls_root_certs`` (+ ``cert_chain``/``private_key`` for
    mutual TLS) for TLS peers.

    Args:
        peers: ``host:port`` or Flight URIs (a comma-separated string or a list).
        registry: A ZooKeeper registry ``zk://host:port[/chroot]`` (the ``remote`` extra).
        secret_dir: The local store the pulls cache into.
        token: The peers' bearer token (default ``$ALLYE_REMOTE_TOKEN``).
        tls_root_certs: PEM of the CA that signed the peers' certificates (TLS).
        cert_chain: This client's certificate (mutual TLS).
        private_key: This client's key (mutual TLS).
        check_ttl_sec: Seconds a version check stays fresh (no call within it).
        timeout_sec: Deadline of every call.
        keepalive_ms: gRPC keepalive interval.
        stale_ok: Serve the cached version, with a warning, when no peer answers.
        max_full_pull_bytes: Larger tables are pulled only in the parts asked for.

    Returns:
        A ``Remote`` (a context manager; ``close()`` it when done).

    Raises:
        InvalidArgumentError: No peers and no registry, or a bad option.
        MissingDependencyError: ``registry`` without the ``remote`` extra (kazoo).
        RemoteUnavailableError: The registry did not answer.
    """
    return Remote(
        peers, registry=registry, secret_dir=secret_dir, token=token, tls_root_certs=tls_root_certs,
        cert_chain=cert_chain, private_key=private_key, check_ttl_sec=check_ttl_sec, timeout_sec=timeout_sec,
        keepalive_ms=keepalive_ms, stale_ok=stale_ok, max_full_pull_bytes=max_full_pull_bytes,
    )
