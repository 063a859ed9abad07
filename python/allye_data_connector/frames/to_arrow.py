"""pandas <-> Arrow conversion: one ``from_pandas`` per send, zero-copy on the way back.

A send calls :func:`encode` (the Arrow table and the protocol's ``schema_sha256``), a load
:func:`arrow_to_dataframe`. With a progress callback or a cancel token, both convert piece
by piece (row chunks, record batches), each piece by the same one-shot conversion.
Everything they remember between calls (column labels, schema hashes, schemas, what a
schema converts to) is held by :data:`CACHES`.
"""

from __future__ import annotations

import base64
import hashlib
import importlib
import json
import logging
import os
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal, NamedTuple, Optional, Union, cast

import numpy as np
import pandas as pd
import pyarrow as pa

from .errors import ConversionError, InvalidArgumentError, InvalidInputError
from .progress import Cancel, Progress, check

logger = logging.getLogger(__name__)

#: Schema-metadata key holding the original column labels when Arrow field names
#: could not carry them (duplicate labels, labels equal after ``str()``).
LABELS_KEY = b"allye_columns"

#: Schema-metadata key holding, as JSON, what a frame is that neither Arrow nor pyarrow's
#: pandas metadata keeps (see :func:`_fidelity`); absent when there is nothing to keep.
FIDELITY_KEY = b"allye_pandas"

try:
    # Registers pandas' Arrow extension types (period, interval) with pyarrow. pandas
    # imports it only when it converts such an array itself; a process that only reads
    # would otherwise see their storage types (int64, struct) and build int/object indexes.
    importlib.import_module("pandas.core.arrays.arrow.extension_types")
except ImportError:  # pragma: no cover - other pandas layouts: pyarrow's own behaviour
    pass

DtypeBackend = Literal["numpy", "numpy_nullable", "pyarrow"]
DTYPE_BACKENDS = (None, "numpy", "numpy_nullable", "pyarrow")

#: Rows converted between two progress reports / cancel checks of a send.
CONVERT_CHUNK_ROWS = 250_000

#: Float values from which the NaN scan runs in parallel, and the size of a piece.
PARALLEL_SCAN_VALUES = 1 << 22
SCAN_PIECE = 1 << 21
_SCAN_WORKERS = min(4, os.cpu_count() or 1)


def check_dtype_backend(dtype_backend: Any) -> Optional[DtypeBackend]:
    if dtype_backend not in DTYPE_BACKENDS:
        raise InvalidArgumentError(
            f"dtype_backend={dtype_backend!r} is not one of None, 'numpy', 'numpy_nullable', 'pyarrow'"
        )
    return dtype_backend  # type: ignore[no-any-return]


def column_arrays(df: pd.DataFrame) -> list[Any]:
    """The frame's columns as their backing arrays (NumPy arrays or pandas extension
    arrays), by position, without building a Series per column (a tenth of the cost).
    ``DataFrame._get_column_array`` is private (pandas 1.3 to 3.x); other pandas versions
    take the public, slower way."""
    get = getattr(df, "_get_column_array", None)
    if get is not None:
        return [get(i) for i in range(df.shape[1])]
    return [df.iloc[:, i].values for i in range(df.shape[1])]


