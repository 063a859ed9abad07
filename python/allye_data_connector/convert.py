"""pandas <-> Arrow conversion: one ``from_pandas`` per send, zero-copy on the way back."""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal, Optional

import numpy as np
import pandas as pd
import pyarrow as pa

from .errors import ConversionError, InvalidArgumentError, InvalidInputError

#: Schema-metadata key holding the original column labels when Arrow field names
#: could not carry them (duplicate labels, labels equal after ``str()``).
LABELS_KEY = b"allye_columns"

DtypeBackend = Literal["numpy", "numpy_nullable", "pyarrow"]


def _column_arrays(df: pd.DataFrame) -> list:
    """The frame's columns as their backing arrays (NumPy arrays or pandas extension
    arrays), by position, without building a Series per column (a tenth of the cost).
    ``DataFrame._get_column_array`` is private (pandas 1.3 to 3.x); other pandas versions
    take the public, slower way."""
    get = getattr(df, "_get_column_array", None)
    if get is not None:
        return [get(i) for i in range(df.shape[1])]
    return [df.iloc[:, i].values for i in range(df.shape[1])]


#: (Index, its labels) for the last column Index seen (pandas Index objects are immutable).
_LAST_LABELS: tuple = (None, None)
#: schema_sha256 of frames of NumPy dtypes, by their labels (with types) and dtypes.
_SHAS: dict = {}
_CACHE_MAX = 256


def _labels(columns: pd.Index) -> list:
    """``columns.tolist()``, remembered for the last Index object: a frame sent again
    (and the two conversions of one send) reads its labels once."""
    global _LAST_LABELS
    last = _LAST_LABELS  # one read: another thread may replace it meanwhile
    if last[0] is columns:
        return last[1]
    labels = columns.tolist()
    _LAST_LABELS = (columns, labels)
    return labels


def _label_key(label: Any) -> Any:
    # 1, 1.0 and True are equal dict keys but different labels: key on the types too.
    if type(label) is tuple:
        return (label, tuple(map(type, label)))
    return (label, type(label))


def schema_sha256(df: pd.DataFrame, arrays: Optional[list] = None) -> str:
    """The protocol's ``schema_sha256``: sha256 of ``str(columns) + "|" + str(dtypes)``,
    where ``dtypes`` is ``{str(label): str(dtype)}`` as ``df.dtypes.to_dict()`` gives it
    (one entry per distinct label, the last column's dtype). Cached for frames of NumPy
    dtypes (equal NumPy dtypes print the same)."""
    labels = _labels(df.columns)
    dtypes = tuple(a.dtype for a in (arrays if arrays is not None else _column_arrays(df)))
    key = None
    if all(isinstance(d, np.dtype) for d in dtypes):
        try:
            key = (tuple(map(_label_key, labels)), dtypes)
            hit = _SHAS.get(key)
        except TypeError:  # an unhashable label
            key = hit = None
        if hit is not None:
            return hit
    text = str(list(map(str, labels))) + "|" + str({str(k): str(v) for k, v in zip(labels, dtypes)})
    sha = hashlib.sha256(text.encode("utf-8")).hexdigest()
    if key is not None:
        if len(_SHAS) >= _CACHE_MAX:
            _SHAS.clear()
        _SHAS[key] = sha
    return sha


def _label_to_json(label: Any) -> Any:
    if label is None or isinstance(label, (bool, int, float, str)):
        return label
    if hasattr(label, "item"):  # numpy scalars
        return label.item()
    return str(label)


