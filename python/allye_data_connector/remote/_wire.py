"""The Flight wire vocabulary (docs/PROTOCOL.md "remote"), written once for the server
(:mod:`.server`), the client (:mod:`.client`) and the registry (:mod:`.zookeeper`):
action names, the auth header, requests (encoded by the client, decoded by the server),
tickets (each decoded and checked: the keys, their types, the table name's rule and the
size bound), version records, the keys of a FlightInfo's announcement, the
``metadata.adc`` keys of a pulled version, and the error texts a client acts on."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Optional

import pandas as pd
import pyarrow.flight as flight

from .. import _core
from ..errors import InvalidArgumentError
from ..frames import Selection
from ._refusals import InvalidRequest, quote

#: Action: the current version of many tables in one round trip (body: a JSON list of
#: names, ``[]`` for all; result: JSON ``{name: version record or null}``).
ACTION_VERSIONS = "versions"
#: Action: the server's call and byte counters (not counted itself).
ACTION_STATS = "stats"

#: The header carrying the bearer token, ``Bearer <token>``.
AUTH_HEADER = "authorization"

#: Key of the FlightInfo's app_metadata listing the nulls of each column of the slice.
NULL_COUNTS_KEY = "null_counts"
#: Key of the FlightInfo's app_metadata listing the bytes of values of each string/bytes
#: column of the slice (null for the other columns).
DATA_BYTES_KEY = "data_bytes"

#: Keys of the ``metadata.adc`` entry of a pulled version.
ADC_ORIGIN = "origin"
ADC_REMOTE_TABLE = "remote_table"
ADC_REMOTE_ID = "remote_id"
ADC_PULLED_AT = "pulled_at"

#: In a server's error (``NOT_FOUND``): the pinned version is no longer current; plan again.
REPLAN = "re-plan"
#: The start of a server's error (``NOT_FOUND``) about a table its store does not have.
NO_TABLE = "no table"


def bearer(token: str) -> str:
    """The value of :data:`AUTH_HEADER` for ``token``."""
    return f"Bearer {token}"


# ---- requests ------------------------------------------------------------------------


def request_of(name: str, sel: Selection) -> dict[str, Any]:
    """The command descriptor's request of a partial pull of ``name``."""
    request: dict[str, Any] = {"table": name}
    if sel.columns is not None:
        request["columns"] = [str(c) for c in sel.columns]
    if sel.rows is not None:
        request["rows"] = list(sel.rows)
    for key in ("start", "end"):
        value = getattr(sel, key)
        if value is not None:
            request[key] = pd.Timestamp(value).isoformat()
    if sel.time_column is not None:
        request["time_column"] = sel.time_column
    return request


def tail_request(name: str, after: Any, time_column: Optional[str]) -> dict[str, Any]:
    """The request of a tail sync: the rows of ``name`` whose time (the index's, or
    ``time_column``'s) is later than ``after``."""
    return {"table": name, "after": pd.Timestamp(after).isoformat(), "time_column": time_column}


#: The keys a request may hold (a command descriptor's; :func:`request_of`,
#: :func:`tail_request`); a ticket adds :data:`TICKET_KEYS`, a pushed table's descriptor
#: holds only :data:`PUT_KEYS`. A key the server does not know is refused rather than
#: ignored: ignoring a newer client's narrowing key would serve more than it asked for.
REQUEST_KEYS = frozenset({"table", "columns", "rows", "start", "end", "time_column", "after", "producer"})
TICKET_KEYS = frozenset({"id", "source_id"})
PUT_KEYS = frozenset({"table", "schema_sha256"})
#: The most bytes a server reads of a descriptor, ticket or action body.
MAX_REQUEST_BYTES: int = _core.MAX_REMOTE_REQUEST_BYTES


def _bounded(raw: bytes, what: str) -> bytes:
    if len(raw) > MAX_REQUEST_BYTES:
        raise InvalidRequest(f"{what} is {len(raw):,} bytes; this server reads at most {MAX_REQUEST_BYTES:,}")
    return raw


def _json(raw: bytes, what: str) -> Any:
    try:
        return json.loads(_bounded(raw, what))
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        raise InvalidRequest(f"{what} is not JSON (docs/PROTOCOL.md 8.16)") from None


def table_name(value: Any, what: str = '"table"') -> str:
    """``value`` when it names a table that may cross the network (the core's rule), else
    :class:`InvalidRequest`."""
    if not isinstance(value, str):
        raise InvalidRequest(f"{what} must be a table name (a string), got {type(value).__name__}")
    try:
        return _core.check_remote_table_name(value)
    except InvalidArgumentError as exc:
        raise InvalidRequest(str(exc)) from None


def _checked(req: Any, allowed: frozenset[str], what: str) -> dict[str, Any]:
    """``req`` when it is a JSON object of ``allowed`` keys with values of the right
    types and a valid table name, else :class:`InvalidRequest` naming the first fault."""
    if not isinstance(req, dict):
        raise InvalidRequest(f'{what} must be a JSON object with a "table" name, got {type(req).__name__}')
    unknown = sorted(k for k in req if k not in allowed)
    if unknown:
        raise InvalidRequest(f"{what} has unknown keys {quote(unknown)}; the keys are {', '.join(sorted(allowed))}")
    if "table" not in req:
        raise InvalidRequest(f'{what} has no "table"')
    table_name(req["table"])
    for key in ("start", "end", "after", "time_column", "producer", "id", "source_id", "schema_sha256"):
        if req.get(key) is not None and not isinstance(req[key], str):
            raise InvalidRequest(f'"{key}" must be a string, got {type(req[key]).__name__}')
    columns = req.get("columns")
    if columns is not None and (not isinstance(columns, list) or not all(isinstance(c, str) for c in columns)):
        raise InvalidRequest('"columns" must be a list of column names (strings)')
    rows = req.get("rows")
    if rows is not None and (not isinstance(rows, list) or len(rows) != 2
                             or any(v is not None and (isinstance(v, bool) or not isinstance(v, int)) for v in rows)):
        raise InvalidRequest('"rows" must be [start, stop]: two integers or nulls, as Python slicing')
    return req


