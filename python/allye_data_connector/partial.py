"""Partial loads: pick columns, rows, a sample or a time range out of a mapped Arrow table.

Everything here works on the zero-copy ``pyarrow.Table`` that a get returns: selecting
columns and slicing rows only adjust offsets into the mapping (nothing is read), a
time range is found by binary search over the mapped timestamp buffer (``O(log n)``
values touched, plus one look at each record batch's first and last value), and only a
``sample`` copies (the sampled rows).
"""

from __future__ import annotations

import json
from typing import Any, Optional, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa

from .convert import LABELS_KEY
from .errors import InvalidArgumentError


def _pandas_meta(table: pa.Table) -> Optional[dict[str, Any]]:
    raw = (table.schema.metadata or {}).get(b"pandas")
    return json.loads(raw) if raw else None


def index_columns(table: pa.Table) -> list[str]:
    """Field names that hold the DataFrame index (pandas metadata), in order."""
    meta = _pandas_meta(table)
    if not meta:
        return []
    return [c for c in meta.get("index_columns", []) if isinstance(c, str) and c in table.column_names]


def _data_fields(table: pa.Table) -> list[str]:
    idx = set(index_columns(table))
    return [n for n in table.column_names if n not in idx]


def _labels(table: pa.Table) -> list[Any]:
    """The DataFrame's column labels, one per data field, as the user knows them."""
    fields = _data_fields(table)
    raw = (table.schema.metadata or {}).get(LABELS_KEY)
    if raw is not None:
        labels = json.loads(raw)
        if len(labels) == len(fields):
            return labels
    meta = _pandas_meta(table)
    if meta:
        by_field = {c.get("field_name"): c.get("name") for c in meta.get("columns", [])}
        return [by_field.get(f, f) for f in fields]
    return list(fields)


def select_columns(table: pa.Table, columns: Sequence[Any]) -> pa.Table:
    """Keeps the index columns and the named data columns (by label or by field name), in
    the order asked for. Unknown names raise :class:`InvalidArgumentError`."""
    if isinstance(columns, (str, bytes)) or not isinstance(columns, Sequence):
        raise InvalidArgumentError(f"columns must be a list of column names, got {columns!r}")
    fields = _data_fields(table)
    labels = _labels(table)
    picked: list[int] = []
    for want in columns:
        hits = [i for i, (f, lab) in enumerate(zip(fields, labels)) if want == lab or str(want) == f]
        if not hits:
            raise InvalidArgumentError(
                f"no column {want!r} in this table; its columns are {labels!r}"
            )
        picked.extend(h for h in hits if h not in picked)
    names = index_columns(table) + [fields[i] for i in picked]
    out = table.select(names)
    meta = dict(out.schema.metadata or {})
    if LABELS_KEY in meta:
        meta[LABELS_KEY] = json.dumps([labels[i] for i in picked]).encode("utf-8")
        out = out.replace_schema_metadata(meta)
    return out


def slice_rows(
    table: pa.Table,
    *,
    rows: Optional[tuple[Optional[int], Optional[int]]] = None,
    head: Optional[int] = None,
) -> pa.Table:
    """``rows=(start, stop)`` as Python slicing (negative counts from the end, stop
    exclusive, None for open), then the first ``head`` rows. No copy."""
    if rows is not None:
        if not isinstance(rows, (tuple, list)) or len(rows) != 2:
            raise InvalidArgumentError(f"rows must be a (start, stop) pair, got {rows!r}")
        for v in rows:
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, np.integer))):
                raise InvalidArgumentError(f"rows must hold ints or None, got {rows!r}")
        start, stop, _ = slice(rows[0], rows[1]).indices(table.num_rows)
        table = table.slice(start, max(0, stop - start))
    if head is not None:
        if isinstance(head, bool) or not isinstance(head, (int, np.integer)) or head < 0:
            raise InvalidArgumentError(f"head must be a non-negative int, got {head!r}")
        table = table.slice(0, int(head))
    return table