def dataframe_to_arrow(df: pd.DataFrame, arrays: Optional[list] = None) -> pa.Table:
    """Converts a DataFrame to an Arrow table in one pass over the whole frame (no
    sampling), keeping the index and the column labels in the pandas metadata.
    ``arrays``: the frame's ``_column_arrays`` when the caller has them already."""
    if not isinstance(df, pd.DataFrame):
        raise InvalidInputError(
            f"send_dataframe() needs a pandas.DataFrame, got {type(df).__module__}.{type(df).__qualname__}; "
            "wrap a Series with .to_frame(), a dict or array with pandas.DataFrame(...)"
        )
    labels = _labels(df.columns)
    # pyarrow keeps homogeneous labels (all str, all int, ...) in its pandas metadata;
    # duplicates, labels equal after str() and mixed types we keep ourselves.
    own_labels = (
        len({str(c) for c in labels}) != len(labels)
        or (not isinstance(df.columns, pd.MultiIndex) and df.columns.inferred_type.startswith("mixed"))
    )
    frame = df
    if own_labels:
        frame = df.copy(deep=False)
        frame.columns = [f"{c}__{i}" for i, c in enumerate(labels)]
    try:
        table = _numeric_table(frame, arrays)
        if table is None:
            table = pa.Table.from_pandas(frame, preserve_index=None)
    except (pa.ArrowTypeError, pa.ArrowInvalid, pa.ArrowNotImplementedError, TypeError, ValueError) as exc:
        raise ConversionError(_explain_conversion_failure(frame, exc)) from exc
    if own_labels:
        meta = dict(table.schema.metadata or {})
        meta[LABELS_KEY] = json.dumps([_label_to_json(c) for c in labels]).encode("utf-8")
        table = table.replace_schema_metadata(meta)
    return table


#: NumPy kinds whose columns ``_numeric_table`` converts itself: signed and unsigned
#: integers, floats, booleans.
_NUMERIC_KINDS = frozenset("iufb")
#: Schemas (with pandas metadata) of numeric frames, see ``_numeric_schema``.
_SCHEMAS: dict = {}


def range_index_metadata(meta: dict, index: pd.RangeIndex) -> dict:
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


def _numeric_schema(frame: pd.DataFrame, dtypes: list) -> pa.Schema:
    """``pa.Schema.from_pandas(frame, preserve_index=None)`` for a frame of NumPy numeric
    columns with a RangeIndex, cached: building the pandas metadata costs more than
    converting a small frame. The cache key holds everything that metadata is made of
    (labels and their types, the column index's kind, dtypes and names, the columns'
    dtypes, the RangeIndex's name, start and step) except the RangeIndex's ``stop``,
    which is patched into a copy of the cached metadata."""
    index, columns = frame.index, frame.columns
    try:
        level_dtypes = tuple(lvl.dtype for lvl in columns.levels) if isinstance(columns, pd.MultiIndex) else columns.dtype
        key = (
            type(columns), level_dtypes, tuple(columns.names), tuple(map(_label_key, _labels(columns))),
            tuple(dtypes), _label_key(index.name), index.start, index.step,
        )
        hit = _SCHEMAS.get(key)
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
        meta = json.loads(raw) if raw is not None else None
        ranges = meta.get("index_columns") if meta else None
        # Cache only what the patching above reproduces byte for byte.
        if (
            len(schema.metadata) == 1 and ranges and len(ranges) == 1 and ranges[0].get("kind") == "range"
            and ranges[0].get("stop") == index.stop and json.dumps(meta).encode("utf-8") == raw
        ):
            if len(_SCHEMAS) >= _CACHE_MAX:
                _SCHEMAS.clear()
            _SCHEMAS[key] = (schema, meta, index.stop)
    return schema


