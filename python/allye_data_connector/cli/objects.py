"""``adc ls --objects`` and ``adc show --object``: named objects."""

from __future__ import annotations

import difflib
from typing import Optional

import click

from .. import _core, errors
from ._app import Ctx, tables_api
from ._output import emit_json, human_bytes, human_when, is_terminal, one_line, print_table, safe, transport_name


def ls_objects(obj: Ctx, namespace: Optional[str]) -> None:
    from ..named_objects import namespaces, objects

    spaces = [namespace] if namespace is not None else namespaces(obj.secret_dir)
    rows = [info for ns in spaces for info in objects(ns, obj.secret_dir).list()]
    if obj.json:
        emit_json(rows)
        return
    store = tables_api().store_path(obj.secret_dir)
    if not rows:
        click.echo(f"no named objects in {store}" + (f" (namespace {namespace!r})" if namespace else ""), err=True)
        return
    terminal = is_terminal()
    cells = []
    for r in rows:
        shape = r.get("shape")
        what = r.get("dtype") or r.get("type") or ""
        cells.append([r["namespace"], r["name"], r["kind"] or "", what, "" if not shape else str(tuple(shape)),
                      human_bytes(r["bytes"]), transport_name(r["transport"]),
                      # A terminal shows how long ago; piped, the time itself (whole, for scripts).
                      human_when(r["created_at"]) if terminal else r["created_at"] or "",
                      one_line(r["description"] or "")])
    print_table(("namespace", "object", "kind", "type", "shape", "size", "transport", "created", "description"), cells,
                right=("size",), title=f"{store} (named objects)" if terminal else None,
                shrink=("description", "object", "namespace", "type", "shape", "kind", "transport"))


def show_object(obj: Ctx, name: str, namespace: Optional[str], head: int) -> None:
    from ..named_objects import objects

    objs = objects(namespace if namespace is not None else _core.DEFAULT_NAMESPACE, obj.secret_dir)
    try:
        info = objs.info(name)
    except errors.TableNotFoundError as exc:
        known = list(objs)
        close = difflib.get_close_matches(name, known, n=3, cutoff=0.6)
        hint = ("; did you mean " + " or ".join(repr(c) for c in close) + "?") if close else ""
        raise type(exc)(f"no object {name!r} in namespace {objs.namespace!r}{hint}; `adc ls --objects` lists them") from None
    schema = None
    if info["kind"] not in ("numpy", "pickle"):
        schema = objs.schema(name)
    if obj.json:
        out = dict(info)
        out["schema"] = None if schema is None else [{"name": f.name, "type": str(f.type)} for f in schema]
        emit_json(out)
        return
    click.echo(safe(f"{name}  namespace: {info['namespace']}  kind: {info['kind']}"))
    for key in ("type", "dtype", "shape", "order", "buffers", "bytes", "transport", "id", "created_at", "expires_at",
                "description", "writer"):
        if info.get(key) is not None:
            value = human_bytes(info[key]) + f" ({info[key]:,})" if key == "bytes" else info[key]
            click.echo(f"  {key:<13} {one_line(str(value), 300)}")
    if schema is not None:
        click.echo("")
        print_table(("column", "arrow type"), [[f.name, str(f.type)] for f in schema], title="schema",
                    shrink=("column", "arrow type"))
    if head > 0 and info["kind"] == "numpy":
        value = objs[name]
        click.echo("")
        click.echo(repr(value.reshape(-1)[:head]) if value.ndim else repr(value))
