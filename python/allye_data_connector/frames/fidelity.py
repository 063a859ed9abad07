"""What pyarrow's round trip of a DataFrame loses, kept in the schema metadata
(:data:`FIDELITY_KEY`) by a send and put back by a get: the ``freq`` of a DatetimeIndex
or TimedeltaIndex, ``allows_duplicate_labels=False``, ``string[python]`` and
``ArrowDtype(string)`` columns, ``object`` columns and index levels (and which missing
value each of their missing entries was), the categories of a frame of no rows, and that
a Series was sent."""

from __future__ import annotations

import base64
import json
from typing import Any, Optional, Union, cast

import numpy as np
import pandas as pd
import pyarrow as pa

from ._caches import column_arrays
from .fields import data_fields, index_fields, with_metadata

#: Schema-metadata key holding, as JSON, what a frame is that neither Arrow nor pyarrow's
#: pandas metadata keeps (see :func:`_info`); absent when there is nothing to keep.
FIDELITY_KEY = b"allye_pandas"


def _is_arrow_string(dtype: Any) -> bool:
    return isinstance(dtype, pd.ArrowDtype) and dtype.pyarrow_dtype == pa.string()


def _is_object(dtype: Any) -> bool:
    return isinstance(dtype, np.dtype) and dtype.kind == "O"


#: The missing values an ``object`` column can hold that Arrow reads back as one null,
#: by the name ``allye_pandas`` records them under. Any other missing value (NumPy's
#: NaN, a ``float("nan")``) is a float NaN and comes back as ``nan``.
MISSING = {"None": None, "nan": np.nan, "NA": pd.NA, "NaT": pd.NaT}
_MISSING_IDS = {id(None): "None", id(pd.NA): "NA", id(pd.NaT): "NaT"}


def _missing_kinds(values: np.ndarray[Any, Any], column: pa.ChunkedArray) -> dict[str, Any]:
    """What the missing entries of ``values`` (an ``object`` array) were, as ``objects``
    records it: ``{}`` without any; else ``{"na": kind}`` with the most common kind and,
    when there are others, ``"rows": {kind: [row, ...]}`` and ``"of"`` (the table's rows,
    so that a reader of other rows, a stream's, ignores them). ``column`` is the Arrow
    column pyarrow made of ``values``: its nulls are where to look, so only the missing
    entries are read (a column without any costs nothing)."""
    if not column.null_count:
        return {}
    rows = np.flatnonzero(column.is_null().to_numpy(zero_copy_only=False))
    missing = values[rows]
    ids = np.fromiter(map(id, missing), dtype=np.intp, count=len(missing))
    kinds = np.full(len(missing), "nan", dtype=object)
    for ident, kind in _MISSING_IDS.items():
        kinds[ids == ident] = kind
    names, counts = np.unique(kinds, return_counts=True)
    na = str(names[int(np.argmax(counts))])
    out: dict[str, Any] = {"na": na}
    if len(names) > 1:
        out["rows"] = {str(k): rows[kinds == k].tolist() for k in names if k != na}
        out["of"] = len(values)
    return out


def _info(df: pd.DataFrame, column_dtypes: list[Any], fields: list[str]) -> dict[str, Any]:
    """What ``df`` is that pyarrow's round trip loses (it turns each into something else):
    the ``freq`` of a DatetimeIndex or TimedeltaIndex; ``allows_duplicate_labels=False``;
    ``string[python]`` columns and ``ArrowDtype(pa.string())`` columns (both read back
    as ``string[pyarrow]``), by Arrow field name; and, in a frame of no rows, the
    categories of each categorical column and index level (without a record batch, no dictionary is
    written), as an Arrow IPC stream in base64. ``object`` columns and index levels are
    :func:`_objects`' (they need the table)."""
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


