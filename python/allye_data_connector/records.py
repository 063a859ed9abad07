"""The records the API returns about table versions, built from the core's events (the
manifest's objects, as ``_core`` hands them over): one shape for ``list_tables``,
``describe_table`` and ``watch``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


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
