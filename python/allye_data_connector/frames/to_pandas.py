"""Arrow -> pandas: the frame a get returns, without copying what can be shared
(:func:`arrow_to_dataframe`); numeric tables assembled from NumPy views of the mapping
(:func:`numeric_frame`), read-only columns made writable by copy-on-first-write
(:func:`copy_on_first_write`)."""

from __future__ import annotations

import importlib
import json
import re
from typing import Any, Literal, Optional, Union

import numpy as np
import pandas as pd
import pyarrow as pa

from ..errors import InvalidArgumentError
from ..progress import Cancel, Progress, check
from . import fidelity
from ._caches import CACHES, column_arrays
from .fields import LABELS_KEY

try:
    # Registers pandas' Arrow extension types (period, interval) with pyarrow. pandas
    # imports it only when it converts such an array itself; a process that only reads
    # would otherwise see their storage types (int64, struct) and build int/object indexes.
    importlib.import_module("pandas.core.arrays.arrow.extension_types")
except ImportError:  # pragma: no cover - other pandas layouts: pyarrow's own behaviour
    pass

# pyarrow imports these on its first conversion to pandas, inside it (1.7 ms measured in a
# fresh process, most of a first get's own cost): imported here, with the rest of what a
# get needs, rather than in the middle of a process's first get.
for _module in ("pyarrow.pandas_compat", "pyarrow.vendored.version"):
    try:
        importlib.import_module(_module)
    except ImportError:  # pragma: no cover - other pyarrow layouts
        pass

DtypeBackend = Literal["numpy", "numpy_nullable", "pyarrow"]
DTYPE_BACKENDS = (None, "numpy", "numpy_nullable", "pyarrow")


def check_dtype_backend(dtype_backend: Any) -> Optional[DtypeBackend]:
    if dtype_backend not in DTYPE_BACKENDS:
        raise InvalidArgumentError(
            f"dtype_backend={dtype_backend!r} is not one of None, 'numpy', 'numpy_nullable', 'pyarrow'"
        )
    return dtype_backend  # type: ignore[no-any-return]


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

#: The ``"start": N`` and ``"stop": N`` of a RangeIndex in pyarrow's pandas metadata (JSON
#: it writes itself, and a partial load rewrites for the rows it keeps).
_RANGE = re.compile(rb'"start": (-?[0-9]+), "stop": (-?[0-9]+)')
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
    metadata with the RangeIndex ``start`` and ``stop`` blanked out: ``(column Index,
    (step, name), the columns' one NumPy dtype or None)``, or None for a schema left to
    pyarrow); later tables of that schema are assembled from zero-copy NumPy views (one
    2-D block when the columns share a dtype and lie at one stride, see
    :func:`_one_block`; else a block per column) with a view of that column Index, and the same
    RangeIndex rule as pyarrow's (the metadata's range when its length matches, else
    ``RangeIndex(num_rows)``). ``None`` when the table does not qualify; tests/convert
    pins the result to ``to_pandas``."""
    if _from_blocks is None:
        return None
    meta = table.schema.metadata
    raw = meta.get(b"pandas") if meta else None
    if raw is None:
        return None
    ranges = _RANGE.findall(raw)
    if len(ranges) != 1:
        return None
    start, stop = int(ranges[0][0]), int(ranges[0][1])
    schema = table.schema
    key = (tuple(schema.types), tuple(schema.names), _RANGE.sub(b'"start": 0, "stop": 0', raw))
    learnt = CACHES.frames.get(key, False)
    if learnt is None:
        return None
    columns = table.columns
    for col in columns:
        if col.num_chunks != 1 or col.null_count:
            return None
    if learnt is False:
        return _learn(table, key, raw, start, stop)
    labels, (step, name), dtype = learnt
    n = table.num_rows
    index = _range_index(start, stop, step, name, n)
    chunks = [col.chunk(0) for col in columns]
    block = None if dtype is None else _one_block(chunks, dtype, n)
    if block is not None:
        blocks = [(block, np.arange(len(chunks), dtype=np.intp))]
    else:
        blocks = [
            (chunk.to_numpy(zero_copy_only=True).reshape(1, n), np.array([i], dtype=np.intp))
            for i, chunk in enumerate(chunks)
        ]
    return _from_blocks(blocks, index=index, columns=labels.view())  # type: ignore[no-any-return]


class _Columns:
    """The owner of a 2-D view over columns that lie one after another at one stride in
    memory: exposes the view through NumPy's array interface and holds every column (so
    the memory each one points into) for as long as the view lives."""

    __slots__ = ("__array_interface__", "_columns")

    def __init__(self, interface: dict[str, Any], columns: list[pa.Array]) -> None:
        self.__array_interface__ = interface
        self._columns = columns


def _one_block(chunks: list[pa.Array], dtype: np.dtype[Any], n: int) -> Optional[np.ndarray[Any, Any]]:
    """The columns ``chunks`` (each of ``dtype``, ``n`` values, no nulls) as one read-only
    ``(columns, n)`` NumPy view, the layout pandas keeps a frame of one dtype in, when the
    payload holds them at one stride, as an Arrow IPC writer does for equal columns:
    one block instead of a block per column (a quarter of a small get). Every value of
    the view is a value of its own column (the starts are checked, and a stride shorter
    than a column would overlap), so it reads nothing else. None for any other layout."""
    if len(chunks) < 2 or n == 0:
        return None
    width = dtype.itemsize
    starts = [c.buffers()[1].address + c.offset * width for c in chunks]
    stride = starts[1] - starts[0]
    if stride < n * width or any(s != starts[0] + i * stride for i, s in enumerate(starts)):
        return None
    interface = {"data": (starts[0], True), "shape": (len(chunks), n), "strides": (stride, width),
                 "typestr": dtype.str, "version": 3}
    return np.asarray(_Columns(interface, chunks))


def _range_index(start: int, stop: int, step: int, name: Any, rows: int) -> pd.RangeIndex:
    """pyarrow's rule for a RangeIndex in the pandas metadata: that range when its length
    is the table's, else ``RangeIndex(rows)`` (the table was sliced)."""
    index: pd.RangeIndex = pd.RangeIndex(start, stop, step, name=name)
    if len(index) == rows:
        return index
    sliced: pd.RangeIndex = pd.RangeIndex(rows)
    return sliced


