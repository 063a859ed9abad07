"""The stream calls: ``append`` (one immutable chunk, named in the stream's chunk log;
readers see whole appends only), ``publish`` (the stream as an ordinary v1 version),
``read`` (what ``get_dataframe``/``get_arrow`` return for a stream), ``follow``,
``compact_stream``, ``remove_stream`` and ``is_stream``. The format is in
docs/PROTOCOL.md ("Streams")."""

from __future__ import annotations

import logging
import time
from typing import Any, Iterator, Mapping, Optional

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .. import _core, frames
from .._args import PathLike, store_arg, store_dir
from ..errors import AllyeError, InvalidArgumentError, InvalidInputError
from ..frames import Selection
from ._background import PUBLISHER

logger = logging.getLogger(__name__)

#: Defaults, from the core.
DEFAULT_PUBLISH_INTERVAL_SEC: float = _core.DEFAULT_PUBLISH_INTERVAL_SEC
DEFAULT_FLUSH_INTERVAL_SEC: float = _core.DEFAULT_FLUSH_INTERVAL_SEC


# --- schemas a process has seen per stream (to convert records and frames alike) ---

_SCHEMAS: dict[tuple[str, str], pa.Schema] = {}


def known_schema(store: str, table_name: str) -> Optional[pa.Schema]:
    """The stream's schema (None while it has no chunk), read once per process."""
    key = (store, table_name)
    schema = _SCHEMAS.get(key)
    if schema is None and _core.stream_exists(table_name, secret_dir=store):
        try:
            schema = pa.table(_core.stream_read(table_name, secret_dir=store, row_start=0, row_end=0)[1]).schema
        except AllyeError:
            return None
        _SCHEMAS[key] = schema
    return schema


def to_table(data: Any, schema: Optional[pa.Schema]) -> pa.Table:
    """What ``append`` accepts as one Arrow table: a DataFrame, Arrow data, one record
    (dict) or a list of records. Records take the stream's column types when known."""
    if isinstance(data, Mapping):
        data = [data]
    if isinstance(data, (list, tuple)):
        if not all(isinstance(r, Mapping) for r in data):
            raise InvalidInputError("append takes a DataFrame, Arrow data, a dict record or a list of dict records")
        if schema is not None and all(set(r) <= set(schema.names) for r in data):
            try:
                return pa.Table.from_pylist(list(data), schema=schema)
            except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError):
                pass  # the core says what does not match
        try:
            return pa.Table.from_pylist(list(data))
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError) as exc:
            raise InvalidInputError(f"records cannot be converted to Arrow: {exc}") from exc
    if isinstance(data, (pd.DataFrame, pd.Series)):
        table = frames.encode(data).table
    else:
        table = frames.arrow_input(data)
        if table is None:
            raise InvalidInputError(
                f"append takes a DataFrame, Arrow data, a dict record or a list of dict records, "
                f"got {type(data).__name__}")
    if schema is not None and table.schema.names == schema.names and not table.schema.equals(schema):
        try:  # e.g. an int column of a later frame that holds NaN (float): take the stream's type
            table = table.cast(pa.schema(schema, metadata=table.schema.metadata))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
            pass  # the core refuses it with both column lists
    return table


def append(
    table_name: str,
    data: Any,
    *,
    secret_dir: Optional[PathLike] = None,
    time_column: Optional[str] = None,
    durable: bool = False,
    publish: bool = True,
    publish_interval_sec: float = DEFAULT_PUBLISH_INTERVAL_SEC,
) -> Optional[_core.Chunk]:
    """Appends ``data`` (a DataFrame, Arrow table or batch, a dict record or a list of
    records) to the streaming table ``table_name`` as one chunk; returns the chunk's log
    line (``rows``, ``bytes``, ``chunk``, ...), or None when there were no rows.

    Many processes may append to one stream at once. Once this returns the rows are in
    the stream (``durable=True``: on disk, fsynced); no reader sees any of them before.
    Every append has the stream's columns (names and types; a list of records takes its
    types). ``time_column`` records that column's range on the chunk, so that loads with
    ``start``/``end`` skip the chunks outside.

    With ``publish`` (default), the stream is published as an ordinary v1 version (all
    rows so far, what 0.1.2 and the widgets read) at most every
    ``publish_interval_sec`` and at exit."""
    _core.check_table_name(table_name)
    store = store_dir(secret_dir)
    table = to_table(data, known_schema(store, table_name))
    line = _core.stream_append(table, table_name, secret_dir=store, time_column=time_column, durable=durable)
    if line is not None:
        _SCHEMAS.setdefault((store, table_name), table.schema)
        if publish:
            PUBLISHER.mark(store, table_name, publish_interval_sec)
    return line


