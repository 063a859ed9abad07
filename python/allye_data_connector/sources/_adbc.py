"""An ADBC DB-API connection for a database URI: the driver the URI's scheme names
(PostgreSQL, SQLite), or any driver by its package or shared library."""

from __future__ import annotations

import urllib.parse
from typing import Any, Optional

from .. import _core
from ..errors import InvalidArgumentError, SourceError
from .base import redact_uri

#: The least connect timeout libpq honours (it reads smaller ones as 2 s).
_LIBPQ_MIN_TIMEOUT_SEC = 2


def with_connect_timeout(uri: str, timeout_sec: float) -> str:
    """A PostgreSQL URI with libpq's ``connect_timeout`` (whole seconds, at least 2), unless
    the URI sets one itself: libpq then gives up on a server that does not answer (the
    SSL request and the startup exchange included), not only on one that does not accept."""
    parts = urllib.parse.urlsplit(uri)
    query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    if any(k == "connect_timeout" for k, _ in query):
        return uri
    seconds = max(_LIBPQ_MIN_TIMEOUT_SEC, int(-(-timeout_sec // 1)))
    query.append(("connect_timeout", str(seconds)))
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))


def connect(uri: str, driver: Optional[str],
            connect_timeout_sec: float = _core.DEFAULT_SQL_CONNECT_TIMEOUT_SEC) -> Any:
    """An ADBC DB-API connection for ``uri``: PostgreSQL and SQLite by scheme, any other
    driver by its package (``driver="adbc_driver_flightsql"``) or shared library. A
    PostgreSQL server that does not answer within ``connect_timeout_sec`` is a
    :class:`~..errors.SourceError` (other drivers have their own timeouts)."""
    scheme = uri.split(":", 1)[0].lower() if "://" in uri or uri.startswith("sqlite:") else ""
    try:
        if driver is None and scheme in ("postgresql", "postgres"):
            import adbc_driver_postgresql.dbapi as pg

            try:
                return pg.connect(with_connect_timeout(uri, connect_timeout_sec))
            except Exception as e:
                if "timeout expired" not in str(e):
                    raise
                raise SourceError(
                    f"the database at {redact_uri(uri)!r} did not answer within {connect_timeout_sec:g} s "
                    f"(connect_timeout): is it a PostgreSQL server, up and not overloaded? Pass a longer "
                    f"connect_timeout to wait longer") from e
        if driver is None and scheme == "sqlite":
            import adbc_driver_sqlite.dbapi as sq

            # SQLAlchemy's spelling: sqlite:///relative.db, sqlite:////absolute/path.db
            rest = uri[len("sqlite://"):] if uri.startswith("sqlite://") else uri[len("sqlite:"):]
            return sq.connect(rest[1:] if rest.startswith("/") else (rest or ":memory:"))
        if driver is None and scheme == "" and uri.endswith((".db", ".sqlite", ".sqlite3")):
            import adbc_driver_sqlite.dbapi as sq

            return sq.connect(uri)
        if driver is None:
            driver = f"adbc_driver_{scheme}" if scheme else None
        if driver is None:
            raise InvalidArgumentError(f"cannot tell which ADBC driver reads {redact_uri(uri)!r}: pass driver=...")
        import importlib

        try:
            module = importlib.import_module(f"{driver}.dbapi")
            return module.connect(uri)
        except ImportError:
            import adbc_driver_manager.dbapi as dm

            try:
                return dm.connect(driver=driver, uri=uri)
            except Exception as e:
                if "Could not load" not in str(e):
                    raise
                raise SourceError(
                    f"no ADBC driver {driver!r} is installed for {redact_uri(uri)!r}: pip install "
                    f"{driver.replace('_', '-')}, or pass driver= (a driver package or shared library)") from e
    except ImportError as e:
        raise SourceError(f"the ADBC driver for {scheme or driver!r} is not installed ({e}); "
                          f"pip install adbc-driver-{(scheme or str(driver)).replace('_', '-')}") from e
    except (InvalidArgumentError, SourceError):
        raise
    except Exception as e:  # the drivers raise their own DB-API error classes
        raise SourceError(f"cannot connect to {redact_uri(uri)!r}: {redact_uri(str(e))}") from e
