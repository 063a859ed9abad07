"""The public API: 0.1.2's four calls with their names, arguments, defaults and return
values, on the Rust core."""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Any, Literal, Optional, Union

import pandas as pd
import pyarrow as pa

from . import _core
from .canvas import notify_receiver
from .convert import DtypeBackend, arrow_to_dataframe, dataframe_to_arrow, schema_sha256
from .errors import InvalidArgumentError, TableNotFoundError

logger = logging.getLogger(__name__)

PathLike = Union[str, "os.PathLike[str]"]
Transport = Literal["auto", "shm", "file"]

DEFAULT_MAX_SHM_BYTES = 64 * 1024 * 1024
DEFAULT_CHUNK_ROWS = 500_000


def _path(secret_dir: Optional[PathLike]) -> Optional[str]:
    return None if secret_dir is None else os.fspath(Path(secret_dir).expanduser())


def _table_name_arg(table_name: Any) -> str:
    if not isinstance(table_name, str) or not table_name:
        raise InvalidArgumentError(f"table_name must be a non-empty str, got {table_name!r}; list_tables() shows what exists")
    return table_name


def _int_arg(name: str, value: Any, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgumentError(f"{name} must be an int, got {value!r}")
    if value < minimum:
        raise InvalidArgumentError(f"{name}={value} must be >= {minimum}")
    return value


def send_dataframe(
    df: pd.DataFrame,
    table_name: Optional[str] = None,
    *,
    secret_dir: Optional[PathLike] = None,
    transport: Transport = "auto",
    max_shm_bytes: int = DEFAULT_MAX_SHM_BYTES,
    chunk_rows: Optional[int] = None,
    ttl_sec: Optional[int] = None,
    shm_unlink_on_read: bool = True,
    notify_canvas: bool = True,
    notify_create_widget: bool = True,
    notify_create_new_widget: bool = True,
    notify_refresh_manifest: bool = True,
    notify_timeout_sec: float = 1.0,
    metadata: Optional[dict[str, Any]] = None,
    producer: str = "python",
    compression: Optional[str] = None,
    durable: bool = False,
) -> str:
    """Sends a DataFrame under ``table_name`` and returns the name (generated when None).

    The frame is converted to Arrow once (index and column labels kept) and written once:
    into a shared-memory segment (``transport="shm"``, or ``"auto"`` when its Arrow size is
    at most ``max_shm_bytes``) or into an Arrow IPC file in ``<store>/payloads``: one record batch when uncompressed
    (so a get maps it without copying), batches of ``chunk_rows`` rows (default 500,000)
    when compressed or when ``chunk_rows`` is given. Files are uncompressed unless ``compression`` ("zstd", "lz4") or
    ``$ALLYE_ARROW_COMPRESSION`` says otherwise. ``durable=True`` fsyncs payload and manifest.
    """
    if table_name is not None and not isinstance(table_name, str):
        raise InvalidArgumentError(f"table_name must be a str or None, got {type(table_name).__name__}")
    if transport not in ("auto", "shm", "file"):
        raise InvalidArgumentError(f"unknown transport {transport!r}: use 'auto', 'shm' or 'file'")
    _int_arg("max_shm_bytes", max_shm_bytes, minimum=1)
    if ttl_sec is not None:
        _int_arg("ttl_sec", ttl_sec, minimum=0)
    if compression is None:
        compression = os.environ.get("ALLYE_ARROW_COMPRESSION") or None
    if chunk_rows is None:
        # One record batch keeps an uncompressed file a mappable, zero-copy get (several
        # batches make pandas concatenate every column); compressed files keep 0.1.2's
        # batches, which bound the memory of compressing and decompressing one batch.
        uncompressed = str(compression or "").strip().lower() in ("", "none", "uncompressed")
        chunk_rows = 0 if uncompressed else DEFAULT_CHUNK_ROWS
    _int_arg("chunk_rows", chunk_rows, minimum=0)
    merged = dict(metadata or {})
    merged["shm_unlink_on_read"] = bool(shm_unlink_on_read)
    try:
        metadata_json = json.dumps(merged, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidArgumentError(f"metadata must be JSON-serialisable: {exc}") from exc

    table = dataframe_to_arrow(df)
    line = _core.send(
        table,
        secret_dir=_path(secret_dir),
        table_name=table_name,
        producer=producer,
        transport=transport,
        max_shm_bytes=max_shm_bytes,
        chunk_rows=chunk_rows,
        ttl_sec=ttl_sec,
        compression=compression,
        metadata_json=metadata_json,
        shape=(int(df.shape[0]), int(df.shape[1])),
        schema_sha256=schema_sha256(df),
        durable=durable,
    )
    event = json.loads(line)
    name: str = event["table_name"]
    payload = event["payload"]
    logger.debug("sent %r as %s (%d bytes)", name, payload["transport"], payload["data_size"])
    if notify_canvas:
        notify_receiver(
            name,
            create_if_missing=notify_create_widget,
            create_new=notify_create_new_widget,
            refresh_manifest=notify_refresh_manifest,
            timeout_sec=notify_timeout_sec,
        )
    return name


def get_arrow(
    table_name: str,
    *,
    secret_dir: Optional[PathLike] = None,
    producer: Optional[str] = None,
) -> pa.Table:
    """The current version of a table as a ``pyarrow.Table`` whose buffers point into the
    mapped segment or file (no copy)."""
    _table_name_arg(table_name)
    _, data = _core.get(table_name, secret_dir=_path(secret_dir), producer=producer)
    return pa.table(data)


def get_dataframe(
    table_name: str,
    *,
    secret_dir: Optional[PathLike] = None,
    producer: Optional[str] = None,
    wait: bool = False,
    timeout_sec: float = 30.0,
    poll_interval_sec: float = 0.5,
    dtype_backend: Optional[DtypeBackend] = None,
) -> pd.DataFrame:
    """Reads the current version of a table (the last ``ready`` line for that name and
    producer) into a DataFrame.

    Numeric columns without nulls come back as **read-only** NumPy views of the mapped
    payload (no copy); call ``df.copy()`` for a writable frame. ``dtype_backend="pyarrow"``
    keeps every column Arrow-backed without copying. With ``wait=True``, waits up to
    ``timeout_sec`` for a first version to appear. Raises :class:`TableNotFoundError`
    (a ``KeyError``) when there is none.
    """
    if dtype_backend not in (None, "numpy", "numpy_nullable", "pyarrow"):
        raise InvalidArgumentError(
            f"dtype_backend={dtype_backend!r} is not one of None, 'numpy', 'numpy_nullable', 'pyarrow'"
        )
    _table_name_arg(table_name)
    deadline = time.monotonic() + timeout_sec
    while True:
        try:
            _, data = _core.get(table_name, secret_dir=_path(secret_dir), producer=producer)
            break
        except TableNotFoundError:
            if not wait or time.monotonic() >= deadline:
                raise
        time.sleep(max(0.0, min(poll_interval_sec, deadline - time.monotonic())))
    return arrow_to_dataframe(pa.table(data), dtype_backend)


def list_tables(
    *,
    secret_dir: Optional[PathLike] = None,
    producer: Optional[str] = None,
) -> list[dict[str, Any]]:
    """Every table's current version, sorted by name, with 0.1.2's keys (``table_name``,
    ``id``, ``producer``, ``created_at``, ``ttl_sec``, ``transport``, ``shape``, ``bytes``)
    plus ``expires_at``."""
    out = []
    for ev in json.loads(_core.list_tables(secret_dir=_path(secret_dir), producer=producer)):
        p = ev.get("payload") or {}
        shape = p.get("shape")
        out.append(
            {
                "table_name": ev["table_name"],
                "id": ev["id"],
                "producer": ev["producer"],
                "created_at": ev["created_at"],
                "ttl_sec": ev["ttl_sec"],
                "transport": p.get("transport"),
                "shape": (int(shape[0]), int(shape[1])) if shape else None,
                "bytes": p.get("data_size"),
                "expires_at": p.get("expires_at"),
            }
        )
    return out


def gc(
    *,
    secret_dir: Optional[PathLike] = None,
    dry_run: bool = True,
    keep_versions: int = 1,
) -> list[dict[str, Any]]:
    """Frees what no reader can be served any more, only inside this store:

    - payloads of versions whose TTL has run out;
    - superseded versions: all but the latest ``keep_versions`` per table and producer;
    - shared-memory segments sent with ``shm_unlink_on_read=True`` once a reader of ours
      has read them (send with ``shm_unlink_on_read=False`` to keep reading them);
    - leftovers of sends whose process died before finishing (an ``error`` line is
      appended for them) or that failed. A live sender's work is never touched.

    ``dry_run=True`` (the default, as in 0.1.2) only reports. Returns the actions:
    ``{"action": "delete"|"skip"|"record", "transport", "locator", "table_name", "reason", "id"}``
    (``skip``: a locator outside this store, never followed; ``record``: an ``error`` line
    appended for a dead sender's transfer).
    """
    _int_arg("keep_versions", keep_versions, minimum=1)
    actions: list[dict[str, Any]] = json.loads(
        _core.gc(secret_dir=_path(secret_dir), dry_run=bool(dry_run), keep_versions=keep_versions)
    )
    for a in actions:
        logger.info("gc %s%s %s %s (%s)", "would " if dry_run else "", a["action"], a["transport"], a["locator"], a["reason"])
    return actions


def compact(*, secret_dir: Optional[PathLike] = None) -> dict[str, int]:
    """Rewrites the manifest keeping only the lines that still mean something: ``ready``
    lines of live payloads, the latest ``error`` line per table and ``writing`` lines of
    unfinished sends. Atomic (written aside, renamed under the writers' lock), safe with
    concurrent readers and writers, ours and 0.1.2's. Run ``gc(dry_run=False)`` first to
    free superseded versions. Returns ``{"lines_before", "lines_after", "bytes_before",
    "bytes_after"}``."""
    report: dict[str, int] = json.loads(_core.compact(secret_dir=_path(secret_dir)))
    logger.info("compacted the manifest: %d -> %d lines", report["lines_before"], report["lines_after"])
    return report


def store_path(secret_dir: Optional[PathLike] = None) -> Path:
    """The store directory that ``secret_dir`` (else ``$ALLYE_SECRET_DIR``, else
    ``~/.allye_secrets``) resolves to."""
    return Path(_core.resolve_store(_path(secret_dir)))
