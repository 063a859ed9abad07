"""pandas -> Arrow: the table a send writes, one ``from_pandas`` per send
(:func:`encode`), numeric frames wrapped without a copy (:func:`numeric_table`), and the
protocol's ``schema_sha256``. With a progress callback or a cancel token the frame is
converted by row chunks, each by the same one-shot conversion.
"""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Any, NamedTuple, Optional, cast

import numpy as np
import pandas as pd
import pyarrow as pa

from ..errors import ConversionError, InvalidInputError
from ..progress import Cancel, Progress, check
from . import fidelity
from ._caches import CACHES, SCAN_WORKERS, column_arrays, label_key
from .fields import LABELS_KEY, with_metadata
from .to_pandas import to_frame

logger = logging.getLogger(__name__)

#: Rows converted between two progress reports / cancel checks of a send.
CONVERT_CHUNK_ROWS = 250_000

#: Float values from which the NaN scan runs in parallel, and the size of a piece.
PARALLEL_SCAN_VALUES = 1 << 22
SCAN_PIECE = 1 << 21


def schema_sha256(df: pd.DataFrame, arrays: Optional[list[Any]] = None) -> str:
    """The protocol's ``schema_sha256``: sha256 of ``str(columns) + "|" + str(dtypes)``,
    where ``dtypes`` is ``{str(label): str(dtype)}`` as ``df.dtypes.to_dict()`` gives it
    (one entry per distinct label, the last column's dtype). Cached for frames of NumPy
    dtypes (equal NumPy dtypes print the same)."""
    labels = CACHES.labels(df.columns)
    dtypes = tuple(a.dtype for a in (arrays if arrays is not None else column_arrays(df)))
    key = None
    if all(isinstance(d, np.dtype) for d in dtypes):
        try:
            key = (tuple(map(label_key, labels)), dtypes)
            hit = CACHES.shas.get(key)
        except TypeError:  # an unhashable label
            key = hit = None
        if hit is not None:
            return hit
    text = str(list(map(str, labels))) + "|" + str({str(k): str(v) for k, v in zip(labels, dtypes)})
    sha = hashlib.sha256(text.encode("utf-8")).hexdigest()
    if key is not None:
        CACHES.put(CACHES.shas, key, sha)
    return sha


def _label_to_json(label: Any) -> Any:
    if label is None or isinstance(label, (bool, int, float, str)):
        return label
    if hasattr(label, "item"):  # numpy scalars
        return label.item()
    return str(label)


class Encoded(NamedTuple):
    """What a send needs of a DataFrame."""

    table: pa.Table
    #: The protocol's ``schema_sha256`` (see :func:`schema_sha256`).
    schema_sha256: str
    #: (rows, columns) for the manifest, as the frame's ``shape``.
    shape: tuple[int, int]
    #: Float columns wrapped without looking for NaN (asked for with ``defer_nan``): the
    #: send must pass them as ``reject_nan`` and, on ``NanFoundError``, encode again
    #: without ``defer_nan`` (see :func:`encode`).
    reject_nan: tuple[int, ...] = ()


