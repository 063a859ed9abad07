"""How a named object is stored as Arrow data, per kind (recorded on its line as
``metadata[OBJECT_METADATA_KEY]["kind"]``):

- Arrow data (pandas, pyarrow, polars, ``__arrow_c_stream__``/``__arrow_c_array__``) as an
  Arrow table, read back zero-copy as tables are;
- NumPy arrays (no Python objects inside) as their raw bytes in one Arrow binary value,
  read back as a read-only view of the mapping (dtype, shape and order in the line);
- anything else through pickle protocol 5: the pickle stream is the first record batch,
  each out-of-band buffer (a NumPy array inside a dict, say) its own record batch (its own
  aligned region), handed to ``pickle.loads`` as views of the mapping.
"""

from __future__ import annotations

import ast
import functools
import logging
import pickle
from typing import Any, Optional, Union

import numpy as np
import pandas as pd
import pyarrow as pa

from .. import _core, frames
from .._optional import require
from ..errors import ArrowDataError, ConversionError, InvalidInputError

logger = logging.getLogger(__name__)

#: The raw values of an array's or a pickle's payload: ``bytes`` or contiguous ``uint8``
#: arrays (each one record batch of one ``large_binary`` value in the store).
RawValues = list[Any]
#: An encoded object: Arrow data, or raw values.
Payload = Union[pa.Table, RawValues]

_ARROW_FAILURES = (ConversionError, ArrowDataError, pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError)


# --- NumPy arrays -------------------------------------------------------------------------


def ndarray_meta(dtype: np.dtype[Any], shape: tuple[int, ...], order: str, nbytes: int) -> dict[str, Any]:
    """The line's description of an array (what :func:`decode` reads it back by)."""
    return {"kind": "numpy", "type": "numpy.ndarray", "dtype": repr(np.lib.format.dtype_to_descr(dtype)),
            "shape": list(shape), "order": order, "nbytes": int(nbytes)}


def ndarray_dtype(meta: dict[str, Any]) -> np.dtype[Any]:
    """The dtype an array's description records."""
    descr = str(meta["dtype"])
    dtype = _plain_dtype_of_descr(descr)
    return _dtype_of_descr(descr) if dtype is None else dtype


def _dtype_of_descr(descr: str) -> np.dtype[Any]:
    """The dtype of a ``.npy`` descr's ``repr``: a quoted type string (``'<f8'``, the
    common case, read without ``literal_eval``, which costs more than the rest of an
    array's first get in a process) or a structured descr."""
    inner = descr[1:-1]
    if len(descr) > 2 and descr[0] == descr[-1] == "'" and "'" not in inner and "\\" not in inner:
        return np.dtype(inner)  # what descr_to_dtype does with a str
    return np.lib.format.descr_to_dtype(_tuples(ast.literal_eval(descr)))


@functools.lru_cache(maxsize=256)
def _plain_dtype_of_descr(descr: str) -> Optional[np.dtype[Any]]:
    """:func:`_dtype_of_descr` once per process for a dtype without fields; None for a
    structured one, which is not shared: its ``names`` can be reassigned in place."""
    dtype = _dtype_of_descr(descr)
    return dtype if dtype.names is None else None


def _binary_batch(data: Any) -> pa.RecordBatch:
    """One record batch of one ``large_binary`` value holding ``data``'s bytes (no copy)."""
    buf = pa.py_buffer(data)
    offsets = pa.py_buffer(np.array([0, buf.size], dtype=np.int64))
    arr = pa.Array.from_buffers(pa.large_binary(), 1, [None, offsets, buf])
    return pa.RecordBatch.from_arrays([arr], names=[_core.OBJECT_BYTES_COLUMN])


def _binary_value(chunk: pa.Array) -> Any:
    """The bytes of a ``large_binary`` chunk's first value, as a slice of its buffer."""
    _, offsets, data = chunk.buffers()
    start, end = np.frombuffer(offsets, dtype=np.int64, count=chunk.offset + 2)[chunk.offset:]
    if data is None or end == start:
        return pa.py_buffer(b"")
    return data.slice(int(start), int(end - start))


def _is_plain_ndarray(obj: Any) -> bool:
    return type(obj) is np.ndarray and not obj.dtype.hasobject