def _numeric_table(frame: pd.DataFrame, arrays: Optional[list] = None) -> Optional[pa.Table]:
    """``pa.Table.from_pandas(frame, preserve_index=None)`` for the common case, a frame
    of NumPy integer, float and bool columns with a RangeIndex, without its costs:
    pyarrow scans every float column to turn NaN into nulls (a third of a large send),
    and builds the pandas metadata on every call (most of a small one). Here integer
    columns and float columns without NaN (``min()`` propagates NaN: one vectorised pass)
    are wrapped without a copy, only float columns holding NaN take pyarrow's NaN -> null
    conversion, and the schema comes from ``_numeric_schema``. The result is the same
    table, schema metadata included (tests/test_roundtrip.py pins it). ``None`` for any
    other frame, which pyarrow converts as before."""
    if type(frame.index) is not pd.RangeIndex or frame.attrs or frame.shape[1] == 0:
        return None
    if arrays is None:
        arrays = _column_arrays(frame)
    for a in arrays:
        if type(a) is not np.ndarray or a.ndim != 1 or a.dtype.kind not in _NUMERIC_KINDS or not a.dtype.isnative:
            return None
    schema = _numeric_schema(frame, [a.dtype for a in arrays])
    nans = _nan_columns(arrays)
    columns = [pa.array(a, from_pandas=True) if nan else pa.array(a) for a, nan in zip(arrays, nans)]
    return pa.Table.from_arrays(columns, schema=schema)


#: Float values from which ``_nan_columns`` scans in parallel, and the size of a piece.
_PARALLEL_SCAN_VALUES = 1 << 22
_SCAN_PIECE = 1 << 21
_SCAN_WORKERS = min(4, os.cpu_count() or 1)
#: (pid that made it, pool)
_scan_pool: Optional[tuple[int, ThreadPoolExecutor]] = None
_scan_pool_lock = threading.Lock()


def _has_nan(a: np.ndarray) -> bool:
    # min() propagates NaN: one vectorised pass, and NumPy releases the GIL for it.
    return len(a) > 0 and bool(np.isnan(a.min()))


def _nan_columns(arrays: list) -> list[bool]:
    """Whether each column is a float column holding NaN. Large frames are scanned in
    pieces by a small thread pool (one thread per CPU, at most 4): the scan reads every
    float value once, is bound by memory bandwidth, and takes a tenth of a large send
    single-threaded."""
    floats = [i for i, a in enumerate(arrays) if a.dtype.kind == "f"]
    if sum(len(arrays[i]) for i in floats) < _PARALLEL_SCAN_VALUES or _SCAN_WORKERS < 2:
        return [a.dtype.kind == "f" and _has_nan(a) for a in arrays]
    pieces = [
        (i, arrays[i][lo:lo + _SCAN_PIECE]) for i in floats for lo in range(0, len(arrays[i]), _SCAN_PIECE)
    ]
    global _scan_pool
    with _scan_pool_lock:
        # A forked child inherits the pool object but not its threads: it gets its own.
        if _scan_pool is None or _scan_pool[0] != os.getpid():
            _scan_pool = (os.getpid(), ThreadPoolExecutor(max_workers=_SCAN_WORKERS, thread_name_prefix="adc-nan-scan"))
        pool = _scan_pool[1]
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

#: The ``"stop": N`` of a RangeIndex in pyarrow's pandas metadata (JSON it writes itself).
_STOP = re.compile(rb'"stop": (-?[0-9]+)')
#: What ``_numeric_frame`` learnt from ``to_pandas`` per schema (keyed on the schema's
#: field types and names and its pandas metadata with the RangeIndex ``stop`` blanked out):
#: ``(column Index, (start, step, name))``, or None for a schema it leaves
#: to pyarrow.
_FRAMES: dict = {}
#: Arrow types whose single-chunk, null-free arrays ``to_pandas`` turns into NumPy views.
_VIEW_TYPES = frozenset(
    pa.from_numpy_dtype(np.dtype(t)) for t in ("int8", "int16", "int32", "int64", "uint8", "uint16",
                                               "uint32", "uint64", "float16", "float32", "float64")
)