def encode(
    data: Any, *, progress: Optional[Progress] = None, cancel: Optional[Cancel] = None, defer_nan: bool = False
) -> Encoded:
    """The Arrow table of what a send was given and its schema hash: a DataFrame (as
    :func:`dataframe_to_arrow` converts it, its column arrays read once for both), a
    Series (as its one-column frame, marked to come back a Series), or Arrow data (a
    ``pyarrow.Table``, ``RecordBatch``, ``RecordBatchReader`` or any object with
    ``__arrow_c_stream__``, such as a polars or duckdb frame) sent as it is. Raises
    :class:`~..errors.CancelledError` when ``cancel`` is set before the conversion is
    complete.

    ``defer_nan``: float32/float64 columns that the converter would scan for NaN (to
    send them as nulls, as pyarrow's ``from_pandas`` does) are wrapped as they are and
    listed in ``Encoded.reject_nan``, for the core to look at while it copies them
    (a large frame is then read once instead of twice). Only for a send that passes
    ``reject_nan=encoded.reject_nan`` to ``_core`` and, when that raises
    ``NanFoundError`` (nothing written), sends ``encode(data)`` instead: what a NaN
    becomes never depends on the path."""
    if not isinstance(data, pd.DataFrame):
        if isinstance(data, pd.Series):
            return _encode_series(data, progress, cancel, defer_nan)
        if type(data).__name__ == "Series" and type(data).__module__.startswith("polars"):
            # Its Arrow stream is one array, not a table: sent as its one-column frame
            # (named as the Series), as a polars reader would build it again.
            data = data.to_frame()
        table = arrow_input(data)
        if table is not None:
            check(cancel, "the send")
            return Encoded(table, schema_sha256(_empty_frame(table)), (table.num_rows, table.num_columns))
    df = data
    table, arrays, unchecked = _frame_to_arrow(df, progress, cancel, CONVERT_CHUNK_ROWS, defer_nan)
    check(cancel, "the send")
    rows, cols = df.shape
    return Encoded(table, schema_sha256(df, arrays), (int(rows), int(cols)), unchecked)


def _encode_series(
    series: pd.Series, progress: Optional[Progress], cancel: Optional[Cancel], defer_nan: bool = False
) -> Encoded:
    frame = series.to_frame()  # the label is the name (0 when unnamed)
    encoded = encode(frame, progress=progress, cancel=cancel, defer_nan=defer_nan)
    table = fidelity.add(encoded.table, {"series": {"unnamed": series.name is None}})
    return encoded._replace(table=table)


def arrow_input(data: Any) -> Optional[pa.Table]:
    """``data`` as a ``pyarrow.Table`` when it is Arrow data (a Table, RecordBatch,
    RecordBatchReader, or an object exporting ``__arrow_c_stream__``), else None."""
    if isinstance(data, pa.Table):
        return data
    if isinstance(data, pa.RecordBatch):
        return pa.Table.from_batches([data])
    if isinstance(data, pa.RecordBatchReader):
        return data.read_all()
    if hasattr(data, "__arrow_c_stream__"):
        try:
            return pa.table(data)
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, TypeError, ValueError) as exc:
            raise ConversionError(
                f"{type(data).__module__}.{type(data).__qualname__} exports an Arrow stream pyarrow cannot import: {exc}"
            ) from exc
    return None


def _empty_frame(table: pa.Table) -> pd.DataFrame:
    """The frame a reader of ``table`` gets, without its rows: what its schema hash is of."""
    try:
        return to_frame(table.schema.empty_table(), None, fast=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, TypeError, ValueError):
        return pd.DataFrame(columns=table.schema.names)


def dataframe_to_arrow(
    df: Any,
    *,
    progress: Optional[Progress] = None,
    cancel: Optional[Cancel] = None,
    chunk_rows: int = CONVERT_CHUNK_ROWS,
) -> pa.Table:
    """Converts a DataFrame to an Arrow table in one pass over the whole frame (no
    sampling), keeping the index and the column labels in the pandas metadata.

    With ``progress`` or ``cancel``: the same conversion applied to row chunks of
    ``chunk_rows`` rows, ``progress(done_rows, total_rows)`` after each and ``cancel``
    checked before each (:class:`~..errors.CancelledError`); the result is the table the
    whole-frame conversion gives."""
    return _frame_to_arrow(df, progress, cancel, chunk_rows)[0]


def _frame_to_arrow(
    df: Any, progress: Optional[Progress], cancel: Optional[Cancel], chunk_rows: int, defer_nan: bool = False
) -> tuple[pa.Table, list[Any], tuple[int, ...]]:
    """The conversion both entry points share, the column arrays it read (the schema
    hash reuses them), and the float columns it did not scan for NaN (``defer_nan``)."""
    _check_frame(df)
    arrays = column_arrays(df)
    unchecked: tuple[int, ...] = ()
    if progress is None and cancel is None:
        table, unchecked = _to_arrow_deferring(df, arrays, defer_nan)
    else:
        table = _to_arrow_in_chunks(df, progress, cancel, chunk_rows)
    return fidelity.keep(table, df, arrays), arrays, unchecked