class Caches:
    """What the conversions remember between calls: pure functions of their keys, so a
    :meth:`clear` only costs the next calls their first-time price. Each dict holds at
    most :attr:`MAX_ENTRIES` entries (cleared when full)."""

    MAX_ENTRIES = 256

    def __init__(self) -> None:
        #: (Index, its labels) for the last column Index seen (Index objects are immutable).
        self.last_labels: tuple[Any, Any] = (None, None)
        #: schema_sha256 of frames of NumPy dtypes, by their labels (with types) and dtypes.
        self.shas: dict[Any, str] = {}
        #: Schemas of numeric frames, see ``_numeric_schema``.
        self.schemas: dict[Any, tuple[pa.Schema, dict[str, Any], int]] = {}
        #: What ``numeric_frame`` learnt per schema, see there.
        self.frames: dict[Any, Any] = {}
        # (pid that made it, pool) of the parallel NaN scan.
        self._scan_pool: Optional[tuple[int, ThreadPoolExecutor]] = None
        self._scan_pool_lock = threading.Lock()

    def labels(self, columns: pd.Index) -> list[Any]:
        """``columns.tolist()``, remembered for the last Index object: a frame sent again
        (and the two conversions of one send) reads its labels once."""
        last = self.last_labels  # one read: another thread may replace it meanwhile
        if last[0] is columns:
            return last[1]  # type: ignore[no-any-return]
        labels = columns.tolist()
        self.last_labels = (columns, labels)
        return labels

    def put(self, cache: dict[Any, Any], key: Any, value: Any) -> None:
        if len(cache) >= self.MAX_ENTRIES:
            cache.clear()
        cache[key] = value

    def clear(self) -> None:
        self.last_labels = (None, None)
        self.shas.clear()
        self.schemas.clear()
        self.frames.clear()

    def scan_pool(self) -> ThreadPoolExecutor:
        """The NaN scan's thread pool, made on first use in each process (a forked child
        inherits the pool object but not its threads)."""
        with self._scan_pool_lock:
            if self._scan_pool is None or self._scan_pool[0] != os.getpid():
                pool = ThreadPoolExecutor(max_workers=_SCAN_WORKERS, thread_name_prefix="adc-nan-scan")
                self._scan_pool = (os.getpid(), pool)
            return self._scan_pool[1]

    @property
    def scan_pool_started(self) -> bool:
        return self._scan_pool is not None


#: The one set of conversion caches.
CACHES = Caches()


def _label_key(label: Any) -> Any:
    # 1, 1.0 and True are equal dict keys but different labels: key on the types too.
    if type(label) is tuple:
        return (label, tuple(map(type, label)))
    return (label, type(label))


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
            key = (tuple(map(_label_key, labels)), dtypes)
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


def encode(data: Any, *, progress: Optional[Progress] = None, cancel: Optional[Cancel] = None) -> Encoded:
    """The Arrow table of what a send was given and its schema hash: a DataFrame (as
    :func:`dataframe_to_arrow` converts it, its column arrays read once for both), a
    Series (as its one-column frame, marked to come back a Series), or Arrow data (a
    ``pyarrow.Table``, ``RecordBatch``, ``RecordBatchReader`` or any object with
    ``__arrow_c_stream__``, such as a polars or duckdb frame) sent as it is. Raises
    :class:`~.errors.CancelledError` when ``cancel`` is set before the conversion is
    complete."""
    if not isinstance(data, pd.DataFrame):
        if isinstance(data, pd.Series):
            return _encode_series(data, progress, cancel)
        table = arrow_input(data)
        if table is not None:
            check(cancel, "the send")
            return Encoded(table, schema_sha256(_empty_frame(table)), (table.num_rows, table.num_columns))
    df = data
    table, arrays = _frame_to_arrow(df, progress, cancel, CONVERT_CHUNK_ROWS)
    check(cancel, "the send")
    rows, cols = df.shape
    return Encoded(table, schema_sha256(df, arrays), (int(rows), int(cols)))


