"""Property: random sequences of appends whose fields and types drift, made by several
processes at once, read back as the unified expectation: every record a column can take
is stored (once, in its process's order, its values widened where the column widened,
null where it lacks a field), and exactly the others are refused, each by the process
that appended it.

The expectation does not depend on how the processes interleave: the stream is first
given one record fixing the kind of the fields that can conflict (``a`` and ``c`` numbers,
``b`` text); the fields that appear later (``e`` text, ``f`` numbers) only ever get values
of their one kind, so whichever process adds them first, they take the same type."""

from __future__ import annotations

import multiprocessing as mp
import pickle
from pathlib import Path
from typing import Any

import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import allye_data_connector as adc
from allye_data_connector import errors

NUMBER = st.one_of(st.integers(-10**6, 10**6), st.floats(-1e6, 1e6, allow_nan=False).filter(lambda x: x != 0.0))
TEXT = st.text("xyz", max_size=3)
KIND = {"a": "num", "b": "text", "c": "num", "e": "text", "f": "num"}
GOOD = {"num": NUMBER, "text": TEXT}
BAD = {"num": TEXT, "text": st.integers(-5, 5)}
SEED = {"p": -1, "i": -1, "a": 0, "b": "seed", "c": 0.5}


@st.composite
def record(draw: Any) -> dict[str, Any]:
    rec: dict[str, Any] = {}
    for name, kind in KIND.items():
        choice = draw(st.sampled_from(["absent", "absent", "good", "good", "good", "null", "bad"]))
        if choice == "good":
            rec[name] = draw(GOOD[kind])
        elif choice == "null":
            rec[name] = None
        elif choice == "bad" and name in ("a", "b", "c"):
            rec[name] = draw(BAD[kind])
    return rec


def _is_bad(rec: dict[str, Any]) -> bool:
    return any(
        v is not None and (isinstance(v, str) if KIND[k] == "num" else not isinstance(v, str))
        for k, v in rec.items()
        if k in KIND
    )


def _appender(store: str, p: int, appends: list[list[dict[str, Any]]], out: str) -> None:
    refused: list[dict[str, Any]] = []
    for i, batch in enumerate(appends):
        try:
            adc.append("prop", batch, secret_dir=store, publish=False)
        except errors.SchemaConflictError as exc:
            assert exc.table == "prop"
            refused.extend(exc.refused)
    Path(out).write_bytes(pickle.dumps(refused))


def _numbered(p: int, appends: list[list[dict[str, Any]]]) -> list[list[dict[str, Any]]]:
    n = 0
    out = []
    for batch in appends:
        numbered = []
        for rec in batch:
            numbered.append({"p": p, "i": n, **rec})
            n += 1
        out.append(numbered)
    return out


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow])
@given(st.lists(st.lists(st.lists(record(), min_size=1, max_size=3), min_size=1, max_size=6), min_size=2,
                max_size=3))
def test_drifting_appends_from_several_processes_read_back_as_the_unified_expectation(tmp_path_factory, work):
    store = str(tmp_path_factory.mktemp("prop") / "store")
    adc.append("prop", SEED, secret_dir=store, publish=False)
    per_process = [_numbered(p, appends) for p, appends in enumerate(work)]
    ctx = mp.get_context("fork")
    procs = []
    for p, appends in enumerate(per_process):
        out = f"{store}.refused-{p}"
        procs.append((ctx.Process(target=_appender, args=(store, p, appends, out)), out))
    for proc, _ in procs:
        proc.start()
    try:
        for proc, _ in procs:
            proc.join(60)
            assert proc.exitcode == 0
    finally:
        for proc, _ in procs:  # a hung appender must not outlive the test
            if proc.exitcode is None:
                proc.kill()
                proc.join()
    # Refused: exactly the records holding a value of another kind, by their own process.
    for p, (_, out) in enumerate(procs):
        refused = pickle.loads(Path(out).read_bytes())
        expected = [r for batch in per_process[p] for r in batch if _is_bad(r)]
        assert refused == expected
    # Stored: the others, each once, in its process's order, as the unified schema holds them.
    kept = [SEED] + [r for appends in per_process for batch in appends for r in batch if not _is_bad(r)]
    table = adc.get_arrow("prop", secret_dir=store)
    floats = {k for k in ("a", "c", "f") if any(isinstance(r.get(k), float) for r in kept)}
    for k in KIND:
        if k not in table.column_names:
            assert all(r.get(k) is None for r in kept), k
            continue
        want = pa.float64() if k in floats else (pa.int64() if KIND[k] == "num" else pa.string())
        if all(r.get(k) is None for r in kept):
            continue  # only nulls: no type was ever fixed
        assert table.schema.field(k).type == want, (k, table.schema)
    rows = table.to_pylist()
    assert len(rows) == len(kept)
    got = {(r["p"], r["i"]): r for r in rows}
    assert len(got) == len(rows), "no row twice"
    for p in range(-1, len(per_process)):
        order = [r["i"] for r in rows if r["p"] == p]
        assert order == sorted(order), "one appender's rows in its order"
    for rec in kept:
        row = got[(rec["p"], rec["i"])]
        for k in KIND:
            v = rec.get(k)
            assert row.get(k) == (float(v) if v is not None and k in floats else v), (k, rec, row)
