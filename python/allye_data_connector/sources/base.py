"""The :class:`DataSource` contract (panoply's, see the seed README): what a source is
given (``source`` parameters, ``options``), what it implements (``read(n)``, ``close``),
what the base gives it (``log`` with secrets masked, ``progress``, ``state``, events),
and the parameter rules the built-in sources share.

A source is read by :func:`allye_data_connector.load`, which writes each batch into the
store as it arrives. A source never touches the store itself.
"""

from __future__ import annotations

import logging
import re
import sys
from typing import Any, Callable, ClassVar, Mapping, Optional

import pyarrow as pa

from .. import _core
from ..errors import InvalidArgumentError

#: Rows a source is asked for per ``read(n)`` (a hint, as in panoply).
DEFAULT_BATCH_ROWS: int = _core.DEFAULT_LOAD_BATCH_ROWS

_REDACTED = "***"


class DataSource:
    """Base class of a data source, panoply's contract.

    ``source`` holds the parameters the class's ``CONFIG["params"]`` declares (a path, a
    URI, a query, credentials, ...); ``options`` holds hints (``logger``: a callable that
    receives the tuple of messages :meth:`log` gets, as in panoply). Subclasses implement
    :meth:`read` and, if they hold resources, :meth:`close`.

    ``read(n)`` returns up to about ``n`` rows as a ``pyarrow.RecordBatch`` or ``Table``,
    a pandas DataFrame, or a list of dicts (records); ``None`` at the end. An empty batch
    is not the end. Call :meth:`progress` from ``read`` to drive the progress bar.

    Incremental loads: a source with a ``cursor`` (the name of an increasing column: id,
    timestamp; a ``"cursor"`` parameter or a class attribute) is told, through
    :attr:`last_cursor`, the largest cursor value already loaded; a source that can,
    reads only newer rows (the SQL source adds a ``WHERE``), and :func:`~.loading.load`
    keeps only newer rows of whatever it returns.

    Parameters marked ``"secret": True`` in ``CONFIG`` are never logged (their values
    are masked in :meth:`log`) nor recorded in the store.
    """

    CONFIG: ClassVar[dict[str, Any]] = {"title": "Data source", "params": []}
    #: The increasing column of incremental loads (or the ``"cursor"`` parameter).
    cursor: Optional[str] = None

    def __init__(self, source: Optional[Mapping[str, Any]] = None, options: Optional[Mapping[str, Any]] = None):
        self.source: dict[str, Any] = dict(source or {})
        self.options: dict[str, Any] = dict(options or {})
        self._events: dict[str, set[Callable[..., Any]]] = {}
        if self.source.get("cursor"):
            self.cursor = str(self.source["cursor"])
        #: Largest cursor value already in the table (set by ``load`` before the first read).
        self.last_cursor: Any = None

    @property
    def ordered_by_cursor(self) -> bool:
        """True when the rows come in increasing ``cursor`` order: an appending load may
        then commit each chunk's largest cursor value as the point a re-run resumes from.
        Otherwise (the default) it commits the run's starting bound and the rows already
        appended."""
        return False

    # -- what a subclass implements --------------------------------------------------
    def read(self, n: Optional[int] = None) -> Any:
        """Up to about ``n`` rows (see the class docs); ``None`` at the end."""
        raise NotImplementedError(f"{type(self).__name__} must implement read(n)")

    def close(self) -> None:
        """Releases what the source holds (files, connections). Called once by ``load``."""

    def schema(self) -> Optional[pa.Schema]:
        """The schema, when known without reading (a table of no rows keeps its columns)."""
        return None

    def describe(self) -> str:
        """What the load records in the store as its source: no secret in it."""
        return type(self).__name__

    # -- what the base gives -------------------------------------------------------
    def on(self, name: str, fn: Callable[..., Any]) -> "DataSource":
        """Calls ``fn(data)`` when the source fires ``name`` (``"progress"``,
        ``"source-state"``); ``"*"`` handlers get ``fn(name, data)``."""
        self._events.setdefault(name, set()).add(fn)
        return self

    def fire(self, name: str, data: Any) -> "DataSource":
        for fn in list(self._events.get("*", ())):
            fn(name, data)
        for fn in list(self._events.get(name, ())):
            fn(data)
        return self

    def secrets(self) -> list[str]:
        """The values of this source's secret parameters (what :meth:`log` masks)."""
        names = {p["name"] for p in params_of(type(self)) if p.get("secret")} | SECRET_NAMES
        return [str(v) for k, v in self.source.items() if k in names and v not in (None, "")]

    def redact(self, text: str) -> str:
        for secret in self.secrets():
            text = text.replace(secret, _REDACTED)
        return redact_uri(text)

    def log(self, *msgs: Any) -> None:
        """Logs a message (through ``logging``, or ``options["logger"]`` as panoply does);
        the values of secret parameters and URI passwords are masked."""
        clean = tuple(self.redact(str(m)) for m in msgs)
        if "logger" in self.options:
            self.options["logger"](clean)
        else:
            logging.getLogger(f"{__package__}.{type(self).__name__}").info(" ".join(clean))

    def progress(self, loaded: int, total: Optional[int], msg: str = "") -> None:
        """Reports progress: ``loaded`` of ``total`` (rows, bytes, files; None: unknown)."""
        self.fire("progress", {"loaded": loaded, "total": total, "msg": msg})

    def state(self, state_id: Any, state: Any) -> None:
        """Announces a change of the source's own state (panoply's ``source-state`` event);
        ``load`` records the last one with the rows (``metadata["allye_load"]["state"]``)."""
        self.fire("source-state", {"stateId": state_id, "state": state})


