"""The stream calls: ``append`` (one immutable chunk, named in the stream's chunk log;
readers see whole appends only), ``publish`` (the stream as an ordinary v1 version),
``read`` (what ``get_dataframe``/``get_arrow`` return for a stream), ``follow``,
``compact_stream``, ``remove_stream`` and ``is_stream``. The format is in
docs/PROTOCOL.md ("Streams")."""

from __future__ import annotations

import logging
import time
from typing import Any, Callable, Iterator, Mapping, Optional, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .. import _core, frames
from .._args import PathLike, store_arg, store_dir
from ..errors import InvalidArgumentError, InvalidInputError
from ..frames import Selection
from . import evolve
from ._background import PUBLISHER

logger = logging.getLogger(__name__)

#: Defaults, from the core.
DEFAULT_PUBLISH_INTERVAL_SEC: float = _core.DEFAULT_PUBLISH_INTERVAL_SEC
DEFAULT_FLUSH_INTERVAL_SEC: float = _core.DEFAULT_FLUSH_INTERVAL_SEC


# --- the stream's schema, and data as Arrow ---


def stream_schema(store: str, table_name: str) -> Optional[pa.Schema]:
    """The stream's schema as the core reads every chunk (the union of what was
    appended, widened), or None while it has no chunk. Cheap: the core reads only the
    log lines appended since its last look."""
    schema = _core.stream_schema(table_name, secret_dir=store)
    return None if schema is None else pa.schema(schema)


def as_records(data: Any) -> Optional[list[Mapping[str, Any]]]:
    """``data`` as a list of dict records when it is one record or a list of them; None
    for other data (frames, Arrow). A list of something else is ``InvalidInputError``."""
    if isinstance(data, Mapping):
        return [data]
    if isinstance(data, (list, tuple)):
        if not all(isinstance(r, Mapping) for r in data):
            raise InvalidInputError("append takes a DataFrame, Arrow data, a dict record or a list of dict records")
        return list(data)
    return None