def _check_frame(df: Any) -> None:
    if not isinstance(df, pd.DataFrame):
        raise InvalidInputError(
            f"send_dataframe() needs a pandas DataFrame or Series, or Arrow data (a pyarrow Table, RecordBatch, "
            f"RecordBatchReader, or an object with __arrow_c_stream__ such as a polars frame), got "
            f"{type(df).__module__}.{type(df).__qualname__}; wrap a dict or array with pandas.DataFrame(...)"
        )


def _to_arrow(df: pd.DataFrame, arrays: Optional[list[Any]] = None) -> pa.Table:
    """The one-shot conversion (``arrays``: the frame's :func:`column_arrays` when the
    caller has them already)."""
    return _to_arrow_deferring(df, arrays, False)[0]


def _to_arrow_deferring(
    df: pd.DataFrame, arrays: Optional[list[Any]], defer_nan: bool
) -> tuple[pa.Table, tuple[int, ...]]:
    """:func:`_to_arrow`, and with ``defer_nan`` the float columns left unscanned (see
    :func:`encode`)."""
    labels = CACHES.labels(df.columns)
    # pyarrow keeps homogeneous labels (all str, all int, ...) in its pandas metadata;
    # duplicates, labels equal after str() and mixed types we keep ourselves.
    texts = {str(c) for c in labels}
    own_labels = (
        len(texts) != len(labels)
        # Arrow's C interface passes field names as NUL-terminated strings.
        or any("\0" in t for t in texts)
        or (not isinstance(df.columns, pd.MultiIndex) and (
            df.columns.inferred_type.startswith("mixed")
            # pyarrow writes bool labels as "True"/"False" and reads both back as True.
            or df.columns.inferred_type == "boolean"
        ))
    )
    frame = df
    if own_labels:
        frame = df.copy(deep=False)
        frame.columns = [f"{c}__{i}".replace("\0", "") for i, c in enumerate(labels)]
    unchecked: tuple[int, ...] = ()
    try:
        made = _numeric_table(frame, arrays, defer_nan)
        if made is None:
            table = pa.Table.from_pandas(frame, preserve_index=None)
        else:
            table, unchecked = made
    except (pa.ArrowTypeError, pa.ArrowInvalid, pa.ArrowNotImplementedError, TypeError, ValueError) as exc:
        raise ConversionError(_explain_conversion_failure(frame, exc)) from exc
    if own_labels:
        meta = dict(table.schema.metadata or {})
        meta[LABELS_KEY] = json.dumps([_label_to_json(c) for c in labels]).encode("utf-8")
        table = with_metadata(table, meta)
    return table, unchecked


def _to_arrow_in_chunks(
    df: pd.DataFrame, progress: Optional[Progress], cancel: Optional[Cancel], chunk_rows: int
) -> pa.Table:
    """:func:`_to_arrow` per row chunk, reporting and checking ``cancel`` between chunks.
    Gives exactly the whole-frame conversion's table (same schema and pandas metadata);
    when a later chunk infers another Arrow type than the first (an object column that
    is all-None at the start, say), it falls back to one whole-frame conversion."""
    total = len(df)
    check(cancel, "the send")
    if total <= chunk_rows:
        table = _to_arrow(df)
        if progress is not None:
            progress(total, total)
        return table
    first = _whole_range_metadata(_to_arrow(df.iloc[:chunk_rows]), df)
    schema = first.schema
    batches = first.to_batches()
    done = chunk_rows
    if progress is not None:
        progress(done, total)
    while done < total:
        check(cancel, "the send")
        part = _to_arrow(df.iloc[done : done + chunk_rows])
        if not part.schema.remove_metadata().equals(schema.remove_metadata()):
            logger.debug("chunk at row %d converts to another schema; converting the whole frame at once", done)
            check(cancel, "the send")
            table = _to_arrow(df)
            if progress is not None:
                progress(total, total)
            return table
        batches.extend(part.to_batches())
        done = min(total, done + chunk_rows)
        if progress is not None:
            progress(done, total)
    return pa.Table.from_batches(batches, schema=schema)


