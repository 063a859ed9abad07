"""Partial loads: pick columns, rows, a sample or a time range out of a mapped Arrow table.

A :class:`Selection` says what to load; it is checked when it is made (so a bad one fails
before anything is read) and applied by :meth:`Selection.apply`. Everything here works on
the zero-copy ``pyarrow.Table`` that a get returns: selecting columns and slicing rows
only adjust offsets into the mapping (nothing is read), a time range is found by binary
search over the mapped timestamp buffer (``O(log n)`` values touched, plus one look at
each record batch's first and last value), and only a ``sample`` copies (the sampled
rows).

Every way of picking rows keeps the rows' index labels (:func:`slice_rows`,
:func:`take_rows`): pyarrow stores a RangeIndex as three numbers in its pandas metadata
and, reading a table whose length no longer matches them, labels the rows ``0..n``; so a
slice narrows that range to the rows kept, and a sample writes the labels it drew as an
index column. An index stored as columns travels with its rows anyway.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Optional, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa

from ..errors import InvalidArgumentError
from . import fidelity
from .fields import LABELS_KEY, data_fields, index_fields, labels as labels_of, pandas_meta, with_metadata


def _range_index(table: pa.Table) -> Optional[tuple[dict[str, Any], int, dict[str, Any]]]:
    """``(pandas metadata, position, RangeIndex entry)`` when ``table``'s pandas metadata
    describes its index as a RangeIndex of exactly its rows (pyarrow's rule for using
    it), else None."""
    meta = pandas_meta(table)
    if not meta:
        return None
    entries = meta.get("index_columns") or []
    for i, ic in enumerate(entries):
        if isinstance(ic, dict) and ic.get("kind") == "range":
            start, stop, step = ic.get("start"), ic.get("stop"), ic.get("step")
            if type(start) is int and type(stop) is int and type(step) is int and step != 0 \
                    and len(range(start, stop, step)) == table.num_rows:
                return meta, i, ic
            return None
    return None


def _with_pandas_meta(table: pa.Table, meta: dict[str, Any]) -> pa.Table:
    new = dict(table.schema.metadata or {})
    new[b"pandas"] = json.dumps(meta).encode("utf-8")
    return with_metadata(table, new)


def slice_rows(table: pa.Table, offset: int = 0, length: Optional[int] = None) -> pa.Table:
    """Rows ``offset`` to ``offset + length`` of ``table`` (clamped to its rows, as a
    Python slice is), a zero-copy slice that keeps the rows' index labels: a RangeIndex
    in the pandas metadata is narrowed to the rows kept (and so is what
    :mod:`.fidelity` keeps per row). pyarrow's own ``slice`` does neither, and does not
    clamp a table of no columns (``slice(0, 3)`` of one of 0 rows has 3)."""
    n = table.num_rows
    offset = min(max(int(offset), 0), n)
    length = n - offset if length is None else max(0, min(int(length), n - offset))
    if offset == 0 and length == n:
        return table
    found = _range_index(table)
    out = table.slice(offset, length)
    if found is not None:
        meta, i, ic = found
        start = ic["start"] + offset * ic["step"]
        entries = list(meta["index_columns"])
        entries[i] = dict(ic, start=start, stop=start + length * ic["step"])
        out = _with_pandas_meta(out, dict(meta, index_columns=entries))
    return fidelity.rows_sliced(out, offset, length, n)


def take_rows(table: pa.Table, indices: np.ndarray[Any, Any]) -> pa.Table:
    """The rows at ``indices`` (ascending, distinct) of ``table``, a copy of those rows
    with their index labels: the labels a RangeIndex gives them become an int64 index
    column (a sample of a range is no range), as pandas' ``sample`` gives an Index."""
    n = table.num_rows
    positions = pa.array(indices, type=pa.int64())
    found = _range_index(table)
    out = table.take(positions) if table.num_columns else table.slice(0, len(indices))
    if found is not None:
        meta, i, ic = found
        labels = pa.array(ic["start"] + np.asarray(indices, dtype=np.int64) * ic["step"], type=pa.int64())
        field = "__index_level_0__"
        k = 0
        while field in out.column_names:
            k += 1
            field = f"__index_level_{k}__"
        metadata = out.schema.metadata
        out = out.append_column(field, labels) if out.num_columns else pa.table({field: labels})
        entries = list(meta["index_columns"])
        entries[i] = field
        columns = list(meta.get("columns") or []) + [{
            "name": ic.get("name"), "field_name": field, "pandas_type": "int64", "numpy_type": "int64", "metadata": None,
        }]
        out = out.replace_schema_metadata(metadata)
        out = _with_pandas_meta(out, dict(meta, index_columns=entries, columns=columns))
    return fidelity.rows_taken(out, np.asarray(indices, dtype=np.int64), n)


def _select_columns(table: pa.Table, columns: Sequence[Any]) -> pa.Table:
    """Keeps the index columns and the named data columns (by label or by field name), in
    the order asked for. Unknown names raise :class:`InvalidArgumentError`."""
    fields = data_fields(table)
    labels = labels_of(table)
    picked: list[int] = []
    for want in columns:
        hits = [i for i, (f, lab) in enumerate(zip(fields, labels)) if want == lab or str(want) == f]
        if not hits:
            raise InvalidArgumentError(
                f"no column {want!r} in this table; its columns are {labels!r}"
            )
        picked.extend(h for h in hits if h not in picked)
    names = index_fields(table) + [fields[i] for i in picked]
    out = table.select(names)
    meta = dict(out.schema.metadata or {})
    if LABELS_KEY in meta:
        meta[LABELS_KEY] = json.dumps([labels[i] for i in picked]).encode("utf-8")
        out = with_metadata(out, meta)
    return out