def request_from_descriptor(descriptor: flight.FlightDescriptor) -> dict[str, Any]:
    """A descriptor's request: a path ``[table]`` (the whole table) or a JSON command
    ``{"table", "columns", "rows", "start", "end", "time_column", "after", "producer"}``;
    anything else, an unknown key, a value of the wrong type, a name that may not cross
    the network or more than :data:`MAX_REQUEST_BYTES` is :class:`InvalidRequest`."""
    if descriptor.descriptor_type == flight.DescriptorType.PATH:
        parts = list(descriptor.path or [])
        _bounded(b"".join(p if isinstance(p, bytes) else str(p).encode() for p in parts), "the descriptor's path")
        if len(parts) != 1:
            raise InvalidRequest(f"a path descriptor names one table, got {len(parts)} parts")
        part = parts[0]
        try:
            name = part.decode() if isinstance(part, bytes) else str(part)
        except UnicodeDecodeError:
            raise InvalidRequest("a path descriptor's table name must be UTF-8") from None
        return {"table": table_name(name)}
    return _checked(_json(descriptor.command or b"", "a command descriptor"), REQUEST_KEYS, "a command descriptor")


def put_request(descriptor: flight.FlightDescriptor) -> dict[str, Any]:
    """The request of a pushed table's descriptor: a path ``[table]`` or a JSON command
    ``{"table", "schema_sha256"}``, checked as :func:`request_from_descriptor` does."""
    if descriptor.descriptor_type == flight.DescriptorType.PATH:
        return request_from_descriptor(descriptor)
    return _checked(_json(descriptor.command or b"", "a command descriptor"), PUT_KEYS, "a pushed table's descriptor")


def names_of(body: bytes) -> list[str]:
    """The table names of a ``versions`` action's body (a JSON list; empty: all)."""
    if not body:
        return []
    names = _json(body, "the body of a versions action")
    if not isinstance(names, list):
        raise InvalidRequest("the body of a versions action must be a JSON list of table names ([] for all)")
    return [table_name(n, "each entry of a versions action's body") for n in names]


def selection_of(req: dict[str, Any]) -> Selection:
    """The part of the table a checked request asks for (``after`` aside); a value the
    selection refuses (a time that is not one) is :class:`InvalidRequest`."""
    rows = req.get("rows")
    try:
        return Selection(
            columns=req.get("columns"),
            rows=None if rows is None else (rows[0], rows[1]),
            start=req.get("start"),
            end=req.get("end"),
            time_column=req.get("time_column"),
        )
    except InvalidArgumentError as exc:
        raise InvalidRequest(str(exc)) from None


# ---- tickets -------------------------------------------------------------------------


def ticket(req: dict[str, Any], version: dict[str, Any]) -> bytes:
    """The ticket of a planned request: the request, pinned to the version by its id here
    and by the original's id (``source_id``), so that any replica holding a copy of that
    version can redeem it."""
    return json.dumps({**req, "id": version["id"], "source_id": version["source_id"]}).encode()


def request_of_ticket(raw: bytes) -> tuple[dict[str, Any], str, str]:
    """(request, table name, pinned version id) of a ticket :func:`ticket` made; anything
    else is :class:`InvalidRequest`."""
    try:
        req = _checked(_json(raw, "the ticket"), REQUEST_KEYS | TICKET_KEYS, "the ticket")
    except InvalidRequest as exc:
        raise InvalidRequest(f"not a ticket of this server ({exc}): plan the call again with GetFlightInfo") from None
    if not isinstance(req.get("id"), str):
        raise InvalidRequest('not a ticket of this server (no "id"): plan the call again with GetFlightInfo')
    return req, req["table"], req["id"]


# ---- versions ------------------------------------------------------------------------


def source_id(ev: Mapping[str, Any]) -> str:
    """The id of the original version an event is (a copy of): ``metadata.adc.remote_id``
    of a pulled copy, else its own id. Copies of one version compare equal by it."""
    adc = (ev.get("metadata") or {}).get(_core.METADATA_KEY) or {}
    rid = adc.get(ADC_REMOTE_ID) if isinstance(adc, dict) else None
    return rid if isinstance(rid, str) else str(ev["id"])


def version_record(ev: Mapping[str, Any]) -> dict[str, Any]:
    """A version as the wire describes it (the ``versions`` action, a FlightInfo's
    endpoint, a DoPut's answer)."""
    p = ev.get("payload") or {}
    return {
        "id": ev["id"],
        "source_id": source_id(ev),
        "table_name": ev["table_name"],
        "producer": ev.get("producer"),
        "created_at": ev.get("created_at"),
        "expires_at": p.get("expires_at"),
        "shape": p.get("shape"),
        "bytes": p.get("data_size"),
        "schema_sha256": p.get("schema_sha256"),
    }


def record_source(version: dict[str, Any]) -> Any:
    """The id of the original version a version record describes (copies share it)."""
    return version.get("source_id") or version.get("id")