def _encode_series(series: pd.Series, progress: Optional[Progress], cancel: Optional[Cancel]) -> Encoded:
    frame = series.to_frame()  # the label is the name (0 when unnamed)
    encoded = encode(frame, progress=progress, cancel=cancel)
    table = _add_fidelity(encoded.table, {"series": {"unnamed": series.name is None}})
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
        return _to_frame(table.schema.empty_table(), None, fast=False)
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
    checked before each (:class:`~.errors.CancelledError`); the result is the table the
    whole-frame conversion gives."""
    return _frame_to_arrow(df, progress, cancel, chunk_rows)[0]


def _frame_to_arrow(
    df: Any, progress: Optional[Progress], cancel: Optional[Cancel], chunk_rows: int
) -> tuple[pa.Table, list[Any]]:
    """The conversion both entry points share, and the column arrays it read (the
    schema hash reuses them)."""
    _check_frame(df)
    arrays = column_arrays(df)
    if progress is None and cancel is None:
        table = _to_arrow(df, arrays)
    else:
        table = _to_arrow_in_chunks(df, progress, cancel, chunk_rows)
    return _keep_fidelity(table, df, arrays), arrays


def _check_frame(df: Any) -> None:
    if not isinstance(df, pd.DataFrame):
        raise InvalidInputError(
            f"send_dataframe() needs a pandas DataFrame or Series, or Arrow data (a pyarrow Table, RecordBatch, "
            f"RecordBatchReader, or an object with __arrow_c_stream__ such as a polars frame), got "
            f"{type(df).__module__}.{type(df).__qualname__}; wrap a dict or array with pandas.DataFrame(...)"
        )


def _is_arrow_string(dtype: Any) -> bool:
    return isinstance(dtype, pd.ArrowDtype) and dtype.pyarrow_dtype == pa.string()


def _fidelity(df: pd.DataFrame, column_dtypes: list[Any], fields: list[str]) -> dict[str, Any]:
    """What ``df`` is that pyarrow's round trip loses (it turns each into something else):
    the ``freq`` of a DatetimeIndex or TimedeltaIndex; ``allows_duplicate_labels=False``;
    ``string[python]`` columns and ``ArrowDtype(pa.string())`` columns (both read back
    as ``string[pyarrow]``), by Arrow field name; and, in a frame of no rows, the
    categories of each categorical column and index level (without a record batch, no dictionary is
    written), as an Arrow IPC stream in base64."""
    out: dict[str, Any] = {}
    index = df.index
    if isinstance(index, (pd.DatetimeIndex, pd.TimedeltaIndex)) and index.freq is not None:
        out["freq"] = index.freqstr
    if not df.flags.allows_duplicate_labels:
        out["allows_duplicate_labels"] = False
    dtypes: dict[str, Any] = {}
    categories: dict[str, str] = {}
    for field, dtype in zip(fields, column_dtypes):
        if type(dtype) is np.dtype:
            continue
        if isinstance(dtype, pd.StringDtype) and dtype.storage == "python":
            dtypes[field] = ["string", "python", "NA" if dtype.na_value is pd.NA else "nan"]
        elif _is_arrow_string(dtype):
            dtypes[field] = ["arrow"]
        elif isinstance(dtype, pd.CategoricalDtype) and len(df) == 0:
            categories[field] = _encode_array(pa.array(dtype.categories))
    if dtypes:
        out["dtypes"] = dtypes
    if categories:
        out["categories"] = categories
    return out


def _kept_dtype(dtype: Any) -> bool:
    """Whether :func:`_fidelity` keeps a column of this dtype (in a frame with rows)."""
    return type(dtype) is not np.dtype and (
        (isinstance(dtype, pd.StringDtype) and dtype.storage == "python") or _is_arrow_string(dtype)
    )


def _encode_array(array: pa.Array) -> str:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, pa.schema([("v", array.type)])) as writer:
        writer.write_batch(pa.record_batch([array], names=["v"]))
    return base64.b64encode(sink.getvalue().to_pybytes()).decode("ascii")


def _decode_array(text: str) -> pa.Array:
    return pa.ipc.open_stream(base64.b64decode(text)).read_all().column(0).combine_chunks()


def _keep_fidelity(table: pa.Table, df: pd.DataFrame, arrays: Optional[list[Any]] = None) -> pa.Table:
    """``table`` with :func:`_fidelity` of ``df`` in its schema metadata, when there is any."""
    if arrays is None:
        arrays = column_arrays(df)
    if type(df.index) is pd.RangeIndex and df.flags.allows_duplicate_labels and len(df) and all(
        type(a) is np.ndarray for a in arrays
    ):
        return table  # the common frame: nothing to keep
    dtypes = [a.dtype for a in arrays]
    if len(df) and not any(_kept_dtype(d) for d in dtypes):
        fields: list[str] = []  # no column to name: spare reading the pandas metadata
    else:
        fields = data_fields(table)
    if len(df) == 0:  # the index's categories too (an index of no rows is one of no rows)
        levels = df.index.levels if isinstance(df.index, pd.MultiIndex) else [df.index]
        index = index_fields(table)
        if len(index) == len(levels):
            fields, dtypes = fields + index, dtypes + [lvl.dtype for lvl in levels]
    info = _fidelity(df, dtypes, fields)
    return _add_fidelity(table, info) if info else table


def _add_fidelity(table: pa.Table, info: dict[str, Any]) -> pa.Table:
    meta = dict(table.schema.metadata or {})
    known = json.loads(meta[FIDELITY_KEY]) if FIDELITY_KEY in meta else {}
    meta[FIDELITY_KEY] = json.dumps({**known, **info}).encode("utf-8")
    return table.replace_schema_metadata(meta)


def index_fields(table: pa.Table) -> list[str]:
    """Field names that hold the DataFrame index (pandas metadata), in order."""
    raw = (table.schema.metadata or {}).get(b"pandas")
    if not raw:
        return []
    names = set(table.column_names)
    return [c for c in json.loads(raw).get("index_columns", []) if isinstance(c, str) and c in names]


def data_fields(table: pa.Table) -> list[str]:
    """Field names of the DataFrame's columns, in order (the index's left out)."""
    idx = set(index_fields(table))
    return [n for n in table.column_names if n not in idx] if idx else list(table.column_names)


def _to_arrow(df: pd.DataFrame, arrays: Optional[list[Any]] = None) -> pa.Table:
    """The one-shot conversion (``arrays``: the frame's :func:`column_arrays` when the
    caller has them already)."""
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
    try:
        table = numeric_table(frame, arrays)
        if table is None:
            table = pa.Table.from_pandas(frame, preserve_index=None)
    except (pa.ArrowTypeError, pa.ArrowInvalid, pa.ArrowNotImplementedError, TypeError, ValueError) as exc:
        raise ConversionError(_explain_conversion_failure(frame, exc)) from exc
    if own_labels:
        meta = dict(table.schema.metadata or {})
        meta[LABELS_KEY] = json.dumps([_label_to_json(c) for c in labels]).encode("utf-8")
        table = table.replace_schema_metadata(meta)
    return table


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
    return table.replace_schema_metadata(new)


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
            type(columns), level_dtypes, tuple(columns.names), tuple(map(_label_key, CACHES.labels(columns))),
            tuple(dtypes), _label_key(index.name), index.start, index.step,
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
    if type(frame.index) is not pd.RangeIndex or frame.attrs or frame.shape[1] == 0:
        return None
    if arrays is None:
        arrays = column_arrays(frame)
    for a in arrays:
        if type(a) is not np.ndarray or a.ndim != 1 or a.dtype.kind not in _NUMERIC_KINDS or not a.dtype.isnative:
            return None
    schema = _numeric_schema(frame, [a.dtype for a in arrays])
    nans = _nan_columns(arrays)
    columns = [pa.array(a, from_pandas=True) if nan else pa.array(a) for a, nan in zip(arrays, nans)]
    return pa.Table.from_arrays(columns, schema=schema)


def _has_nan(a: np.ndarray[Any, Any]) -> bool:
    # min() propagates NaN: one vectorised pass, and NumPy releases the GIL for it.
    return len(a) > 0 and bool(np.isnan(a.min()))


def _nan_columns(arrays: list[Any]) -> list[bool]:
    """Whether each column is a float column holding NaN. Large frames are scanned in
    pieces by a small thread pool (one thread per CPU, at most 4): the scan reads every
    float value once, is bound by memory bandwidth, and takes a tenth of a large send
    single-threaded."""
    floats = [i for i, a in enumerate(arrays) if a.dtype.kind == "f"]
    if sum(len(arrays[i]) for i in floats) < PARALLEL_SCAN_VALUES or _SCAN_WORKERS < 2:
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


def _nullable_mapper(t: pa.DataType) -> Optional[Any]:
    if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t):
        return pd.api.types.pandas_dtype(
            {
                "int8": "Int8", "int16": "Int16", "int32": "Int32", "int64": "Int64",
                "uint8": "UInt8", "uint16": "UInt16", "uint32": "UInt32", "uint64": "UInt64",
                "float": "Float32", "double": "Float64", "bool": "boolean", "halffloat": "Float32",
            }[str(t)]
        )
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return pd.StringDtype()
    return None


try:  # pandas >= 3: the public way to assemble a frame from blocks (pyarrow's too)
    from pandas.api.internals import create_dataframe_from_blocks as _from_blocks
except ImportError:  # pandas 2: no fast path, pyarrow converts every table
    _from_blocks = None

#: Whether :func:`numeric_frame` can assemble frames itself (pandas >= 3); where it
#: cannot, pyarrow converts every table.
NUMERIC_GET_PATH = _from_blocks is not None

#: The ``"stop": N`` of a RangeIndex in pyarrow's pandas metadata (JSON it writes itself).
_STOP = re.compile(rb'"stop": (-?[0-9]+)')
#: Arrow types whose single-chunk, null-free arrays ``to_pandas`` turns into NumPy views.
_VIEW_TYPES = frozenset(
    pa.from_numpy_dtype(np.dtype(t)) for t in ("int8", "int16", "int32", "int64", "uint8", "uint16",
                                               "uint32", "uint64", "float16", "float32", "float64")
)


def numeric_frame(table: pa.Table) -> Optional[pd.DataFrame]:
    """``table.to_pandas(split_blocks=True)`` for the common case without its costs
    (rebuilding the column Index from the pandas metadata is most of a small get): a
    table of integer and float columns, each one chunk without nulls, whose pandas
    metadata describes a RangeIndex. The first table of a schema goes through pyarrow,
    whose result (column Index, dtypes, index) is checked and remembered in
    ``CACHES.frames`` (keyed on the schema's field types and names and its pandas
    metadata with the RangeIndex ``stop`` blanked out: ``(column Index, (start, step,
    name))``, or None for a schema left to pyarrow); later tables of that schema are
    assembled from zero-copy NumPy views with a view of that column Index, and the same
    RangeIndex rule as pyarrow's (the metadata's range when its length matches, else
    ``RangeIndex(num_rows)``). ``None`` when the table does not qualify; tests/convert
    pins the result to ``to_pandas``."""
    if _from_blocks is None:
        return None
    meta = table.schema.metadata
    raw = meta.get(b"pandas") if meta else None
    if raw is None:
        return None
    stops = _STOP.findall(raw)
    if len(stops) != 1:
        return None
    schema = table.schema
    key = (tuple(schema.types), tuple(schema.names), _STOP.sub(b'"stop": 0', raw))
    learnt = CACHES.frames.get(key, False)
    if learnt is None:
        return None
    columns = table.columns
    for col in columns:
        if col.num_chunks != 1 or col.null_count:
            return None
    if learnt is False:
        return _learn(table, key, raw, int(stops[0]))
    labels, (start, step, name) = learnt
    n = table.num_rows
    index = _range_index(start, int(stops[0]), step, name, n)
    blocks = [
        (col.chunk(0).to_numpy(zero_copy_only=True).reshape(1, n), np.array([i], dtype=np.intp))
        for i, col in enumerate(columns)
    ]
    return _from_blocks(blocks, index=index, columns=labels.view())  # type: ignore[no-any-return]


def _range_index(start: int, stop: int, step: int, name: Any, rows: int) -> pd.RangeIndex:
    """pyarrow's rule for a RangeIndex in the pandas metadata: that range when its length
    is the table's, else ``RangeIndex(rows)`` (the table was sliced)."""
    index: pd.RangeIndex = pd.RangeIndex(start, stop, step, name=name)
    if len(index) == rows:
        return index
    sliced: pd.RangeIndex = pd.RangeIndex(rows)
    return sliced