def sample_rows(table: pa.Table, n: int, seed: Optional[int] = None) -> pa.Table:
    """``n`` rows drawn without replacement, kept in their original order (reproducible
    with ``seed``). All rows when the table has at most ``n``."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise InvalidArgumentError(f"sample must be a non-negative int, got {n!r}")
    if n >= table.num_rows:
        return table
    rng = np.random.default_rng(seed)
    idx = np.sort(rng.choice(table.num_rows, size=int(n), replace=False))
    return table.take(pa.array(idx))


_UNIT_NS = {"s": 1_000_000_000, "ms": 1_000_000, "us": 1_000, "ns": 1}


def _to_unit_ceil(ts: pd.Timestamp, column_type: pa.TimestampType) -> int:
    """The smallest value ``v`` in the column's unit with ``v >= ts`` (as an instant)."""
    if ts.tzinfo is None and column_type.tz is not None:
        ts = ts.tz_localize(column_type.tz)
    if ts.tzinfo is not None:
        if column_type.tz is None:
            raise InvalidArgumentError(
                f"time bound {ts} has a time zone but the column has none; pass a naive time"
            )
        ts = ts.tz_convert("UTC").tz_localize(None)
    ns = int(ts.as_unit("ns").value)
    per = _UNIT_NS[column_type.unit]
    return -((-ns) // per)


def _time_column(table: pa.Table, time_column: Optional[str]) -> str:
    if time_column is not None:
        if time_column not in table.column_names:
            labels = dict(zip(_data_fields(table), _labels(table)))
            named = [f for f, lab in labels.items() if lab == time_column]
            if not named:
                raise InvalidArgumentError(
                    f"no column {time_column!r} for the time range; columns are {table.column_names!r}"
                )
            time_column = named[0]
        return time_column
    idx = index_columns(table)
    if len(idx) == 1 and pa.types.is_timestamp(table.schema.field(idx[0]).type):
        return idx[0]
    raise InvalidArgumentError(
        "start=/end= need a sorted DatetimeIndex or time_column='name' of a datetime column; "
        "this table's index is not a single datetime column"
    )


def _searchsorted(chunks: list[np.ndarray], value: int) -> int:
    """Global position of the first element >= value over sorted chunks."""
    offset = 0
    for arr in chunks:
        if len(arr) and arr[-1] >= value:
            return offset + int(np.searchsorted(arr, value, side="left"))
        offset += len(arr)
    return offset


def time_range(table: pa.Table, start: Any = None, end: Any = None, time_column: Optional[str] = None) -> pa.Table:
    """Rows with ``start <= t < end`` of a column sorted ascending (the DatetimeIndex by
    default), found by binary search over the mapped data; no copy."""
    if start is None and end is None:
        return table
    name = _time_column(table, time_column)
    col = table.column(name)
    if not pa.types.is_timestamp(col.type):
        raise InvalidArgumentError(f"column {name!r} is {col.type}, not a datetime column")
    if col.null_count:
        raise InvalidArgumentError(f"column {name!r} has missing values; a time range needs a sorted column without NaT")
    chunks = [c.view(pa.int64()).to_numpy(zero_copy_only=True) for c in col.chunks]
    ends = [(a[0], a[-1]) for a in chunks if len(a)]
    if any(lo > hi for lo, hi in ends) or any(ends[i][1] > ends[i + 1][0] for i in range(len(ends) - 1)):
        raise InvalidArgumentError(f"column {name!r} is not sorted ascending; sort it before sending")
    lo = 0 if start is None else _searchsorted(chunks, _to_unit_ceil(pd.Timestamp(start), col.type))
    hi = table.num_rows if end is None else _searchsorted(chunks, _to_unit_ceil(pd.Timestamp(end), col.type))
    return table.slice(lo, max(0, hi - lo))


def apply(
    table: pa.Table,
    *,
    columns: Optional[Sequence[Any]] = None,
    head: Optional[int] = None,
    rows: Optional[tuple[Optional[int], Optional[int]]] = None,
    sample: Optional[int] = None,
    seed: Optional[int] = None,
    start: Any = None,
    end: Any = None,
    time_column: Optional[str] = None,
) -> pa.Table:
    """Applies, in this order: time range, ``rows``, ``head``, ``columns``, ``sample``
    (only the sample copies, and only the rows and columns it keeps)."""
    table = time_range(table, start, end, time_column)
    table = slice_rows(table, rows=rows, head=head)
    if columns is not None:
        table = select_columns(table, columns)
    if sample is not None:
        table = sample_rows(table, sample, seed)
    return table