def _learn(table: pa.Table, key: tuple[Any, ...], raw: bytes, start: int, stop: int) -> pd.DataFrame:
    """Converts ``table`` with pyarrow and remembers whether, and how, ``numeric_frame``
    can assemble the later tables of its schema (``key``; ``raw`` is its pandas metadata,
    whose one ``"start"`` is ``start`` and one ``"stop"`` is ``stop``)."""
    df: pd.DataFrame = table.to_pandas(split_blocks=True)
    learnt = None
    types = key[0]
    ranges = json.loads(raw).get("index_columns")
    if (
        all(t in _VIEW_TYPES for t in types)
        and type(df.index) is pd.RangeIndex and not df.attrs
        and ranges and len(ranges) == 1 and isinstance(ranges[0], dict) and ranges[0].get("kind") == "range"
        and type(ranges[0].get("stop")) is int and ranges[0]["stop"] == stop
        and type(ranges[0].get("start")) is int and ranges[0]["start"] == start
        and df.shape[1] == table.num_columns
        and all(type(a) is np.ndarray and a.dtype == t.to_pandas_dtype() for a, t in zip(column_arrays(df), types))
    ):
        r = ranges[0]
        index = _range_index(r["start"], stop, r["step"], r["name"], table.num_rows)
        if df.index.equals(index) and df.index.name == index.name:
            # A view: the caller may rename df.columns in place; the remembered Index stays.
            dtypes = {t.to_pandas_dtype() for t in types}
            one = np.dtype(dtypes.pop()) if len(dtypes) == 1 else None
            learnt = (df.columns.view(), (r["step"], r["name"]), one)
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
    Series when a Series was sent, see :func:`~.to_arrow.encode`).

    ``dtype_backend=None`` (or ``"numpy"``): numeric columns without nulls in a single
    record batch become NumPy views of the mapped payload, copied on their first write
    (:func:`copy_on_first_write`); other columns are converted. ``"pyarrow"``: every column stays Arrow-backed (``pd.ArrowDtype``), no copy.
    ``"numpy_nullable"``: pandas' nullable extension dtypes.

    With ``progress`` or ``cancel``: the same conversion applied record batch by record
    batch, ``progress(done_rows, total_rows)`` after each and ``cancel`` checked before
    each (:class:`~..errors.CancelledError`; a load writes nothing, so nothing is left
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


def _to_pandas(table: pa.Table, dtype_backend: Optional[DtypeBackend], *, fast: bool) -> Union[pd.DataFrame, pd.Series]:
    """The one-shot conversion."""
    meta = table.schema.metadata
    raw = meta.get(fidelity.FIDELITY_KEY) if meta else None
    if raw is None:
        return to_frame(table, dtype_backend, fast=fast)
    table = fidelity.restore_arrow(table)
    return fidelity.restore_pandas(to_frame(table, dtype_backend, fast=fast), table, json.loads(raw), dtype_backend)


def to_frame(table: pa.Table, dtype_backend: Optional[DtypeBackend], *, fast: bool) -> pd.DataFrame:
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
        part = to_frame(pa.Table.from_batches([batch], schema=table.schema), dtype_backend, fast=True)
        if range_index is not None:
            full = pd.RangeIndex(range_index["start"], range_index["stop"], range_index["step"], name=range_index.get("name"))
            if len(full) == total:
                part.index = full[done : done + batch.num_rows]
        parts.append(part)
        done += batch.num_rows
        if progress is not None:
            progress(done, total)
    df = pd.concat(parts) if len(parts) > 1 else parts[0]
    raw = (table.schema.metadata or {}).get(fidelity.FIDELITY_KEY)
    return df if raw is None else fidelity.restore_pandas(df, table, json.loads(raw), dtype_backend)


def _same_dictionaries(table: pa.Table) -> bool:
    for col in table.columns:
        if pa.types.is_dictionary(col.type) and col.num_chunks > 1:
            first = col.chunks[0].dictionary
            if any(not c.dictionary.equals(first) for c in col.chunks[1:]):
                return False
    return True