def _encode_ndarray(a: np.ndarray[Any, Any]) -> tuple[RawValues, dict[str, Any]]:
    if a.flags.c_contiguous:
        order, flat = "C", a.reshape(-1)
    elif a.flags.f_contiguous:
        order, flat = "F", a.T.reshape(-1)
    else:
        order, flat = "C", np.ascontiguousarray(a).reshape(-1)
    raw = flat.view(np.uint8) if flat.dtype.itemsize else np.empty(0, np.uint8)
    return [raw], ndarray_meta(a.dtype, a.shape, order, a.nbytes)


def _decode_ndarray(table: pa.Table, meta: dict[str, Any]) -> np.ndarray[Any, Any]:
    buf = _binary_value(table.column(0).chunk(0))
    return _ndarray_of(np.frombuffer(buf, dtype=np.uint8, count=int(meta["nbytes"])), meta)


def _ndarray_of(raw: np.ndarray[Any, Any], meta: dict[str, Any]) -> np.ndarray[Any, Any]:
    """The array ``meta`` describes, over ``raw`` (its bytes as ``uint8``, not copied)."""
    dtype = ndarray_dtype(meta)
    shape = tuple(meta["shape"])
    if dtype.itemsize == 0:
        return np.empty(shape, dtype)
    return raw.view(dtype).reshape(shape, order=meta.get("order", "C"))


def _tuples(descr: Any) -> Any:
    """JSON and ``repr`` keep structured descrs as lists of tuples; nested ones need tuples."""
    if isinstance(descr, list):
        return [tuple(_tuples(x) for x in field) if isinstance(field, (list, tuple)) else field for field in descr]
    return descr


def _encode_pickle(obj: Any) -> tuple[RawValues, dict[str, Any]]:
    buffers: list[pickle.PickleBuffer] = []
    try:
        stream = pickle.dumps(obj, protocol=5, buffer_callback=buffers.append)
    except (pickle.PicklingError, TypeError, AttributeError) as exc:
        raise InvalidInputError(
            f"{type(obj).__module__}.{type(obj).__qualname__} can be stored neither as Arrow data, a NumPy array, "
            f"nor a pickle: {exc}"
        ) from exc
    values: RawValues = [stream]
    for b in buffers:
        try:
            values.append(np.frombuffer(b.raw(), dtype=np.uint8))
        except BufferError:  # a non-contiguous buffer: its bytes, copied once
            values.append(memoryview(b).tobytes())
    return values, {"kind": "pickle", "type": _type_name(obj), "buffers": len(buffers)}


def as_table(payload: Payload) -> pa.Table:
    """The Arrow table of an encoded payload: raw values (an array's, a pickle's) each as a
    record batch of one ``large_binary`` value, as the core stores them."""
    if isinstance(payload, pa.Table):
        return payload
    return pa.Table.from_batches([_binary_batch(v) for v in payload])


def _decode_pickle(table: pa.Table) -> Any:
    chunks = table.column(0).chunks
    stream = _binary_value(chunks[0])
    return pickle.loads(stream, buffers=[_binary_value(c) for c in chunks[1:]])


def _type_name(obj: Any) -> str:
    t = type(obj)
    return f"{t.__module__}.{t.__qualname__}"


def table_of(stream: Any) -> pa.Table:
    """The Arrow table of a C stream from ``_core``, buffers as they are. Not ``pa.table()``:
    its first call in a process sets up pyarrow's pandas shim (2 ms), which a get of an
    array or a pickle never needs."""
    return pa.RecordBatchReader.from_stream(stream).read_all()


def _one_column(data: Any) -> pa.Table:
    return pa.table({"value": data})


def encode(obj: Any, *, allow_pickle: bool = True) -> tuple[pa.Table, dict[str, Any]]:
    """``obj`` as an Arrow table and the description recorded on its lines."""
    payload, meta, _ = encode_deferring_nan(obj, allow_pickle=allow_pickle, defer_nan=False)
    return as_table(payload), meta


