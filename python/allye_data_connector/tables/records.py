"""The records the API returns about table versions, built from the core's events (the
manifest's objects, as ``_core`` hands them over): one shape for ``list_tables``,
``describe_table`` and ``watch``."""

from __future__ import annotations

import datetime
import time
from collections.abc import Mapping
from typing import Any, Optional

import pyarrow as pa

from .. import _core
from ..frames import index_fields


def payload_summary(event: Mapping[str, Any]) -> dict[str, Any]:
    """``transport``, ``shape`` (a tuple), ``bytes`` and ``expires_at`` of an event's
    payload (all None for an event without one)."""
    p = event.get("payload") or {}
    shape = p.get("shape")
    return {
        "transport": p.get("transport"),
        "shape": (int(shape[0]), int(shape[1])) if shape else None,
        "bytes": p.get("data_size"),
        "expires_at": p.get("expires_at"),
    }


def version(event: Mapping[str, Any]) -> dict[str, Any]:
    """A version as ``list_tables`` gives it: 0.1.2's keys (``table_name``, ``id``,
    ``producer``, ``created_at``, ``ttl_sec``, ``transport``, ``shape``, ``bytes``) plus
    ``expires_at``."""
    return {
        "table_name": event["table_name"],
        "id": event["id"],
        "producer": event["producer"],
        "created_at": event["created_at"],
        "ttl_sec": event.get("ttl_sec"),
        **payload_summary(event),
    }


def _age_sec(created_at: Optional[str]) -> Optional[float]:
    if not created_at:
        return None
    try:
        then = datetime.datetime.strptime(created_at, "%Y-%m-%dT%H:%M:%S%z")
    except ValueError:
        return None
    return round(time.time() - then.timestamp(), 3)


def state(st: Mapping[str, Any], *, with_schema: bool, secret_dir: Optional[str]) -> dict[str, Any]:
    """A table state as ``describe_table`` and ``list_tables(all_states=True)`` give it:
    the latest state and the current version's record; ``with_schema``: its Arrow schema,
    index fields and batch count, read from the payload without loading data (or why it
    cannot be read, in ``schema_error``)."""
    latest = st.get("latest") or {}
    ready = st.get("ready") or {}
    out: dict[str, Any] = {
        "table_name": st["table_name"],
        "state": st["state"],
        "error": st.get("error"),
        "expired": bool(st.get("expired")),
        "id": ready.get("id"),
        "producer": ready.get("producer") or latest.get("producer"),
        "created_at": ready.get("created_at"),
        "age_sec": _age_sec(ready.get("created_at")),
        "ttl_sec": ready.get("ttl_sec"),
        **payload_summary(ready),
        "latest_id": latest.get("id"),
        "latest_at": latest.get("created_at"),
    }
    if with_schema:
        out["schema"] = None
        out["schema_error"] = None
        if ready and not out["expired"]:
            try:
                if out["transport"] == _core.STREAM_TRANSPORT:  # read from its chunks, not its publication
                    data = _core.stream_read(st["table_name"], secret_dir=secret_dir, row_start=0, row_end=0)[1]
                else:
                    data = _core.read_live(
                        st["table_name"], secret_dir=secret_dir, producer=ready.get("producer"), record_read=False
                    )
                table = pa.table(data)
                out["schema"] = [{"name": f.name, "type": str(f.type)} for f in table.schema]
                out["index_columns"] = index_fields(table)
                out["num_batches"] = len(table.to_batches())
            except Exception as exc:  # AllyeError mostly: say why, describe the rest
                out["schema_error"] = str(exc)
    return out
