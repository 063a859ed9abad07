"""pandas <-> Arrow conversion: one ``from_pandas`` per send, zero-copy on the way back."""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal, Optional

import pandas as pd
import pyarrow as pa

from .errors import ConversionError, InvalidArgumentError, InvalidInputError

#: Schema-metadata key holding the original column labels when Arrow field names
#: could not carry them (duplicate labels, labels equal after ``str()``).
LABELS_KEY = b"allye_columns"

DtypeBackend = Literal["numpy", "numpy_nullable", "pyarrow"]


def schema_sha256(df: pd.DataFrame) -> str:
    """The protocol's ``schema_sha256``: sha256 of ``str(columns) + "|" + str(dtypes)``."""
    columns = list(map(str, df.columns.tolist()))
    dtypes = {str(k): str(v) for k, v in df.dtypes.to_dict().items()}
    return hashlib.sha256((str(columns) + "|" + str(dtypes)).encode("utf-8")).hexdigest()


def _label_to_json(label: Any) -> Any:
    if label is None or isinstance(label, (bool, int, float, str)):
        return label
    if hasattr(label, "item"):  # numpy scalars
        return label.item()
    return str(label)


def dataframe_to_arrow(df: pd.DataFrame) -> pa.Table:
    """Converts a DataFrame to an Arrow table in one pass over the whole frame (no
    sampling), keeping the index and the column labels in the pandas metadata."""
    if not isinstance(df, pd.DataFrame):
        raise InvalidInputError(
            f"send_dataframe() needs a pandas.DataFrame, got {type(df).__module__}.{type(df).__qualname__}; "
            "wrap a Series with .to_frame(), a dict or array with pandas.DataFrame(...)"
        )
    labels = list(df.columns)
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
        table = pa.Table.from_pandas(frame, preserve_index=None)
    except (pa.ArrowTypeError, pa.ArrowInvalid, pa.ArrowNotImplementedError, TypeError, ValueError) as exc:
        raise ConversionError(_explain_conversion_failure(frame, exc)) from exc
    if own_labels:
        meta = dict(table.schema.metadata or {})
        meta[LABELS_KEY] = json.dumps([_label_to_json(c) for c in labels]).encode("utf-8")
        table = table.replace_schema_metadata(meta)
    return table


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


def arrow_to_dataframe(table: pa.Table, dtype_backend: Optional[DtypeBackend] = None) -> pd.DataFrame:
    """Converts an Arrow table to a DataFrame without copying what can be shared.

    ``dtype_backend=None`` (or ``"numpy"``): numeric columns without nulls in a single
    record batch become read-only NumPy views of the mapped payload; other columns are
    converted. ``"pyarrow"``: every column stays Arrow-backed (``pd.ArrowDtype``), no copy.
    ``"numpy_nullable"``: pandas' nullable extension dtypes.
    """
    if dtype_backend in (None, "numpy"):
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
