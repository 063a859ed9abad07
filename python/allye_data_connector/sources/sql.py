"""The SQL source: a query (or a whole table) through ADBC, Arrow batches straight from
the driver; a whole PostgreSQL table read as page ranges on parallel connections that
share one snapshot (:mod:`._spill`)."""

from __future__ import annotations

import logging
import os
import re
import urllib.parse
from typing import Any, Mapping, Optional

import pyarrow as pa

from .. import _core
from ..errors import InvalidArgumentError, SourceError
from . import _adbc
from ._spill import Spill
from .base import DataSource, cursor_param, positive_int, positive_number, redact_uri, required

logger = logging.getLogger(__name__)

#: Size of a PostgreSQL table from which a whole-table load reads page ranges on
#: several connections by default (see :class:`SqlSource`).
PG_PARTITION_MIN_BYTES = 32 << 20

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$")


def pg_literal(value: Any) -> Optional[str]:
    """``value`` (a cursor's last value, as pyarrow gives it) as a PostgreSQL literal of
    its type, or None when it has none here (it is then bound as a parameter). Strings
    are escape strings (``E'...'``: every backslash and quote escaped, so their meaning
    does not depend on ``standard_conforming_strings``) left untyped, so that they take
    the column's type (text, varchar, uuid, ...); bytes are ``decode('<hex>', 'hex')``;
    numbers are their exact text; times carry their type (``timestamptz`` when aware)."""
    import datetime
    import decimal
    import math

    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isfinite(value):
            return f"{value!r}::float8"
        return "'NaN'::float8" if math.isnan(value) else f"'{'-' if value < 0 else ''}Infinity'::float8"
    if isinstance(value, decimal.Decimal):
        return f"'{value}'::numeric" if value.is_finite() or value.is_nan() else None
    if isinstance(value, str):
        if "\0" in value:
            return None
        return "E'" + value.replace("\\", "\\\\").replace("'", "''") + "'"
    if isinstance(value, (bytes, bytearray)):
        return f"decode('{bytes(value).hex()}', 'hex')"
    if isinstance(value, datetime.datetime):
        kind = "timestamp" if value.tzinfo is None else "timestamptz"
        return f"'{value.isoformat()}'::{kind}"
    if isinstance(value, datetime.date):
        return f"'{value.isoformat()}'::date"
    if isinstance(value, datetime.time) and value.tzinfo is None:
        return f"'{value.isoformat()}'::time"
    return None


