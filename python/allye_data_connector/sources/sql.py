"""Data sources: the :class:`DataSource` contract (panoply's, see the seed README), the
built-in sources (CSV, Parquet, Arrow IPC/Feather, SQL through ADBC) and the registry
that maps a source URI or name to its class (built-ins plus the entry point group
``allye_data_connector.sources``).

A source is read by :func:`allye_data_connector.load`, which writes each batch into the
store as it arrives. A source never touches the store itself.
"""

from __future__ import annotations

import glob
import logging
import os
import re
import urllib.parse
from typing import Any, Callable, ClassVar, Iterable, Mapping, Optional

import pyarrow as pa

from . import _core
from .errors import InvalidArgumentError, SourceError

logger = logging.getLogger(__name__)

#: The entry point group third-party sources register under: ``name = "module:Class"``.
ENTRY_POINT_GROUP = "allye_data_connector.sources"

#: Rows a source is asked for per ``read(n)`` (a hint, as in panoply).
DEFAULT_BATCH_ROWS: int = _core.DEFAULT_LOAD_BATCH_ROWS

_REDACTED = "***"

#: Bytes of CSV parsed per batch (pyarrow's default).
CSV_BLOCK_BYTES = 1 << 20
#: Size of a PostgreSQL table from which a whole-table load reads page ranges on
#: several connections by default (see :class:`SqlSource`).
PG_PARTITION_MIN_BYTES = 32 << 20
#: Bytes of an uncompressed CSV cut off and parsed at once by ``read_csv``'s threads.
CSV_SLICE_BYTES = 16 << 20


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
            logging.getLogger(f"{__name__}.{type(self).__name__}").info(" ".join(clean))

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
    import sys

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


def _required(source: Mapping[str, Any], name: str, cls: str) -> Any:
    value = source.get(name)
    if value in (None, ""):
        raise InvalidArgumentError(f"{cls} needs the parameter {name!r} (see `adc sources`)")
    return value


# --- files ------------------------------------------------------------------------


def _cursor_param() -> dict[str, Any]:
    """The ``cursor`` parameter every built-in source's ``CONFIG`` lists (a fresh dict each)."""
    return {"name": "cursor", "title": "Cursor column", "placeholder": "id",
            "help": "Increasing column of incremental loads"}


