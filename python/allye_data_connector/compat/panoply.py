"""panoply-python-sdk's ``SDK`` on local streams.

``SDK(apikey, apisecret)`` (the keys are kept and unused: the store is local);
``write(tablename, data)`` buffers one record and returns at once; the records reach
the stream ``tablename`` within about a second (panoply: "within up to 2 seconds"), on
``flush()``, and at exit; ``on(evname, handler)`` for ``send`` (before a batch is
appended: ``handler(records)``), ``flush`` (after: ``handler(records)``) and ``error``
(``handler(exception)``). Unlike panoply, an error in the background thread is also
raised from the next ``write``/``flush``/``close``, and records are not lost when the
script ends before the timer."""

from __future__ import annotations

import threading
from typing import Any, Callable, Optional

from ..errors import InvalidArgumentError, InvalidInputError
from ..streams import Writer

#: panoply's flush timer is 2 s; ours flushes more often, so "within 2 s" holds.
FLUSH_INTERVAL_SEC = 1.0
_EVENTS = ("send", "flush", "error")


class SDK:
    """panoply's SDK: ``write(tablename, data)`` and ``on(evname, handler)``."""

    def __init__(self, apikey: str, apisecret: str, *, secret_dir: Optional[str] = None,
                 flush_interval: float = FLUSH_INTERVAL_SEC) -> None:
        self.apikey = apikey
        self.apisecret = apisecret
        self.account = str(apikey).split("/", 1)[0]
        self._secret_dir = secret_dir
        self._flush_interval = flush_interval
        self._writers: dict[str, Writer] = {}
        self._handlers: dict[str, list[Callable[..., Any]]] = {e: [] for e in _EVENTS}
        self._lock = threading.Lock()

    def _writer(self, tablename: str) -> Writer:
        with self._lock:
            w = self._writers.get(tablename)
            if w is None:
                w = Writer(tablename, secret_dir=self._secret_dir, flush_interval=self._flush_interval)
                w.on("send", lambda table: self._emit("send", table.to_pylist()))
                w.on("flush", lambda line: self._emit("flush", line))
                w.on("error", lambda exc: self._emit("error", exc))
                self._writers[tablename] = w
            return w

    def _emit(self, evname: str, arg: Any) -> None:
        for h in list(self._handlers[evname]):
            h(arg)

    def on(self, evname: str, handlerfn: Callable[..., Any]) -> "SDK":
        """Sets a handler for ``error``, ``send`` or ``flush``."""
        if evname not in _EVENTS:
            raise InvalidArgumentError(f"unknown event {evname!r}; panoply's SDK has {', '.join(_EVENTS)}")
        self._handlers[evname].append(handlerfn)
        return self

    def write(self, tablename: str, data: dict[str, Any]) -> None:
        """Buffers the record ``data`` for ``tablename``; returns at once (``data`` is copied,
        never changed)."""
        if not isinstance(data, dict):
            raise InvalidInputError(f"write takes a dict record, got {type(data).__name__}")
        self._writer(tablename).write(data)

    def flush(self) -> None:
        """Appends everything buffered now (raises a pending background error)."""
        for w in list(self._writers.values()):
            w.flush()

    def close(self) -> None:
        """Flushes and stops every table's writer."""
        for w in list(self._writers.values()):
            w.close()
