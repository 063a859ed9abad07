"""``load()``: runs a data source into a table.

Each batch the source returns is converted to Arrow and handed to the core, which writes
it into the new version's payload file at once (``_core.send_stream``): a source larger
than memory is never held whole, and nothing is published before the end. Cancel, Ctrl-C,
an error of the source or of the store remove the partial payload; the previous version
stays the current one.

Incremental state (the cursor column and the largest value loaded) is recorded in the
``ready`` line's metadata under ``_core.METADATA_LOAD``: the same append that publishes
the rows, so a crash between reading and committing can neither skip nor duplicate rows.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from typing import Any, Callable, Iterator, Mapping, Optional, Union

import pyarrow as pa
import pyarrow.compute as pc

from . import _core, settings as _settings
from .errors import AllyeError, InvalidArgumentError, SourceError, TableNotFoundError
from .progress import Cancel, is_cancelled
from .sources import DEFAULT_BATCH_ROWS, DataSource, resolve

logger = logging.getLogger(__name__)

MODES = ("replace", "append")
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


def _previous(table: str, secret_dir: Optional[str]) -> tuple[Optional[dict[str, Any]], Optional[pa.Table]]:
    """The table's current version (event, mapped Arrow table), or (None, None)."""
    try:
        event, data = _core.get_live(table, secret_dir=secret_dir, record_read=False)
    except TableNotFoundError:
        return None, None
    return event, pa.table(data)


def append_batches(previous: Optional[pa.Table], new: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """The seam of ``mode="append"``: the batches of the new version, the previous
    version's rows (read from its mapping, so never held twice) and then the new ones.
    When streaming tables (``adc.append``) exist, this is the one place to point at them."""
    if previous is not None:
        yield from previous.to_batches()
    yield from new


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
) -> dict[str, Any]:
    """Runs ``source`` into ``table`` and returns ``{"table_name", "rows", "rows_loaded",
    "id", "cursor", "last_cursor"}``.

    ``source`` is a :class:`~.sources.DataSource` or a URI / path (``data.csv``, a Parquet
    directory, ``postgresql://...``; ``params`` are its parameters, see ``adc sources``).
    ``mode="replace"`` publishes one new version of the source's rows at the end;
    ``mode="append"`` publishes the previous rows plus the new ones, and with a cursor
    column reads only rows past the last value loaded (kept with the rows, see the module
    docs). ``progress``: True shows a bar on stderr in a terminal or Jupyter, a callable
    gets ``progress(done, total)`` (``total`` None while unknown), False shows nothing.
    ``cancel`` (a ``threading.Event`` or a callable returning True) is checked between
    batches: :class:`~.errors.CancelledError`, and the previous version stays current.
    A source that raises gives :class:`~.errors.SourceError` (its own ``AllyeError`` as
    it is), likewise leaving the previous version intact.
    """
    if isinstance(batch_rows, bool) or not isinstance(batch_rows, int) or batch_rows < 1:
        raise InvalidArgumentError(f"batch_rows must be a positive int, got {batch_rows!r}")
    if mode not in MODES:
        raise InvalidArgumentError(f"mode={mode!r}: use one of {', '.join(MODES)}")
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
        return _run(src, table, store, progress=progress, cancel=cancel, mode=mode, batch_rows=batch_rows,
                    metadata=metadata, producer=producer, compression=compression, ttl_sec=ttl_sec,
                    durable=durable)
    finally:
        try:
            src.close()
        except Exception as e:  # the load's own outcome is what the caller hears about
            logger.warning("closing the source %s failed: %s", src.describe(), src.redact(str(e)))


