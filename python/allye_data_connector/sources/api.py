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
a kill, cancel or error after chunk k resumes after chunk k (:mod:`._append`).
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any, Iterator, Mapping, Optional, Union

import pyarrow as pa

from .. import _core, settings as _settings
from .._args import PathLike, int_arg, store_arg
from ..errors import AllyeError, CancelledError, InvalidArgumentError, SourceError
from ..progress import Cancel
from . import _append
from ._feed import Feed, LoadProgress, encode_cursor, larger, newer
from .base import DEFAULT_BATCH_ROWS, DataSource
from .registry import resolve

logger = logging.getLogger(__name__)

MODES = ("replace", "append")
#: Size at which an append's group of batches becomes a chunk (the stream Writer's).
DEFAULT_CHUNK_BYTES: int = _core.DEFAULT_WRITER_MAX_BYTES


def load(
    source: Union[DataSource, PathLike],
    table: str,
    *,
    progress: Union[bool, LoadProgress, None] = True,
    cancel: Optional[Cancel] = None,
    mode: str = "replace",
    params: Optional[Mapping[str, Any]] = None,
    secret_dir: Optional[PathLike] = None,
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

    ``source`` is a :class:`~.base.DataSource` or a URI / path (``data.csv``, a Parquet
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
    batches: :class:`~..errors.CancelledError`; a replace leaves the previous version
    current, an append keeps the chunks it appended (with their state) and drops the rest.
    A source that raises gives :class:`~..errors.SourceError` (its own ``AllyeError`` as
    it is), with the same guarantees.

    Args:
        source: A ``DataSource``, or a path or URI (``data.csv``, a Parquet directory,
            ``postgresql://...``, ``local.db``).
        table: The table to load into.
        progress: True: a progress bar in a terminal or Jupyter; a callable
            ``progress(done, total)``; False or None: nothing.
        cancel: A ``threading.Event`` or a callable returning True, checked between batches.
        mode: ``"replace"`` (one new version) or ``"append"`` (chunks of a stream).
        params: The source's parameters (``query``, ``table``, ``cursor``, ...; ``adc sources``).
        secret_dir: The store directory (else ``$ALLYE_SECRET_DIR``, else ``~/.allye_secrets``).
        batch_rows: Rows asked of the source per read.
        metadata: Metadata of the new version (``replace``).
        producer: The producer of the new version.
        compression: Compression of the payload file (None: the setting).
        ttl_sec: TTL of the new version.
        durable: fsync before publishing.
        chunk_bytes: Size of an appended chunk (``append``).
        publish: In ``append`` mode, also publish the stream as a v1 version.

    Returns:
        What was loaded: ``table_name``, ``rows``, ``rows_loaded``, ``id``, the cursor.

    Raises:
        SourceError: The source failed (a file, a query, a connection); the previous version is intact.
        MissingDependencyError: The source needs an extra that is not installed (``sql``).
        InvalidArgumentError: No source reads ``source``, or a bad parameter or mode.
        CancelledError: ``cancel`` was set (or Ctrl-C); nothing half-written is left.
    """
    int_arg("batch_rows", batch_rows, minimum=1)
    int_arg("chunk_bytes", chunk_bytes, minimum=1)
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
    store = store_arg(secret_dir)
    try:
        if mode == "append":
            return _append.run(src, table, str(_core.resolve_store(store)), progress=progress, cancel=cancel,
                               batch_rows=batch_rows, durable=durable, chunk_bytes=chunk_bytes, publish=publish)
        return _replace(src, table, store, progress=progress, cancel=cancel, batch_rows=batch_rows,
                    metadata=metadata, producer=producer, compression=compression, ttl_sec=ttl_sec,
                    durable=durable)
    finally:
        try:
            src.close()
        except Exception as e:  # the load's own outcome is what the caller hears about
            logger.warning("closing the source %s failed: %s", src.describe(), src.redact(str(e)))


def _replace(src: DataSource, table: str, store: Optional[str], *, progress: Union[bool, LoadProgress, None],
             cancel: Optional[Cancel], batch_rows: int, metadata: Optional[dict[str, Any]], producer: str,
             compression: Optional[str], ttl_sec: Optional[int], durable: bool) -> dict[str, Any]:
    """``mode="replace"``: one new version, published by its ``ready`` line at the end."""
    if _core.stream_exists(table, secret_dir=store):
        raise InvalidArgumentError(
            f"{table!r} is a streaming table (loaded with mode='append'); a replace would not be seen by "
            f"its readers: keep appending (mode='append'), or remove_table({table!r}) first and load again")
    eff = _settings.shared_for(store, compression=compression, default_ttl_sec=ttl_sec)
    key = _core.METADATA_LOAD
    cursor = src.cursor
    described = src.describe()
    feed = Feed(src, table, progress, cancel, batch_rows,
                f"the load into {table!r} was cancelled; its previous version is intact")
    raised: list[BaseException] = []
    best: list[Optional[pa.Scalar]] = [None]

    def tracked(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for b in batches:
            if cursor:
                b = newer(b, cursor, None)
                best[0] = larger(best[0], b, cursor)
            feed.count(b.num_rows)
            yield b

    def failure(e: BaseException) -> BaseException:
        """What the caller hears of ``e``, raised while the source was read: our own
        errors and interrupts as they are, anything else as :class:`SourceError`."""
        if isinstance(e, (AllyeError, KeyboardInterrupt, SystemExit)):
            return e
        wrapped = SourceError(f"the source {described} failed: {src.redact(str(e))}")
        wrapped.__cause__ = e
        return wrapped

    try:
        batches = feed.start()
        schema = feed.schema
        assert schema is not None

        def guarded() -> Iterator[pa.RecordBatch]:
            # An exception leaving this generator reaches the core through pyarrow, which
            # adds the whole Python traceback to the stream's error, and the core would
            # record that as the table's error reason. So the stream ends here, and
            # finish() raises what the caller hears: the core records its one line, and
            # the traceback goes to the log.
            try:
                yield from tracked(batches)
            except BaseException as e:
                raised.append(failure(e))
                if isinstance(e, (CancelledError, KeyboardInterrupt, SystemExit)):
                    logger.info("the load into %r stopped: %s", table, type(e).__name__ if not str(e) else e)
                else:
                    logger.warning("the source %s failed while loading %r", described, table, exc_info=e)

        loaded: dict[str, Any] = {"source": described, "mode": "replace"}
        if cursor:
            loaded["cursor"] = cursor

        def finish() -> dict[str, Any]:
            if raised:
                raise raised[0]
            feed.check_cancel()
            done = dict(loaded, rows_loaded=feed.rows)
            if cursor:
                done["last"] = None if best[0] is None else encode_cursor(best[0])
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
                raise raised[0] from None
            raise
        feed.show(feed.rows, feed.rows, f"{feed.rows:,} rows loaded")
    except (AllyeError, KeyboardInterrupt, SystemExit):
        raise
    except Exception as e:
        raise SourceError(f"the source {described} failed: {src.redact(str(e))}") from e
    finally:
        feed.close()
    rows = event["payload"]["shape"][0]
    logger.info("loaded %d rows from %s into %r (%d rows)", feed.rows, described, table, rows)
    return {
        "table_name": table, "rows": rows, "rows_loaded": feed.rows, "id": event["id"],
        "cursor": cursor, "last_cursor": None if best[0] is None else best[0].as_py(),
    }


def cancel_event() -> threading.Event:
    """A fresh cancel token for :func:`load` (set it from another thread to cancel)."""
    return threading.Event()
