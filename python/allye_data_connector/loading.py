"""``load()``: runs a data source into a table.

``mode="replace"``: each batch the source returns is converted to Arrow and handed to the
core, which writes it into the new version's payload file at once
(``_core.send_stream``): a source larger than memory is never held whole, and nothing
is published before the end. Cancel, Ctrl-C, an error of the source or of the store
remove the partial payload; the previous version stays the current one. The incremental
state (cursor column, largest value loaded) is recorded in the ``ready`` line's
metadata under ``_core.METADATA_LOAD``: the same append that publishes the rows.

``mode="append"``: the batches become chunks of the streaming table of that name as
they arrive (``_core.stream_append``), and every chunk line carries the state under the
same key: the line that makes a chunk's rows visible records how far the load got, so
a kill, cancel or error after chunk k resumes after chunk k (``_run_append``).
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from typing import Any, Callable, Iterator, Mapping, Optional, Sequence, Union

import pyarrow as pa
import pyarrow.compute as pc

from . import _core, settings as _settings
from .errors import AllyeError, CancelledError, InvalidArgumentError, SourceError, TableNotFoundError
from .progress import Cancel, is_cancelled
from .sources import DEFAULT_BATCH_ROWS, DataSource, resolve

logger = logging.getLogger(__name__)

MODES = ("replace", "append")
#: Size at which an append's group of batches becomes a chunk (the stream Writer's).
DEFAULT_CHUNK_BYTES: int = _core.DEFAULT_WRITER_MAX_BYTES
#: ``progress(done, total)``: ``total`` None while unknown.
LoadProgress = Callable[[int, Optional[int]], object]


def _to_batches(result: Any, schema: Optional[pa.Schema]) -> list[pa.RecordBatch]:
    """What ``read(n)`` returned, as record batches of ``schema`` (when known)."""
    if isinstance(result, pa.RecordBatch):
        batches = [result]
    elif isinstance(result, pa.Table):
        batches = result.to_batches()
    elif isinstance(result, list):
        if not result:
            return []
        if not all(isinstance(r, Mapping) for r in result):
            raise SourceError("read() returned a list that is not of records (dicts)")
        batches = pa.Table.from_pylist(result, schema=schema).to_batches() if schema is not None else \
            pa.Table.from_pylist(result).to_batches()
    elif hasattr(result, "__arrow_c_stream__") and not _is_pandas(result):
        batches = pa.table(result).to_batches()
    elif _is_pandas(result):
        batches = pa.Table.from_pandas(result, preserve_index=False).to_batches()
    else:
        raise SourceError(
            f"read() returned a {type(result).__name__}: return a pyarrow RecordBatch or Table, "
            "a pandas DataFrame, a list of dicts, or None at the end")
    if schema is not None:
        try:
            batches = [b if b.schema.equals(schema) else _cast(b, schema) for b in batches]
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, KeyError, ValueError) as e:
            raise SourceError(f"a batch's columns do not match the table's ({schema}): {e}") from e
    return [b for b in batches if b.num_rows]


def _cast(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    return pa.Table.from_batches([batch]).select(schema.names).cast(schema).combine_chunks().to_batches()[0]


def _is_pandas(obj: Any) -> bool:
    return type(obj).__module__.startswith("pandas") and hasattr(obj, "columns")


def _encode_cursor(value: pa.Scalar) -> Any:
    """A cursor value as JSON: temporal values as their integer (cast back by the column's
    type), the rest as Python values."""
    t = value.type
    if pa.types.is_temporal(t):
        return value.cast(pa.int64()).as_py() if not pa.types.is_date32(t) else value.cast(pa.int32()).as_py()
    return value.as_py()


def _decode_cursor(raw: Any, t: pa.DataType) -> pa.Scalar:
    if pa.types.is_temporal(t):
        base = pa.int32() if pa.types.is_date32(t) else pa.int64()
        return pa.scalar(raw, base).cast(t)
    return pa.scalar(raw).cast(t)


class _Bar:
    """The progress display: a rich bar on stderr in a terminal or Jupyter, a callback, or
    nothing."""

    def __init__(self, progress: Union[bool, LoadProgress, None], title: str):
        self.callback: Optional[LoadProgress] = progress if callable(progress) else None
        self._rich: Any = None
        self._task: Any = None
        if progress is True and _interactive():
            from rich.console import Console
            from rich.progress import (BarColumn, Progress, SpinnerColumn, TaskProgressColumn, TextColumn,
                                       TimeElapsedColumn)

            self._rich = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                                  TaskProgressColumn(), TextColumn("{task.fields[msg]}"), TimeElapsedColumn(),
                                  console=Console(stderr=True), transient=False)
            self._rich.start()
            self._task = self._rich.add_task(title, total=None, msg="")

    def update(self, done: int, total: Optional[int], msg: str = "") -> None:
        if self.callback is not None:
            self.callback(done, total)
        if self._rich is not None:
            self._rich.update(self._task, completed=done, total=total, msg=msg)

    def close(self) -> None:
        if self._rich is not None:
            # In Jupyter rich's stop() does not draw the last state (100%): draw it first.
            self._rich.refresh()
            self._rich.stop()


def _interactive() -> bool:
    if "ipykernel" in sys.modules:
        return True
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def load(
    source: Union[DataSource, str, "os.PathLike[str]"],
    table: str,
    *,
    progress: Union[bool, LoadProgress, None] = True,
    cancel: Optional[Cancel] = None,
    mode: str = "replace",
    params: Optional[Mapping[str, Any]] = None,
    secret_dir: Optional[Union[str, "os.PathLike[str]"]] = None,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    metadata: Optional[dict[str, Any]] = None,
    producer: str = _core.DEFAULT_PRODUCER,
    compression: Optional[str] = None,
    ttl_sec: Optional[int] = None,
    durable: bool = False,
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
    publish: bool = True,
) -> dict[str, Any]:
    """Runs ``source`` into ``table`` and returns ``{"table_name", "rows", "rows_loaded",
    "id", "cursor", "last_cursor"}``; in append mode ``"chunks"`` (appended now) too, and
    ``"id"`` is the publication's version (None when none was made).

    ``source`` is a :class:`~.sources.DataSource` or a URI / path (``data.csv``, a Parquet
    directory, ``postgresql://...``; ``params`` are its parameters, see ``adc sources``).

    ``mode="replace"`` publishes one new version of the source's rows at the end
    (``metadata``, ``producer``, ``compression``, ``ttl_sec`` are that version's).
    A table that is a stream (loaded with ``append`` before) is refused: remove it first.

    ``mode="append"`` appends the rows to the streaming table ``table`` as they arrive,
    in chunks of about ``chunk_bytes`` (or what arrived within the stream writer's flush
    interval), never rewriting earlier rows; a plain table becomes a stream whose first
    chunk is its current version. Each chunk's line records how far the load got (the
    cursor's last value, or the rows appended so far), so a load killed after chunk k
    resumes after chunk k's rows: nothing skipped, nothing twice. With a cursor column
    only rows past the last value loaded are read. ``publish`` (default) publishes the
    stream as a v1 version at the end, for 0.1.2 and the widgets (also when nothing new
    was appended but the v1 version lags the stream, as after a killed run).

    ``progress``: True shows a bar on stderr in a terminal or Jupyter, a callable gets
    ``progress(done, total)`` (``total`` None while unknown), False shows nothing.
    ``cancel`` (a ``threading.Event`` or a callable returning True) is checked between
    batches: :class:`~.errors.CancelledError`; a replace leaves the previous version
    current, an append keeps the chunks it appended (with their state) and drops the rest.
    A source that raises gives :class:`~.errors.SourceError` (its own ``AllyeError`` as
    it is), with the same guarantees.
    """
    if isinstance(batch_rows, bool) or not isinstance(batch_rows, int) or batch_rows < 1:
        raise InvalidArgumentError(f"batch_rows must be a positive int, got {batch_rows!r}")
    if isinstance(chunk_bytes, bool) or not isinstance(chunk_bytes, int) or chunk_bytes < 1:
        raise InvalidArgumentError(f"chunk_bytes must be a positive int, got {chunk_bytes!r}")
    if mode not in MODES:
        raise InvalidArgumentError(f"mode={mode!r}: use one of {', '.join(MODES)}")
    if mode == "append":
        given = [name for name, value, default in (
            ("metadata", metadata, None), ("producer", producer, _core.DEFAULT_PRODUCER),
            ("compression", compression, None), ("ttl_sec", ttl_sec, None)) if value != default]
        if given:
            raise InvalidArgumentError(
                f"{', '.join(given)} apply to mode='replace' (one new version); the chunks of mode='append' "
                "carry none: drop them, or load with mode='replace'")
    _core.check_table_name(table)
    owned = not isinstance(source, DataSource)
    if owned:
        if not isinstance(source, (str, os.PathLike)):
            raise InvalidArgumentError(
                f"source must be a DataSource or a URI/path, got {type(source).__name__}")
        src = resolve(os.fspath(source), params)
    else:
        if params:
            raise InvalidArgumentError("params= is for a source given as a URI; pass them to the DataSource")
        src = source  # type: ignore[assignment]
    store = None if secret_dir is None else os.path.expanduser(os.fspath(secret_dir))
    try:
        if mode == "append":
            return _run_append(src, table, str(_core.resolve_store(store)), progress=progress, cancel=cancel,
                               batch_rows=batch_rows, durable=durable, chunk_bytes=chunk_bytes, publish=publish)
        return _run(src, table, store, progress=progress, cancel=cancel, batch_rows=batch_rows,
                    metadata=metadata, producer=producer, compression=compression, ttl_sec=ttl_sec,
                    durable=durable)
    finally:
        try:
            src.close()
        except Exception as e:  # the load's own outcome is what the caller hears about
            logger.warning("closing the source %s failed: %s", src.describe(), src.redact(str(e)))


class _Feed:
    """What ``load`` shares between its modes: the source's batches as Arrow (cancel
    checked before each read), the progress display and the source's reported state."""

    def __init__(self, src: DataSource, table: str, progress: Any, cancel: Optional[Cancel], batch_rows: int,
                 cancelled: str) -> None:
        self.src, self.cancel, self.batch_rows, self.cancelled = src, cancel, batch_rows, cancelled
        self.schema: Optional[pa.Schema] = None
        self.bar = _Bar(progress, f"loading {table}")
        self.seen: dict[str, Any] = {"loaded": None, "total": None, "msg": "", "state": None}
        self.rows = 0
        src.on("progress", self._on_progress)
        src.on("source-state", self._on_state)

    def _on_progress(self, p: Mapping[str, Any]) -> None:
        self.seen.update(loaded=p.get("loaded"), total=p.get("total"), msg=p.get("msg") or "")

    def _on_state(self, s: Mapping[str, Any]) -> None:
        self.seen["state"] = {"stateId": s.get("stateId"), "state": s.get("state")}

    def check_cancel(self) -> None:
        if is_cancelled(self.cancel):
            raise CancelledError(self.cancelled)

    def pull(self) -> Iterator[pa.RecordBatch]:
        while True:
            self.check_cancel()
            result = self.src.read(self.batch_rows)
            if result is None:
                return
            yield from _to_batches(result, self.schema)

    def count(self, rows: int) -> None:
        self.rows += rows
        done, total = (self.seen["loaded"], self.seen["total"]) if self.seen["loaded"] is not None else (self.rows, None)
        self.bar.update(int(done), None if total is None else int(total), self.seen["msg"] or f"{self.rows:,} rows")

    def start(self) -> Iterator[pa.RecordBatch]:
        """The batches, after fixing the schema: the table's or the source's, else the
        first batch's (read here)."""
        if self.schema is None:
            self.schema = self.src.schema()
        feed = self.pull()
        first: list[pa.RecordBatch] = []
        if self.schema is None:
            for b in feed:
                first.append(b)
                break
            self.schema = first[0].schema if first else pa.schema([])

        def chained() -> Iterator[pa.RecordBatch]:
            yield from first
            yield from feed

        return chained()


def _newer(b: pa.RecordBatch, cursor: str, last: Optional[pa.Scalar]) -> pa.RecordBatch:
    if cursor not in b.schema.names:
        raise SourceError(f"the source's rows have no cursor column {cursor!r}")
    if last is None:
        return b
    return b.filter(pc.greater(b[cursor], last.cast(b.schema.field(cursor).type)))


def _larger(best: Optional[pa.Scalar], b: pa.RecordBatch, cursor: str) -> Optional[pa.Scalar]:
    m = pc.max(b[cursor])
    if m.is_valid and (best is None or pc.greater(m, best.cast(m.type)).as_py()):
        return m
    return best


def _run(src: DataSource, table: str, store: Optional[str], *, progress: Any, cancel: Optional[Cancel],
         batch_rows: int, metadata: Optional[dict[str, Any]], producer: str,
         compression: Optional[str], ttl_sec: Optional[int], durable: bool) -> dict[str, Any]:
    """``mode="replace"``: one new version, published by its ``ready`` line at the end."""
    if _core.stream_exists(table, secret_dir=store):
        raise InvalidArgumentError(
            f"{table!r} is a streaming table (loaded with mode='append'); a replace would not be seen by "
            f"its readers: keep appending (mode='append'), or remove_table({table!r}) first and load again")
    eff = _settings.effective(_core.resolve_store(store), compression=compression, default_ttl_sec=ttl_sec)
    key = _core.METADATA_LOAD
    cursor = src.cursor
    described = src.describe()
    feed = _Feed(src, table, progress, cancel, batch_rows,
                 f"the load into {table!r} was cancelled; its previous version is intact")
    raised: list[BaseException] = []
    best: list[Optional[pa.Scalar]] = [None]

    def tracked(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for b in batches:
            if cursor:
                b = _newer(b, cursor, None)
                best[0] = _larger(best[0], b, cursor)
            feed.count(b.num_rows)
            yield b

    try:
        batches = feed.start()
        schema = feed.schema
        assert schema is not None

        def guarded() -> Iterator[pa.RecordBatch]:
            # Exceptions raised here reach the core as a failed stream; keep the original.
            try:
                yield from tracked(batches)
            except BaseException as e:
                raised.append(e)
                raise

        loaded: dict[str, Any] = {"source": described, "mode": "replace"}
        if cursor:
            loaded["cursor"] = cursor

        def finish() -> dict[str, Any]:
            feed.check_cancel()
            done = dict(loaded, rows_loaded=feed.rows)
            if cursor:
                done["last"] = None if best[0] is None else _encode_cursor(best[0])
            if feed.seen["state"] is not None:
                done["state"] = feed.seen["state"]
            return {key: done}

        reader = pa.RecordBatchReader.from_batches(schema, guarded())
        try:
            event = _core.send_stream(
                reader, table, secret_dir=store, producer=producer, ttl_sec=eff.default_ttl_sec,
                compression=eff.compression, metadata={**(metadata or {}), key: loaded,
                                                       "shm_unlink_on_read": False},
                finish=finish, durable=durable, auto_gc=eff.auto_gc,
                auto_gc_grace_sec=eff.auto_gc_grace_sec, keep_versions=eff.keep_versions,
            )
        except BaseException as e:
            if raised and raised[0] is not e:
                cause = raised[0]
                if isinstance(cause, (AllyeError, KeyboardInterrupt, SystemExit)):
                    raise cause from None
                raise SourceError(f"the source {described} failed: {src.redact(str(cause))}") from cause
            raise
        feed.bar.update(feed.rows, feed.rows, f"{feed.rows:,} rows loaded")
    except (AllyeError, KeyboardInterrupt, SystemExit):
        raise
    except Exception as e:
        raise SourceError(f"the source {described} failed: {src.redact(str(e))}") from e
    finally:
        feed.bar.close()
    rows = event["payload"]["shape"][0]
    logger.info("loaded %d rows from %s into %r (%d rows)", feed.rows, described, table, rows)
    return {
        "table_name": table, "rows": rows, "rows_loaded": feed.rows, "id": event["id"],
        "cursor": cursor, "last_cursor": None if best[0] is None else best[0].as_py(),
    }


# --- mode="append": chunks of a streaming table, each carrying the load's state ---

def _adopt(table: str, store: str) -> None:
    """A plain table about to be appended to becomes a stream: its current version is the
    first chunk, with the load state its ``ready`` line had (a replace with a cursor, or
    an append of before streams), so the append resumes after it."""
    try:
        event, data = _core.get_live(table, secret_dir=store, record_read=False)
    except TableNotFoundError:
        return
    current = pa.table(data)
    if not current.num_rows:
        return
    state = ((event.get("metadata") or {}).get(_core.METADATA_LOAD) or None)
    _core.stream_append(current, table, secret_dir=store, load=dict(state) if state else None)
    logger.info("%r became a streaming table: its version %s is the first chunk (%d rows)",
                table, event["id"], current.num_rows)


def _resume_point(table: str, store: str, described: str, cursor: Optional[str],
                  lines: Sequence[Mapping[str, Any]], schema: Optional[pa.Schema]) -> tuple[Optional[pa.Scalar], int]:
    """Where this load starts: (rows must have a cursor above this, rows past it already
    appended by a load of the same source that was killed or cancelled)."""
    key = _core.METADATA_LOAD
    state = next((ln[key] for ln in reversed(lines)
                  if isinstance(ln.get(key), dict) and ln[key].get("source") == described
                  and ln[key].get("cursor") == cursor), None)
    if cursor is None:
        return None, int(state.get("skip", 0)) if state else 0
    if schema is None or not lines:
        return None, 0
    if cursor not in schema.names:
        raise SourceError(f"the table {table!r} has no column {cursor!r} to resume from")
    if state is not None and "last" in state:
        last = None if state["last"] is None else _decode_cursor(state["last"], schema.field(cursor).type)
        return last, int(state.get("skip", 0))
    # Rows appended without this source's state (adc.append, another source): resume
    # after the largest value the stream holds.
    column = pa.table(_core.stream_read(table, secret_dir=store)[1])[cursor]
    m = pc.max(column)
    return (m if m.is_valid else None), 0


def _published_rows(table: str, store: str) -> Optional[int]:
    """Rows of the stream's latest v1 publication (None: none)."""
    try:
        event = _core.latest(table, secret_dir=store)
    except TableNotFoundError:
        return None
    rows = ((event.get("metadata") or {}).get(_core.METADATA_STREAM) or {}).get("rows")
    return None if rows is None else int(rows)


def _order_by_cursor(src: DataSource) -> bool:
    """True when the source's rows come in cursor order (a SQL source with a cursor
    orders them itself). Then every row up to a chunk's largest value is in that chunk or
    an earlier one (a chunk never ends inside a run of equal values), and a run after a
    kill resumes with ``WHERE cursor > <that value>`` instead of re-reading the killed
    run's rows."""
    return bool(src.cursor) and bool(src.ordered_by_cursor)


def _run_append(src: DataSource, table: str, store: str, *, progress: Any, cancel: Optional[Cancel],
                batch_rows: int, durable: bool, chunk_bytes: int, publish: bool) -> dict[str, Any]:
    """``mode="append"``: the source's rows become chunks of stream ``table`` as they arrive.

    A group of batches is appended when the next batch arrives and the group holds
    ``chunk_bytes`` or is older than the flush interval; the last group at the end, with
    the final state. So every chunk but the last says ``{"last": <resume bound>, "skip":
    rows past it this load appended}`` and the last one ``{"last": <largest cursor>}``:
    a run after a kill re-reads from the same bound and drops the ``skip`` rows it
    already has. That holds for any source that returns its rows in the same order when
    read again (a file that only grows at its end, a paged API), whatever the order of
    the cursor values. A SQL source with a cursor orders its rows by it, so its chunks
    say ``{"last": <largest value so far>}`` and a re-run queries only past it; a group
    never ends inside a run of equal cursor values (the run moves to the next group), so
    no row of a tie is left behind."""
    lock = _wait_for_load_lock(table, store, cancel)
    try:
        return _append_locked(src, table, store, progress=progress, cancel=cancel, batch_rows=batch_rows,
                              durable=durable, chunk_bytes=chunk_bytes, publish=publish)
    finally:
        lock.release()


def _wait_for_load_lock(table: str, store: str, cancel: Optional[Cancel]) -> Any:
    """The stream's load lock: one appending load at a time (two would resume from the
    same state and append the same rows twice). Waits for another load to end."""
    waiting = False
    while True:
        lock = _core.stream_load_lock(table, secret_dir=store)
        if lock is not None:
            return lock
        if not waiting:
            logger.info("another load is appending to %r: waiting for it to end", table)
            waiting = True
        if is_cancelled(cancel):
            raise CancelledError(f"the load into {table!r} was cancelled while waiting for another load "
                                 "appending to it; nothing was appended")
        time.sleep(0.05)


def _append_locked(src: DataSource, table: str, store: str, *, progress: Any, cancel: Optional[Cancel],
                   batch_rows: int, durable: bool, chunk_bytes: int, publish: bool) -> dict[str, Any]:
    described = src.describe()
    cursor = src.cursor
    if not _core.stream_exists(table, secret_dir=store):
        _adopt(table, store)
    lines = _core.stream_chunks(table, secret_dir=store)
    schema = pa.table(_core.stream_read(table, secret_dir=store, row_start=0, row_end=0)[1]).schema if lines else None
    lower, skip = _resume_point(table, store, described, cursor, lines, schema)
    if lower is not None and not lower.is_valid:
        lower = None
    src.last_cursor = None if lower is None else lower.as_py()
    ordered = _order_by_cursor(src)
    feed = _Feed(src, table, progress, cancel, batch_rows, f"the load into {table!r} was cancelled")
    feed.schema = schema
    best: Optional[pa.Scalar] = lower
    flush_after = float(_core.DEFAULT_FLUSH_INTERVAL_SEC)
    appended = {"rows": 0, "chunks": 0, "skip": skip}
    committed: dict[str, Optional[pa.Scalar]] = {"max": lower}
    base: dict[str, Any] = {"source": described, "mode": "append"}
    if cursor:
        base["cursor"] = cursor

    def commit(group: list[pa.RecordBatch], final: bool) -> None:
        rows = sum(b.num_rows for b in group)
        if not rows:
            return
        state = dict(base, rows_loaded=appended["rows"] + rows)
        if final:
            if cursor:
                state["last"] = None if best is None else _encode_cursor(best)
        elif ordered:
            m = committed_max(group)
            state["last"] = None if m is None else _encode_cursor(m)
        else:
            if cursor:
                state["last"] = None if lower is None else _encode_cursor(lower)
            state["skip"] = appended["skip"] + rows
        if feed.seen["state"] is not None:
            state["state"] = feed.seen["state"]
        assert feed.schema is not None
        data = pa.Table.from_batches(group, feed.schema)
        _core.stream_append(data, table, secret_dir=store, durable=durable, load=state)
        appended["rows"] += rows
        appended["chunks"] += 1
        if not final:
            appended["skip"] += rows

    def committed_max(group: list[pa.RecordBatch]) -> Optional[pa.Scalar]:
        m = committed["max"]
        for b in group:
            m = _larger(m, b, str(cursor))
        committed["max"] = m
        return m

    def held_back(group: list[pa.RecordBatch], nxt: pa.RecordBatch) -> Optional[list[pa.RecordBatch]]:
        """The rows of ``group`` to carry into the next group: the run of values equal to
        the next batch's first cursor value at the group's end (None: the whole group)."""
        if not cursor:
            return []
        tail = group[-1][cursor]
        head = nxt[cursor][0]
        if not tail[len(tail) - 1].is_valid or not head.is_valid or tail[len(tail) - 1] != head:
            return []
        equal = pc.equal(tail, head.cast(tail.type)).to_pylist()
        i = len(equal)
        while i and equal[i - 1]:
            i -= 1
        if i == 0:
            return None
        group[-1], rest = group[-1].slice(0, i), group[-1].slice(i)
        return [rest]

    to_skip = skip
    group: list[pa.RecordBatch] = []
    started = 0.0
    try:
        try:
            for b in feed.start():
                if cursor:
                    b = _newer(b, cursor, lower)
                if to_skip and b.num_rows:
                    # Rows a killed run of this load appended already: dropped, but counted
                    # in the largest cursor value.
                    dropped, b = b.slice(0, to_skip), b.slice(to_skip)
                    to_skip -= dropped.num_rows
                    if cursor:
                        best = _larger(best, dropped, cursor)
                if not b.num_rows:
                    continue
                if group and (sum(g.nbytes for g in group) >= chunk_bytes
                              or time.monotonic() - started >= flush_after):
                    rest = held_back(group, b)
                    if rest is not None:
                        commit(group, final=False)
                        group = rest
                        started = time.monotonic()
                if not group:
                    started = time.monotonic()
                if cursor:
                    best = _larger(best, b, cursor)
                group.append(b)
                feed.count(b.num_rows)
            feed.check_cancel()
            commit(group, final=True)
            group = []
        except BaseException as e:
            kept = (f"; the {appended['rows']:,} rows appended before stay and the next append resumes after them"
                    if appended["rows"] else "; nothing was appended")
            if isinstance(e, CancelledError):
                raise CancelledError(f"the load into {table!r} was cancelled{kept}") from None
            if isinstance(e, (AllyeError, KeyboardInterrupt, SystemExit)):
                raise
            raise SourceError(f"the source {described} failed{kept}: {src.redact(str(e))}") from e
        feed.bar.update(feed.rows, feed.rows, f"{feed.rows:,} rows loaded")
    finally:
        feed.bar.close()
    event: Optional[_core.Version] = None
    total = sum(int(ln["rows"]) for ln in _core.stream_chunks(table, secret_dir=store))
    # Also when nothing was appended now: a killed run (or publish=False) may have left
    # chunks the v1 version does not hold yet.
    if publish and total and (appended["rows"] or _published_rows(table, store) != total):
        from . import streams

        event = streams.publish(table, secret_dir=store)
    logger.info("appended %d rows from %s to %r in %d chunks (%d rows)", appended["rows"], described, table,
                appended["chunks"], total)
    return {
        "table_name": table, "rows": total, "rows_loaded": appended["rows"],
        "id": None if event is None else event["id"], "chunks": appended["chunks"],
        "cursor": cursor, "last_cursor": None if best is None else best.as_py(),
    }


def cancel_event() -> threading.Event:
    """A fresh cancel token for :func:`load` (set it from another thread to cancel)."""
    return threading.Event()