def _learn(table: pa.Table, key: tuple[Any, ...], raw: bytes, stop: int) -> pd.DataFrame:
    """Converts ``table`` with pyarrow and remembers whether, and how, ``numeric_frame``
    can assemble the later tables of its schema (``key``; ``raw`` is its pandas metadata,
    whose one ``"stop"`` is ``stop``)."""
    df: pd.DataFrame = table.to_pandas(split_blocks=True)
    learnt = None
    types = key[0]
    ranges = json.loads(raw).get("index_columns")
    if (
        all(t in _VIEW_TYPES for t in types)
        and type(df.index) is pd.RangeIndex and not df.attrs
        and ranges and len(ranges) == 1 and isinstance(ranges[0], dict) and ranges[0].get("kind") == "range"
        and type(ranges[0].get("stop")) is int and ranges[0]["stop"] == stop
        and df.shape[1] == table.num_columns
        and all(type(a) is np.ndarray and a.dtype == t.to_pandas_dtype() for a, t in zip(column_arrays(df), types))
    ):
        r = ranges[0]
        index = _range_index(r["start"], stop, r["step"], r["name"], table.num_rows)
        if df.index.equals(index) and df.index.name == index.name:
            # A view: the caller may rename df.columns in place; the remembered Index stays.
            learnt = (df.columns.view(), (r["start"], r["step"], r["name"]))
    CACHES.put(CACHES.frames, key, learnt)
    return df