#: Parameters masked whatever CONFIG says (panoply sources often declare none secret).
SECRET_NAMES = frozenset({"password", "passwd", "secret", "token", "api_key", "apikey", "access_token",
                          "refresh_token", "client_secret", "private_key", "apisecret"})


def config_of(cls: type) -> dict[str, Any]:
    """A source's CONFIG: its class's, else (panoply's convention) its module's."""
    own = next((vars(c)["CONFIG"] for c in cls.__mro__ if "CONFIG" in vars(c) and c is not DataSource), None)
    if own is None:
        own = getattr(sys.modules.get(cls.__module__), "CONFIG", None)
    return own if isinstance(own, dict) else dict(DataSource.CONFIG)


def params_of(cls: type) -> list[dict[str, Any]]:
    config = config_of(cls)
    params = config.get("params") or []
    return [p for p in params if isinstance(p, dict) and "name" in p]


_URI_PASSWORD = re.compile(r"(?P<head>[a-zA-Z][a-zA-Z0-9+.\-]*://[^/:@\s]*:)(?P<pw>[^@/\s]+)(?P<at>@)")


def redact_uri(text: str) -> str:
    """Masks the password of every ``scheme://user:password@host`` in ``text``."""
    return _URI_PASSWORD.sub(lambda m: m.group("head") + _REDACTED + m.group("at"), text)


def required(source: Mapping[str, Any], name: str, cls: str) -> Any:
    value = source.get(name)
    if value in (None, ""):
        raise InvalidArgumentError(f"{cls} needs the parameter {name!r} (see `adc sources`)")
    return value


# --- parameters -------------------------------------------------------------------


def cursor_param() -> dict[str, Any]:
    """The ``cursor`` parameter every built-in source's ``CONFIG`` lists (a fresh dict each)."""
    return {"name": "cursor", "title": "Cursor column", "placeholder": "id",
            "help": "Increasing column of incremental loads"}


def positive_int(value: Any, name: str) -> int:
    try:
        n = int(value)
    except (TypeError, ValueError):
        n = 0
    if n < 1 or isinstance(value, bool):
        raise InvalidArgumentError(f"{name} must be a positive number of bytes, got {value!r}")
    return n


def positive_number(value: Any, name: str) -> float:
    """``value`` (a number, or its text from a URI or a form) as a positive float."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        x = 0.0
    if not x > 0 or isinstance(value, bool) or x == float("inf"):
        raise InvalidArgumentError(f"{name} must be a positive number of seconds, got {value!r}")
    return x


def flag(value: Any, name: str) -> bool:
    if value in (None, "", False, True):
        return bool(value)
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise InvalidArgumentError(f"{name} must be true or false, got {value!r}")