class CsvSource(DataSource):
    """A CSV file (or ``.csv.gz``, ``.bz2``, ``.zst``, ``.lz4``); progress in bytes read of
    the file's size.

    An uncompressed file is read in slices of ``slice_bytes`` cut at line ends, each parsed
    by ``pyarrow.csv.read_csv`` with its threads (pyarrow's streaming reader parses one
    block at a time, on one core), the next slice parsed while the store writes the last
    one: a few slices are held, never the file. The first slice fixes the column names and
    types (inferred there, or ``column_types``) for the rest, as pyarrow's streaming reader
    does: a later value that does not fit its column's type is a :class:`SourceError`
    naming the column (``read_csv`` alone, holding the whole file, would widen the type;
    a load has already written the first rows). Values spanning lines
    (``newlines_in_values``) and compressed files are read by the streaming reader, block
    by block.
    """

    CONFIG = {
        "title": "CSV file",
        "params": [
            {"name": "path", "title": "File", "placeholder": "data.csv", "help": "Path of the CSV file"},
            {"name": "delimiter", "title": "Delimiter", "placeholder": ",", "help": "Field separator (default ,)"},
            {"name": "column_types", "title": "Column types", "placeholder": "price:float64,code:string",
             "help": "Types of some columns (pyarrow names), instead of inferring them from the first slice"},
            {"name": "newlines_in_values", "title": "Newlines in values", "placeholder": "false",
             "help": "true if quoted values span lines (read serially then)"},
            {"name": "slice_bytes", "title": "Slice size", "placeholder": str(CSV_SLICE_BYTES),
             "help": "Bytes of the file parsed at once, in parallel (memory held: about 3 slices)"},
            {"name": "block_size", "title": "Block size", "placeholder": "1048576",
             "help": "Bytes pyarrow parses per batch (streaming reader: about 40 blocks held)"},
            _cursor_param(),
        ],
    }

    def __init__(self, source: Optional[Mapping[str, Any]] = None, options: Optional[Mapping[str, Any]] = None):
        super().__init__(source, options)
        import pyarrow.csv as pacsv

        self.path = os.fspath(_required(self.source, "path", "CsvSource"))
        self._pacsv = pacsv
        self._block = _positive_int(self.source.get("block_size") or CSV_BLOCK_BYTES, "block_size")
        self._slice = _positive_int(self.source.get("slice_bytes") or CSV_SLICE_BYTES, "slice_bytes")
        self._types = _column_types(self.source.get("column_types"))
        multiline = _flag(self.source.get("newlines_in_values"), "newlines_in_values")
        self._parse = pacsv.ParseOptions(delimiter=str(self.source.get("delimiter") or ","),
                                         newlines_in_values=multiline)
        self._reader: Any = None
        self._slices: Optional[_CsvSlices] = None
        #: The first slice's schema, which every later slice is given.
        self._fixed: pa.Schema = pa.schema([])
        codec = _CODECS.get(os.path.splitext(self.path)[1].lower())
        try:
            self._file = pa.OSFile(self.path, "rb")
            self._size = self._file.size()
            if codec or multiline:
                # Progress counts the compressed bytes read of the compressed file's size.
                stream: Any = pa.CompressedInputStream(self._file, codec) if codec else self._file
                # pyarrow reads ahead a few dozen blocks: the block size bounds the memory
                # a load holds (1 MiB blocks: about 40 MiB whatever the file's size).
                self._reader = pacsv.open_csv(
                    stream, read_options=pacsv.ReadOptions(block_size=self._block),
                    parse_options=self._parse, convert_options=pacsv.ConvertOptions(column_types=self._types))
            else:
                self._slices = _CsvSlices(self._file.fileno(), self._size, self._slice, self._parse_slice)
        except (OSError, pa.ArrowInvalid) as e:  # the first slice is parsed here
            self.close()
            raise SourceError(f"cannot read CSV {self.path!r}: {e}") from e

    def _parse_slice(self, data: pa.Buffer, first: bool) -> pa.Table:
        pacsv = self._pacsv
        if first:
            read = pacsv.ReadOptions(block_size=self._block, use_threads=True)
            convert = pacsv.ConvertOptions(column_types=self._types)
        else:
            # Later slices have no header: columns by position (names may repeat), each
            # with the type the first slice gave it.
            keys = [str(i) for i in range(len(self._fixed))]
            read = pacsv.ReadOptions(block_size=self._block, use_threads=True, column_names=keys)
            convert = pacsv.ConvertOptions(column_types=dict(zip(keys, self._fixed.types)))
        table = pacsv.read_csv(pa.BufferReader(data), read_options=read, parse_options=self._parse,
                               convert_options=convert)
        if first:
            self._fixed = table.schema
            return table
        return pa.Table.from_arrays(table.columns, schema=self._fixed)

    def schema(self) -> Optional[pa.Schema]:
        if self._slices is not None:
            return self._slices.schema
        return self._reader.schema

    def describe(self) -> str:
        return f"csv:{os.path.abspath(self.path)}"

    def read(self, n: Optional[int] = None) -> Optional[pa.Table | pa.RecordBatch]:
        if self._slices is not None:
            try:
                table = self._slices.next()
            except pa.ArrowInvalid as e:
                raise SourceError(self._explain(e)) from e
            done = self._slices.done
        else:
            try:
                table = self._reader.read_next_batch()
            except StopIteration:
                table = None
            except pa.ArrowInvalid as e:
                raise SourceError(self._explain(e)) from e
            done = min(self._file.tell(), self._size)
        if table is None:
            self.progress(self._size, self._size, "done")
            return None
        self.progress(done, self._size, f"{done:,} of {self._size:,} bytes")
        return table

    def _explain(self, e: Exception) -> str:
        msg = f"bad CSV in {self.path!r}: {e}"
        m = re.search(r"CSV column #(\d+): CSV conversion error to (\S+?):", str(e))
        schema = self.schema()
        if m and schema is not None and int(m.group(1)) < len(schema):
            name = schema.names[int(m.group(1))]
            msg += (f". The column {name!r} was typed {m.group(2)} from the start of the file and a later "
                    f"value does not fit; give its type, e.g. column_types=\"{name}:string\" "
                    f"(--param column_types={name}:string)")
        return msg

    def close(self) -> None:
        slices = getattr(self, "_slices", None)
        if slices is not None:
            slices.close()
        f = getattr(self, "_file", None)
        if f is not None:
            f.close()