def arrow_to_dataframe(
    table: pa.Table,
    dtype_backend: Optional[DtypeBackend] = None,
    *,
    progress: Optional[Progress] = None,
    cancel: Optional[Cancel] = None,
) -> Union[pd.DataFrame, pd.Series]:
    """Converts an Arrow table to a DataFrame without copying what can be shared (to a
    Series when a Series was sent, see :func:`encode`).

    ``dtype_backend=None`` (or ``"numpy"``): numeric columns without nulls in a single
    record batch become NumPy views of the mapped payload, copied on their first write
    (:func:`copy_on_first_write`); other columns are converted. ``"pyarrow"``: every column stays Arrow-backed (``pd.ArrowDtype``), no copy.
    ``"numpy_nullable"``: pandas' nullable extension dtypes.

    With ``progress`` or ``cancel``: the same conversion applied record batch by record
    batch, ``progress(done_rows, total_rows)`` after each and ``cancel`` checked before
    each (:class:`~.errors.CancelledError`; a load writes nothing, so nothing is left
    behind). A single-batch table is converted at once (that keeps the zero-copy NumPy
    views); so is one whose dictionary columns differ between batches (pandas could not
    concatenate them as categories).
    """
    check_dtype_backend(dtype_backend)
    if progress is None and cancel is None:
        return _to_pandas(table, dtype_backend, fast=True)
    return _to_pandas_in_batches(table, dtype_backend, progress, cancel)


