"""The table calls: 0.1.2's (``send_dataframe``, ``get_dataframe``, ``list_tables``)
with their names, arguments, defaults and return values, and ours beside them
(``get_arrow``, ``describe_table``, ``remove_table``, ``store_path``, ``watch``), on the
Rust core. Each call checks its arguments, converts with :mod:`..frames`, and hands the
rest to ``_core``, whose vocabulary (defaults, transports, compressions, name rule) it
uses rather than repeats. A table name may name a stream (:mod:`..streams`): reads and
removal go there (:func:`_streams_of`)."""

from __future__ import annotations

import logging
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Optional, Sequence, cast

import pyarrow as pa

from .. import _core, _wait, frames, settings as _settings
from .._args import PathLike, int_arg, store_arg
from ..errors import InvalidArgumentError, NanFoundError
from ..frames import DtypeBackend, Selection
from ..progress import Cancel, Progress
from . import records, watching
from .canvas import notify_receiver

logger = logging.getLogger(__name__)


def send_dataframe(
    df: Any,
    table_name: Optional[str] = None,
    *,
    secret_dir: Optional[PathLike] = None,
    transport: str = "auto",
    max_shm_bytes: Optional[int] = None,
    chunk_rows: Optional[int] = None,
    ttl_sec: Optional[int] = None,
    shm_unlink_on_read: bool = True,
    notify_canvas: Optional[bool] = None,
    notify_create_widget: bool = True,
    notify_create_new_widget: bool = True,
    notify_refresh_manifest: bool = True,
    notify_timeout_sec: float = 1.0,
    metadata: Optional[dict[str, Any]] = None,
    producer: str = _core.DEFAULT_PRODUCER,
    compression: Optional[str] = None,
    durable: bool = False,
    progress: Optional[Progress] = None,
    cancel: Optional[Cancel] = None,
) -> str:
    """Sends a DataFrame under ``table_name`` and returns the name (generated when None).

    ``df`` may also be a ``pandas.Series`` (it comes back a Series, name and index kept)
    or Arrow data, sent as it is: a ``pyarrow.Table``, ``RecordBatch``,
    ``RecordBatchReader``, or any object with ``__arrow_c_stream__`` (a polars or duckdb
    frame, ...). What pyarrow's own round trip would lose of a frame (an index's
    ``freq``, ``string[python]`` and ``ArrowDtype(string)`` columns, bool column labels,
    ``allows_duplicate_labels=False``, the categories of a frame of no rows) is kept in
    the schema metadata and restored by a get.

    The frame is converted to Arrow once (index and column labels kept) and written once:
    into a shared-memory segment (``transport="shm"``, or ``"auto"`` when its Arrow size
    is at most ``max_shm_bytes``) or into an Arrow IPC file in ``<store>/payloads``: one
    record batch when uncompressed (so a get maps it without copying), batches of
    ``chunk_rows`` rows (``_core.DEFAULT_COMPRESSED_CHUNK_ROWS`` by default) when
    compressed or when ``chunk_rows`` is given. Files are uncompressed unless
    ``compression`` (one of ``_core.COMPRESSIONS``) or ``$ALLYE_ARROW_COMPRESSION`` says
    otherwise. ``durable=True`` fsyncs payload and manifest.

    ``max_shm_bytes``, ``chunk_rows``, ``compression``, ``ttl_sec`` and ``notify_canvas``
    left at None take the settings (environment, then ``<store>/settings.yaml``, then
    0.1.2's defaults: ``_core.DEFAULT_MAX_SHM_BYTES``, no compression, no TTL, notify;
    see ``adc config``).

    Older versions of the store's tables are freed by sends themselves (settings
    ``auto_gc``, ``auto_gc_grace_sec``, ``keep_versions``): after the new version is
    ready, a send frees a few versions that are not among the latest ``keep_versions``
    of their table and were superseded at least ``auto_gc_grace_sec`` seconds ago
    (``_core.DEFAULT_AUTO_GC_GRACE_SEC``), so a loop of sends holds a bounded amount of
    memory without calling :func:`gc`.

    ``progress(done_rows, total_rows)`` is called as the frame is converted (in chunks of
    :data:`~..frames.CONVERT_CHUNK_ROWS` rows) and once more after the write; ``cancel``
    (a ``threading.Event`` or a callable returning True) is checked between chunks and
    raises :class:`~..errors.CancelledError` before anything is written, so a cancelled
    send leaves no manifest line, segment or file. The write itself (memory speed) is not
    interrupted.

    Args:
        df: A pandas DataFrame or Series, or Arrow data (``pyarrow.Table``, ``RecordBatch``,
            ``RecordBatchReader``, anything with ``__arrow_c_stream__``).
        table_name: The table's name; None: a generated one.
        secret_dir: The store directory (else ``$ALLYE_SECRET_DIR``, else ``~/.allye_secrets``).
        transport: ``"auto"`` (shared memory up to ``max_shm_bytes``, else a file), ``"shm"`` or ``"file"``.
        max_shm_bytes: The largest Arrow size ``auto`` puts in shared memory (None: the setting).
        chunk_rows: Rows per record batch of a file payload (None: the setting).
        ttl_sec: Seconds the version is served (None: the ``default_ttl_sec`` setting).
        shm_unlink_on_read: Free the segment once a reader of ours has read it in full.
        notify_canvas: Tell a running Allye canvas about the table (None: the setting).
        notify_create_widget: 0.1.2's canvas notification flag.
        notify_create_new_widget: 0.1.2's canvas notification flag.
        notify_refresh_manifest: 0.1.2's canvas notification flag.
        notify_timeout_sec: How long the canvas notification may take.
        metadata: JSON-able metadata recorded with the version.
        producer: The producer recorded with the version (readers may pick by it).
        compression: ``"zstd"``, ``"lz4"`` or None for file payloads (None: the setting).
        durable: fsync the payload, its directory and the manifest before returning.
        progress: ``progress(done_rows, total_rows)``, called as the frame converts.
        cancel: A ``threading.Event`` or a callable returning True, checked between chunks.

    Returns:
        The table's name.

    Raises:
        InvalidInputError: ``df`` is not something that can be sent.
        ConversionError: A column cannot be converted to Arrow.
        InvalidArgumentError: An argument cannot be used (a bad name, transport or size).
        StorageFullError: The device filled up; nothing is left behind.
        StoreNotPrivateError: The store is not private to this user.
        CancelledError: ``cancel`` was set; nothing was written.
    """
    if table_name is not None and not isinstance(table_name, str):
        raise InvalidArgumentError(f"table_name must be a str or None, got {type(table_name).__name__}")
    _core.check_transport(transport)
    for name, value, minimum in (("max_shm_bytes", max_shm_bytes, 1), ("chunk_rows", chunk_rows, 0), ("ttl_sec", ttl_sec, 0)):
        if value is not None:
            int_arg(name, value, minimum=minimum)
    store = store_arg(secret_dir)
    eff = _settings.shared_for(
        store, max_shm_bytes=max_shm_bytes, chunk_rows=chunk_rows,
        compression=compression, default_ttl_sec=ttl_sec, notify_canvas=notify_canvas,
    )
    encoded = frames.encode(df, progress=progress, cancel=cancel, defer_nan=True)
    try:
        event = _send_encoded(encoded, store, table_name, producer, transport, metadata, shm_unlink_on_read, durable, eff)
    except NanFoundError:
        # A float column holds NaN: send it with the NaN as nulls (nothing was written).
        encoded = frames.encode(df, progress=progress, cancel=cancel)
        event = _send_encoded(encoded, store, table_name, producer, transport, metadata, shm_unlink_on_read, durable, eff)
    rows, _ = encoded.shape
    if progress is not None:
        progress(int(rows), int(rows))
    if event is None:  # asked for none: the name was given
        assert table_name is not None
        sent = table_name
    else:
        sent = event["table_name"]
        logger.debug("sent %r as %s (%d bytes)", sent, event["payload"]["transport"], event["payload"]["data_size"])
    if eff.notify_canvas:
        notify_receiver(
            sent,
            create_if_missing=notify_create_widget,
            create_new=notify_create_new_widget,
            refresh_manifest=notify_refresh_manifest,
            timeout_sec=notify_timeout_sec,
        )
    return sent


