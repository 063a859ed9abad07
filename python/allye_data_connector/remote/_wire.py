"""The Flight wire vocabulary (docs/PROTOCOL.md "remote"), written once for the server
(:mod:`.server`), the client (:mod:`.client`) and the registry (:mod:`.zookeeper`):
action names, the auth header, requests (encoded by the client, decoded by the server),
tickets, version records, the keys of a FlightInfo's announcement, the ``metadata.adc``
keys of a pulled version, and the error texts a client acts on."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Optional

import pandas as pd
import pyarrow.flight as flight

from .. import _core
from ..frames import Selection

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

#: In a server's error: the pinned version is no longer current; plan again.
REPLAN = "re-plan"
#: The start of a server's error about a table its store does not have.
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


def request_from_descriptor(descriptor: flight.FlightDescriptor) -> dict[str, Any]:
    """A descriptor's request: a path ``[table]`` (the whole table) or a JSON command
    ``{"table", "columns", "rows", "start", "end", "time_column", "after", "producer"}``."""
    if descriptor.descriptor_type == flight.DescriptorType.PATH:
        parts = [p.decode() if isinstance(p, bytes) else p for p in descriptor.path]
        if len(parts) != 1:
            raise flight.FlightServerError(f"a path descriptor names one table, got {parts!r}")
        return {"table": parts[0]}
    try:
        req = json.loads(descriptor.command)
    except ValueError:
        raise flight.FlightServerError("a command descriptor must be a JSON object (docs/PROTOCOL.md 'remote')") from None
    if not isinstance(req, dict) or not isinstance(req.get("table"), str):
        raise flight.FlightServerError('a command descriptor must be a JSON object with a "table" name')
    return req


def selection_of(req: dict[str, Any]) -> Selection:
    """The part of the table a request asks for (``after`` aside)."""
    rows = req.get("rows")
    return Selection(
        columns=req.get("columns"),
        rows=None if rows is None else (rows[0], rows[1]),
        start=req.get("start"),
        end=req.get("end"),
        time_column=req.get("time_column"),
    )


# ---- tickets -------------------------------------------------------------------------


def ticket(req: dict[str, Any], version: dict[str, Any]) -> bytes:
    """The ticket of a planned request: the request, pinned to the version by its id here
    and by the original's id (``source_id``), so that any replica holding a copy of that
    version can redeem it."""
    return json.dumps({**req, "id": version["id"], "source_id": version["source_id"]}).encode()


def request_of_ticket(raw: bytes) -> tuple[dict[str, Any], str, str]:
    """(request, table name, pinned version id) of a ticket :func:`ticket` made."""
    try:
        req = json.loads(raw)
        return req, req["table"], req["id"]
    except (ValueError, KeyError, TypeError):
        raise flight.FlightServerError("not a ticket of this server (docs/PROTOCOL.md 'remote')") from None


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
