"""The log fast path (ataraxis' ``LogPackage``): messages of a fixed schema (source id,
uint64 ns time stamp, payload bytes), their arrays built in bulk by pyarrow, appended
as one chunk (:func:`append_log`) or buffered by a :class:`LogWriter`."""

from __future__ import annotations

import threading
from typing import Any, Optional

import numpy as np
import pyarrow as pa

from .. import _core
from .._args import PathLike
from ..errors import InvalidArgumentError
from .api import DEFAULT_FLUSH_INTERVAL_SEC, append
from .writer import Handler, Writer, WriterClosedError

#: The columns of the log schema (their names are the core's).
SOURCE_COLUMN: str = _core.LOG_SOURCE_COLUMN
TIME_COLUMN: str = _core.LOG_TIME_COLUMN
PAYLOAD_COLUMN: str = _core.LOG_PAYLOAD_COLUMN

#: The schema of the log fast path: one row per message.
LOG_SCHEMA = pa.schema([
    pa.field(SOURCE_COLUMN, pa.uint8(), nullable=False),
    pa.field(TIME_COLUMN, pa.uint64(), nullable=False),
    pa.field(PAYLOAD_COLUMN, pa.binary(), nullable=False),
])


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
    appended in bulk from a background thread (:class:`Writer`'s rules: flush when the
    producer is idle, else on interval or size, on ``flush()``, ``close()`` and exit;
    errors raised from the next call).
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
        # Our three lists are the writer's buffer: hook what its thread looks at.
        self._writer._take = self._take  # type: ignore[method-assign]
        self._writer._has_pending = lambda: bool(self._src)  # type: ignore[method-assign]

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
            first = not self._src
            self._src.append(int(source_id))
            self._ts.append(int(timestamp))
            self._pay.append(data)
            full = len(self._src) >= w.max_rows
        w._writes += 1  # a changed count is all the writer's thread looks for
        if full or first:
            with w._cond:
                w._flush_requested = w._flush_requested or full
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
