"""The registry of sources: the built-ins, then those installed under the entry point
group :data:`ENTRY_POINT_GROUP`; and the source a URI or path names."""

from __future__ import annotations

import logging
import os
import types
import urllib.parse
from typing import Any, Mapping, Optional

from ..errors import InvalidArgumentError
from . import _adbc
from .base import DataSource, config_of, params_of
from .csv import CODECS, CsvSource
from .files import IpcSource, ParquetSource
from .sql import SqlSource

logger = logging.getLogger(__name__)

#: The entry point group third-party sources register under: ``name = "module:Class"``.
ENTRY_POINT_GROUP = "allye_data_connector.sources"

BUILTIN: dict[str, type[DataSource]] = {
    "csv": CsvSource,
    "parquet": ParquetSource,
    "ipc": IpcSource,
    "sql": SqlSource,
}

_SUFFIXES = {
    ".csv": "csv", ".tsv": "csv", ".txt": "csv",
    ".parquet": "parquet", ".pq": "parquet",
    ".arrow": "ipc", ".feather": "ipc", ".ipc": "ipc", ".arrows": "ipc",
    ".db": "sql", ".sqlite": "sql", ".sqlite3": "sql",
}


def _entry_points() -> dict[str, Any]:
    from importlib.metadata import entry_points  # tens of ms to import: only when sources are looked up

    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def _from_module(obj: Any) -> Any:
    """A panoply-style module (``Stream`` and ``CONFIG`` attributes) as its class."""
    if isinstance(obj, types.ModuleType) and hasattr(obj, "Stream"):
        cls = obj.Stream
        if "CONFIG" not in vars(cls) and hasattr(obj, "CONFIG"):
            cls.CONFIG = obj.CONFIG
        return cls
    return obj


def available() -> dict[str, type[DataSource]]:
    """Every source by name: the built-ins, then those registered under the entry point
    group ``allye_data_connector.sources`` (one that fails to import is logged and left out)."""
    out = dict(BUILTIN)
    for name, ep in _entry_points().items():
        try:
            cls = ep.load()
        except Exception as e:
            logger.warning("the source %r (%s) cannot be loaded: %s", name, ep.value, e)
            continue
        cls = _from_module(cls)
        if not (isinstance(cls, type) and issubclass(cls, DataSource)) and not hasattr(cls, "read"):
            logger.warning("the source %r (%s) is not a DataSource", name, ep.value)
            continue
        out[name] = cls
    return out


def resolve(uri: str, params: Optional[Mapping[str, Any]] = None, *, kind: Optional[str] = None,
            options: Optional[Mapping[str, Any]] = None) -> DataSource:
    """The source a URI names: ``kind`` (a registered name) if given; else a database URI
    (``postgresql://``, ``sqlite:///``, the ``scheme://`` of an installed
    ``adbc_driver_<scheme>``, or any URI with ``params["driver"]``) is SQL and a path is a
    file whose suffix (or a directory: Parquet) says which. ``params`` are the source's
    parameters (``--param k=v``). A scheme nothing reads is an ``InvalidArgumentError``
    listing the schemes that are read."""
    params = dict(params or {})
    sources = available()
    if kind is None and "://" in uri and not uri.startswith("file://"):
        scheme = uri.split("://", 1)[0].lower()
        kind = scheme if scheme in sources and scheme not in BUILTIN else "sql"
        if kind == "sql" and not params.get("driver") and not _adbc.can_read(uri):
            raise _adbc.unknown_scheme(uri, sorted(n for n in sources if n not in BUILTIN))
    if uri.startswith("file://"):
        uri = urllib.parse.urlsplit(uri).path
    if kind is None:
        path = os.path.expanduser(uri)
        if os.path.isdir(path):
            kind = "parquet"
        else:
            base, ext = os.path.splitext(path)
            suffix = os.path.splitext(base)[1].lower() if ext.lower() in CODECS else ext.lower()
            kind = _SUFFIXES.get(suffix)
            if kind is None:
                raise InvalidArgumentError(
                    f"cannot tell which source reads {uri!r} from its suffix; pass the kind "
                    f"(one of {', '.join(sorted(sources))})")
        uri = path
    cls = sources.get(kind)
    if cls is None:
        raise InvalidArgumentError(f"no source named {kind!r}; available: {', '.join(sorted(sources))}")
    key = "uri" if kind == "sql" or any(p["name"] == "uri" for p in params_of(cls)) else "path"
    params.setdefault(key, uri)
    return cls(params, options or {})


def describe_sources() -> list[dict[str, Any]]:
    """Every available source with its title and parameters (for ``adc sources``)."""
    return [
        {"name": name, "title": config_of(cls).get("title", name),
         "class": f"{cls.__module__}.{cls.__qualname__}", "params": params_of(cls)}
        for name, cls in available().items()
    ]