def _whole_range_metadata(table: pa.Table, df: pd.DataFrame) -> pa.Table:
    """The first chunk's pandas metadata describes its own RangeIndex slice; make it
    describe the whole frame's."""
    raw = (table.schema.metadata or {}).get(b"pandas")
    if not raw or not isinstance(df.index, pd.RangeIndex):
        return table
    meta = range_index_metadata(json.loads(raw), df.index)
    new = dict(table.schema.metadata or {})
    new[b"pandas"] = json.dumps(meta).encode("utf-8")
    return with_metadata(table, new)


#: NumPy kinds whose columns ``numeric_table`` converts itself: signed and unsigned
#: integers, floats, booleans.
_NUMERIC_KINDS = frozenset("iufb")


def range_index_metadata(meta: dict[str, Any], index: pd.RangeIndex) -> dict[str, Any]:
    """A copy of pandas metadata ``meta`` whose RangeIndex entries describe ``index``
    (start, stop, step), key order kept, so that it serialises as pyarrow would."""
    return dict(
        meta,
        index_columns=[
            dict(ic, start=int(index.start), stop=int(index.stop), step=int(index.step))
            if isinstance(ic, dict) and ic.get("kind") == "range" else ic
            for ic in meta.get("index_columns", [])
        ],
    )


def _numeric_schema(frame: pd.DataFrame, dtypes: list[Any]) -> pa.Schema:
    """``pa.Schema.from_pandas(frame, preserve_index=None)`` for a frame of NumPy numeric
    columns with a RangeIndex, cached: building the pandas metadata costs more than
    converting a small frame. The cache key holds everything that metadata is made of
    (labels and their types, the column index's kind, dtypes and names, the columns'
    dtypes, the RangeIndex's name, start and step) except the RangeIndex's ``stop``,
    which is patched into a copy of the cached metadata."""
    index, columns = cast(pd.RangeIndex, frame.index), frame.columns
    try:
        level_dtypes = tuple(lvl.dtype for lvl in columns.levels) if isinstance(columns, pd.MultiIndex) else columns.dtype
        key = (
            type(columns), level_dtypes, tuple(columns.names), tuple(map(label_key, CACHES.labels(columns))),
            tuple(dtypes), label_key(index.name), index.start, index.step,
        )
        hit = CACHES.schemas.get(key)
    except TypeError:  # an unhashable name: no caching
        key, hit = None, None
    if hit is not None:
        schema, meta, stop = hit
        if stop == index.stop:
            return schema
        meta = range_index_metadata(meta, index)
        return schema.with_metadata({b"pandas": json.dumps(meta).encode("utf-8")})
    schema = pa.Schema.from_pandas(frame, preserve_index=None)
    if key is not None:
        raw = (schema.metadata or {}).get(b"pandas")
        made = json.loads(raw) if raw is not None else None
        ranges = made.get("index_columns") if made else None
        # Cache only what the patching above reproduces byte for byte.
        if (
            len(schema.metadata) == 1 and ranges and len(ranges) == 1 and ranges[0].get("kind") == "range"
            and ranges[0].get("stop") == index.stop and json.dumps(made).encode("utf-8") == raw
        ):
            CACHES.put(CACHES.schemas, key, (schema, made, index.stop))
    return schema


def numeric_table(frame: pd.DataFrame, arrays: Optional[list[Any]] = None) -> Optional[pa.Table]:
    """``pa.Table.from_pandas(frame, preserve_index=None)`` for the common case, a frame
    of NumPy integer, float and bool columns with a RangeIndex, without its costs:
    pyarrow scans every float column to turn NaN into nulls (a third of a large send),
    and builds the pandas metadata on every call (most of a small one). Here integer
    columns and float columns without NaN (``min()`` propagates NaN: one vectorised pass)
    are wrapped without a copy, only float columns holding NaN take pyarrow's NaN -> null
    conversion, and the schema comes from ``_numeric_schema``. The result is the same
    table, schema metadata included (tests/convert pins it). ``None`` for any other
    frame, which pyarrow converts as before."""
    made = _numeric_table(frame, arrays, False)
    return None if made is None else made[0]