def _numeric_frame(table: pa.Table) -> Optional[pd.DataFrame]:
    """``table.to_pandas(split_blocks=True)`` for the common case without its costs
    (rebuilding the column Index from the pandas metadata is most of a small get): a
    table of integer and float columns, each one chunk without nulls, whose pandas
    metadata describes a RangeIndex. The first table of a schema goes through pyarrow,
    whose result (column Index, dtypes, index) is checked and remembered; later tables of
    that schema are assembled from zero-copy NumPy views with a view of that column
    Index, and the same RangeIndex rule as pyarrow's (the metadata's range when its length
    matches, else ``RangeIndex(num_rows)``). ``None`` when the table does not qualify;
    tests/test_roundtrip.py pins the result to ``to_pandas``."""
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
    learnt = _FRAMES.get(key, False)
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
    return _from_blocks(blocks, index=index, columns=labels.view())


def _range_index(start: int, stop: int, step: int, name: Any, rows: int) -> pd.RangeIndex:
    """pyarrow's rule for a RangeIndex in the pandas metadata: that range when its length
    is the table's, else ``RangeIndex(rows)`` (the table was sliced)."""
    index = pd.RangeIndex(start, stop, step, name=name)
    return index if len(index) == rows else pd.RangeIndex(rows)


def _learn(table: pa.Table, key: tuple, raw: bytes, stop: int) -> pd.DataFrame:
    """Converts ``table`` with pyarrow and remembers whether, and how, ``_numeric_frame``
    can assemble the later tables of its schema (``key``; ``raw`` is its pandas metadata,
    whose one ``"stop"`` is ``stop``)."""
    df = table.to_pandas(split_blocks=True)
    learnt = None
    types = key[0]
    ranges = json.loads(raw).get("index_columns")
    if (
        all(t in _VIEW_TYPES for t in types)
        and type(df.index) is pd.RangeIndex and not df.attrs
        and ranges and len(ranges) == 1 and isinstance(ranges[0], dict) and ranges[0].get("kind") == "range"
        and type(ranges[0].get("stop")) is int and ranges[0]["stop"] == stop
        and df.shape[1] == table.num_columns
        and all(type(a) is np.ndarray and a.dtype == t.to_pandas_dtype() for a, t in zip(_column_arrays(df), types))
    ):
        r = ranges[0]
        index = _range_index(r["start"], stop, r["step"], r["name"], table.num_rows)
        if df.index.equals(index) and df.index.name == index.name:
            # A view: the caller may rename df.columns in place; the remembered Index stays.
            learnt = (df.columns.view(), (r["start"], r["step"], r["name"]))
    if len(_FRAMES) >= _CACHE_MAX:
        _FRAMES.clear()
    _FRAMES[key] = learnt
    return df


def arrow_to_dataframe(table: pa.Table, dtype_backend: Optional[DtypeBackend] = None) -> pd.DataFrame:
    """Converts an Arrow table to a DataFrame without copying what can be shared.

    ``dtype_backend=None`` (or ``"numpy"``): numeric columns without nulls in a single
    record batch become read-only NumPy views of the mapped payload; other columns are
    converted. ``"pyarrow"``: every column stays Arrow-backed (``pd.ArrowDtype``), no copy.
    ``"numpy_nullable"``: pandas' nullable extension dtypes.
    """
    if dtype_backend in (None, "numpy"):
        df = _numeric_frame(table)
        if df is None:
            df = table.to_pandas(split_blocks=True)
    elif dtype_backend == "pyarrow":
        df = table.to_pandas(split_blocks=True, types_mapper=pd.ArrowDtype)
    elif dtype_backend == "numpy_nullable":
        df = table.to_pandas(split_blocks=True, types_mapper=_nullable_mapper)
    else:
        raise InvalidArgumentError(
            f"dtype_backend={dtype_backend!r} is not one of None, 'numpy', 'numpy_nullable', 'pyarrow'"
        )
    labels = (table.schema.metadata or {}).get(LABELS_KEY)
    if labels is not None:
        restored = json.loads(labels)
        if len(restored) == df.shape[1]:
            df.columns = pd.Index(restored, dtype=object if len({type(x) for x in restored}) > 1 else None)
    return df