def _objects(table: pa.Table, df: pd.DataFrame, arrays: list[Any], fields: list[str]) -> dict[str, Any]:
    """The ``object`` columns and index levels of ``df``, by Arrow field name, each with
    :func:`_missing_kinds` of its missing entries: pyarrow reads an ``object`` column
    of strings back as pandas' ``str``, of integers as ``int64`` (``float64`` with a
    missing entry), of datetimes as ``datetime64``, and every missing entry as None
    (or NaN). A MultiIndex level keeps its dtype only (its missing entries are codes)."""
    out: dict[str, Any] = {}
    for field, values in zip(fields, arrays):
        if type(values) is np.ndarray and values.dtype.kind == "O" and field in table.column_names:
            out[field] = _missing_kinds(values, table.column(field))
    index_names = [f for f in index_fields(table)]
    levels = df.index.levels if isinstance(df.index, pd.MultiIndex) else [df.index]
    if len(index_names) == len(levels):
        for field, level in zip(index_names, levels):
            if _is_object(level.dtype):
                out[field] = {} if isinstance(df.index, pd.MultiIndex) else _missing_kinds(
                    np.asarray(level, dtype=object), table.column(field))
    return out


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
        type(a) is np.ndarray and a.dtype.kind != "O" for a in arrays
    ):
        return table  # the common frame: nothing to keep
    dtypes = [a.dtype for a in arrays]
    objects = any(_is_object(d) for d in dtypes) or (
        type(df.index) is not pd.RangeIndex and (
            any(_is_object(lvl.dtype) for lvl in df.index.levels) if isinstance(df.index, pd.MultiIndex)
            else _is_object(df.index.dtype)))
    if len(df) and not objects and not any(_kept_dtype(d) for d in dtypes):
        fields: list[str] = []  # no column to name: spare reading the pandas metadata
    else:
        fields = data_fields(table)
    info = _objects(table, df, arrays, fields) if objects else {}
    info = {"objects": info} if info else {}
    if len(df) == 0:  # the index's categories too (an index of no rows is one of no rows)
        levels = df.index.levels if isinstance(df.index, pd.MultiIndex) else [df.index]
        index = index_fields(table)
        if len(index) == len(levels):
            fields, dtypes = fields + index, dtypes + [lvl.dtype for lvl in levels]
    info.update(_info(df, dtypes, fields))
    return add(table, info) if info else table


def add(table: pa.Table, info: dict[str, Any]) -> pa.Table:
    meta = dict(table.schema.metadata or {})
    known = json.loads(meta[FIDELITY_KEY]) if FIDELITY_KEY in meta else {}
    meta[FIDELITY_KEY] = json.dumps({**known, **info}).encode("utf-8")
    return with_metadata(table, meta)


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


def _rows_kept(table: pa.Table, keep: Any, of: int) -> pa.Table:
    """``table``, made of some rows of a table of ``of`` rows, whose ``objects`` rows
    (see :func:`_missing_kinds`) are renumbered by ``keep(rows) -> (kept mask, new
    rows)``; rows recorded for another table than that one are dropped."""
    meta = table.schema.metadata
    raw = meta.get(FIDELITY_KEY) if meta else None
    if raw is None or b'"rows"' not in raw:
        return table
    info = json.loads(raw)
    objects = info.get("objects") or {}
    changed = False
    for field, spec in objects.items():
        if "rows" not in spec:
            continue
        rows = {}
        for kind, at in spec["rows"].items() if spec.get("of") == of else ():
            old = np.asarray(at, dtype=np.int64)
            kept, new = keep(old)
            if kept.any():
                rows[kind] = new[kept].tolist()
        objects[field] = dict(spec, rows=rows, of=table.num_rows)
        changed = True
    if not changed:
        return table
    new_meta = dict(meta)
    new_meta[FIDELITY_KEY] = json.dumps(info).encode("utf-8")
    return with_metadata(table, new_meta)


def rows_sliced(table: pa.Table, offset: int, length: int, of: int) -> pa.Table:
    """``table``, rows ``offset..offset+length`` of a table of ``of`` rows, with what is
    kept per row renumbered for it."""
    def keep(old: np.ndarray[Any, Any]) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
        return (old >= offset) & (old < offset + length), old - offset
    return _rows_kept(table, keep, of) if of != length else table