def _sample_rows(table: pa.Table, n: int, seed: Optional[int] = None) -> pa.Table:
    """``n`` rows drawn without replacement, kept in their original order (reproducible
    with ``seed``). All rows when the table has at most ``n``."""
    if n >= table.num_rows:
        return table
    rng = np.random.default_rng(seed)
    idx = np.sort(rng.choice(table.num_rows, size=int(n), replace=False))
    return take_rows(table, idx)


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
            labels = dict(zip(data_fields(table), labels_of(table)))
            named = [f for f, lab in labels.items() if lab == time_column]
            if not named:
                raise InvalidArgumentError(
                    f"no column {time_column!r} for the time range; columns are {table.column_names!r}"
                )
            time_column = named[0]
        return time_column
    idx = index_fields(table)
    if len(idx) == 1 and pa.types.is_timestamp(table.schema.field(idx[0]).type):
        return idx[0]
    raise InvalidArgumentError(
        "start=/end= need a sorted DatetimeIndex or time_column='name' of a datetime column; "
        "this table's index is not a single datetime column"
    )


def _searchsorted(chunks: list[np.ndarray[Any, Any]], value: int) -> int:
    """Global position of the first element >= value over sorted chunks."""
    offset = 0
    for arr in chunks:
        if len(arr) and arr[-1] >= value:
            return offset + int(np.searchsorted(arr, value, side="left"))
        offset += len(arr)
    return offset


def _time_range(
    table: pa.Table, start: Optional[pd.Timestamp], end: Optional[pd.Timestamp], time_column: Optional[str]
) -> pa.Table:
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
    lo = 0 if start is None else _searchsorted(chunks, _to_unit_ceil(start, col.type))
    hi = table.num_rows if end is None else _searchsorted(chunks, _to_unit_ceil(end, col.type))
    return slice_rows(table, lo, max(0, hi - lo))


def _is_int(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, np.integer))


def _count(name: str, value: Any) -> Optional[int]:
    if value is None:
        return None
    if not _is_int(value) or value < 0:
        raise InvalidArgumentError(f"{name} must be a non-negative int, got {value!r}")
    return int(value)


def _timestamp(name: str, value: Any) -> Optional[pd.Timestamp]:
    if value is None:
        return None
    try:
        ts: pd.Timestamp = pd.Timestamp(value)
    except (TypeError, ValueError) as exc:
        raise InvalidArgumentError(f"{name}={value!r} is not a time: pass a datetime, a pandas Timestamp or an ISO 8601 string ({exc})") from None
    if pd.isna(ts):
        raise InvalidArgumentError(f"{name}={value!r} is not a time (NaT)")
    return ts


@dataclass(frozen=True)
class Selection:
    """What part of a table to load; ``Selection()`` is the whole table.

    - ``columns``: data columns by label (or Arrow field name), in that order; the index
      is kept;
    - ``rows``: ``(start, stop)`` as Python slicing (negative from the end, None open);
    - ``head``: the first N rows;
    - ``sample``: N rows drawn without replacement, in their order (reproducible with
      ``seed``);
    - ``start``/``end``: the rows with ``start <= t < end`` of the sorted DatetimeIndex
      (or of ``time_column``), found by binary search.

    Applied in the order: time range, rows, head, columns, sample. Only a sample copies
    (the rows and columns it keeps); everything else adjusts offsets into the mapping.
    Bad values raise :class:`~..errors.InvalidArgumentError` when the selection is made.
    """

    columns: Optional[Sequence[Any]] = None
    rows: Optional[tuple[Optional[int], Optional[int]]] = None
    head: Optional[int] = None
    sample: Optional[int] = None
    seed: Optional[int] = None
    start: Any = None
    end: Any = None
    time_column: Optional[str] = None

    def __post_init__(self) -> None:
        columns, rows = self.columns, self.rows
        if columns is not None:
            if isinstance(columns, (str, bytes)) or not isinstance(columns, Sequence):
                raise InvalidArgumentError(f"columns must be a list of column names, got {columns!r}")
            object.__setattr__(self, "columns", tuple(columns))
        if rows is not None:
            if not isinstance(rows, (tuple, list)) or len(rows) != 2:
                raise InvalidArgumentError(f"rows must be a (start, stop) pair, got {rows!r}")
            if any(v is not None and not _is_int(v) for v in rows):
                raise InvalidArgumentError(f"rows must hold ints or None, got {rows!r}")
            object.__setattr__(self, "rows", tuple(None if v is None else int(v) for v in rows))
        object.__setattr__(self, "head", _count("head", self.head))
        object.__setattr__(self, "sample", _count("sample", self.sample))
        object.__setattr__(self, "start", _timestamp("start", self.start))
        object.__setattr__(self, "end", _timestamp("end", self.end))
        if self.time_column is not None and not isinstance(self.time_column, str):
            raise InvalidArgumentError(f"time_column must be a column name (str), got {self.time_column!r}")

    def apply(self, table: pa.Table) -> pa.Table:
        """The selected part of ``table`` (the table itself for ``Selection()``)."""
        if self.start is not None or self.end is not None:
            table = _time_range(table, self.start, self.end, self.time_column)
        if self.rows is not None:
            start, stop, _ = slice(*self.rows).indices(table.num_rows)
            table = slice_rows(table, start, max(0, stop - start))
        if self.head is not None:
            table = slice_rows(table, 0, self.head)
        if self.columns is not None:
            table = _select_columns(table, self.columns)
        if self.sample is not None:
            table = _sample_rows(table, self.sample, self.seed)
        return table