def _numeric_table(
    frame: pd.DataFrame, arrays: Optional[list[Any]], defer_nan: bool
) -> Optional[tuple[pa.Table, tuple[int, ...]]]:
    """:func:`numeric_table`; with ``defer_nan`` its float32/float64 columns are wrapped
    without the NaN scan and returned as the second item (see :func:`encode`)."""
    if type(frame.index) is not pd.RangeIndex or frame.attrs or frame.shape[1] == 0:
        return None
    if arrays is None:
        arrays = column_arrays(frame)
    for a in arrays:
        if type(a) is not np.ndarray or a.ndim != 1 or a.dtype.kind not in _NUMERIC_KINDS or not a.dtype.isnative:
            return None
    schema = _numeric_schema(frame, [a.dtype for a in arrays])
    unchecked: tuple[int, ...] = ()
    if defer_nan:
        unchecked = tuple(i for i, a in enumerate(arrays) if a.dtype.kind == "f" and a.dtype.itemsize in (4, 8))
        nans = _nan_columns([np.empty(0) if i in unchecked else a for i, a in enumerate(arrays)])
    else:
        nans = _nan_columns(arrays)
    columns = [pa.array(a, from_pandas=True) if nan else pa.array(a) for a, nan in zip(arrays, nans)]
    return pa.Table.from_arrays(columns, schema=schema), unchecked


def _has_nan(a: np.ndarray[Any, Any]) -> bool:
    # min() propagates NaN: one vectorised pass, and NumPy releases the GIL for it.
    return len(a) > 0 and bool(np.isnan(a.min()))


def _nan_columns(arrays: list[Any]) -> list[bool]:
    """Whether each column is a float column holding NaN. Large frames are scanned in
    pieces by a small thread pool (one thread per CPU, at most 4): the scan reads every
    float value once, is bound by memory bandwidth, and takes a tenth of a large send
    single-threaded."""
    floats = [i for i, a in enumerate(arrays) if a.dtype.kind == "f"]
    if sum(len(arrays[i]) for i in floats) < PARALLEL_SCAN_VALUES or SCAN_WORKERS < 2:
        return [a.dtype.kind == "f" and _has_nan(a) for a in arrays]
    pieces = [
        (i, arrays[i][lo:lo + SCAN_PIECE]) for i in floats for lo in range(0, len(arrays[i]), SCAN_PIECE)
    ]
    pool = CACHES.scan_pool()
    found = [False] * len(arrays)
    for (i, _), nan in zip(pieces, pool.map(_has_nan, [p for _, p in pieces])):
        found[i] = found[i] or nan
    return found


def _explain_conversion_failure(df: pd.DataFrame, exc: Exception) -> str:
    for name in df.columns:
        col = df[name]
        try:
            pa.array(col, from_pandas=True)
        except Exception as col_exc:  # noqa: BLE001 - we only look for the culprit
            kinds = sorted({type(v).__name__ for v in col.dropna().head(1000)})
            if col.dtype != object:
                return (
                    f"column {name!r} has dtype {col.dtype}, which Arrow cannot hold ({col_exc}). "
                    f"Convert it before sending, e.g. df[{name!r}] = df[{name!r}].astype(str), "
                    "or split complex numbers into real and imaginary columns"
                )
            return (
                f"column {name!r} (dtype {col.dtype}) cannot be converted to Arrow: {col_exc}. "
                f"It holds values of types {kinds}; convert it to one type first, "
                f"e.g. df[{name!r}] = df[{name!r}].astype(str)"
            )
    return f"the DataFrame cannot be converted to Arrow: {exc}"