def _send_encoded(
    encoded: frames.Encoded, store: Optional[str], table_name: Optional[str], producer: str, transport: str,
    metadata: Optional[dict[str, Any]], shm_unlink_on_read: bool, durable: bool, eff: _settings.Settings,
) -> Optional[_core.Version]:
    """``_core.send`` of a converted frame, with the settings in force; the ``ready`` event
    only when it is read (the name is generated, or the debug log shows it)."""
    rows, cols = encoded.shape
    return _core.send(
        encoded.table,
        secret_dir=store,
        table_name=table_name,
        producer=producer,
        transport=transport,
        max_shm_bytes=eff.max_shm_bytes,
        chunk_rows=eff.chunk_rows,  # None: the core's default for the compression
        ttl_sec=eff.default_ttl_sec,
        compression=eff.compression,
        metadata={**(metadata or {}), "shm_unlink_on_read": bool(shm_unlink_on_read)},
        shape=(int(rows), int(cols)),
        schema_sha256=encoded.schema_sha256,
        durable=durable,
        auto_gc=eff.auto_gc,
        auto_gc_grace_sec=eff.auto_gc_grace_sec,
        keep_versions=eff.keep_versions,
        pool_max_bytes=eff.pool_max_bytes,
        reject_nan=list(encoded.reject_nan),
        record=table_name is None or logger.isEnabledFor(logging.DEBUG),
    )


