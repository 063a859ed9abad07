"""Streaming tables: tables that grow by appends from many processes, read live.

``append(table, data)`` adds one immutable chunk (Arrow IPC file) and names it in the
stream's chunk log; readers (``get_dataframe``/``get_arrow``, ``follow``) see whole
appends only. ``Writer`` buffers rows in a background thread (panoply's SDK model,
with errors that are never lost); ``append_log``/``LogWriter`` are the fixed-schema
fast path for timestamped messages (ataraxis' ``LogPackage``). Every stream is also
published as an ordinary v1 version (all rows so far) at most every
``publish_interval_sec`` and at exit, for 0.1.2 and the widgets. The format is in
docs/PROTOCOL.md ("Streams")."""

from __future__ import annotations

import atexit
import logging
import multiprocessing.util
import os
import sys
import threading
import time
import weakref
from typing import Any, Callable, Iterator, Mapping, Optional, Sequence, Union

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from . import _core, convert
from .errors import AllyeError, InvalidArgumentError, InvalidInputError
from .partial import Selection

logger = logging.getLogger(__name__)

PathLike = Union[str, "os.PathLike[str]"]

#: Defaults, from the core.
DEFAULT_PUBLISH_INTERVAL_SEC: float = _core.DEFAULT_PUBLISH_INTERVAL_SEC
DEFAULT_FLUSH_INTERVAL_SEC: float = _core.DEFAULT_FLUSH_INTERVAL_SEC
SOURCE_COLUMN: str = _core.LOG_SOURCE_COLUMN
TIME_COLUMN: str = _core.LOG_TIME_COLUMN
PAYLOAD_COLUMN: str = _core.LOG_PAYLOAD_COLUMN

#: The schema of the log fast path: one row per message.
LOG_SCHEMA = pa.schema([
    pa.field(SOURCE_COLUMN, pa.uint8(), nullable=False),
    pa.field(TIME_COLUMN, pa.uint64(), nullable=False),
    pa.field(PAYLOAD_COLUMN, pa.binary(), nullable=False),
])


def _path(secret_dir: Optional[PathLike]) -> Optional[str]:
    return None if secret_dir is None else os.path.expanduser(os.fspath(secret_dir))


def _store(secret_dir: Optional[PathLike]) -> str:
    return str(_core.resolve_store(_path(secret_dir)))


# --- schemas a process has seen per stream (to convert records and frames alike) ---

_SCHEMAS: dict[tuple[str, str], pa.Schema] = {}


def _known_schema(store: str, table_name: str) -> Optional[pa.Schema]:
    key = (store, table_name)
    schema = _SCHEMAS.get(key)
    if schema is None and _core.stream_exists(table_name, secret_dir=store):
        try:
            schema = pa.table(_core.stream_read(table_name, secret_dir=store, row_start=0, row_end=0)[1]).schema
        except AllyeError:
            return None
        _SCHEMAS[key] = schema
    return schema


def _to_table(data: Any, schema: Optional[pa.Schema]) -> pa.Table:
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
        table = convert.encode(data).table
    else:
        table = convert.arrow_input(data)
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
    store = _store(secret_dir)
    table = _to_table(data, _known_schema(store, table_name))
    line = _core.stream_append(table, table_name, secret_dir=store, time_column=time_column, durable=durable)
    if line is not None:
        _SCHEMAS.setdefault((store, table_name), table.schema)
        if publish:
            _PUBLISHER.mark(store, table_name, publish_interval_sec)
    return line


# --- publication as a v1 version: at most every interval, and at exit ---

