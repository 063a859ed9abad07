"""Progress and cancellation for sends.

A send converts the DataFrame to Arrow (the slow part for big or text-heavy frames),
then the Rust core writes it at memory speed. With a progress callback or a cancel
token, the conversion runs in row chunks: ``progress(done_rows, total_rows)`` after each
chunk, and the cancel token is checked before each one. Nothing is written before the
conversion is complete, so a cancelled send leaves nothing behind: no manifest line, no
segment, no file.

The chunked conversion gives exactly the table a whole-frame conversion gives (same
schema and pandas metadata); when a later chunk would infer a different Arrow type than
the first (an object column that is all-None at the start, say), it falls back to one
whole-frame conversion.
"""

from __future__ import annotations

import json
import logging
import threading
from typing import Callable, Optional, Union

import pandas as pd
import pyarrow as pa

from .convert import dataframe_to_arrow, range_index_metadata
from .errors import CancelledError

logger = logging.getLogger(__name__)

Progress = Callable[[int, int], object]
Cancel = Union[threading.Event, Callable[[], bool]]

#: Rows converted between two progress reports / cancel checks.
CONVERT_CHUNK_ROWS = 250_000


def is_cancelled(cancel: Optional[Cancel]) -> bool:
    if cancel is None:
        return False
    if isinstance(cancel, threading.Event):
        return cancel.is_set()
    return bool(cancel())


def check(cancel: Optional[Cancel], what: str) -> None:
    if is_cancelled(cancel):
        raise CancelledError(f"{what} was cancelled; nothing was written")


def _whole_range_metadata(table: pa.Table, df: pd.DataFrame) -> pa.Table:
    """The first chunk's pandas metadata describes its own RangeIndex slice; make it
    describe the whole frame's."""
    raw = (table.schema.metadata or {}).get(b"pandas")
    if not raw or not isinstance(df.index, pd.RangeIndex):
        return table
    meta = range_index_metadata(json.loads(raw), df.index)
    new = dict(table.schema.metadata or {})
    new[b"pandas"] = json.dumps(meta).encode("utf-8")
    return table.replace_schema_metadata(new)


def dataframe_to_arrow_chunked(
    df: pd.DataFrame,
    *,
    progress: Optional[Progress] = None,
    cancel: Optional[Cancel] = None,
    chunk_rows: int = CONVERT_CHUNK_ROWS,
) -> pa.Table:
    """:func:`~.convert.dataframe_to_arrow` in row chunks, reporting and checking
    ``cancel`` between them. Raises :class:`CancelledError` when cancelled."""
    total = int(len(df)) if isinstance(df, pd.DataFrame) else 0
    check(cancel, "the send")
    if total <= chunk_rows:
        table = dataframe_to_arrow(df)
        if progress is not None:
            progress(total, total)
        return table
    first = _whole_range_metadata(dataframe_to_arrow(df.iloc[:chunk_rows]), df)
    schema = first.schema
    batches = first.to_batches()
    done = chunk_rows
    if progress is not None:
        progress(done, total)
    while done < total:
        check(cancel, "the send")
        part = dataframe_to_arrow(df.iloc[done : done + chunk_rows])
        if not part.schema.remove_metadata().equals(schema.remove_metadata()):
            logger.debug("chunk at row %d converts to another schema; converting the whole frame at once", done)
            check(cancel, "the send")
            table = dataframe_to_arrow(df)
            if progress is not None:
                progress(total, total)
            return table
        batches.extend(part.to_batches())
        done = min(total, done + chunk_rows)
        if progress is not None:
            progress(done, total)
    return pa.Table.from_batches(batches, schema=schema)


def _same_dictionaries(table: pa.Table) -> bool:
    for col in table.columns:
        if pa.types.is_dictionary(col.type) and col.num_chunks > 1:
            first = col.chunks[0].dictionary
            if any(not c.dictionary.equals(first) for c in col.chunks[1:]):
                return False
    return True


def arrow_to_dataframe_chunked(
    table: pa.Table,
    dtype_backend: Optional[str] = None,
    *,
    progress: Optional[Progress] = None,
    cancel: Optional[Cancel] = None,
) -> pd.DataFrame:
    """:func:`~.convert.arrow_to_dataframe` record batch by record batch, reporting
    ``progress(done_rows, total_rows)`` and checking ``cancel`` between batches (a load
    writes nothing, so a cancelled load leaves nothing behind). A single-batch table is
    converted at once (that keeps the zero-copy NumPy views); so is one whose dictionary
    columns differ between batches (pandas could not concatenate them as categories)."""
    from .convert import arrow_to_dataframe

    total = table.num_rows
    check(cancel, "the load")
    batches = table.to_batches()
    if len(batches) <= 1 or not _same_dictionaries(table):
        df = arrow_to_dataframe(table, dtype_backend)  # type: ignore[arg-type]
        if progress is not None:
            progress(total, total)
        return df
    meta = json.loads((table.schema.metadata or {}).get(b"pandas", b"{}"))
    range_index = next(
        (ic for ic in meta.get("index_columns", []) if isinstance(ic, dict) and ic.get("kind") == "range"), None
    )
    parts = []
    done = 0
    for batch in batches:
        check(cancel, "the load")
        part = arrow_to_dataframe(pa.Table.from_batches([batch], schema=table.schema), dtype_backend)  # type: ignore[arg-type]
        if range_index is not None:
            full = pd.RangeIndex(range_index["start"], range_index["stop"], range_index["step"], name=range_index.get("name"))
            if len(full) == total:
                part.index = full[done : done + batch.num_rows]
        parts.append(part)
        done += batch.num_rows
        if progress is not None:
            progress(done, total)
    df = pd.concat(parts) if len(parts) > 1 else parts[0]
    return df
