"""What ``load`` shares between its modes: the source's batches as Arrow record batches
of the table's schema (:class:`Feed`: cancel checked before each read, progress shown,
the source's reported state kept), and the cursor of incremental loads."""

from __future__ import annotations

from typing import Any, Callable, Iterator, Mapping, Optional, Union

import pyarrow as pa
import pyarrow.compute as pc

from ..errors import CancelledError, SourceError
from ..progress import Bar, Cancel, interactive, is_cancelled
from ..streams.evolve import describe, records_table
from .base import DataSource

#: ``progress(done, total)``: ``total`` None while unknown.
LoadProgress = Callable[[int, Optional[int]], object]


def to_batches(result: Any, schema: Optional[pa.Schema], refused: Optional[list[dict[str, Any]]] = None,
               conflicts: Optional[list[dict[str, Any]]] = None) -> list[pa.RecordBatch]:
    """What ``read(n)`` returned, as record batches: of ``schema`` when ``refused`` is
    None (a replace: one version of one schema; a batch that cannot be cast to it
    without changing a value, or that holds a column it lacks, is a ``SourceError``),
    else of their own types (an append: the stream's schema evolves; records whose
    values cannot share a column go to ``refused``, their conflicts to ``conflicts``).
    Records keep every field of every record and values are never forced into a
    type."""
    if isinstance(result, pa.RecordBatch):
        batches = [result]
    elif isinstance(result, pa.Table):
        batches = result.to_batches()
    elif isinstance(result, list):
        if not result:
            return []
        if not all(isinstance(r, Mapping) for r in result):
            raise SourceError("read() returned a list that is not of records (dicts)")
        converted = records_table(result, schema)
        if converted.refused:
            if refused is None:
                i, c = min(converted.refused.items())
                raise SourceError(f"record {i} of a read() cannot be stored: {describe([c])} (a column keeps its "
                                  "kind of value; numbers widen)")
            refused.extend(dict(result[i]) for i in sorted(converted.refused))
            if conflicts is not None:
                conflicts.extend(converted.refused.values())
        batches = [] if converted.table is None else converted.table.to_batches()
    elif hasattr(result, "__arrow_c_stream__") and not _is_pandas(result):
        batches = pa.table(result).to_batches()
    elif _is_pandas(result):
        batches = pa.Table.from_pandas(result, preserve_index=False).to_batches()
    else:
        raise SourceError(
            f"read() returned a {type(result).__name__}: return a pyarrow RecordBatch or Table, "
            "a pandas DataFrame, a list of dicts, or None at the end")
    if schema is not None and refused is None:
        try:
            batches = [b if b.schema.equals(schema) else _cast(b, schema) for b in batches]
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, KeyError, ValueError) as e:
            raise SourceError(f"a batch's columns do not match the table's ({schema}): {e}") from e
    return [b for b in batches if b.num_rows]


def _cast(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    extra = [n for n in batch.schema.names if n not in schema.names]
    if extra:
        raise ValueError(f"it has columns the first batch had not: {extra} (they would be lost)")
    return pa.Table.from_batches([batch]).select(schema.names).cast(schema).combine_chunks().to_batches()[0]


def _is_pandas(obj: Any) -> bool:
    return type(obj).__module__.startswith("pandas") and hasattr(obj, "columns")


def encode_cursor(value: pa.Scalar) -> Any:
    """A cursor value as JSON: temporal values as their integer (cast back by the column's
    type), the rest as Python values."""
    t = value.type
    if pa.types.is_temporal(t):
        return value.cast(pa.int64()).as_py() if not pa.types.is_date32(t) else value.cast(pa.int32()).as_py()
    return value.as_py()


def decode_cursor(raw: Any, t: pa.DataType) -> pa.Scalar:
    if pa.types.is_temporal(t):
        base = pa.int32() if pa.types.is_date32(t) else pa.int64()
        return pa.scalar(raw, base).cast(t)
    return pa.scalar(raw).cast(t)


class Feed:
    """What ``load`` shares between its modes: the source's batches as Arrow (cancel
    checked before each read), the progress display and the source's reported state."""

    def __init__(self, src: DataSource, table: str, progress: Union[bool, LoadProgress, None],
                 cancel: Optional[Cancel], batch_rows: int, cancelled: str) -> None:
        self.src, self.cancel, self.batch_rows, self.cancelled = src, cancel, batch_rows, cancelled
        self.schema: Optional[pa.Schema] = None
        #: ``progress`` when it is a callback; the bar when it is True and one can be drawn.
        self.callback: Optional[LoadProgress] = progress if callable(progress) else None
        self.bar = Bar(f"loading {table}", "load") if progress is True and interactive() else None
        self.seen: dict[str, Any] = {"loaded": None, "total": None, "msg": "", "state": None}
        self.rows = 0
        #: An append's records refused (their values cannot share a column) and why;
        #: None for a replace, whose batches are cast to one schema.
        self.refused: Optional[list[dict[str, Any]]] = None
        self.conflicts: list[dict[str, Any]] = []
        src.on("progress", self._on_progress)
        src.on("source-state", self._on_state)

    def _on_progress(self, p: Mapping[str, Any]) -> None:
        self.seen.update(loaded=p.get("loaded"), total=p.get("total"), msg=p.get("msg") or "")

    def _on_state(self, s: Mapping[str, Any]) -> None:
        self.seen["state"] = {"stateId": s.get("stateId"), "state": s.get("state")}

    def check_cancel(self) -> None:
        if is_cancelled(self.cancel):
            raise CancelledError(self.cancelled)

    def pull(self) -> Iterator[pa.RecordBatch]:
        while True:
            self.check_cancel()
            result = self.src.read(self.batch_rows)
            if result is None:
                return
            yield from to_batches(result, self.schema, self.refused, self.conflicts)

    def count(self, rows: int) -> None:
        self.rows += rows
        done, total = (self.seen["loaded"], self.seen["total"]) if self.seen["loaded"] is not None else (self.rows, None)
        self.show(int(done), None if total is None else int(total), self.seen["msg"] or f"{self.rows:,} rows")

    def show(self, done: int, total: Optional[int], msg: str) -> None:
        if self.callback is not None:
            self.callback(done, total)
        if self.bar is not None:
            self.bar.update(done, total, msg)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()

    def start(self) -> Iterator[pa.RecordBatch]:
        """The batches, after fixing the schema: the table's or the source's, else the
        first batch's (read here)."""
        if self.schema is None:
            self.schema = self.src.schema()
        feed = self.pull()
        first: list[pa.RecordBatch] = []
        if self.schema is None:
            for b in feed:
                first.append(b)
                break
            self.schema = first[0].schema if first else pa.schema([])

        def chained() -> Iterator[pa.RecordBatch]:
            yield from first
            yield from feed

        return chained()


def newer(b: pa.RecordBatch, cursor: str, last: Optional[pa.Scalar]) -> pa.RecordBatch:
    if cursor not in b.schema.names:
        raise SourceError(f"the source's rows have no cursor column {cursor!r}")
    if last is None:
        return b
    return b.filter(pc.greater(b[cursor], last.cast(b.schema.field(cursor).type)))


def larger(best: Optional[pa.Scalar], b: pa.RecordBatch, cursor: str) -> Optional[pa.Scalar]:
    m = pc.max(b[cursor])
    if m.is_valid and (best is None or pc.greater(m, best.cast(m.type)).as_py()):
        return m
    return best
