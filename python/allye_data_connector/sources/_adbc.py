"""An ADBC DB-API connection for a database URI: the driver the URI's scheme names
(PostgreSQL, SQLite), or any driver by its package or shared library."""

from __future__ import annotations

from typing import Any, Optional

from ..errors import InvalidArgumentError, SourceError
from .base import redact_uri


def connect(uri: str, driver: Optional[str]) -> Any:
    """An ADBC DB-API connection for ``uri``: PostgreSQL and SQLite by scheme, any other
    driver by its package (``driver="adbc_driver_flightsql"``) or shared library."""
    scheme = uri.split(":", 1)[0].lower() if "://" in uri or uri.startswith("sqlite:") else ""
    try:
        if driver is None and scheme in ("postgresql", "postgres"):
            import adbc_driver_postgresql.dbapi as pg

            return pg.connect(uri)
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
