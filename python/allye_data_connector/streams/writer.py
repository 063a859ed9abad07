"""``Writer``: buffered appends to a stream from a background thread (panoply's SDK
model), with events, and errors that are never lost (raised from the next call)."""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any, Callable, Mapping, Optional

import pyarrow as pa

from .. import _core
from .._args import PathLike, int_arg, store_dir
from ..errors import AllyeError, InvalidArgumentError, InvalidInputError, SchemaConflictError
from ._background import OPEN_WRITERS, PUBLISHER
from .api import DEFAULT_FLUSH_INTERVAL_SEC, DEFAULT_PUBLISH_INTERVAL_SEC, append_items, to_table

#: A producer that wrote nothing for this long is idle: what it buffered is appended.
DEFAULT_IDLE_SEC: float = _core.DEFAULT_WRITER_IDLE_SEC

logger = logging.getLogger(__name__)

Handler = Callable[..., Any]
_EVENTS = ("send", "flush", "error", "*")


class WriterClosedError(AllyeError):
    """``write`` on a closed :class:`Writer`."""


class Writer:
    """Buffered appends to stream ``table_name``: ``write`` returns at once; a
    background thread converts the buffered rows to Arrow and appends them as one chunk
    as soon as the producer is idle (nothing written for ``idle_sec``, 5 ms by default:
    a record is visible to readers a few milliseconds after the last write), and under
    load every ``flush_interval`` seconds or when ``max_rows`` rows or about
    ``max_bytes`` bytes are buffered; also on ``flush()``, on ``close()`` (also as a
    context manager) and at interpreter exit (also in a ``multiprocessing`` child).

    The stream's schema evolves as :func:`~.api.append` says; a record holding a value
    its column cannot take is refused alone and the others of the buffer are stored.

    Events (``on(name, handler)``): ``"send"`` just before a chunk is appended
    (``handler(table)``), ``"flush"`` just after (``handler(line)``), ``"error"`` when an
    append fails or refuses records (``handler(exc)``; a
    :class:`~..errors.SchemaConflictError` carries the refused records in
    ``exc.refused``), ``"*"`` every event (``handler(name, arg)``). An error in the
    background is delivered to the ``error`` handlers and raised from the next
    ``write``, ``flush`` or ``close``: it is never lost. A ``write`` that raises it has
    not buffered its own data (write it again). The input is never mutated (records are
    copied when written)."""

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
        idle_sec: float = DEFAULT_IDLE_SEC,
    ) -> None:
        _core.check_table_name(table_name)
        if not flush_interval > 0:
            raise InvalidArgumentError(f"flush_interval must be > 0 seconds, got {flush_interval!r}")
        if not idle_sec > 0:
            raise InvalidArgumentError(f"idle_sec must be > 0 seconds, got {idle_sec!r}")
        int_arg("max_rows", max_rows, minimum=1)
        int_arg("max_bytes", max_bytes, minimum=1)
        self.table_name = table_name
        self._store = store_dir(secret_dir)
        self.flush_interval = float(flush_interval)
        self.idle_sec = min(float(idle_sec), self.flush_interval)
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
        #: The last background error already logged (at exit it is not logged again).
        self._logged: Optional[BaseException] = None
        self._closed = False
        self._flush_requested = False
        #: Writes so far: the thread compares it across ``idle_sec`` to see an idle producer.
        self._writes = 0
        self._pid = os.getpid()
        self._thread = threading.Thread(target=self._run, name=f"adc-writer-{table_name}", daemon=True)
        self._thread.start()
        OPEN_WRITERS.add(self)

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
            item = to_table(data, None)
        rows, size = self._size(item)
        with self._cond:
            first = not self._buffer
            self._buffer.append(item)
            self._writes += 1
            self._rows += rows
            self._bytes += size
            if self._rows >= self.max_rows or self._bytes >= self.max_bytes:
                self._flush_requested = True
                self._cond.notify()
            elif first:
                self._cond.notify()  # the thread starts watching for the producer to go idle

    def _take(self) -> list[Any]:
        with self._cond:
            items, self._buffer = self._buffer, []
            self._rows = self._bytes = 0
            self._flush_requested = False
            return items

    def _has_pending(self) -> bool:
        """True when something is buffered (under ``_cond``)."""
        return bool(self._buffer)

    def _append_items(self, items: list[Any]) -> None:
        """Appends the items as one chunk (each run of records one part, tables as they are)."""
        if not items:
            return
        grouped: list[Any] = []
        for item in items:
            if isinstance(item, pa.Table):
                grouped.append(item)
            else:
                if not grouped or isinstance(grouped[-1], pa.Table):
                    grouped.append([])
                if isinstance(item, Mapping):
                    grouped[-1].append(item)
                else:
                    grouped[-1].extend(item)
        line = append_items(self._store, self.table_name, grouped, time_column=self._time_column,
                            publish=self._publish, publish_interval_sec=self._publish_interval,
                            on_send=lambda table: self._emit("send", table))
        self._emit("flush", line)

    def _flush_once(self) -> None:
        with self._io:
            items = self._take()
            try:
                self._append_items(items)
            except Exception as exc:  # noqa: BLE001 - delivered, then raised from the next call
                self._error = self._logged = exc
                if isinstance(exc, SchemaConflictError):  # it says what was stored and what refused
                    logger.warning("Writer(%r): %s", self.table_name, exc)
                else:
                    logger.warning("Writer(%r): %d buffered item(s) could not be appended: %s",
                                   self.table_name, len(items), exc)
                stored = getattr(exc, "stored", None) if isinstance(exc, SchemaConflictError) else None
                if stored is not None:
                    # Some records were refused; the others were appended, and are announced
                    # as any appended batch is, before the error about the refused ones.
                    self._emit("flush", stored)
                self._emit("error", exc)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._closed and not self._flush_requested and not self._has_pending():
                    self._cond.wait(self.flush_interval)
                # Something is buffered: append it once the producer is idle (no write
                # for idle_sec), or once it is flush_interval old while writes go on.
                started = time.monotonic()
                while not self._closed and not self._flush_requested:
                    seen = self._writes
                    left = self.flush_interval - (time.monotonic() - started)
                    if left <= 0:
                        break
                    self._cond.wait(min(self.idle_sec, left))
                    if self._writes == seen:
                        break
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
            OPEN_WRITERS.discard(self)
            if self._publish:
                try:
                    PUBLISHER.publish_now(self._store, self.table_name)
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