class _CsvSlices:
    """Slices of an uncompressed CSV cut at line ends, parsed one ahead on a worker thread
    (``read_csv`` releases the GIL) so parsing overlaps the store's writing."""

    def __init__(self, fd: int, size: int, slice_bytes: int, parse: Callable[[pa.Buffer, bool], pa.Table]):
        from concurrent.futures import ThreadPoolExecutor

        self._fd, self._size, self._slice, self._parse = fd, size, slice_bytes, parse
        self._pos = 0
        #: Bytes of the file in the slices returned so far.
        self.done = 0
        first = self._cut()
        # The first slice is parsed here: it fixes the schema before any row is written.
        self._first: Optional[tuple[pa.Table, int]] = (parse(first, True), self._pos)
        self.schema = self._first[0].schema
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="adc-csv")
        self._next: Any = self._pool.submit(self._work) if self._pos < size else None

    def _cut(self) -> pa.Buffer:
        """The bytes from the current position to the last line end outside quotes within
        a slice; more when there is none (a line or a quoted value longer than a slice)."""
        want = self._slice
        while True:
            data = os.pread(self._fd, want, self._pos)
            if self._pos + len(data) >= self._size:
                end = len(data)
                break
            # The first slice holds a row past the header: its types are inferred from it.
            outside, last = _line_ends(data, data.find(b"\n") + 1 if self._pos == 0 else 0)
            # A stray quote in an unquoted value upsets the count of quotes: past a bound,
            # any line end will do (pyarrow reads such a file only if no value spans lines).
            end = outside or (last if want >= max(4 * self._slice, CSV_SLICE_BYTES * 2) else 0)
            if end:
                break
            want *= 2
        self._pos += end
        return pa.py_buffer(data).slice(0, end)

    def _work(self) -> tuple[pa.Table, int]:
        return self._parse(self._cut(), False), self._pos

    def next(self) -> Optional[pa.Table]:
        if self._first is not None:
            (table, self.done), self._first = self._first, None
            return table
        if self._next is None:
            return None
        table, self.done = self._next.result()
        self._next = self._pool.submit(self._work) if self.done < self._size else None
        return table

    def close(self) -> None:
        pool = getattr(self, "_pool", None)
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


def _line_ends(data: bytes, after: int) -> tuple[int, int]:
    """Offsets just past the last ``\\n`` of ``data`` beyond ``after`` outside double
    quotes, and past the last one at all (0: none).

    A slice starts at a record's start, so an even count of quote characters before a
    line end means it is not inside a quoted value (RFC 4180 escapes a quote by doubling
    it).
    """
    last = data.rfind(b"\n", after)
    if last < 0:
        return 0, 0
    end = last
    odd = data.count(b'"', 0, end) & 1
    while odd:
        prev = data.rfind(b"\n", after, end)
        if prev < 0:
            return 0, last + 1
        odd ^= data.count(b'"', prev, end) & 1
        end = prev
    return end + 1, last + 1


