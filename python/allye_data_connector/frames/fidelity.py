"""What pyarrow's round trip of a DataFrame loses, kept in the schema metadata
(:data:`FIDELITY_KEY`) by a send and put back by a get: the ``freq`` of a DatetimeIndex
or TimedeltaIndex, ``allows_duplicate_labels=False``, ``string[python]`` and
``ArrowDtype(string)`` columns, the categories of a frame of no rows, and that a Series
was sent."""

from __future__ import annotations

import base64
import json
from typing import Any, Optional, Union

import numpy as np
import pandas as pd
import pyarrow as pa

from ._caches import column_arrays
from .fields import data_fields, index_fields

#: Schema-metadata key holding, as JSON, what a frame is that neither Arrow nor pyarrow's
#: pandas metadata keeps (see :func:`_info`); absent when there is nothing to keep.
FIDELITY_KEY = b"allye_pandas"


def _is_arrow_string(dtype: Any) -> bool:
    return isinstance(dtype, pd.ArrowDtype) and dtype.pyarrow_dtype == pa.string()


def _info(df: pd.DataFrame, column_dtypes: list[Any], fields: list[str]) -> dict[str, Any]:
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
    """Whether :func:`_info` keeps a column of this dtype (in a frame with rows)."""
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


def keep(table: pa.Table, df: pd.DataFrame, arrays: Optional[list[Any]] = None) -> pa.Table:
    """``table`` with :func:`_info` of ``df`` in its schema metadata, when there is any."""
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
    info = _info(df, dtypes, fields)
    return add(table, info) if info else table


def add(table: pa.Table, info: dict[str, Any]) -> pa.Table:
    meta = dict(table.schema.metadata or {})
    known = json.loads(meta[FIDELITY_KEY]) if FIDELITY_KEY in meta else {}
    meta[FIDELITY_KEY] = json.dumps({**known, **info}).encode("utf-8")
    return table.replace_schema_metadata(meta)


def restore_arrow(table: pa.Table) -> pa.Table:
    """``table`` with what pyarrow would lose on its way to pandas put back on the Arrow
    side: the categories of dictionary columns of a table of no rows (see
    :func:`_info`). A table without our metadata is returned as it is."""
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


def restore_pandas(
    df: pd.DataFrame, table: pa.Table, info: dict[str, Any], dtype_backend: Optional[str]
) -> Union[pd.DataFrame, pd.Series]:
    """``df`` with what :func:`_info` kept put back; a Series when a Series was sent."""
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
