"""Where a DataFrame is in an Arrow table written from it: which fields hold the index
(pyarrow's pandas metadata), which the columns, and the columns' labels as the user knows
them (:data:`LABELS_KEY` when Arrow field names could not carry them)."""

from __future__ import annotations

import json
from typing import Any, Optional

import pyarrow as pa

#: Schema-metadata key holding the original column labels when Arrow field names
#: could not carry them (duplicate labels, labels equal after ``str()``).
LABELS_KEY = b"allye_columns"


def with_metadata(table: pa.Table, metadata: Optional[dict[bytes, bytes]]) -> pa.Table:
    """``table.replace_schema_metadata(metadata)``, also for a table of no columns, whose
    rows pyarrow's call drops (a frame of rows and no columns would come back empty)."""
    if table.num_columns:
        return table.replace_schema_metadata(metadata)
    rows = pa.record_batch([pa.nulls(table.num_rows)], names=["_"]).drop_columns(["_"])
    return pa.Table.from_batches([rows], schema=table.schema.with_metadata(metadata or {}))


def pandas_meta(table: pa.Table) -> Optional[dict[str, Any]]:
    """pyarrow's pandas metadata of ``table`` (None when it has none)."""
    raw = (table.schema.metadata or {}).get(b"pandas")
    return json.loads(raw) if raw else None


def index_fields(table: pa.Table) -> list[str]:
    """Field names that hold the DataFrame index (pandas metadata), in order."""
    meta = pandas_meta(table)
    if not meta:
        return []
    names = set(table.column_names)
    return [c for c in meta.get("index_columns", []) if isinstance(c, str) and c in names]


def data_fields(table: pa.Table) -> list[str]:
    """Field names of the DataFrame's columns, in order (the index's left out)."""
    idx = set(index_fields(table))
    return [n for n in table.column_names if n not in idx] if idx else list(table.column_names)


def labels(table: pa.Table) -> list[Any]:
    """The DataFrame's column labels, one per data field, as the user knows them."""
    fields = data_fields(table)
    raw = (table.schema.metadata or {}).get(LABELS_KEY)
    if raw is not None:
        restored: list[Any] = json.loads(raw)
        if len(restored) == len(fields):
            return restored
    meta = pandas_meta(table)
    if meta:
        by_field = {c.get("field_name"): c.get("name") for c in meta.get("columns", [])}
        return [by_field.get(f, f) for f in fields]
    return list(fields)