def get_arrow(
    table_name: str,
    *,
    secret_dir: Optional[PathLike] = None,
    producer: Optional[str] = None,
    selection: Optional[Selection] = None,
) -> pa.Table:
    """The current version of a table (or the part ``selection`` picks) as a
    ``pyarrow.Table`` whose buffers point into the mapped segment or file (no copy).

    Only a load of the whole table counts as the read of a table sent with
    ``shm_unlink_on_read=True`` (it becomes ``consumed``); a partial load does not.

    Args:
        table_name: The table.
        secret_dir: The store directory (else ``$ALLYE_SECRET_DIR``, else ``~/.allye_secrets``).
        producer: Only versions sent by this producer.
        selection: The part to read (columns, rows, a time range, a sample).

    Returns:
        A ``pyarrow.Table`` over the mapped payload.

    Raises:
        TableNotFoundError: No ready version (or the table was removed).
        TableExpiredError: The current version's TTL has run out.
        PayloadError: The payload is missing or not valid Arrow.
    """
    _core.check_table_name(table_name)
    picked = _EVERYTHING if selection is None else _selection_arg(selection)
    return frames.restore_arrow(_read(table_name, picked, store_arg(secret_dir), producer))


def _read(table_name: str, picked: Selection, store: Optional[str], producer: Optional[str]) -> pa.Table:
    """The part ``picked`` of the table's current rows as Arrow, read in place: a
    stream's rows (:func:`~..streams.read`), or the current version's (a load of all of
    it counts as its read)."""
    streams = _streams_of(table_name, store)
    if streams is not None:
        return streams.read(table_name, picked, secret_dir=store)
    data = _core.read_live(table_name, secret_dir=store, producer=producer, record_read=_consumes(picked))
    return picked.apply(pa.table(data))


def _streams_of(table_name: str, store: Optional[str]) -> Optional[ModuleType]:
    """The streams API (:mod:`..streams.api`) when ``table_name`` is a streaming table of
    the store, else None: the one place a table call decides between a table and a
    stream. Imported only then, so a process that never meets a stream does not load it
    (nor register its exit hooks)."""
    if not _core.stream_exists(table_name, secret_dir=store):
        return None
    from ..streams import api

    return api


_EVERYTHING = Selection()


def _consumes(selection: Selection) -> bool:
    """Whether a load counts as the read of a table sent to be read once: only a load of
    the whole table does (a head, some columns or rows are a look, not the read)."""
    return selection == _EVERYTHING


def _selection_arg(selection: Any) -> Selection:
    if not isinstance(selection, Selection):
        raise InvalidArgumentError(f"selection must be a Selection, got {type(selection).__name__}")
    return selection


