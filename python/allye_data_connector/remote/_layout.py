"""What a receive in place needs to know of a table before its first message arrives
(docs/PROTOCOL.md "remote"): the nulls of each column and the bytes of values of each
string/bytes column. A server announces them for the part it serves; a client adds those
of the rows it already holds when it appends (``sync="tail"``)."""

from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np
import pyarrow as pa

from ._wire import DATA_BYTES_KEY, NULL_COUNTS_KEY

_OFFSETS = {pa.string(): np.int32, pa.binary(): np.int32, pa.large_string(): np.int64, pa.large_binary(): np.int64}


def data_bytes(column: pa.ChunkedArray) -> Optional[int]:
    """The bytes of values a string/bytes column spans (per chunk its last offset minus
    its first: two offsets read, whatever the slice); ``None`` for other types."""
    dtype = _OFFSETS.get(column.type)
    if dtype is None:
        return None
    total = 0
    for chunk in column.chunks:
        if len(chunk) == 0:
            continue
        offsets = np.frombuffer(chunk.buffers()[1], dtype=dtype, count=len(chunk) + 1,
                                offset=chunk.offset * np.dtype(dtype).itemsize)
        total += int(offsets[-1] - offsets[0])
    return total


def layout(table: pa.Table) -> dict[str, Any]:
    """The announcement of ``table``: ``{NULL_COUNTS_KEY: [...], DATA_BYTES_KEY: [...]}``,
    one entry a column in schema order."""
    return {NULL_COUNTS_KEY: [c.null_count for c in table.columns],
            DATA_BYTES_KEY: [data_bytes(c) for c in table.columns]}


def laid_out_bytes(schema: pa.Schema, rows: int, value_bytes: Optional[Sequence[Optional[int]]]) -> int:
    """About the bytes a table of ``rows`` rows of ``schema`` takes laid out (values,
    offsets and announced value bytes; bitmaps left out): what decides between a
    shared-memory and a file payload."""
    total = 0
    for i, field in enumerate(schema):
        n = value_bytes[i] if value_bytes and i < len(value_bytes) else None
        if n is not None:
            total += n + (rows + 1) * (8 if field.type in (pa.large_string(), pa.large_binary()) else 4)
            continue
        try:
            total += (rows * field.type.bit_width + 7) // 8
        except ValueError:  # not fixed-width: not laid out in place anyway
            pass
    return total
