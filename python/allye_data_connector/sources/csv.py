"""The CSV source: an uncompressed file read in slices parsed in parallel, a compressed
one (or one whose values span lines) by pyarrow's streaming reader."""

from __future__ import annotations

import os
import re
from typing import Any, Callable, Mapping, Optional

import pyarrow as pa

from ..errors import InvalidArgumentError, SourceError
from .base import DataSource, cursor_param, flag, positive_int, required

#: Bytes of CSV parsed per batch (pyarrow's default).
CSV_BLOCK_BYTES = 1 << 20
#: Bytes of an uncompressed CSV cut off and parsed at once by ``read_csv``'s threads.
CSV_SLICE_BYTES = 16 << 20
#: The codec of a compressed file by its suffix.
CODECS = {".gz": "gzip", ".bz2": "bz2", ".zst": "zstd", ".lz4": "lz4"}


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
            cursor_param(),
        ],
    }

    def __init__(self, source: Optional[Mapping[str, Any]] = None, options: Optional[Mapping[str, Any]] = None):
        super().__init__(source, options)
        import pyarrow.csv as pacsv

        self.path = os.fspath(required(self.source, "path", "CsvSource"))
        self._pacsv = pacsv
        self._block = positive_int(self.source.get("block_size") or CSV_BLOCK_BYTES, "block_size")
        self._slice = positive_int(self.source.get("slice_bytes") or CSV_SLICE_BYTES, "slice_bytes")
        self._types = _column_types(self.source.get("column_types"))
        multiline = flag(self.source.get("newlines_in_values"), "newlines_in_values")
        self._parse = pacsv.ParseOptions(delimiter=str(self.source.get("delimiter") or ","),
                                         newlines_in_values=multiline)
        self._reader: Any = None
        self._slices: Optional[_CsvSlices] = None
        #: The first slice's schema, which every later slice is given.
        self._fixed: pa.Schema = pa.schema([])
        codec = CODECS.get(os.path.splitext(self.path)[1].lower())
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