def get_dataframe(
    table_name: str,
    *,
    secret_dir: Optional[PathLike] = None,
    producer: Optional[str] = None,
    wait: bool = False,
    timeout_sec: float = 30.0,
    poll_interval_sec: float = 0.5,
    dtype_backend: Optional[DtypeBackend] = None,
    columns: Optional[Sequence[Any]] = None,
    head: Optional[int] = None,
    rows: Optional[tuple[Optional[int], Optional[int]]] = None,
    sample: Optional[int] = None,
    seed: Optional[int] = None,
    start: Any = None,
    end: Any = None,
    time_column: Optional[str] = None,
    progress: Optional[Progress] = None,
    cancel: Optional[Cancel] = None,
    selection: Optional[Selection] = None,
    remote: Any = None,
) -> Any:
    """Reads the current version of a table (the last ``ready`` line for that name and
    producer) into a DataFrame (a Series when a Series was sent).

    ``remote``: a :class:`~..remote.Remote` (``connect(...)``): the peers' current version,
    through this store as the cache (see :meth:`~..remote.Remote.get_dataframe`).

    Numeric columns without nulls come back as NumPy views of the mapped payload (no
    copy). In-place writes work under pandas' copy-on-write (pandas 3, or pandas 2 with
    ``mode.copy_on_write``): a column is copied on its first write, so the mapping is
    never written (see :func:`~..frames.copy_on_first_write`); with pandas 2 in its
    default mode the views are read-only and ``df.copy()`` gives a writable frame.
    Arrays taken out of the frame (``df["x"].to_numpy()``) are read-only as pandas makes
    them; ``np.array(df["x"])`` is a writable copy. ``dtype_backend="pyarrow"``
    keeps every column Arrow-backed without copying. With ``wait=True``, waits up to
    ``timeout_sec`` for a first version to appear, woken by file-system notifications
    on the manifest (where there are none, polling its size every
    ``min(poll_interval_sec, 0.05)`` s).
    Raises :class:`TableNotFoundError` (a ``KeyError``) when there is none, or when the
    table was removed (``adc rm``) and not sent again.

    A table sent with ``shm_unlink_on_read=True`` (the default, as in 0.1.2) is
    ``consumed`` once loaded in full (no partial load below), and ``gc()`` then frees it;
    a get of it after that raises :class:`PayloadMissingError` saying so.

    Partial loads (only what is asked for is touched): ``columns=[...]`` (the index is
    kept), ``rows=(start, stop)`` (Python slicing), ``head=N``, ``sample=N``
    (reproducible with ``seed``), and ``start=``/``end=`` for the rows with
    ``start <= t < end`` of the sorted DatetimeIndex (or of ``time_column``), found by
    binary search; or all of them as one :class:`~..frames.Selection` in ``selection=``
    (not both). See :class:`~..frames.Selection` for the order they apply in.

    ``progress(done_rows, total_rows)`` is called as record batches are converted to
    pandas (the only part of a load that takes time), and ``cancel`` (an Event or a
    callable returning True) is checked between batches and raises
    :class:`~..errors.CancelledError`; a load writes nothing, so nothing is left behind.

    Args:
        table_name: The table.
        secret_dir: The store directory (else ``$ALLYE_SECRET_DIR``, else ``~/.allye_secrets``).
        producer: Only versions sent by this producer.
        wait: Wait for a first version when there is none.
        timeout_sec: How long ``wait`` waits.
        poll_interval_sec: The polling interval where there are no file-system notifications.
        dtype_backend: ``"pyarrow"`` keeps every column Arrow-backed; None: NumPy where possible.
        columns: Only these columns (the index is kept).
        head: Only the first ``head`` rows.
        rows: ``(start, stop)`` rows, as Python slicing.
        sample: ``sample`` rows drawn at random (``seed`` makes it repeatable).
        seed: The seed of ``sample``.
        start: The first time (inclusive) of a time range, on the index or ``time_column``.
        end: The end (exclusive) of the time range.
        time_column: The datetime column of ``start``/``end`` (default: the DatetimeIndex).
        progress: ``progress(done_rows, total_rows)``, called as batches convert.
        cancel: A ``threading.Event`` or a callable returning True, checked between batches.
        selection: All of the part's keywords as one ``Selection`` (not with them).
        remote: A ``Remote``: the peers' current version, through this store as the cache.

    Returns:
        A DataFrame (a Series when a Series was sent).

    Raises:
        TableNotFoundError: No ready version (or the table was removed); a ``KeyError``.
        TableExpiredError: The current version's TTL has run out.
        WaitTimeoutError: ``wait=True`` and no version came within ``timeout_sec``.
        InvalidArgumentError: A bad part (columns, rows, time range).
        PayloadError: The payload is missing or not valid Arrow.
    """
    if remote is not None:
        if secret_dir is not None and remote.secret_dir is not None and store_arg(secret_dir) != remote.secret_dir:
            raise InvalidArgumentError("secret_dir differs from the store the remote caches into (connect(secret_dir=...))")
        return remote.get_dataframe(table_name, columns=columns, rows=rows, head=head, start=start, end=end,
                                    time_column=time_column, dtype_backend=dtype_backend)
    frames.check_dtype_backend(dtype_backend)
    picked = Selection(columns=columns, rows=rows, head=head, sample=sample, seed=seed, start=start, end=end,
                       time_column=time_column)
    if selection is not None:
        if picked != _EVERYTHING:
            raise InvalidArgumentError("pass a partial load either as selection= or as columns=, rows=, ... (not both)")
        picked = _selection_arg(selection)
    _core.check_table_name(table_name)

    store = store_arg(secret_dir)

    def attempt() -> pa.Table:
        return _read(table_name, picked, store, producer)

    if wait:
        # Polling (only where the file system sends no events) stats the manifest; that
        # is cheap, so 0.1.2's 0.5 s default is capped at the watcher's 50 ms.
        data = _wait.wait_until(
            attempt, secret_dir=store, timeout_sec=timeout_sec,
            poll_interval_sec=min(float(poll_interval_sec), _wait.DEFAULT_POLL_SEC),
        )
    else:
        data = attempt()
    return frames.arrow_to_dataframe(data, dtype_backend, progress=progress, cancel=cancel)