def to_table(data: Any, schema: Optional[pa.Schema]) -> pa.Table:
    """A DataFrame or Arrow data as the Arrow table an append writes. A frame whose
    column would come out wider than the stream's but holds values of the stream's type
    (an int column with a missing value comes out as float) takes the stream's type."""
    if isinstance(data, (pd.DataFrame, pd.Series)):
        table = frames.encode(data).table
    else:
        table = frames.arrow_input(data)
        if table is None:
            raise InvalidInputError(
                f"append takes a DataFrame, Arrow data, a dict record or a list of dict records, "
                f"got {type(data).__name__}")
    if schema is not None and table.schema.names == schema.names and not table.schema.equals(schema):
        try:  # a safe cast: it fails rather than change a value (6.5 stays 6.5: the column widens)
            table = table.cast(pa.schema(schema, metadata=table.schema.metadata))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
            pass  # the core widens the column, or says why it cannot
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
    ``time_column`` records that column's range on the chunk, so that loads with
    ``start``/``end`` skip the chunks outside.

    The stream's schema evolves (docs/PROTOCOL.md "Streams"): a new field adds a
    nullable column (earlier rows read as null), a field left out reads as null, a
    number that does not fit widens its column (int -> float, int32 -> int64; earlier
    chunks are read as the wider type, never rewritten). A value a column cannot take
    (a string into a number column) is refused with its record (or row) alone: the
    others are stored, then :class:`~..errors.SchemaConflictError` names the table, the
    field and both types, and carries the refused records (``.refused``). Every field of
    every record is kept (not only the first record's).

    Appending to a name that holds a plain table makes the stream from it first (its
    rows are the first chunk); appending to a stream whose name a plain table was sent
    to since is refused (``remove_table`` first).

    With ``publish`` (default), the stream is published as an ordinary v1 version (all
    rows so far, what 0.1.2 and the widgets read) at most every
    ``publish_interval_sec`` and at exit."""
    _core.check_table_name(table_name)
    store = store_dir(secret_dir)
    records = as_records(data)
    schema = stream_schema(store, table_name)
    item = records if records is not None else to_table(data, schema)
    return append_items(store, table_name, [item], time_column=time_column, durable=durable, publish=publish,
                        publish_interval_sec=publish_interval_sec, schema=schema)


def append_items(store: str, table_name: str, items: Sequence[Any], *, time_column: Optional[str] = None,
                 durable: bool = False, publish: bool = True,
                 publish_interval_sec: float = DEFAULT_PUBLISH_INTERVAL_SEC,
                 on_send: Optional[Callable[[pa.Table], None]] = None,
                 schema: Any = None) -> Optional[_core.Chunk]:
    """Appends ``items`` (Arrow tables, and lists of dict records) as one chunk: each run
    of records made into one table by :func:`.evolve.records_table`, the tables merged
    by the core. The records or rows holding a value a column cannot take are refused
    alone (the rest is stored), then :class:`~..errors.SchemaConflictError` carries them:
    a list of records when they were records, the refused rows as an Arrow table when
    they were one table's. ``on_send`` sees the data just before it is appended.
    ``schema``: the stream's, when the caller has just read it (else read here, if
    records need it)."""
    if schema is None and any(not isinstance(item, pa.Table) for item in items):
        schema = stream_schema(store, table_name)
    parts: list[pa.Table] = []
    origins: list[Any] = []  # per part: the records it came from (by row), or None for a table
    conflicts: list[dict[str, Any]] = []
    refused: list[Any] = []
    total = 0
    for item in items:
        if isinstance(item, pa.Table):
            parts.append(item)
            origins.append(None)
            total += item.num_rows
            continue
        converted = evolve.records_table(item, schema)
        total += len(item)
        conflicts.extend(converted.refused.values())
        refused.extend(dict(item[i]) for i in sorted(converted.refused))
        if converted.table is not None:
            parts.append(converted.table)
            origins.append([item[i] for i in converted.index])
    if on_send is not None and parts:
        on_send(_together(parts))
    done = evolve.append_parts(parts, table_name, secret_dir=store, time_column=time_column, durable=durable)
    conflicts.extend(done.conflicts)
    tables_refused: list[pa.Table] = []
    for part, origin, rows in zip(parts, origins, done.refused):
        if not len(rows):
            continue
        if origin is None:
            tables_refused.append(part.take(pa.array(rows)))
        else:
            refused.extend(dict(origin[i]) for i in rows.tolist())
    _published(store, table_name, done.line, publish, publish_interval_sec)
    if not conflicts:
        return done.line
    if tables_refused and not refused and len(tables_refused) == 1:
        what, payload, n = "row(s)", tables_refused[0], tables_refused[0].num_rows
    else:
        payload = refused + [r for t in tables_refused for r in t.to_pylist()]
        what, n = "record(s)", len(payload)
    raise evolve.refusal(table_name, conflicts, payload, n, total - n, done.line, what)


def _together(parts: list[pa.Table]) -> pa.Table:
    """The parts of an append as one table, for an event handler (the chunk itself is
    merged by the core)."""
    if len(parts) == 1:
        return parts[0]
    try:
        return pa.concat_tables(parts, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        return parts[0]


def _published(store: str, table_name: str, line: Optional[_core.Chunk], publish: bool, interval: float) -> None:
    """After an append that stored rows: its publication and consolidation are due."""
    if line is not None and publish:
        PUBLISHER.mark(store, table_name, interval)
    elif line is not None:
        PUBLISHER.consolidate_later(store, table_name)


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
            schema = stream_schema(store_dir(secret_dir), table_name)
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
        schema = stream_schema(store_dir(secret_dir), table_name)
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
    PUBLISHER.forget(store, table_name)
    return int(_core.stream_remove(table_name, secret_dir=store))