def publish(table_name: str, *, secret_dir: Optional[PathLike] = None) -> _core.Version:
    """Publishes stream ``table_name`` now as a v1 ``ready`` version holding every row so
    far; returns its event. Costs one send of the whole stream."""
    _core.check_table_name(table_name)
    store = store_dir(secret_dir)
    ev = PUBLISHER.publish_now(store, table_name)
    assert ev is not None  # without an interval it always publishes
    return ev


# --- reading ---

def is_stream(table_name: str, *, secret_dir: Optional[PathLike] = None) -> bool:
    """True when ``table_name`` is a streaming table in the store."""
    return bool(_core.stream_exists(table_name, secret_dir=store_arg(secret_dir)))


def _time_bound(value: Any, column_type: pa.DataType) -> Any:
    if pa.types.is_timestamp(column_type):
        ts = pd.Timestamp(value)
        if column_type.tz is not None and ts.tz is None:
            ts = ts.tz_localize(column_type.tz)
        elif column_type.tz is None and ts.tz is not None:
            ts = ts.tz_convert(None)
        return pa.scalar(ts, type=column_type)
    if isinstance(value, (pd.Timestamp, np.datetime64)):  # Selection turns ints into ns since the epoch
        value = int(pd.Timestamp(value).as_unit("ns").value)
    return pa.scalar(value).cast(column_type)


def _int_bound(value: Any, column_type: Optional[pa.DataType]) -> Optional[int]:
    """``value`` as the integer a chunk's recorded range is in (the column's unit)."""
    if value is None:
        return None
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return int(value)
    unit = column_type.unit if column_type is not None and pa.types.is_timestamp(column_type) else "ns"
    try:
        ts = pd.Timestamp(value)
        if ts.tz is not None:
            ts = ts.tz_convert("UTC").tz_localize(None)
        ns = int(ts.as_unit("ns").value)
    except (ValueError, TypeError, OverflowError):
        return None
    # Floor division: a bound one unit too wide only reads one more chunk.
    return ns // {"s": 1_000_000_000, "ms": 1_000_000, "us": 1_000, "ns": 1}[unit]


def read(table_name: str, selection: Optional[Selection] = None, *, secret_dir: Optional[PathLike] = None) -> pa.Table:
    """The rows of stream ``table_name`` (``selection`` as :class:`~..frames.Selection`)
    as one Arrow table of many batches, zero-copy from the mapped chunks. Rows and time
    ranges are first narrowed to the chunks that hold them (a time range by the ranges
    recorded on the chunks); a time range then keeps the rows with ``start <= t < end``
    (a filter, not a binary search: appenders interleave, so a stream is not sorted)."""
    sel = selection or Selection()
    store = store_arg(secret_dir)
    kwargs: dict[str, Any] = {}
    timed = sel.start is not None or sel.end is not None
    if not timed and sel.rows is not None and all(v is None or v >= 0 for v in sel.rows):
        start, stop = sel.rows
        kwargs.update(row_start=start or 0, row_end=stop)
        if sel.head is not None and stop is None:
            kwargs["row_end"] = (start or 0) + sel.head
    elif not timed and sel.rows is None and sel.head is not None:
        kwargs.update(row_start=0, row_end=sel.head)
    time_column = sel.time_column
    if timed:
        chunks = _core.stream_chunks(table_name, secret_dir=store)
        recorded = next((c.get("time_column") for c in chunks if c.get("time_column")), None)
        time_column = time_column or recorded
        if time_column is not None and time_column == recorded:
            schema = known_schema(store_dir(secret_dir), table_name)
            ctype = schema.field(time_column).type if schema is not None and time_column in schema.names else None
            kwargs.update(t_start=_int_bound(sel.start, ctype), t_end=_int_bound(sel.end, ctype))
    info, data = _core.stream_read(table_name, secret_dir=store, **kwargs)
    table = frames.restore_arrow(pa.table(data))
    if "row_start" in kwargs:
        first = int(info["first_row"])
        start, stop = sel.rows if sel.rows is not None else (0, None)
        sel = Selection(columns=sel.columns, rows=((start or 0) - first, None if stop is None else stop - first),
                        head=sel.head, sample=sel.sample, seed=sel.seed)
    if timed:
        if time_column is None:
            raise InvalidArgumentError("a time range on a stream needs time_column= (the column holding the time)")
        if time_column not in table.column_names:
            raise InvalidArgumentError(f"time_column {time_column!r} is not a column of stream {table_name!r}")
        col = table.column(time_column)
        mask = None
        if sel.start is not None:
            mask = pc.greater_equal(col, _time_bound(sel.start, col.type))
        if sel.end is not None:
            upper = pc.less(col, _time_bound(sel.end, col.type))
            mask = upper if mask is None else pc.and_(mask, upper)
        table = table.filter(mask)
        sel = Selection(columns=sel.columns, rows=sel.rows, head=sel.head, sample=sel.sample, seed=sel.seed)
    return sel.apply(table)


