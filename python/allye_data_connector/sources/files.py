"""The file sources besides CSV: Parquet (a file or a directory of them, row group by
row group) and Arrow IPC / Feather (a file memory-mapped, or a stream)."""

from __future__ import annotations

import glob
import os
from typing import Any, Mapping, Optional

import pyarrow as pa

from ..errors import SourceError
from .base import DataSource, cursor_param, required


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
            cursor_param(),
        ],
    }

    def __init__(self, source: Optional[Mapping[str, Any]] = None, options: Optional[Mapping[str, Any]] = None):
        super().__init__(source, options)
        import pyarrow.parquet as pq

        self.path = os.fspath(required(self.source, "path", "ParquetSource"))
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
            cursor_param(),
        ],
    }

    def __init__(self, source: Optional[Mapping[str, Any]] = None, options: Optional[Mapping[str, Any]] = None):
        super().__init__(source, options)
        self.path = os.fspath(required(self.source, "path", "IpcSource"))
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