def _positive_int(value: Any, name: str) -> int:
    try:
        n = int(value)
    except (TypeError, ValueError):
        n = 0
    if n < 1 or isinstance(value, bool):
        raise InvalidArgumentError(f"{name} must be a positive number of bytes, got {value!r}")
    return n


def _flag(value: Any, name: str) -> bool:
    if value in (None, "", False, True):
        return bool(value)
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise InvalidArgumentError(f"{name} must be true or false, got {value!r}")


def _column_types(value: Any) -> dict[str, pa.DataType]:
    """``{"a": "float64"}``, ``{"a": pa.float64()}`` or ``"a:float64,b:string"``."""
    if value in (None, ""):
        return {}
    if isinstance(value, str):
        pairs = []
        for item in value.split(","):
            name, sep, t = item.rpartition(":")
            if not sep or not name.strip():
                raise InvalidArgumentError(f"column_types: {item!r} is not name:type (e.g. price:float64)")
            pairs.append((name.strip(), t.strip()))
    elif isinstance(value, Mapping):
        pairs = list(value.items())
    else:
        raise InvalidArgumentError(f"column_types must be a dict or 'name:type,...', got {type(value).__name__}")
    out: dict[str, pa.DataType] = {}
    for name, t in pairs:
        if isinstance(t, pa.DataType):
            out[str(name)] = t
            continue
        try:
            out[str(name)] = pa.type_for_alias(str(t))
        except ValueError as e:
            raise InvalidArgumentError(f"column_types: {t!r} of {name!r} is not a pyarrow type name "
                                       "(int64, float64, string, bool, date32, timestamp[s], ...)") from e
    return out


_CODECS = {".gz": "gzip", ".bz2": "bz2", ".zst": "zstd", ".lz4": "lz4"}


def _parquet_files(path: str) -> list[str]:
    if os.path.isdir(path):
        files = sorted(
            f for f in glob.glob(os.path.join(path, "**", "*"), recursive=True)
            if os.path.isfile(f) and not os.path.basename(f).startswith(("_", "."))
        )
        if not files:
            raise SourceError(f"the directory {path!r} holds no Parquet files")
        return files
    if not os.path.exists(path):
        raise SourceError(f"no such file or directory: {path!r}")
    return [path]


class ParquetSource(DataSource):
    """A Parquet file or a directory of them, read row group by row group; progress in
    rows of the files' total (from their footers)."""

    CONFIG = {
        "title": "Parquet file or directory",
        "params": [
            {"name": "path", "title": "File or directory", "placeholder": "data.parquet",
             "help": "A Parquet file, or a directory read recursively"},
            {"name": "columns", "title": "Columns", "placeholder": "a,b", "help": "Columns to read (default all)"},
            _cursor_param(),
        ],
    }

    def __init__(self, source: Optional[Mapping[str, Any]] = None, options: Optional[Mapping[str, Any]] = None):
        super().__init__(source, options)
        import pyarrow.parquet as pq

        self.path = os.fspath(_required(self.source, "path", "ParquetSource"))
        cols = self.source.get("columns")
        self.columns: Optional[list[str]] = (
            [c.strip() for c in cols.split(",")] if isinstance(cols, str) else (list(cols) if cols else None)
        )
        try:
            self._files = [pq.ParquetFile(f) for f in _parquet_files(self.path)]
        except (OSError, pa.ArrowInvalid) as e:
            raise SourceError(f"cannot read Parquet {self.path!r}: {e}") from e
        self._total = sum(f.metadata.num_rows for f in self._files)
        self._groups = [(f, g) for f in self._files for g in range(f.num_row_groups)]
        self._next = 0
        self._rows = 0

    def schema(self) -> Optional[pa.Schema]:
        schema = self._files[0].schema_arrow
        return pa.schema([schema.field(c) for c in self.columns]) if self.columns else schema

    def describe(self) -> str:
        return f"parquet:{os.path.abspath(self.path)}"

    def read(self, n: Optional[int] = None) -> Optional[pa.Table]:
        if self._next >= len(self._groups):
            return None
        f, g = self._groups[self._next]
        self._next += 1
        try:
            table = f.read_row_group(g, columns=self.columns)
        except (OSError, pa.ArrowInvalid) as e:
            raise SourceError(f"cannot read row group {g} of {self.path!r}: {e}") from e
        self._rows += table.num_rows
        self.progress(self._rows, self._total, f"{self._rows:,} of {self._total:,} rows")
        return table

    def close(self) -> None:
        for f in getattr(self, "_files", ()):
            f.close()