def _run(src: DataSource, table: str, store: Optional[str], *, progress: Any, cancel: Optional[Cancel],
         mode: str, batch_rows: int, metadata: Optional[dict[str, Any]], producer: str,
         compression: Optional[str], ttl_sec: Optional[int], durable: bool) -> dict[str, Any]:
    eff = _settings.effective(_core.resolve_store(store), compression=compression, default_ttl_sec=ttl_sec)
    key = _core.METADATA_LOAD
    prev_event, prev = _previous(table, store) if mode == "append" else (None, None)
    state = dict((prev_event or {}).get("metadata", {}).get(key) or {})
    cursor = src.cursor
    last: Optional[pa.Scalar] = None
    if mode == "append" and cursor and prev is not None:
        if cursor not in prev.schema.names:
            raise SourceError(f"the table {table!r} has no column {cursor!r} to resume from")
        if state.get("cursor") == cursor and state.get("last") is not None:
            last = _decode_cursor(state["last"], prev.schema.field(cursor).type)
        elif prev.num_rows:
            # A table loaded without state (replace, or sent): resume after what it holds.
            last = pc.max(prev[cursor])
        if last is not None and last.is_valid:
            src.last_cursor = last.as_py()
        else:
            last = None

    described = src.describe()
    bar = _Bar(progress, f"loading {table}")
    seen: dict[str, Any] = {"loaded": None, "total": None, "msg": "", "state": None}

    def on_progress(p: Mapping[str, Any]) -> None:
        seen.update(loaded=p.get("loaded"), total=p.get("total"), msg=p.get("msg") or "")

    def on_state(s: Mapping[str, Any]) -> None:
        seen["state"] = {"stateId": s.get("stateId"), "state": s.get("state")}

    src.on("progress", on_progress)
    src.on("source-state", on_state)
    counts = {"rows": 0}
    raised: list[BaseException] = []
    best: list[Optional[pa.Scalar]] = [last]

    def pull() -> Iterator[pa.RecordBatch]:
        while True:
            if is_cancelled(cancel):
                from .errors import CancelledError

                raise CancelledError(f"the load into {table!r} was cancelled; its previous version is intact")
            result = src.read(batch_rows)
            if result is None:
                return
            yield from _to_batches(result, schema_box[0])

    def tracked(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for b in batches:
            if cursor:
                if cursor not in b.schema.names:
                    raise SourceError(f"the source's rows have no cursor column {cursor!r}")
                if last is not None:
                    b = b.filter(pc.greater(b[cursor], last.cast(b.schema.field(cursor).type)))
                    if not b.num_rows:
                        continue
                m = pc.max(b[cursor])
                if m.is_valid and (best[0] is None or pc.greater(m, best[0].cast(m.type)).as_py()):
                    best[0] = m
            counts["rows"] += b.num_rows
            done, total = (seen["loaded"], seen["total"]) if seen["loaded"] is not None else (counts["rows"], None)
            bar.update(int(done), None if total is None else int(total), seen["msg"] or f"{counts['rows']:,} rows")
            yield b

    schema_box: list[Optional[pa.Schema]] = [prev.schema if prev is not None else None]
    try:
        # The first batch fixes the schema (unless the table or the source already says).
        first: list[pa.RecordBatch] = []
        if schema_box[0] is None:
            schema_box[0] = src.schema()
        feed = pull()
        if schema_box[0] is None:
            for b in feed:
                first.append(b)
                break
            schema_box[0] = first[0].schema if first else pa.schema([])
        schema = schema_box[0]

        def chained() -> Iterator[pa.RecordBatch]:
            yield from first
            yield from feed

        def guarded() -> Iterator[pa.RecordBatch]:
            # Exceptions raised here reach the core as a failed stream; keep the original.
            try:
                yield from append_batches(prev, tracked(chained()))
            except BaseException as e:
                raised.append(e)
                raise

        loaded: dict[str, Any] = {"source": described, "mode": mode}
        if cursor:
            loaded["cursor"] = cursor

        def finish() -> dict[str, Any]:
            if is_cancelled(cancel):
                from .errors import CancelledError

                raise CancelledError(f"the load into {table!r} was cancelled; its previous version is intact")
            done = dict(loaded, rows_loaded=counts["rows"])
            if cursor:
                done["last"] = None if best[0] is None else _encode_cursor(best[0])
            if seen["state"] is not None:
                done["state"] = seen["state"]
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
        bar.update(counts["rows"], counts["rows"], f"{counts['rows']:,} rows loaded")
    except (AllyeError, KeyboardInterrupt, SystemExit):
        raise
    except Exception as e:
        raise SourceError(f"the source {described} failed: {src.redact(str(e))}") from e
    finally:
        bar.close()
    rows = event["payload"]["shape"][0]
    logger.info("loaded %d rows from %s into %r (%d rows)", counts["rows"], described, table, rows)
    return {
        "table_name": table, "rows": rows, "rows_loaded": counts["rows"], "id": event["id"],
        "cursor": cursor, "last_cursor": None if best[0] is None else best[0].as_py(),
    }


def cancel_event() -> threading.Event:
    """A fresh cancel token for :func:`load` (set it from another thread to cancel)."""
    return threading.Event()