def arrow_to_dataframe_by_pyarrow(
    table: pa.Table, dtype_backend: Optional[DtypeBackend] = None
) -> Union[pd.DataFrame, pd.Series]:
    """:func:`arrow_to_dataframe` without the :func:`numeric_frame` path: pyarrow's
    ``to_pandas`` for every table (what that path is pinned against)."""
    check_dtype_backend(dtype_backend)
    return _to_pandas(table, dtype_backend, fast=False)


def restore_arrow(table: pa.Table) -> pa.Table:
    """``table`` with what pyarrow would lose on its way to pandas put back on the Arrow
    side: the categories of dictionary columns of a table of no rows (see
    :func:`_fidelity`). A table without our metadata is returned as it is."""
    meta = table.schema.metadata
    raw = meta.get(FIDELITY_KEY) if meta else None
    if raw is None or table.num_rows:
        return table
    categories = json.loads(raw).get("categories") or {}
    for name, text in categories.items():
        i = table.schema.get_field_index(name)
        if i < 0 or not pa.types.is_dictionary(table.schema.field(i).type):
            continue
        field = table.schema.field(i)
        dictionary = _decode_array(text)
        empty = pa.DictionaryArray.from_arrays(
            pa.array([], type=field.type.index_type), dictionary, ordered=field.type.ordered
        )
        table = table.set_column(i, field.with_type(empty.type), pa.chunked_array([empty], type=empty.type))
    return table