class IpcSource(DataSource):
    """An Arrow IPC file (Feather v2) or stream, batch by batch (a file is memory-mapped)."""

    CONFIG = {
        "title": "Arrow IPC / Feather file",
        "params": [
            {"name": "path", "title": "File", "placeholder": "data.arrow", "help": "Arrow IPC file or stream"},
            _cursor_param(),
        ],
    }

    def __init__(self, source: Optional[Mapping[str, Any]] = None, options: Optional[Mapping[str, Any]] = None):
        super().__init__(source, options)
        self.path = os.fspath(_required(self.source, "path", "IpcSource"))
        self._next = 0
        try:
            self._map = pa.memory_map(self.path, "r")
        except OSError as e:
            raise SourceError(f"cannot open {self.path!r}: {e}") from e
        try:
            self._file: Optional[pa.ipc.RecordBatchFileReader] = pa.ipc.open_file(self._map)
            self._stream: Optional[pa.ipc.RecordBatchStreamReader] = None
            self._total: Optional[int] = self._file.num_record_batches
        except pa.ArrowInvalid:
            try:
                self._map.seek(0)
                self._file, self._stream, self._total = None, pa.ipc.open_stream(self._map), None
            except pa.ArrowInvalid as e:
                self._map.close()
                raise SourceError(f"{self.path!r} is neither an Arrow IPC file nor a stream: {e}") from e

    def schema(self) -> Optional[pa.Schema]:
        return (self._file or self._stream).schema  # type: ignore[union-attr]

    def describe(self) -> str:
        return f"ipc:{os.path.abspath(self.path)}"

    def read(self, n: Optional[int] = None) -> Optional[pa.RecordBatch]:
        if self._file is not None:
            if self._next >= self._file.num_record_batches:
                return None
            batch = self._file.get_batch(self._next)
        else:
            assert self._stream is not None
            try:
                batch = self._stream.read_next_batch()
            except StopIteration:
                return None
        self._next += 1
        self.progress(self._next, self._total, f"{self._next} batches")
        return batch

    def close(self) -> None:
        self._map.close()


# --- SQL through ADBC ---------------------------------------------------------------


def _connect(uri: str, driver: Optional[str]) -> Any:
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


