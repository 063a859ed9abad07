"""The Python half of a stream's schema evolution (the rules are the core's, PROTOCOL.md
8.13 "Schema"): dict records made into one Arrow table without losing a field or changing
a value, the records whose values cannot share a column refused one by one; and, when
the core refuses a field of an append, the rows holding its values split off so that
the other rows are stored."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .. import _core
from ..errors import SchemaConflictError

_INFERENCE_ERRORS = (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, OverflowError, TypeError,
                     ValueError)


def widen(column: pa.DataType, value: pa.DataType) -> Optional[pa.DataType]:
    """The core's rule: the type a column of type ``column`` becomes to also hold values
    of type ``value``; None when no type holds both without changing a value."""
    if column == value:
        return column
    out = _core.widen_type(column, value)
    return None if out is None else pa.field(out).type


def conflict(name: str, value_type: Any, column_type: Any) -> dict[str, Any]:
    return {"field": name, "value_type": str(value_type), "column_type": str(column_type), "part": 0}


@dataclass
class Records:
    """Records as one table: ``table`` holds the kept records (None: none), ``index`` the
    position of each of its rows in the input, ``refused`` the positions refused with the
    conflict that refused each."""

    table: Optional[pa.Table]
    index: np.ndarray
    refused: dict[int, dict[str, Any]] = field(default_factory=dict)


def records_table(records: Sequence[Mapping[Any, Any]], schema: Optional[pa.Schema]) -> Records:
    """``records`` as one Arrow table: every field of every record (not only the first
    record's, as ``pa.Table.from_pylist`` would), each column's type inferred from its
    values and never forced onto them (pyarrow truncates ``6.5`` into an ``int64``
    column without a word). A column whose values are of kinds no type holds together
    (``10, "bad", 12``), or of a kind the stream's column of that name cannot take, is
    decided record by record: its type is the stream's (else the first value's), widened
    by each value that can widen it; a value that cannot refuses its record alone."""
    n = len(records)
    keys = list(dict.fromkeys(k for r in records for k in r))
    refused: dict[int, dict[str, Any]] = {}
    for k in keys:
        if not isinstance(k, str):
            for i, r in enumerate(records):
                if k in r and i not in refused:
                    refused[i] = conflict(repr(k), type(k).__name__, "a column name (str)")
            continue
        column = schema.field(k).type if schema is not None and k in schema.names else None
        values = [r.get(k) for r in records]
        try:
            inferred: Optional[pa.DataType] = pa.array(values, from_pandas=False).type
        except _INFERENCE_ERRORS:
            inferred = None
        if inferred is not None:
            if column is None or pa.types.is_null(inferred) or widen(column, inferred) is not None:
                continue
            for i, v in enumerate(values):
                if v is not None and i not in refused:
                    refused[i] = conflict(k, inferred, column)
            continue
        running = column
        for i, v in enumerate(values):
            if v is None or i in refused:
                continue
            try:
                t = pa.array([v], from_pandas=False).type
            except _INFERENCE_ERRORS:
                refused[i] = conflict(k, type(v).__name__, running if running is not None else "any Arrow type")
                continue
            if running is None or pa.types.is_null(running):
                running = t
                continue
            w = widen(running, t)
            if w is None:
                refused[i] = conflict(k, t, running)
            else:
                running = w
    kept = [i for i in range(n) if i not in refused]
    if not kept:
        return Records(None, np.zeros(0, dtype=np.int64), refused)
    arrays = []
    names = []
    for k in keys:
        if not isinstance(k, str):
            continue
        values = [records[i].get(k) for i in kept]
        try:
            arr = pa.array(values, from_pandas=False)
        except _INFERENCE_ERRORS:
            # Kinds pyarrow does not infer together but the rule widens (an int above
            # 2**63 with a negative one): built as the widened type.
            types = [pa.array([v], from_pandas=False).type for v in values if v is not None]
            target = types[0]
            for t in types[1:]:
                target = widen(target, t) or target
            arr = pa.array(values, type=target, from_pandas=False)
        names.append(k)
        arrays.append(arr)
    return Records(pa.Table.from_arrays(arrays, names=names), np.asarray(kept, dtype=np.int64), refused)


def top_level(name: str, table: pa.Table) -> Optional[str]:
    """The column of ``table`` a conflict's field is in (``outer.inner``: ``outer``)."""
    if name in table.column_names:
        return name
    best = None
    for c in table.column_names:
        if name.startswith(c + ".") and (best is None or len(c) > len(best)):
            best = c
    return best


