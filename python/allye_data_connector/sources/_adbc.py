"""An ADBC DB-API connection for a database URI: the driver the URI's scheme names
(PostgreSQL, SQLite: the ``sql`` extra installs both), an installed ``adbc_driver_<scheme>``
package, or any driver passed by its package or shared library."""

from __future__ import annotations

import importlib.util
import pkgutil
import urllib.parse
from typing import Any, Optional

from .. import _core
from .._optional import install_hint, require
from ..errors import InvalidArgumentError, SourceError
from .base import redact_uri

#: The URI schemes read by the drivers of the ``sql`` extra, and the driver of each.
KNOWN_SCHEMES = {
    "postgresql": "adbc_driver_postgresql",
    "postgres": "adbc_driver_postgresql",
    "sqlite": "adbc_driver_sqlite",
}

#: The least connect timeout libpq honours (it reads smaller ones as 2 s).
_LIBPQ_MIN_TIMEOUT_SEC = 2

#: File suffixes read as SQLite databases.
SQLITE_SUFFIXES = (".db", ".sqlite", ".sqlite3")


def scheme_of(uri: str) -> str:
    """The URI's scheme, lower case ("" for a path)."""
    return uri.split(":", 1)[0].lower() if "://" in uri or uri.startswith("sqlite:") else ""


def installed_drivers() -> list[str]:
    """The ADBC driver packages installed (``adbc_driver_*``, the manager left out)."""
    return sorted(m.name for m in pkgutil.iter_modules()
                  if m.name.startswith("adbc_driver_") and m.name != "adbc_driver_manager")


def can_read(uri: str) -> bool:
    """Whether a URI without ``driver=`` names a driver: a scheme of :data:`KNOWN_SCHEMES`
    (installed or not: a missing one is named with its extra when used), a SQLite file,
    or an installed ``adbc_driver_<scheme>`` package."""
    scheme = scheme_of(uri)
    if scheme in KNOWN_SCHEMES or (not scheme and uri.lower().endswith(SQLITE_SUFFIXES)):
        return True
    return bool(scheme) and importlib.util.find_spec(f"adbc_driver_{scheme}") is not None


def unknown_scheme(uri: str, sources: Optional[list[str]] = None) -> InvalidArgumentError:
    """The error for a URI no driver (and no registered source) reads, listing what does."""
    scheme = scheme_of(uri)
    known = ", ".join(f"{s}://" for s in KNOWN_SCHEMES)
    drivers = [d for d in installed_drivers() if d not in KNOWN_SCHEMES.values()]
    extra = f"; other ADBC drivers installed: {', '.join(drivers)}" if drivers else ""
    registered = f"; sources by scheme: {', '.join(f'{s}://' for s in sources)}" if sources else ""
    what = f"the scheme {scheme!r}" if scheme else "a path without a database suffix"
    return InvalidArgumentError(
        f"no data source reads {what} ({redact_uri(uri)!r}). Databases: {known} and SQLite files "
        f"({', '.join(SQLITE_SUFFIXES)}){extra}{registered}. For another database install its ADBC "
        f"driver (the package adbc_driver_{scheme or 'NAME'} reads {scheme or 'NAME'}://) or pass "
        f"driver= (an ADBC driver package or shared library)")


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


def _driver_module(package: str, uri: str) -> Any:
    """The DB-API module of a driver of the ``sql`` extra."""
    scheme = scheme_of(uri) or "sqlite"
    return require(f"{package}.dbapi", extra="sql", purpose=f"reading {scheme} databases")


def connect(uri: str, driver: Optional[str],
            connect_timeout_sec: float = _core.DEFAULT_SQL_CONNECT_TIMEOUT_SEC) -> Any:
    """An ADBC DB-API connection for ``uri``: PostgreSQL and SQLite by scheme (or a
    SQLite file by suffix), an installed ``adbc_driver_<scheme>`` package, or ``driver``
    (a driver package such as ``"adbc_driver_flightsql"``, or a shared library). A
    PostgreSQL server that does not answer within ``connect_timeout_sec`` is a
    :class:`~..errors.SourceError` (other drivers have their own timeouts)."""
    scheme = scheme_of(uri)
    if driver is None:
        if scheme in KNOWN_SCHEMES or (not scheme and uri.lower().endswith(SQLITE_SUFFIXES)):
            package = KNOWN_SCHEMES.get(scheme, "adbc_driver_sqlite")
            module = _driver_module(package, uri)
            if package == "adbc_driver_postgresql":
                return _connect(module.connect, uri, connect_timeout_sec)
            if package == "adbc_driver_sqlite" and scheme:
                # SQLAlchemy's spelling: sqlite:///relative.db, sqlite:////absolute/path.db
                rest = uri[len("sqlite://"):] if uri.startswith("sqlite://") else uri[len("sqlite:"):]
                uri = rest[1:] if rest.startswith("/") else (rest or ":memory:")
            return _connect(module.connect, uri)
        if not can_read(uri):
            raise unknown_scheme(uri)
        driver = f"adbc_driver_{scheme}"
    try:
        module = importlib.import_module(f"{driver}.dbapi")
    except ImportError:
        manager = require("adbc_driver_manager.dbapi", extra="sql", purpose=f"the ADBC driver {driver!r}")
        try:
            return manager.connect(driver=driver, uri=uri)
        except Exception as e:
            if "Could not load" not in str(e):
                raise SourceError(f"cannot connect to {redact_uri(uri)!r}: {redact_uri(str(e))}") from e
            raise SourceError(
                f"no ADBC driver {driver!r} is installed for {redact_uri(uri)!r}: pip install "
                f"{driver.replace('_', '-')}, or pass driver= (a driver package or shared library); "
                f"PostgreSQL and SQLite come with {install_hint('sql')}") from e
    return _connect(module.connect, uri)


def _connect(connect: Any, uri: str, timeout_sec: Optional[float] = None) -> Any:
    """``connect(uri)`` with the drivers' own DB-API errors as one-line SourceErrors; with
    ``timeout_sec`` (PostgreSQL), libpq's connect timeout in the URI and its expiry said so."""
    try:
        return connect(uri if timeout_sec is None else with_connect_timeout(uri, timeout_sec))
    except Exception as e:  # the drivers raise their own DB-API error classes
        if timeout_sec is not None and "timeout expired" in str(e):
            raise SourceError(
                f"the database at {redact_uri(uri)!r} did not answer within {timeout_sec:g} s "
                f"(connect_timeout): is it a PostgreSQL server, up and not overloaded? Pass a longer "
                f"connect_timeout to wait longer") from e
        raise SourceError(f"cannot connect to {redact_uri(uri)!r}: {redact_uri(str(e))}") from e