def rows_taken(table: pa.Table, indices: np.ndarray[Any, Any], of: int) -> pa.Table:
    """``table``, the rows at ``indices`` (ascending, distinct) of a table of ``of``
    rows, with what is kept per row renumbered for it."""
    def keep(old: np.ndarray[Any, Any]) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
        at = np.searchsorted(indices, old)
        found = at < len(indices)
        found[found] = indices[at[found]] == old[found]
        return found, at
    return _rows_kept(table, keep, of)


def _object_values(column: pa.ChunkedArray, spec: dict[str, Any], num_rows: int) -> np.ndarray[Any, Any]:
    """The ``object`` array an ``object`` column was, from its Arrow column: strings and
    bytes by pyarrow's conversion, other types value by value as Python objects (an int
    column with a missing entry stays ints), each missing entry the missing value it was
    (``spec``, see :func:`_missing_kinds`)."""
    t = column.type
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_binary(t) or pa.types.is_large_binary(t):
        values = column.to_numpy(zero_copy_only=False)
        if values.dtype.kind != "O" or not values.flags.writeable:
            values = values.astype(object)
    else:
        values = np.fromiter(column.to_pylist(), dtype=object, count=len(column))
    values = cast(np.ndarray[Any, Any], values)
    na = spec.get("na")
    if na is not None and column.null_count:
        missing = column.is_null().to_numpy(zero_copy_only=False)
        value = MISSING.get(na)
        if value is not None:
            values[missing] = value
        rows = spec.get("rows")
        if rows and spec.get("of") == num_rows:
            for kind, at in rows.items():
                at = np.asarray(at, dtype=np.int64)
                at = at[(at >= 0) & (at < len(values))]
                at = at[missing[at]]  # only where the column is missing
                if kind in MISSING:
                    values[at] = MISSING[kind]
    return values


def _restore_objects(df: pd.DataFrame, table: pa.Table, objects: dict[str, Any]) -> pd.DataFrame:
    """``df`` with each ``object`` column and index level recorded in ``objects`` made
    ``object`` again, with its missing values (see :func:`_object_values`)."""
    fields = data_fields(table)
    for pos, field in enumerate(fields):
        spec = objects.get(field)
        if spec is None or pos >= df.shape[1]:
            continue
        column = table.column(field)
        if _is_object(df.dtypes.iloc[pos]) and spec.get("na", "None") == "None" and not spec.get("rows"):
            continue  # what pyarrow gives: objects, None where missing
        values = _object_values(column, spec, table.num_rows)
        # A Series: an object ndarray alone would be inferred as "str" again (pandas >= 3).
        df.isetitem(pos, pd.Series(values, index=df.index, dtype=object, copy=False))  # type: ignore[arg-type]
    index = index_fields(table)
    if not any(f in objects for f in index):
        return df
    if isinstance(df.index, pd.MultiIndex):
        if len(index) == df.index.nlevels:
            mi = df.index
            for i, field in enumerate(index):
                if field in objects and not _is_object(mi.levels[i].dtype):
                    mi = mi.set_levels(mi.levels[i].astype(object), level=i)  # type: ignore[call-overload]
            df.index = mi
    elif len(index) == 1:
        values = _object_values(table.column(index[0]), objects[index[0]], table.num_rows)
        df.index = pd.Index(values, dtype=object, name=df.index.name)
    return df


def restore_pandas(
    df: pd.DataFrame, table: pa.Table, info: dict[str, Any], dtype_backend: Optional[str]
) -> Union[pd.DataFrame, pd.Series]:
    """``df`` with what :func:`_info` kept put back; a Series when a Series was sent."""
    objects = info.get("objects")
    if objects and dtype_backend in (None, "numpy"):
        df = _restore_objects(df, table, objects)
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