def split(table: pa.Table, fields: Sequence[str]) -> tuple[pa.Table, np.ndarray]:
    """The rows of ``table`` that hold no value in the conflicting ``fields`` (those
    columns dropped: they read as null), and the mask of the rows that do (refused)."""
    columns = [c for c in (top_level(f, table) for f in fields) if c is not None]
    if not columns:
        return table.slice(0, 0), np.ones(table.num_rows, dtype=bool)
    holding = np.zeros(table.num_rows, dtype=bool)
    for c in dict.fromkeys(columns):
        holding |= pc.is_valid(table.column(c)).to_numpy(zero_copy_only=False)
    kept = table.filter(pa.array(~holding)).drop_columns(list(dict.fromkeys(columns)))
    return kept, holding


@dataclass
class Appended:
    """What :func:`append_parts` did: the chunk line (None: nothing stored), the
    conflicts met, and per part the refused rows' positions within the part as given."""

    line: Optional[_core.Chunk]
    conflicts: list[dict[str, Any]]
    refused: list[np.ndarray]


def append_parts(parts: list[pa.Table], table_name: str, *, load: Optional[Callable[[int], dict[str, Any]]] = None,
                 **kwargs: Any) -> Appended:
    """Appends the parts as one chunk (``_core.stream_append``); a part whose field the
    core refuses loses the rows holding values in it (they are refused, the rest is
    appended), as many times as the stream's schema changes under it. ``load(rows)``:
    the load state of the chunk line, given the rows it stores."""
    parts = list(parts)  # the caller's list keeps the parts as given (``refused`` indexes them)
    index = [np.arange(p.num_rows, dtype=np.int64) for p in parts]
    refused = [np.zeros(0, dtype=np.int64) for _ in parts]
    conflicts: list[dict[str, Any]] = []
    live = [i for i, p in enumerate(parts) if p.num_rows]
    for _attempt in range(8):
        if not live:
            return Appended(None, conflicts, refused)
        data: Any = [parts[i] for i in live] if len(live) > 1 else parts[live[0]]
        if load is not None:
            kwargs["load"] = load(sum(parts[i].num_rows for i in live))
        try:
            return Appended(_core.stream_append(data, table_name, **kwargs), conflicts, refused)
        except SchemaConflictError as exc:
            by_part: dict[int, list[str]] = {}
            stream = _core.stream_schema(table_name, secret_dir=kwargs.get("secret_dir"))
            schema = None if stream is None else pa.schema(stream)
            for met in exc.conflicts:
                i = live[int(met["part"])]
                name = str(met["field"])
                by_part.setdefault(i, []).append(name)
                if name in parts[i].column_names and schema is not None and name in schema.names:
                    # pyarrow's names of the types, as the rest of the package speaks them
                    conflicts.append(conflict(name, parts[i].schema.field(name).type, schema.field(name).type))
                else:
                    conflicts.append({**met, "part": 0})
            for i, fields in by_part.items():
                kept, holding = split(parts[i], fields)
                refused[i] = np.concatenate([refused[i], index[i][holding]])
                index[i] = index[i][~holding]
                parts[i] = kept
            live = [i for i in live if parts[i].num_rows]
    raise SchemaConflictError(f"stream {table_name!r}: its schema kept changing under this append; try again")


def describe(conflicts: Sequence[Mapping[str, Any]]) -> str:
    seen = dict.fromkeys((c["field"], c["value_type"], c["column_type"]) for c in conflicts)
    return "; ".join(f"field {f!r} has {v} values for a column of type {t}" for f, v, t in seen)


def refusal(table_name: str, conflicts: Sequence[Mapping[str, Any]], refused: Any, n_refused: int, n_stored: int,
            stored: Optional[_core.Chunk], what: str) -> SchemaConflictError:
    """The error of an append that stored some rows and refused others."""
    kept = f"the other {n_stored} were stored" if n_stored else "nothing was stored"
    exc = SchemaConflictError(
        f"stream {table_name!r}: {n_refused} {what} refused ({describe(conflicts)}): a column keeps its kind of "
        f"value (numbers widen, nothing else changes); {kept}. The refused ones are in this error's .refused: "
        f"convert their values, or append them to another stream")
    exc.table = table_name
    exc.conflicts = [{"field": f, "value_type": v, "column_type": t, "part": 0} for f, v, t in dict.fromkeys(
        (c["field"], c["value_type"], c["column_type"]) for c in conflicts)]
    exc.refused = refused
    exc.stored = stored
    return exc