class SqlSource(DataSource):
    """A query (or a whole table) through ADBC: Arrow batches straight from the driver.
    Progress in rows against a ``COUNT(*)`` for a table (or with ``count=true``), else
    indeterminate. With a cursor, only rows past the last loaded value are queried, in
    cursor order (``ORDER BY``, on one connection), so an appending load can commit each
    chunk's largest value as its resume point.

    A whole PostgreSQL table of at least ``PG_PARTITION_MIN_BYTES`` is read as
    ``partitions`` ranges of its pages (default: 2 on 2+ cores; ``ctid`` ranges, TID
    range scans of PostgreSQL 14+) on as many connections sharing one snapshot
    (``pg_export_snapshot``), so the driver decodes on two cores. The first range streams
    into the load; the others are written meanwhile to temporary Arrow IPC files in
    ``TMPDIR`` (on disk: half the table's Arrow size for 2; in memory if ``TMPDIR`` is a
    tmpfs) and read back after it, in order: the rows and their order are the single
    scan's. A range whose connection cannot be opened (a connection limit) is read on
    the first connection after its own range, in the same snapshot.
    """

    CONFIG = {
        "title": "SQL database (ADBC)",
        "params": [
            {"name": "uri", "title": "Database URI", "placeholder": "postgresql://user:pass@host:5432/db",
             "help": "postgresql://..., sqlite:///path.db, or any URI of an ADBC driver", "secret": True},
            {"name": "query", "title": "Query", "placeholder": "select * from t", "help": "SQL to run"},
            {"name": "table", "title": "Table", "placeholder": "public.events", "help": "Load a whole table"},
            {"name": "driver", "title": "ADBC driver", "placeholder": "adbc_driver_flightsql",
             "help": "Driver package or library when the URI's scheme does not say"},
            {"name": "count", "title": "Count rows first", "placeholder": "false",
             "help": "Run COUNT(*) for a determinate progress bar (default: for a table only)"},
            cursor_param(),
            {"name": "password", "title": "Password", "placeholder": "", "help": "Added to the URI", "secret": True},
            {"name": "connect_timeout", "title": "Connect timeout (s)",
             "placeholder": str(_core.DEFAULT_SQL_CONNECT_TIMEOUT_SEC),
             "help": "Seconds to wait for the server to answer a connection (PostgreSQL) before failing"},
            {"name": "partitions", "title": "Parallel connections", "placeholder": "auto",
             "help": "PostgreSQL table: page ranges read on as many connections in one snapshot, "
                     "spilled to TMPDIR (auto: 2 on 2+ cores for a table over 32 MiB; 1: one connection)"},
        ],
    }

    def __init__(self, source: Optional[Mapping[str, Any]] = None, options: Optional[Mapping[str, Any]] = None):
        super().__init__(source, options)
        self.uri = str(required(self.source, "uri", "SqlSource"))
        table = self.source.get("table")
        query = self.source.get("query")
        if bool(table) == bool(query):
            raise InvalidArgumentError("SqlSource needs exactly one of 'query' and 'table'")
        if table and not _IDENT.match(str(table)):
            raise InvalidArgumentError(f"table={table!r} is not a plain [schema.]name; use query=")
        if self.cursor and not _IDENT.match(self.cursor):
            raise InvalidArgumentError(f"cursor={self.cursor!r} is not a plain column name")
        self.query = str(query) if query else f"SELECT * FROM {table}"
        count = self.source.get("count")
        self._count = bool(table) if count in (None, "") else str(count).lower() in ("1", "true", "yes", "on")
        uri = self.uri
        if self.source.get("password"):
            p = urllib.parse.urlsplit(uri)
            netloc = f"{p.username or ''}:{urllib.parse.quote(str(self.source['password']), safe='')}@{p.hostname}"
            uri = urllib.parse.urlunsplit(p._replace(netloc=netloc + (f":{p.port}" if p.port else "")))
        self._uri = uri
        self._conn: Any = None
        self._cursor: Any = None
        self._reader: Optional[pa.RecordBatchReader] = None
        self._rows = 0
        self._total: Optional[int] = None
        parts = self.source.get("partitions")
        self._partitions: Optional[int] = None if parts in (None, "", "auto") else positive_int(parts, "partitions")
        self._table = str(table) if table else None
        timeout = self.source.get("connect_timeout")
        self.connect_timeout_sec = (float(_core.DEFAULT_SQL_CONNECT_TIMEOUT_SEC) if timeout in (None, "")
                                    else positive_number(timeout, "connect_timeout"))
        #: The other page ranges, read meanwhile by threads into files (PostgreSQL only).
        self._spills: list[Spill] = []
        self._spill_dir: Any = None

    def secrets(self) -> list[str]:
        out = super().secrets()
        pw = urllib.parse.urlsplit(self.uri).password if "://" in self.uri else None
        return [s for s in out if s != self.uri] + ([pw] if pw else [])

    def describe(self) -> str:
        return f"sql:{redact_uri(self.uri)}"

    def _placeholder(self) -> str:
        return "$1" if self.uri.split(":", 1)[0].lower() in ("postgresql", "postgres") else "?"

    @property
    def ordered_by_cursor(self) -> bool:
        return bool(self.cursor)

    def _filtered(self, query: str) -> tuple[str, Optional[tuple[Any, ...]]]:
        """``query`` narrowed to the rows past the cursor's last value, in cursor order.
        For PostgreSQL the value is written into the SQL as a literal of its type
        (:func:`pg_literal`): ADBC's PostgreSQL driver returns the whole result of a
        query with a bound parameter as ONE batch, after the last row, so a resumed load
        would not stream; a literal streams batch by batch as the first load does."""
        if not self.cursor:
            return query, None
        order = f" ORDER BY {self.cursor}"
        if self.last_cursor is not None:
            where = f"SELECT * FROM ({query}) AS adc_q WHERE {self.cursor} > "
            literal = pg_literal(self.last_cursor) if self._placeholder() == "$1" else None
            if literal is not None:
                return f"{where}{literal}{order}", None
            return f"{where}{self._placeholder()}{order}", (self.last_cursor,)
        return f"SELECT * FROM ({query}) AS adc_q{order}", None

    def _start(self) -> None:
        self._conn = _adbc.connect(self._uri, self.source.get("driver"), self.connect_timeout_sec)
        self._cursor = self._conn.cursor()
        query, params = self._filtered(self.query)
        try:
            ranges = self._page_ranges()
            if self._count:
                self._cursor.execute(f"SELECT COUNT(*) FROM ({query}) AS adc_c", params)
                self._total = int(self._cursor.fetchone()[0])
            if ranges:
                snapshot, bounds = ranges
                parts = [self._filtered(f"SELECT * FROM {self._table} WHERE {cond}")[0] for cond in bounds]
                # In the core's scratch folder: a kill leaves it to gc, which knows whose it is.
                self._spill_dir = _core.ScratchDir("sql")
                self._spills = [Spill(self._uri, self.source.get("driver"), snapshot, q, params,
                                       os.path.join(self._spill_dir.path, f"part{i}.arrows"),
                                       self.connect_timeout_sec)
                                for i, q in enumerate(parts[1:], 1)]
                query = parts[0]
            self._cursor.execute(query, params)
            self._reader = self._cursor.fetch_record_batch()
        except Exception as e:
            raise SourceError(f"the query failed: {redact_uri(str(e))}") from e
        extra = f" (+ {len(self._spills)} more page ranges on their own connections)" if self._spills else ""
        self.log(f"running {self.describe()}: {query}{extra}")

    def _page_ranges(self) -> Optional[tuple[str, list[str]]]:
        """For a whole PostgreSQL table worth it: the snapshot the connections share and
        the ``ctid`` conditions of the page ranges; None to read it on one connection."""
        # Page ranges come in ctid order; a cursor load must come in cursor order.
        if self._table is None or self._placeholder() != "$1" or self._partitions == 1 or self.cursor:
            return None
        cur = self._cursor
        # The DB-API connection is in a transaction: this is its first statement.
        cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        cur.execute("SELECT c.relkind::text, pg_relation_size(c.oid), current_setting('block_size')::int, "
                    "current_setting('server_version_num')::int FROM pg_class c WHERE c.oid = to_regclass($1)",
                    (self._table,))
        row = cur.fetchone()
        if row is None:
            return None  # the query itself says what is wrong
        kind, size, block, version = row
        n = self._partitions or (min(2, os.cpu_count() or 1) if size >= PG_PARTITION_MIN_BYTES else 1)
        pages = size // block
        # Ordinary tables and materialized views have ctids; TID range scans: 14+.
        if n < 2 or kind not in ("r", "m") or version < 140000 or pages < n:
            return None
        cur.execute("SELECT pg_export_snapshot()")
        snapshot = str(cur.fetchone()[0])
        if not re.fullmatch(r"[0-9A-Fa-f-]+", snapshot):
            return None
        cuts = [pages * i // n for i in range(1, n)]
        conds = [f"ctid < '({cuts[0]},0)'::tid"]
        conds += [f"ctid >= '({lo},0)'::tid AND ctid < '({hi},0)'::tid" for lo, hi in zip(cuts, cuts[1:])]
        conds.append(f"ctid >= '({cuts[-1]},0)'::tid")
        return snapshot, conds

    def schema(self) -> Optional[pa.Schema]:
        if self._reader is None:
            self._start()
        assert self._reader is not None
        return self._reader.schema

    def read(self, n: Optional[int] = None) -> Optional[pa.RecordBatch]:
        if self._reader is None:
            self._start()
        assert self._reader is not None
        while True:
            try:
                batch = self._reader.read_next_batch()
                break
            except StopIteration:
                if not self._spills:
                    return None
                spill = self._spills.pop(0)
                self._reader.close()
                try:
                    reader = spill.reader()
                except Exception as e:
                    if spill.started:
                        raise SourceError(f"reading the query's results failed: {redact_uri(str(e))}") from e
                    # Its connection never read a row: read the range here, same snapshot.
                    logger.warning("reading a page range on the first connection: %s", redact_uri(str(e)))
                    try:
                        self._cursor.execute(spill.query, spill.params)
                        reader = self._cursor.fetch_record_batch()
                    except Exception as e2:
                        raise SourceError(f"the query failed: {redact_uri(str(e2))}") from e2
                self._reader = reader
            except Exception as e:
                raise SourceError(f"reading the query's results failed: {redact_uri(str(e))}") from e
        self._rows += batch.num_rows
        total = f" of {self._total:,}" if self._total is not None else ""
        self.progress(self._rows, self._total, f"{self._rows:,}{total} rows")
        return batch

    def close(self) -> None:
        for spill in self._spills:
            spill.stop()
        for thing in (self._reader, self._cursor, self._conn):
            if thing is not None:
                try:
                    thing.close()
                except Exception as e:  # a dropped connection cannot be closed cleanly
                    logger.debug("closing %s: %s", type(thing).__name__, redact_uri(str(e)))
        self._reader = self._cursor = self._conn = None
        for spill in self._spills:
            spill.join()
        self._spills = []
        if self._spill_dir is not None:
            self._spill_dir.remove()
            self._spill_dir = None
