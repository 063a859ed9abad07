"""``adc`` commands on data sources: ``load`` (a file or a query into a table) and
``sources`` (the available ones)."""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any, Iterable, Optional

import click

from ._app import Ctx, common_options, main
from ._output import emit_json, print_table


def _params(pairs: Iterable[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs:
        if "=" not in pair:
            raise click.BadParameter(f"{pair!r} is not K=V (e.g. --param delimiter=';')", param_hint="--param")
        k, v = pair.split("=", 1)
        out[k.strip()] = v
    return out


@main.command("load")
@click.argument("source_uri")
@click.option("--table", "table", help="Table to load into (default: the file name without extension).")
@click.option("--append", is_flag=True, help="Append to the table as a stream, chunk by chunk, resuming after a "
              "killed or cancelled append (with --cursor: only rows past the last loaded value).")
@click.option("--param", "params", multiple=True, metavar="K=V", help="A source parameter (see `adc sources`); repeatable.")
@click.option("--query", help="SQL query of a database source (same as --param query=...).")
@click.option("--cursor", help="Increasing column of incremental loads (same as --param cursor=...).")
@click.option("--source", "kind", help="The source by name (default: from the URI's scheme or the file's suffix).")
@click.option("--progress/--no-progress", default=True, help="Progress bar on stderr (in a terminal).")
@common_options
@click.pass_obj
def load_cmd(obj: Ctx, source_uri: str, table: Optional[str], append: bool, params: tuple[str, ...],
             query: Optional[str], cursor: Optional[str], kind: Optional[str], progress: bool) -> None:
    """Load a file or a database query into a table: written as it is read, published
    at the end; Ctrl-C cancels and leaves the previous version intact (with --append:
    the chunks appended so far, from which the next --append resumes). Examples:
    `adc load data.csv`, `adc load 'postgresql://u@host/db' --table t --query 'select ...'`."""
    from ..sources import load, redact_uri, resolve

    values: dict[str, Any] = _params(params)
    if query is not None:
        values["query"] = query
    if cursor is not None:
        values["cursor"] = cursor
    if table is None:
        if "://" in source_uri:
            raise click.UsageError("pass --table NAME: the table to load a database source into")
        table = Path(source_uri.rstrip("/")).name.split(".")[0]
    if kind is None and "://" not in source_uri and not Path(source_uri).exists():
        # Not found (3), as `adc send` of a missing file, before any source is looked for.
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), source_uri)
    src = resolve(source_uri, values, kind=kind)
    out = load(src, table, secret_dir=obj.secret_dir, mode="append" if append else "replace",
               progress=progress and not obj.json)
    if obj.json:
        emit_json({**out, "source": src.describe()})
    else:
        new = f" ({out['rows_loaded']:,} new)" if append else ""
        click.echo(f"loaded {table!r}: {out['rows']:,} rows{new} from {redact_uri(src.describe())}")


@main.command("sources")
@common_options
@click.pass_obj
def sources_cmd(obj: Ctx) -> None:
    """List the available data sources (built-in and installed through the entry point
    group allye_data_connector.sources) and their parameters."""
    from ..sources import describe_sources

    listed = describe_sources()
    if obj.json:
        emit_json(listed)
        return
    rows = []
    for s in listed:
        params = ", ".join(p["name"] + (" (secret)" if p.get("secret") else "") for p in s["params"])
        rows.append([s["name"], s["title"], params])
    print_table(("source", "title", "params"), rows, shrink=("title", "params"), fold=True)