def list_tables(
    *,
    secret_dir: Optional[PathLike] = None,
    producer: Optional[str] = None,
    all_states: bool = False,
    with_schema: bool = True,
) -> list[dict[str, Any]]:
    """Every table's current version that a get can read, sorted by name, with 0.1.2's
    keys (``table_name``, ``id``, ``producer``, ``created_at``, ``ttl_sec``,
    ``transport``, ``shape``, ``bytes``) plus ``expires_at``. Removed tables, expired
    versions and versions sent to be read once that were read and freed by gc are left
    out.

    ``all_states=True``: every table the manifest mentions, with its latest state, as
    :func:`describe_table` describes it (``with_schema=False`` skips opening each
    payload for its schema).

    Args:
        secret_dir: The store directory (else ``$ALLYE_SECRET_DIR``, else ``~/.allye_secrets``).
        producer: Only versions sent by this producer.
        all_states: Every table the manifest mentions, with its latest state.
        with_schema: With ``all_states``, read each payload's schema.

    Returns:
        One dict per table, sorted by name.
    """
    if all_states:
        return [
            records.state(st, with_schema=with_schema, secret_dir=store_arg(secret_dir))
            for st in _core.table_states(secret_dir=store_arg(secret_dir), producer=producer)
        ]
    return [records.version(ev) for ev in _core.list_tables(secret_dir=store_arg(secret_dir), producer=producer)]


def store_path(secret_dir: Optional[PathLike] = None) -> Path:
    """The store directory that ``secret_dir`` (else ``$ALLYE_SECRET_DIR``, else
    ``~/.allye_secrets``) resolves to.

    Args:
        secret_dir: The store directory (else ``$ALLYE_SECRET_DIR``, else ``~/.allye_secrets``).

    Returns:
        The store directory's path.
    """
    return Path(_core.resolve_store(store_arg(secret_dir)))