class _Publisher:
    """Publishes the streams this process appended to, at most every interval (a daemon
    thread) and once more at exit, so that 0.1.2 and the widgets see every row."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._dirty: dict[tuple[str, str], float] = {}
        self._wake = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._pid = os.getpid()

    def mark(self, store: str, table_name: str, interval: float) -> None:
        with self._lock:
            if self._pid != os.getpid():  # a forked child: the parent's thread is not ours
                self.__init__()  # type: ignore[misc]
            first = (store, table_name) not in self._dirty
            self._dirty[(store, table_name)] = interval
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="adc-stream-publisher", daemon=True)
                self._thread.start()
        if first:
            self._wake.set()

    def _run(self) -> None:
        while True:
            self._wake.wait(0.25)
            self._wake.clear()
            with self._lock:
                dirty = dict(self._dirty)
            for (store, table), interval in dirty.items():
                try:
                    if _core.stream_publish(table, secret_dir=store, interval_sec=interval) is not None:
                        with self._lock:
                            if self._dirty.get((store, table)) == interval:
                                del self._dirty[(store, table)]
                except Exception as exc:  # noqa: BLE001 - a background thread must not die
                    logger.warning("cannot publish stream %r: %s", table, exc)
                    with self._lock:
                        self._dirty.pop((store, table), None)

    def publish_now(self, store: str, table_name: str) -> None:
        with self._lock:
            self._dirty.pop((store, table_name), None)
        _core.stream_publish(table_name, secret_dir=store)

    def flush_all(self) -> None:
        with self._lock:
            if self._pid != os.getpid():
                return
            dirty, self._dirty = self._dirty, {}
        for store, table in dirty:
            try:
                _core.stream_publish(table, secret_dir=store)
            except Exception as exc:  # noqa: BLE001 - at exit: say it, go on
                logger.warning("cannot publish stream %r at exit: %s", table, exc)


_PUBLISHER = _Publisher()


def publish(table_name: str, *, secret_dir: Optional[PathLike] = None) -> _core.Version:
    """Publishes stream ``table_name`` now as a v1 ``ready`` version holding every row so
    far; returns its event. Costs one send of the whole stream."""
    _core.check_table_name(table_name)
    store = _store(secret_dir)
    with _PUBLISHER._lock:
        _PUBLISHER._dirty.pop((store, table_name), None)
    ev = _core.stream_publish(table_name, secret_dir=store)
    assert ev is not None  # without an interval it always publishes
    return ev


# --- reading ---

def is_stream(table_name: str, *, secret_dir: Optional[PathLike] = None) -> bool:
    """True when ``table_name`` is a streaming table in the store."""
    return bool(_core.stream_exists(table_name, secret_dir=_path(secret_dir)))


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
    """The rows of stream ``table_name`` (``selection`` as :class:`~.partial.Selection`)
    as one Arrow table of many batches, zero-copy from the mapped chunks. Rows and time
    ranges are first narrowed to the chunks that hold them (a time range by the ranges
    recorded on the chunks); a time range then keeps the rows with ``start <= t < end``
    (a filter, not a binary search: appenders interleave, so a stream is not sorted)."""
    sel = selection or Selection()
    store = _path(secret_dir)
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
            schema = _known_schema(_store(secret_dir), table_name)
            ctype = schema.field(time_column).type if schema is not None and time_column in schema.names else None
            kwargs.update(t_start=_int_bound(sel.start, ctype), t_end=_int_bound(sel.end, ctype))
    info, data = _core.stream_read(table_name, secret_dir=store, **kwargs)
    table = convert.restore_arrow(pa.table(data))
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
    Every chunk is yielded once, also across a ``compact_stream``."""
    _core.check_table_name(table_name)
    # Made now, not at the first next(): "from now on" means from this call.
    follower = _core.StreamFollower(table_name, secret_dir=_path(secret_dir), from_start=from_start,
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
    store = _path(secret_dir)
    if source_column == "auto":
        schema = _known_schema(_store(secret_dir), table_name)
        source_column = SOURCE_COLUMN if schema is not None and SOURCE_COLUMN in schema.names else None
    report = _core.stream_compact(table_name, secret_dir=store, source_column=source_column,
                                  compression=compression)
    return report


def remove_stream(table_name: str, *, secret_dir: Optional[PathLike] = None) -> int:
    """Removes stream ``table_name``: its chunks, its log and its v1 versions. Returns
    the number of chunks freed."""
    _core.check_table_name(table_name)
    store = _store(secret_dir)
    _SCHEMAS.pop((store, table_name), None)
    with _PUBLISHER._lock:
        _PUBLISHER._dirty.pop((store, table_name), None)
    return int(_core.stream_remove(table_name, secret_dir=store))


# --- Writer: buffered appends in a background thread, panoply's SDK model ---

Handler = Callable[..., Any]
_EVENTS = ("send", "flush", "error", "*")


class WriterClosedError(AllyeError):
    """``write`` on a closed :class:`Writer`."""


class Writer:
    """Buffered appends to stream ``table_name``: ``write`` returns at once; a
    background thread converts the buffered rows to Arrow and appends them as one chunk
    every ``flush_interval`` seconds, when ``max_rows`` rows or about ``max_bytes`` bytes
    are buffered, on ``flush()``, on ``close()`` (also as a context manager) and at
    interpreter exit (also in a ``multiprocessing`` child).

    Events (``on(name, handler)``): ``"send"`` just before a chunk is appended
    (``handler(table)``), ``"flush"`` just after (``handler(line)``), ``"error"`` when an
    append fails (``handler(exc)``), ``"*"`` every event (``handler(name, arg)``). An
    error in the background is delivered to the ``error`` handlers and raised from the
    next ``write``, ``flush`` or ``close``: it is never lost. The input is never
    mutated (records are copied when written)."""

    def __init__(
        self,
        table_name: str,
        *,
        secret_dir: Optional[PathLike] = None,
        flush_interval: float = DEFAULT_FLUSH_INTERVAL_SEC,
        max_rows: int = _core.DEFAULT_WRITER_MAX_ROWS,
        max_bytes: int = _core.DEFAULT_WRITER_MAX_BYTES,
        time_column: Optional[str] = None,
        publish: bool = True,
        publish_interval_sec: float = DEFAULT_PUBLISH_INTERVAL_SEC,
    ) -> None:
        _core.check_table_name(table_name)
        if not flush_interval > 0:
            raise InvalidArgumentError(f"flush_interval must be > 0 seconds, got {flush_interval!r}")
        for name, value in (("max_rows", max_rows), ("max_bytes", max_bytes)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidArgumentError(f"{name} must be an int >= 1, got {value!r}")
        self.table_name = table_name
        self._store = _store(secret_dir)
        self.flush_interval = float(flush_interval)
        self.max_rows = max_rows
        self.max_bytes = max_bytes
        self._time_column = time_column
        self._publish = publish
        self._publish_interval = publish_interval_sec
        self._handlers: dict[str, list[Handler]] = {e: [] for e in _EVENTS}
        self._cond = threading.Condition()
        self._io = threading.Lock()  # one append at a time, in buffer order
        self._buffer: list[Any] = []
        self._rows = 0
        self._bytes = 0
        self._error: Optional[BaseException] = None
        self._closed = False
        self._flush_requested = False
        self._pid = os.getpid()
        self._thread = threading.Thread(target=self._run, name=f"adc-writer-{table_name}", daemon=True)
        self._thread.start()
        _OPEN_WRITERS.add(self)

    # events
    def on(self, evname: str, handler: Handler) -> "Writer":
        """Adds ``handler`` for ``evname`` (``send``, ``flush``, ``error`` or ``*``)."""
        if evname not in _EVENTS:
            raise InvalidArgumentError(f"unknown event {evname!r}; known: {', '.join(_EVENTS)}")
        if not callable(handler):
            raise InvalidArgumentError(f"the handler of {evname!r} must be callable")
        self._handlers[evname].append(handler)
        return self

    def _emit(self, evname: str, arg: Any) -> None:
        for h in list(self._handlers[evname]):
            try:
                h(arg)
            except Exception:  # noqa: BLE001 - a handler's failure must not stop the writer
                logger.exception("a %r handler of Writer(%r) raised", evname, self.table_name)
        for h in list(self._handlers["*"]):
            try:
                h(evname, arg)
            except Exception:  # noqa: BLE001
                logger.exception("a '*' handler of Writer(%r) raised", self.table_name)

    def _raise_pending(self) -> None:
        if self._error is not None:
            err, self._error = self._error, None
            raise err

    # writing
    @staticmethod
    def _size(item: Any) -> tuple[int, int]:
        if isinstance(item, pa.Table):
            return item.num_rows, int(item.nbytes)
        if isinstance(item, Mapping):
            return 1, 64 + 16 * len(item)
        return len(item), 80 * len(item)

    def write(self, data: Any) -> None:
        """Buffers ``data``: a dict record, a list of records, a DataFrame or Arrow data.
        Returns at once (a frame is converted to Arrow here, records are copied)."""
        self._raise_pending()
        if self._closed:
            raise WriterClosedError(f"Writer({self.table_name!r}) is closed; make a new one")
        if isinstance(data, Mapping):
            item: Any = dict(data)
        elif isinstance(data, (list, tuple)):
            if not all(isinstance(r, Mapping) for r in data):
                raise InvalidInputError("write takes a dict record, a list of dict records, a DataFrame or Arrow data")
            item = [dict(r) for r in data]
        else:
            item = _to_table(data, None)
        rows, size = self._size(item)
        with self._cond:
            self._buffer.append(item)
            self._rows += rows
            self._bytes += size
            if self._rows >= self.max_rows or self._bytes >= self.max_bytes:
                self._flush_requested = True
                self._cond.notify()

    def _take(self) -> list[Any]:
        with self._cond:
            items, self._buffer = self._buffer, []
            self._rows = self._bytes = 0
            self._flush_requested = False
            return items

    def _append_items(self, items: list[Any]) -> None:
        """Appends the items as one chunk (records grouped into tables in order)."""
        if not items:
            return
        schema = _known_schema(self._store, self.table_name)
        tables: list[pa.Table] = []
        records: list[Any] = []
        for item in items:
            if isinstance(item, pa.Table):
                if records:
                    tables.append(_to_table(records, schema))
                    records = []
                tables.append(item)
            elif isinstance(item, Mapping):
                records.append(item)
            else:
                records.extend(item)
        if records:
            tables.append(_to_table(records, schema))
        if schema is None:
            schema = tables[0].schema
        tables = [t if t.schema.equals(schema) else _to_table(t, schema) for t in tables]
        try:
            table = tables[0] if len(tables) == 1 else pa.concat_tables(tables, promote_options="none")
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            columns = sorted({", ".join(t.schema.names) for t in tables})
            raise InvalidArgumentError(
                f"Writer({self.table_name!r}) was given rows of different columns ({' | '.join(columns)}): "
                f"write rows of the stream's columns (a DataFrame's index counts as a column unless it is a "
                f"RangeIndex): {exc}") from exc
        self._emit("send", table)
        line = append(self.table_name, table, secret_dir=self._store, time_column=self._time_column,
                      publish=self._publish, publish_interval_sec=self._publish_interval)
        self._emit("flush", line)

    def _flush_once(self) -> None:
        with self._io:
            items = self._take()
            try:
                self._append_items(items)
            except Exception as exc:  # noqa: BLE001 - delivered, then raised from the next call
                self._error = exc
                logger.warning("Writer(%r): %d buffered item(s) could not be appended: %s",
                               self.table_name, len(items), exc)
                self._emit("error", exc)

    def _run(self) -> None:
        while True:
            with self._cond:
                if not self._closed and not self._flush_requested:
                    self._cond.wait(self.flush_interval)
                closed = self._closed
            self._flush_once()
            if closed:
                return

    def flush(self) -> None:
        """Appends everything buffered now; raises a pending background error."""
        self._raise_pending()
        self._flush_once()
        self._raise_pending()

    def close(self) -> None:
        """Flushes, stops the thread and publishes the stream (v1); idempotent. Raises a
        pending background error."""
        if not self._closed:
            with self._cond:
                self._closed = True
                self._cond.notify()
            if os.getpid() == self._pid:
                self._thread.join()
            self._flush_once()
            _OPEN_WRITERS.discard(self)
            if self._publish:
                try:
                    _PUBLISHER.publish_now(self._store, self.table_name)
                except AllyeError as exc:
                    if not isinstance(exc, KeyError):  # nothing appended: nothing to publish
                        self._error = self._error or exc
        self._raise_pending()

    @property
    def closed(self) -> bool:
        return self._closed

    def __enter__(self) -> "Writer":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"{self._rows} row(s) buffered"
        return f"Writer({self.table_name!r}, {state})"


_OPEN_WRITERS: "weakref.WeakSet[Any]" = weakref.WeakSet()


def _close_at_exit() -> None:
    """Flushes every open writer of this process, then publishes what it appended."""
    for w in list(_OPEN_WRITERS):
        if getattr(w, "_pid", None) != os.getpid():
            continue
        try:
            w.close()
        except Exception as exc:  # noqa: BLE001 - at exit: say it, go on
            logger.error("%r could not flush at exit: %s", w, exc)
            print(f"allye_data_connector: {w!r} could not flush at exit: {exc}", file=sys.stderr)
    _PUBLISHER.flush_all()


def _register_exit_hooks(_: object = None) -> None:
    # multiprocessing children leave through os._exit, which skips atexit; their exit
    # runs the finalizers registered this way. A forked child starts with none (its
    # bootstrap clears the registry), hence the re-registration after each fork.
    multiprocessing.util.Finalize(None, _close_at_exit, exitpriority=100)


class _ForkHook:
    """An object for ``register_after_fork`` to hold (it keeps a weak reference)."""


_FORK_HOOK = _ForkHook()
atexit.register(_close_at_exit)
_register_exit_hooks()
multiprocessing.util.register_after_fork(_FORK_HOOK, _register_exit_hooks)


# --- the log fast path (ataraxis' LogPackage): fixed schema, arrays built in bulk ---

def log_table(source_ids: Any, timestamps: Any, payloads: Any) -> pa.Table:
    """A table of the log schema (``source_id`` uint8, ``timestamp`` uint64 ns,
    ``payload`` binary) from sequences or NumPy arrays; payloads are bytes or uint8
    NumPy arrays. Built by pyarrow in bulk (no per-message Python object)."""
    src = pa.array(np.asarray(source_ids, dtype=np.uint8))
    ts = pa.array(np.asarray(timestamps, dtype=np.uint64))
    if isinstance(payloads, np.ndarray) and payloads.ndim == 2 and payloads.dtype == np.uint8:
        width = payloads.shape[1]
        offsets = pa.array(np.arange(0, (len(payloads) + 1) * width, width, dtype=np.int32))
        pay = pa.BinaryArray.from_buffers(pa.binary(), len(payloads),
                                          [None, offsets.buffers()[1], pa.py_buffer(np.ascontiguousarray(payloads))])
    else:
        pay = pa.array([p.tobytes() if isinstance(p, np.ndarray) else bytes(p) for p in payloads], pa.binary())
    if not len(src) == len(ts) == len(pay):
        raise InvalidArgumentError(
            f"source_ids, timestamps and payloads differ in length ({len(src)}, {len(ts)}, {len(pay)})")
    return pa.Table.from_arrays([src, ts, pay], schema=LOG_SCHEMA)


def append_log(table_name: str, source_ids: Any, timestamps: Any, payloads: Any, *,
               secret_dir: Optional[PathLike] = None, publish: bool = True) -> Optional[_core.Chunk]:
    """Appends many log messages as one chunk of the log schema (see :func:`log_table`);
    the chunk records its time range, so ``start``/``end`` loads skip other chunks."""
    return append(table_name, log_table(source_ids, timestamps, payloads), secret_dir=secret_dir,
                  time_column=TIME_COLUMN, publish=publish)


class LogWriter:
    """Buffered log messages (source id, uint64 ns time stamp, payload) for one stream,
    appended in bulk from a background thread (:class:`Writer`'s rules: flush on
    interval, size, ``flush()``, ``close()`` and exit; errors raised from the next call).
    Messages are kept as three plain lists until a flush builds the Arrow arrays."""

    def __init__(self, table_name: str, *, secret_dir: Optional[PathLike] = None,
                 flush_interval: float = DEFAULT_FLUSH_INTERVAL_SEC, max_rows: int = _core.DEFAULT_WRITER_MAX_ROWS,
                 publish: bool = True) -> None:
        self._writer = Writer(table_name, secret_dir=secret_dir, flush_interval=flush_interval, max_rows=max_rows,
                              time_column=TIME_COLUMN, publish=publish)
        self._src: list[int] = []
        self._ts: list[int] = []
        self._pay: list[bytes] = []
        self._lock = threading.Lock()
        # The writer's buffer holds our lists' snapshots as tables: hook its flush.
        self._writer._take = self._take  # type: ignore[method-assign]

    def _take(self) -> list[Any]:
        with self._lock:
            src, ts, pay = self._src, self._ts, self._pay
            self._src, self._ts, self._pay = [], [], []
        with self._writer._cond:
            self._writer._flush_requested = False
        if not src:
            return []
        return [log_table(src, ts, pay)]

    def put(self, source_id: Any, timestamp: Any, payload: Any) -> None:
        """Buffers one message; returns at once."""
        w = self._writer
        w._raise_pending()
        if w._closed:
            raise WriterClosedError(f"LogWriter({w.table_name!r}) is closed")
        data = payload.tobytes() if isinstance(payload, np.ndarray) else bytes(payload)
        with self._lock:
            self._src.append(int(source_id))
            self._ts.append(int(timestamp))
            self._pay.append(data)
            full = len(self._src) >= w.max_rows
        if full:
            with w._cond:
                w._flush_requested = True
                w._cond.notify()

    def on(self, evname: str, handler: Handler) -> "LogWriter":
        self._writer.on(evname, handler)
        return self

    def flush(self) -> None:
        self._writer.flush()

    def close(self) -> None:
        self._writer.close()

    @property
    def closed(self) -> bool:
        return self._writer.closed

    def __enter__(self) -> "LogWriter":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