def follow(
    table_name: str,
    *,
    secret_dir: Optional[PathLike] = None,
    from_start: bool = False,
    timeout_sec: Optional[float] = None,
    force_polling: bool = False,
) -> Iterator[pa.Table]:
    """Yields each new chunk of stream ``table_name`` as an Arrow table, as it lands
    (woken by file-system notifications on the stream's chunk log; the stream need not
    exist yet). ``from_start``: the chunks already there first. Ends after
    ``timeout_sec`` without a new chunk (None: never; stop with ``break`` or Ctrl-C).
    Every chunk is yielded once, also across a ``compact_stream``.

    Args:
        table_name: The stream.
        secret_dir: The store directory (else ``$ALLYE_SECRET_DIR``, else ``~/.allye_secrets``).
        from_start: Yield the chunks already there first.
        timeout_sec: End after this many seconds without a new chunk (None: never).
        force_polling: Poll instead of using file-system notifications.

    Returns:
        An iterator of ``pyarrow.Table`` chunks.
    """
    _core.check_table_name(table_name)
    # Made now, not at the first next(): "from now on" means from this call.
    follower = _core.StreamFollower(table_name, secret_dir=store_arg(secret_dir), from_start=from_start,
                                    force_polling=force_polling)
    return _chunks_of(follower, timeout_sec)


def _chunks_of(follower: Any, timeout_sec: Optional[float]) -> Iterator[pa.Table]:
    last = time.monotonic()
    while True:
        got = follower.next_chunks(0.1)  # short slices: Ctrl-C stays responsive
        for _line, data in got:
            yield pa.table(data)
        if got:
            last = time.monotonic()
        elif timeout_sec is not None and time.monotonic() - last >= timeout_sec:
            return


def compact_stream(
    table_name: str,
    *,
    secret_dir: Optional[PathLike] = None,
    source_column: Optional[str] = "auto",
    compression: Optional[str] = "zstd",
) -> _core.StreamCompactReport:
    """Rewrites the chunks of stream ``table_name`` appended so far into one
    zstd-compressed Arrow IPC file per value of ``source_column`` ("auto": the log
    schema's ``source_id`` when the stream has it, else one file), ataraxis'
    ``compress_logs``. ``compression=None`` writes uncompressed files instead, which
    later reads map without a copy (a consolidation of many small appends). Each file is read back and compared with the rows it replaces
    before the chunk log is switched over (in one rename) and the old chunks deleted;
    a failed check deletes nothing. Appenders are not blocked. Returns
    ``{"chunks_before", "rows", "files": [{"source", "file", "rows", "bytes"}]}``."""
    _core.check_table_name(table_name)
    store = store_arg(secret_dir)
    if source_column == "auto":
        schema = known_schema(store_dir(secret_dir), table_name)
        source = _core.LOG_SOURCE_COLUMN
        source_column = source if schema is not None and source in schema.names else None
    report = _core.stream_compact(table_name, secret_dir=store, source_column=source_column,
                                  compression=compression)
    return report


def remove_stream(table_name: str, *, secret_dir: Optional[PathLike] = None) -> int:
    """Removes stream ``table_name``: its chunks, its log and its v1 versions. Returns
    the number of chunks freed."""
    _core.check_table_name(table_name)
    store = store_dir(secret_dir)
    _SCHEMAS.pop((store, table_name), None)
    PUBLISHER.forget(store, table_name)
    return int(_core.stream_remove(table_name, secret_dir=store))