_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$")


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
            _cursor_param(),
            {"name": "password", "title": "Password", "placeholder": "", "help": "Added to the URI", "secret": True},
            {"name": "partitions", "title": "Parallel connections", "placeholder": "auto",
             "help": "PostgreSQL table: page ranges read on as many connections in one snapshot, "
                     "spilled to TMPDIR (auto: 2 on 2+ cores for a table over 32 MiB; 1: one connection)"},
        ],
    }

    def __init__(self, source: Optional[Mapping[str, Any]] = None, options: Optional[Mapping[str, Any]] = None):
        super().__init__(source, options)
        self.uri = str(_required(self.source, "uri", "SqlSource"))
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
        self._partitions: Optional[int] = None if parts in (None, "", "auto") else _positive_int(parts, "partitions")
        self._table = str(table) if table else None
        #: The other page ranges, read meanwhile by threads into files (PostgreSQL only).
        self._spills: list[_Spill] = []
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
        if not self.cursor:
            return query, None
        order = f" ORDER BY {self.cursor}"
        if self.last_cursor is not None:
            return (f"SELECT * FROM ({query}) AS adc_q WHERE {self.cursor} > {self._placeholder()}{order}",
                    (self.last_cursor,))
        return f"SELECT * FROM ({query}) AS adc_q{order}", None

    def _start(self) -> None:
        self._conn = _connect(self._uri, self.source.get("driver"))
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
                import tempfile

                self._spill_dir = tempfile.TemporaryDirectory(prefix="adc-sql-")
                self._spills = [_Spill(self._uri, self.source.get("driver"), snapshot, q, params,
                                       os.path.join(self._spill_dir.name, f"part{i}.arrows"))
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
            self._spill_dir.cleanup()
            self._spill_dir = None


class _Spill:
    """One page range of a PostgreSQL table, read on its own connection in the snapshot
    of the first (``SET TRANSACTION SNAPSHOT``) by a thread that writes its batches to an
    Arrow IPC stream file as they come (the driver decodes with the GIL released)."""

    def __init__(self, uri: str, driver: Optional[str], snapshot: str, query: str,
                 params: Optional[tuple[Any, ...]], path: str):
        import threading

        self.path, self.query, self.params = path, query, params
        self.error: Optional[BaseException] = None
        #: Whether its query ran (after that, a failure fails the load).
        self.started = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(uri, driver, snapshot, query, params),
                                        name="adc-sql-range", daemon=True)
        self._thread.start()

    def _run(self, uri: str, driver: Optional[str], snapshot: str, query: str,
             params: Optional[tuple[Any, ...]]) -> None:
        conn = cur = None
        try:
            conn = _connect(uri, driver)
            cur = conn.cursor()
            cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            cur.execute(f"SET TRANSACTION SNAPSHOT '{snapshot}'")
            cur.execute(query, params)
            self.started = True
            reader = cur.fetch_record_batch()
            with pa.OSFile(self.path, "wb") as f, pa.ipc.new_stream(f, reader.schema) as w:
                for batch in reader:
                    if self._stop.is_set():
                        break
                    w.write_batch(batch)
            reader.close()
        except BaseException as e:  # handed to the reading thread
            self.error = e
        finally:
            for thing in (cur, conn):
                if thing is not None:
                    try:
                        thing.close()
                    except Exception as e:
                        logger.debug("closing %s: %s", type(thing).__name__, redact_uri(str(e)))

    def reader(self) -> pa.RecordBatchReader:
        """The range's batches, once its thread has read them all."""
        self._thread.join()
        if self.error is not None:
            raise self.error
        return pa.ipc.open_stream(pa.OSFile(self.path, "rb"))

    def stop(self) -> None:
        self._stop.set()

    def join(self) -> None:
        self._thread.join()


# --- the registry -----------------------------------------------------------------

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
    from importlib.metadata import entry_points

    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def _from_module(obj: Any) -> Any:
    """A panoply-style module (``Stream`` and ``CONFIG`` attributes) as its class."""
    import types

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
    (``postgresql://``, ``sqlite:///``, any ``scheme://`` of an ADBC driver) is SQL and
    a path is a file whose suffix (or a directory: Parquet) says which. ``params`` are the
    source's parameters (``--param k=v``)."""
    params = dict(params or {})
    sources = available()
    if kind is None and "://" in uri and not uri.startswith("file://"):
        scheme = uri.split("://", 1)[0].lower()
        kind = scheme if scheme in sources and scheme not in BUILTIN else "sql"
    if uri.startswith("file://"):
        uri = urllib.parse.urlsplit(uri).path
    if kind is None:
        path = os.path.expanduser(uri)
        if os.path.isdir(path):
            kind = "parquet"
        else:
            base, ext = os.path.splitext(path)
            suffix = os.path.splitext(base)[1].lower() if ext.lower() in _CODECS else ext.lower()
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


def _iter_params(pairs: Iterable[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs:
        if "=" not in pair:
            raise InvalidArgumentError(f"--param {pair!r} is not k=v")
        k, v = pair.split("=", 1)
        out[k.strip()] = v
    return out