def _restore_pandas(
    df: pd.DataFrame, table: pa.Table, info: dict[str, Any], dtype_backend: Optional[str]
) -> Union[pd.DataFrame, pd.Series]:
    """``df`` with what :func:`_fidelity` kept put back; a Series when a Series was sent."""
    dtypes = info.get("dtypes")
    if dtypes and dtype_backend in (None, "numpy"):
        fields = data_fields(table)
        for pos, field in enumerate(fields):
            spec = dtypes.get(field)
            if spec is None or pos >= df.shape[1]:
                continue
            if spec[0] == "arrow":
                df.isetitem(pos, pd.arrays.ArrowExtensionArray(table.column(field)))
            else:
                na = pd.NA if spec[2] == "NA" else np.nan
                df.isetitem(pos, df.iloc[:, pos].array.astype(pd.StringDtype(spec[1], na_value=na)))
    freq = info.get("freq")
    if freq is not None and isinstance(df.index, (pd.DatetimeIndex, pd.TimedeltaIndex)):
        try:
            df.index = type(df.index)(df.index, freq=freq)
        except ValueError:  # rows were picked (sample, time range): the index no longer has that freq
            pass
    if info.get("allows_duplicate_labels") is False:
        try:
            df = df.set_flags(allows_duplicate_labels=False)
        except pd.errors.DuplicateLabelError:  # labels a selection duplicated: keep pandas' default
            pass
    series = info.get("series")
    if series is not None and df.shape[1] == 1:
        out = df.iloc[:, 0]
        if series.get("unnamed"):
            out.name = None
        return out
    return df


def _to_pandas(table: pa.Table, dtype_backend: Optional[DtypeBackend], *, fast: bool) -> Union[pd.DataFrame, pd.Series]:
    """The one-shot conversion."""
    meta = table.schema.metadata
    raw = meta.get(FIDELITY_KEY) if meta else None
    if raw is None:
        return _to_frame(table, dtype_backend, fast=fast)
    table = restore_arrow(table)
    return _restore_pandas(_to_frame(table, dtype_backend, fast=fast), table, json.loads(raw), dtype_backend)


def _to_frame(table: pa.Table, dtype_backend: Optional[DtypeBackend], *, fast: bool) -> pd.DataFrame:
    """pyarrow's conversion (or :func:`numeric_frame`), our column labels restored."""
    if dtype_backend in (None, "numpy"):
        df = numeric_frame(table) if fast else None
        if df is None:
            df = table.to_pandas(split_blocks=True)
    elif dtype_backend == "pyarrow":
        df = table.to_pandas(split_blocks=True, types_mapper=pd.ArrowDtype)
    else:
        df = table.to_pandas(split_blocks=True, types_mapper=_nullable_mapper)
    labels = (table.schema.metadata or {}).get(LABELS_KEY)
    if labels is not None:
        restored = json.loads(labels)
        if len(restored) == df.shape[1]:
            df.columns = pd.Index(restored, dtype=object if len({type(x) for x in restored}) > 1 else None)
    copy_on_first_write(df)
    return df