def describe_table(
    table_name: str,
    *,
    secret_dir: Optional[PathLike] = None,
    producer: Optional[str] = None,
) -> dict[str, Any]:
    """What the Receiver shows before loading: the table's latest ``state`` (``writing``,
    ``ready``, ``consumed`` (sent with ``shm_unlink_on_read=True`` and loaded in full, so
    gc frees it), ``error`` with ``error``, or ``removed``), and of its current version the
    producer, ``created_at``, ``age_sec``, ``expires_at``, ``shape``, ``bytes``,
    ``transport`` and ``schema`` (column names and Arrow types, read from the payload's
    schema without loading data). Raises :class:`TableNotFoundError` when the manifest
    never mentions the table.

    Args:
        table_name: The table.
        secret_dir: The store directory (else ``$ALLYE_SECRET_DIR``, else ``~/.allye_secrets``).
        producer: Only versions sent by this producer.

    Returns:
        The table's state and its current version's record.

    Raises:
        TableNotFoundError: The manifest never mentions the table.
    """
    st = _core.table_state(table_name, secret_dir=store_arg(secret_dir), producer=producer)
    return records.state(st, with_schema=True, secret_dir=store_arg(secret_dir))


def remove_table(table_name: str, *, secret_dir: Optional[PathLike] = None) -> dict[str, Any]:
    """Removes a table: appends a removal line (an ``error`` line, reason "removed by
    user", which 0.1.2 and the widgets tolerate), then deletes the payloads of all its
    versions inside this store. Our readers then get :class:`TableNotFoundError` until a
    new version is sent; 0.1.2 readers get their "payload missing" error. Returns
    ``{"table_name", "id", "deleted": [[transport, locator], ...], "skipped": [...]}``.

    Args:
        table_name: The table (or stream).
        secret_dir: The store directory (else ``$ALLYE_SECRET_DIR``, else ``~/.allye_secrets``).

    Returns:
        What was deleted and what was skipped.

    Raises:
        TableNotFoundError: No such table.
    """
    store = store_arg(secret_dir)
    streams = _streams_of(table_name, store)
    if streams is not None:
        freed = streams.remove_stream(table_name, secret_dir=store)
        logger.info("removed stream %r (%d chunks freed)", table_name, freed)
        return {"table_name": table_name, "id": "", "deleted": [], "skipped": [], "stream_chunks": freed}
    report = _core.remove_table(table_name, secret_dir=store)
    logger.info("removed %r (%d payloads deleted)", table_name, len(report["deleted"]))
    return cast(dict[str, Any], report)  # a plain dict, to which the stream branch adds a key


def watch(
    table_name: Optional[str] = None,
    *,
    secret_dir: Optional[PathLike] = None,
    producer: Optional[str] = None,
    timeout_sec: Optional[float] = None,
    include_errors: bool = False,
    callback: Optional[Callable[[dict[str, Any]], Any]] = None,
) -> Any:
    """Every new ready version of ``table_name`` (or of any table) as it lands, woken by
    file-system notifications on the manifest (polling where there are none).

    Without ``callback``: an iterator of records (``table_name``, ``id``, ``producer``,
    ``created_at``, ``transport``, ``shape``, ``bytes``, ...) that ends after
    ``timeout_sec`` without news (None: never; Ctrl-C interrupts it). With ``callback``:
    calls it from a background thread for each version and returns a
    :class:`~.watching.Watch` whose ``stop()`` ends it.

    Args:
        table_name: The table to watch; None: every table.
        secret_dir: The store directory (else ``$ALLYE_SECRET_DIR``, else ``~/.allye_secrets``).
        producer: Only versions sent by this producer.
        timeout_sec: End after this many seconds without a new version (None: never).
        include_errors: Also report ``error`` lines (failed or removed).
        callback: Called with each version from a background thread instead of iterating.

    Returns:
        An iterator of version records, or with ``callback`` a ``Watch`` to ``stop()``.
    """
    kwargs: dict[str, Any] = dict(
        table_name=table_name, secret_dir=store_arg(secret_dir), producer=producer,
        timeout_sec=timeout_sec, include_errors=include_errors,
    )
    if callback is not None:
        return watching.Watch(callback, kwargs)
    return watching.iter_versions(**kwargs)
