"""``adc ls --arrays``: shared arrays."""

from __future__ import annotations

import click

from ._app import Ctx, tables_api
from ._output import emit_json, human_bytes, is_terminal, print_table


def ls_arrays(obj: Ctx) -> None:
    from ..arrays import list_arrays

    rows = list_arrays(secret_dir=obj.secret_dir)
    if obj.json:
        emit_json(rows)
        return
    store = tables_api().store_path(obj.secret_dir)
    if not rows:
        click.echo(f"no shared arrays in {store}", err=True)
        return
    cells = []
    for r in rows:
        creator = "" if r["creator_pid"] is None else f"{r['creator_pid']}" + ("" if r["creator_alive"] is not False else " (dead)")
        cells.append([r["name"], r["state"], r["dtype"], str(tuple(r["shape"])), human_bytes(r["nbytes"]), creator,
                      ", ".join(str(p) for p in r["openers"]), r["segment"]])
    print_table(("array", "state", "dtype", "shape", "size", "creator", "openers", "segment"), cells,
                right=("size",), title=f"{store} (shared arrays)" if is_terminal() else None,
                shrink=("segment", "array", "openers", "shape", "state", "dtype"))