class _Mapping:
    """Stands, in the copy-on-write references of a frame's blocks, for the read-only
    memory (a mapped payload, an Arrow buffer) their values are views of."""

    __slots__ = ("__weakref__",)


#: Lives as long as the module, so a block referring to it is referenced for good.
_MAPPING = _Mapping()


_PANDAS_3 = int(pd.__version__.split(".", 1)[0]) >= 3


def _copy_on_write_active() -> bool:
    # pandas 3 always (its option is deprecated); pandas 2 only when the user turned it on.
    return _PANDAS_3 or pd.options.mode.copy_on_write is True


def _read_only(values: Any) -> bool:
    if type(values) is np.ndarray:
        return not values.flags.writeable
    for arr in (getattr(values, "_ndarray", None), getattr(values, "_data", None), getattr(values, "_mask", None)):
        if type(arr) is np.ndarray and not arr.flags.writeable:
            return True
    return False


def copy_on_first_write(df: pd.DataFrame) -> pd.DataFrame:
    """Makes the read-only columns of ``df`` (views of a mapping or of Arrow buffers)
    writable the way pandas' copy-on-write makes any shared column writable: each such
    block is marked as referenced by another owner (:data:`_MAPPING`), so the first write
    into it (``loc``/``iloc``/``iat`` assignment, masked assignment, ``fillna``/
    ``replace``/``update``/... with ``inplace=True``) copies that block and writes into
    the copy; the mapping is never written, reads stay zero-copy, and only the columns
    written are copied. Frames (and Series) derived from ``df`` without a copy share the
    mark. ``BlockValuesRefs.add_index_reference`` is how pandas itself records an Index
    sharing a block's values (pandas >= 2.0; tests/convert pins its effect). Without
    copy-on-write (pandas 2 by default) writes go into the array itself, so the columns
    stay read-only; ``df.copy()`` makes a writable frame there."""
    if not _copy_on_write_active():
        return df
    for blk in getattr(getattr(df, "_mgr", None), "blocks", ()):
        if _read_only(blk.values):
            refs = getattr(blk, "refs", None)
            if refs is not None:
                refs.add_index_reference(_MAPPING)
    return df


def _to_pandas_in_batches(
    table: pa.Table, dtype_backend: Optional[DtypeBackend], progress: Optional[Progress], cancel: Optional[Cancel]
) -> Union[pd.DataFrame, pd.Series]:
    """:func:`_to_pandas` per record batch, reporting and checking ``cancel`` between
    batches; each part gets its slice of the whole table's RangeIndex."""
    total = table.num_rows
    check(cancel, "the load")
    batches = table.to_batches()
    if len(batches) <= 1 or not _same_dictionaries(table):
        df = _to_pandas(table, dtype_backend, fast=True)
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
        part = _to_frame(pa.Table.from_batches([batch], schema=table.schema), dtype_backend, fast=True)
        if range_index is not None:
            full = pd.RangeIndex(range_index["start"], range_index["stop"], range_index["step"], name=range_index.get("name"))
            if len(full) == total:
                part.index = full[done : done + batch.num_rows]
        parts.append(part)
        done += batch.num_rows
        if progress is not None:
            progress(done, total)
    df = pd.concat(parts) if len(parts) > 1 else parts[0]
    raw = (table.schema.metadata or {}).get(FIDELITY_KEY)
    return df if raw is None else _restore_pandas(df, table, json.loads(raw), dtype_backend)


def _same_dictionaries(table: pa.Table) -> bool:
    for col in table.columns:
        if pa.types.is_dictionary(col.type) and col.num_chunks > 1:
            first = col.chunks[0].dictionary
            if any(not c.dictionary.equals(first) for c in col.chunks[1:]):
                return False
    return True