def encode_deferring_nan(
    obj: Any, *, allow_pickle: bool = True, defer_nan: bool = True
) -> tuple[Payload, dict[str, Any], tuple[int, ...]]:
    """:func:`encode`, with an array's or a pickle's payload left as its raw values (what
    ``_core.put_object`` stores without Arrow wrapping; :func:`as_table` makes the table),
    and the float columns of a DataFrame or Series left for the core to look for NaN in
    (``frames.encode``'s ``defer_nan``): a put passes them as ``reject_nan`` and, on
    ``NanFoundError``, puts :func:`encode`'s table instead."""
    table: Optional[pa.Table] = None
    reject: tuple[int, ...] = ()
    meta: dict[str, Any] = {}
    module = type(obj).__module__.split(".")[0]
    if _is_plain_ndarray(obj):
        return (*_encode_ndarray(obj), reject)
    if isinstance(obj, (pd.DataFrame, pd.Series)):
        try:
            encoded = frames.encode(obj, defer_nan=defer_nan)
            table, reject = encoded.table, encoded.reject_nan
            meta = {"kind": "pandas.DataFrame" if isinstance(obj, pd.DataFrame) else "pandas.Series"}
        except _ARROW_FAILURES as exc:
            logger.debug("%s is not Arrow data (%s): pickled", _type_name(obj), exc)
    elif module == "polars" and hasattr(obj, "__arrow_c_stream__"):
        is_series = type(obj).__name__ == "Series"
        table = pa.table(obj.to_frame() if is_series else obj)
        meta = {"kind": "polars", "polars": "Series" if is_series else "DataFrame"}
    elif isinstance(obj, pa.Table):
        table, meta = obj, {"kind": "pyarrow.Table"}
    elif isinstance(obj, pa.RecordBatch):
        table, meta = pa.Table.from_batches([obj]), {"kind": "pyarrow.RecordBatch"}
    elif isinstance(obj, pa.ChunkedArray):
        table, meta = _one_column(obj), {"kind": "pyarrow.ChunkedArray"}
    elif isinstance(obj, pa.Array):
        table, meta = _one_column(obj), {"kind": "pyarrow.Array"}
    elif hasattr(obj, "__arrow_c_stream__"):
        table, meta = frames.arrow_input(obj), {"kind": "pyarrow.Table"}
    elif hasattr(obj, "__arrow_c_array__"):
        table, meta = _one_column(pa.array(obj)), {"kind": "pyarrow.Array"}
    if table is not None:
        meta["type"] = _type_name(obj)
        return table, meta, reject
    if not allow_pickle:
        raise InvalidInputError(
            f"{_type_name(obj)} would be stored as a pickle and allow_pickle is off; store Arrow data or a NumPy "
            "array, or set allow_pickle: true in settings.yaml"
        )
    return (*_encode_pickle(obj), reject)


def decode_bytes(values: list[Any], meta: dict[str, Any]) -> Any:
    """The object of a raw-bytes kind (``numpy``, ``pickle``) from its values as the core
    hands them out (``_core.get_object_bytes``: one per record batch, each exposing the
    mapped bytes through NumPy's array interface, or ``bytes`` for an object held inside
    its log line): read in place, the mapping kept alive by the views."""
    if values and type(values[0]) is bytes:  # inline: small private copies, read-only
        if meta.get("kind") == "numpy":
            return _ndarray_of(np.frombuffer(values[0], np.uint8, count=int(meta["nbytes"])), meta)
        return pickle.loads(values[0], buffers=values[1:])
    views = [np.asarray(v) for v in values]
    if meta.get("kind") == "numpy":
        return _ndarray_of(views[0][: int(meta["nbytes"])], meta)
    return pickle.loads(views[0].data, buffers=views[1:])


def decode(table: pa.Table, meta: dict[str, Any], *, as_polars: Optional[bool] = None) -> Any:
    """The object a table of kind ``meta["kind"]`` encodes (``as_polars``: Arrow data as
    polars; None: as polars when polars sent it)."""
    kind = meta.get("kind")
    if kind == "numpy":
        return _decode_ndarray(table, meta)
    if kind == "pickle":
        return _decode_pickle(table)
    if as_polars or (as_polars is None and kind == "polars"):
        pl = require("polars", extra="polars", purpose="reading Arrow data as polars")
        frame = pl.from_arrow(table)
        if meta.get("polars") == "Series" and isinstance(frame, pl.DataFrame):
            return frame.to_series(0)
        return frame
    if kind in ("pandas.DataFrame", "pandas.Series"):
        return frames.arrow_to_dataframe(frames.restore_arrow(table))
    if kind == "pyarrow.RecordBatch":
        batches = table.to_batches()
        return batches[0] if len(batches) == 1 else table.combine_chunks().to_batches()[0] if table.num_rows else \
            pa.RecordBatch.from_pylist([], schema=table.schema)
    if kind == "pyarrow.ChunkedArray":
        return table.column(0)
    if kind == "pyarrow.Array":
        col = table.column(0)
        return col.chunk(0) if col.num_chunks == 1 else col.combine_chunks()
    if kind == "polars":
        return table
    return table
