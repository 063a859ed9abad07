"""panoply-python-sdk's API on allye_data_connector: switch by changing one import.

``SDK`` runs on local streams.

``SDK(apikey, apisecret)`` (the keys are kept and unused: the store is local);
``write(tablename, data)`` buffers one record and returns at once; the records reach
the stream ``tablename`` a few milliseconds after the producer stops writing (panoply:
"within up to 2 seconds"), every ``flush_interval`` while it keeps writing, on
``flush()``, and at exit; ``on(evname, handler)`` for ``send`` (before a batch is
appended: ``handler(records)``), ``flush`` (after: ``handler(records)``) and ``error``
(``handler(exception)``). Unlike panoply, an error in the background thread is also
raised from the next ``write``/``flush``/``close``, and records are not lost when the
script ends before the timer.

Records are schemaless, as panoply's are: a record with a new field adds a column
(earlier rows read null), a number that does not fit widens its column, and a record
holding a value its column cannot take (text where numbers are) is refused alone: the
records buffered with it are stored (a ``flush`` event names their chunk), and the
``error`` handler's exception
(:class:`~allye_data_connector.errors.SchemaConflictError`) carries it in ``.refused``.

``DataSource`` keeps panoply's contract (``__init__(source, options)``, ``read(n)``,
``close()``, ``log(*msgs)``, ``progress(loaded, total, msg)``, ``state(state_id, state)``,
``raw(tag, raw, metadata)``, ``on``/``fire`` events, class or module ``CONFIG`` and
``Stream``) and runs with :func:`allye_data_connector.load` into the store::

    from allye_data_connector.compat.panoply import DataSource   # was: from panoply import DataSource
    import allye_data_connector as adc

    adc.load(MyDataSource({"user": "me"}, {}), "my_table")

Differences: ``log()`` goes through ``logging`` (logger
``allye_data_connector.sources.<Class>``) unless ``options["logger"]`` is given, and masks
the values of parameters marked ``"secret": True``; the OAuth token decorators
(``validate_token``) are not provided.
"""

from __future__ import annotations

import base64
import threading
from typing import Any, Callable, Mapping, Optional

from .. import _core
from .. import sources as _sources
from ..errors import InvalidArgumentError, InvalidInputError
from ..streams import Writer

#: panoply's flush timer is 2 s. Ours appends as soon as the producer is idle, and at
#: most this long after the first buffered record while it keeps writing.
FLUSH_INTERVAL_SEC = float(_core.DEFAULT_FLUSH_INTERVAL_SEC)
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


# --- sources: panoply's DataSource ---


class DataSource(_sources.DataSource):
    """panoply's ``DataSource`` base class (see the module docs)."""

    def __init__(self, source: Mapping[str, Any], options: Optional[Mapping[str, Any]] = None):
        super().__init__(source, options)
        # panoply sources update their own parameters (a refreshed token) in place.
        if isinstance(source, dict):
            self.source = source
        if isinstance(options, dict):
            self.options = options

    def raw(self, tag: str, raw: bytes, metadata: Any) -> dict[str, Any]:
        """A raw response object, as panoply's ``raw()`` makes it."""
        return {"type": "raw", "tag": tag, "raw": base64.b64encode(raw), "metadata": metadata}


__all__ = ["SDK", "DataSource"]