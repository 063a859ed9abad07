"""``adc`` commands on tables: ``ls``, ``show``, ``get`` (to a Parquet, CSV or Feather
file), ``send`` (from one), ``rm`` and ``watch`` (of a table's versions, or a stream's
chunks)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Optional

import click

from .. import _core, errors
from ..progress import Bar
from ._app import EXIT_NOT_FOUND, Ctx, common_options, main, not_found, tables_api
from ._output import emit_json, human_age, human_bytes, is_terminal, one_line, print_table, transport_name
from ._params import SIZE, TIMEOUT
from .arrays import ls_arrays
from .objects import ls_objects, show_object
from .remote import ls_remote

if TYPE_CHECKING:  # imported lazily at run time (pandas and pyarrow take ~0.5 s to import)
    import pyarrow as pa


@main.command("ls")
@click.option("--all", "-a", "all_states", is_flag=True,
              help="Also tables a get cannot read: latest state writing, error or removed, expired, or read once and freed.")
@click.option("--producer", help="Only this producer's tables (python, allye, ...).")
@click.option("--arrays", "arrays", is_flag=True, help="List shared arrays instead: shape, dtype, creator and openers.")
@click.option("--objects", "objects", is_flag=True, help="List named objects instead (of every namespace, or of --namespace).")
@click.option("--namespace", "namespace", help="List the named objects of this namespace (implies --objects).")
@click.option("--remote", "remote_peer", metavar="PEER", help="List the tables a peer serves (host:port or Flight URI; see adc serve).")
@click.option("--token", envvar="ALLYE_REMOTE_TOKEN", help="With --remote: the peer's bearer token (default: $ALLYE_REMOTE_TOKEN).")
@click.option("--token-file", type=click.Path(dir_okay=False, exists=True), help="With --remote: file holding the peer's token.")
@common_options
@click.pass_obj
def ls_cmd(obj: Ctx, all_states: bool, producer: Optional[str], arrays: bool, objects: bool,
           namespace: Optional[str], remote_peer: Optional[str], token: Optional[str], token_file: Optional[str]) -> None:
    """List tables with their state, shape, size and age (--arrays: shared arrays;
    --objects: named objects; --remote PEER: a peer's tables)."""
    if arrays:
        ls_arrays(obj)
        return
    if objects or namespace is not None:
        ls_objects(obj, namespace)
        return
    if remote_peer is not None:
        ls_remote(obj, remote_peer, token, token_file)
        return
    api = tables_api()
    rows = api.list_tables(secret_dir=obj.secret_dir, producer=producer, all_states=True, with_schema=False)
    if not all_states:  # what a get can read (the listing's rule, in the core)
        readable = {r["table_name"] for r in api.list_tables(secret_dir=obj.secret_dir, producer=producer)}
        rows = [r for r in rows if r["table_name"] in readable]
    if obj.json:
        emit_json(rows)
        return
    cells = []
    for r in rows:
        shape = r["shape"]
        state = r["state"] + (" (expired)" if r["expired"] else "")
        if r["error"]:
            state += f": {r['error']}"
        cells.append([r["table_name"], state, r["producer"] or "", f"{shape[0]:,}" if shape else "",
                      str(shape[1]) if shape else "", human_bytes(r["bytes"]), transport_name(r["transport"]),
                      human_age(r["age_sec"]), r["expires_at"] or ""])
    if not rows:
        click.echo(f"no tables in {api.store_path(obj.secret_dir)}", err=True)
        return
    print_table(("table", "state", "producer", "rows", "cols", "size", "transport", "age", "expires"), cells,
                 right=("rows", "cols", "size", "age"), title=str(api.store_path(obj.secret_dir)) if is_terminal() else None)
    held, count = _core.pool_held() if is_terminal() else (0, 0)
    if count:
        click.echo(f"shared-memory pool: {human_bytes(held)} in {count} pre-mapped segment(s) of this user's running "
                   "processes (given back when idle; `adc cleanup` frees a killed process's)", err=True)


@main.command("show")
@click.argument("name")
@click.option("--head", "head", default=5, show_default=True, type=click.IntRange(min=0), help="Rows to show.")
@click.option("--max-columns", default=20, show_default=True, type=click.IntRange(min=0),
              help="Columns listed in the schema and the rows (0: all; --json always lists all).")
@click.option("--producer", help="The version of this producer.")
@click.option("--object", "is_object", is_flag=True, help="Show a named object (of the default namespace, or of --namespace).")
@click.option("--namespace", "namespace", help="Show the named object NAME of this namespace (implies --object).")
@common_options
@click.pass_obj
def show_cmd(obj: Ctx, name: str, head: int, max_columns: int, producer: Optional[str], is_object: bool,
             namespace: Optional[str]) -> None:
    """Schema, shape, state and the first rows of a table (--object: a named object)."""
    if is_object or namespace is not None:
        show_object(obj, name, namespace, head)
        return
    api = tables_api()
    try:
        info = api.describe_table(name, secret_dir=obj.secret_dir, producer=producer)
    except errors.TableNotFoundError as exc:
        raise not_found(obj, name, exc) from None
    df = None
    if info["state"] not in ("removed",) and info["id"] and not info["expired"] and head > 0 and info["schema"] is not None:
        df = api.get_dataframe(name, secret_dir=obj.secret_dir, producer=producer, head=head)
        if df.ndim == 1:  # a Series was sent
            df = df.to_frame()
    if obj.json:
        out = dict(info)
        out["head"] = None if df is None else json.loads(df.to_json(orient="split", date_format="iso", default_handler=str))
        emit_json(out)
        return
    lines = [f"{name}  state: {info['state']}" + (f" ({info['error']})" if info["error"] else "")]
    for key in ("producer", "id", "created_at", "expires_at", "transport", "shape", "bytes", "num_batches", "index_columns"):
        if info.get(key) is not None:
            value = human_bytes(info[key]) + f" ({info[key]:,})" if key == "bytes" else info[key]
            lines.append(f"  {key:<13} {value}")
    if info.get("age_sec") is not None:
        lines.append(f"  {'age':<13} {human_age(info['age_sec'])}")
    if info.get("schema_error"):
        lines.append(f"  payload unreadable: {info['schema_error']}")
    for line in lines:
        click.echo(line)
    if info.get("schema_error") and info["id"] and not info["expired"]:
        # The version is listed but cannot be read: exit with the reader's error (its
        # class sets the exit code) rather than 0.
        from ..frames import Selection

        api.get_arrow(name, secret_dir=obj.secret_dir, producer=producer, selection=Selection(head=0))
    schema = info.get("schema") or []
    if schema:
        index = set(info.get("index_columns") or [])
        data_fields = [f for f in schema if f["name"] not in index]
        shown = schema if not max_columns or len(data_fields) <= max_columns else (
            [f for f in schema if f["name"] in index] + data_fields[:max_columns])
        click.echo("")
        print_table(("column", "arrow type"), [[f["name"], f["type"]] for f in shown],
                     title=f"schema: {len(data_fields):,} columns" + (f" and the index ({', '.join(sorted(index))})" if index else ""))
        if len(shown) < len(schema):
            _more_columns(name, len(schema) - len(shown), max_columns)
    if df is not None and len(df) == 0:
        click.echo("")
        click.echo("no rows")
    elif df is not None:
        click.echo("")
        wide = bool(max_columns) and df.shape[1] > max_columns
        click.echo(f"first {len(df):,} rows" + (f", first {max_columns} columns:" if wide else ":"))
        click.echo((df.iloc[:, :max_columns] if wide else df).to_string())


def _more_columns(name: str, more: int, max_columns: int) -> None:
    click.echo(f"... and {more:,} more columns (adc show {name} --max-columns 0 lists all; --json too)")


# ---- get -------------------------------------------------------------------------------

_FORMATS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv", ".feather": "feather", ".arrow": "feather", ".ipc": "feather"}


def _format_of(path: Path, fmt: Optional[str], param: str) -> str:
    if fmt:
        return fmt
    found = _FORMATS.get(path.suffix.lower())
    if found is None:
        raise click.BadParameter(f"cannot tell the format of {path.name!r}: name it .parquet, .csv or .feather, or pass --format",
                                 param_hint=param)
    return found


def _write_table(table: "pa.Table", output: Path, fmt: str) -> None:
    """Writes the Arrow table itself (its schema and pandas metadata as sent), so pandas,
    pyarrow and polars read back the frame that was sent, dtypes included. CSV goes
    through pandas (text has no types; the index is written unless it is the default
    0..n-1). Written aside and renamed, so a failed write leaves no partial file."""
    tmp = output.with_name(f".{output.name}.adc-tmp")
    try:
        if fmt == "parquet":
            import pyarrow.parquet as pq

            pq.write_table(table, tmp)
        elif fmt == "feather":
            import pyarrow.feather as feather

            feather.write_feather(table, tmp)
        else:
            import pandas as pd

            from ..frames import arrow_to_dataframe

            df = arrow_to_dataframe(table)
            plain = isinstance(df.index, pd.RangeIndex) and df.index.start == 0 and df.index.step == 1 and df.index.name is None
            df.to_csv(tmp, index=not plain)
        os.replace(tmp, output)
    finally:
        if tmp.exists():
            tmp.unlink()


@main.command("get")
@click.argument("name")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True, help="Output file: .parquet, .csv or .feather.")
@click.option("--format", "fmt", type=click.Choice(["parquet", "csv", "feather"]), help="Output format (default: from the file name).")
@click.option("--columns", help="Comma-separated columns to keep.")
@click.option("--head", type=click.IntRange(min=0), help="Only the first N rows.")
@click.option("--rows", help="Row range START:STOP (Python slicing).")
@click.option("--start", help="Time range start (inclusive) on the DatetimeIndex or --time-column.")
@click.option("--end", help="Time range end (exclusive).")
@click.option("--time-column", help="Datetime column for --start/--end.")
@click.option("--producer", help="The version of this producer.")
@click.option("--wait", is_flag=True, help="Wait for a first version to appear.")
@click.option("--timeout", "timeout_sec", type=TIMEOUT, default=30.0, show_default=True, help="Seconds --wait waits (exit 5 after).")
@common_options
@click.pass_obj
def get_cmd(obj: Ctx, name: str, output: Path, fmt: Optional[str], columns: Optional[str], head: Optional[int],
            rows: Optional[str], start: Optional[str], end: Optional[str], time_column: Optional[str],
            producer: Optional[str], wait: bool, timeout_sec: float) -> None:
    """Write a table (or part of it) to a Parquet, CSV or Feather file that pandas,
    pyarrow and polars read back as the frame that was sent."""
    fmt = _format_of(output, fmt, "'-o' / '--output'")
    parent = output.parent
    if not parent.is_dir():
        what = "is not a directory" if parent.exists() else "does not exist"
        raise click.BadParameter(f"the directory {str(parent)!r} {what}; create it first (mkdir -p {parent})",
                                 param_hint="'-o' / '--output'")
    row_range = None
    if rows:
        try:
            a, b = rows.split(":")
            row_range = (int(a) if a.strip() else None, int(b) if b.strip() else None)
        except ValueError:
            raise click.BadParameter(f"{rows!r} is not START:STOP", param_hint="--rows") from None
    api = tables_api()
    from .. import frames
    from .._wait import wait_until

    selection = frames.Selection(columns=[c.strip() for c in columns.split(",")] if columns else None, head=head,
                                  rows=row_range, start=start, end=end, time_column=time_column)

    def attempt() -> Any:
        return api.get_arrow(name, secret_dir=obj.secret_dir, producer=producer, selection=selection)

    try:
        if wait:
            table = wait_until(attempt, secret_dir=str(api.store_path(obj.secret_dir)), timeout_sec=timeout_sec)
        else:
            table = attempt()
    except errors.TableNotFoundError as exc:
        if wait:
            raise errors.WaitTimeoutError(
                f"no version of table {name!r} appeared within the timeout of {timeout_sec:g} s (--timeout)"
            ) from exc
        raise not_found(obj, name, exc) from None
    _write_table(table, output, fmt)
    n_index = len(frames.index_fields(table))
    result = {"table_name": name, "output": str(output), "format": fmt, "rows": table.num_rows,
              "columns": table.num_columns - n_index}
    if obj.json:
        emit_json(result)
    else:
        click.echo(f"wrote {result['rows']:,} rows x {result['columns']} columns of {name!r} to {output} ({fmt})")


# ---- send ------------------------------------------------------------------------------


def _read_input(path: Path, fmt: str, progress: bool) -> Any:
    """Reads a CSV, Parquet or Feather file into a DataFrame, with a progress bar
    (bytes read) for files larger than 8 MiB. A file that is not what its name says
    raises :class:`~..errors.InvalidInputError` (one line, no traceback)."""
    import pyarrow as pa

    try:
        return _read_input_unchecked(path, fmt, progress)
    except (ValueError, OSError, pa.ArrowException) as exc:
        raise errors.InvalidInputError(
            f"cannot read {str(path)!r} as {fmt}: {one_line(str(exc)) or type(exc).__name__}; "
            f"check the file, or pass --format if it is not {fmt}"
        ) from exc


def _read_input_unchecked(path: Path, fmt: str, progress: bool) -> Any:
    import pandas as pd
    import pyarrow as pa

    size = path.stat().st_size
    show = progress and size > 8 * 1024 * 1024
    if fmt == "feather":
        import pyarrow.feather as feather

        return feather.read_table(path).to_pandas()
    if not show:
        if fmt == "csv":
            return pd.read_csv(path)
        import pyarrow.parquet as pq

        return pq.read_table(path).to_pandas()
    with Bar(f"reading {path.name}", "bytes", total=size) as bar:
        if fmt == "csv":
            import pyarrow.csv as pcsv

            with open(path, "rb") as fh:

                class _Counting:
                    def read(self, n: int = -1) -> bytes:
                        data = fh.read(n)
                        bar.advance(len(data))
                        return data

                    def readable(self) -> bool:
                        return True

                    closed = False

                reader = pcsv.open_csv(pa.PythonFile(_Counting(), mode="r"))
                table = reader.read_all()
            return table.to_pandas()
        import pyarrow.parquet as pq

        pf = pq.ParquetFile(path)
        parts = []
        for i in range(pf.num_row_groups):
            parts.append(pf.read_row_group(i))
            bar.update(int(size * (i + 1) / max(1, pf.num_row_groups)))
        return pa.concat_tables(parts).to_pandas() if parts else pf.read().to_pandas()


@main.command("send")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--name", help="Table name (default: the file name without extension).")
@click.option("--format", "fmt", type=click.Choice(["parquet", "csv", "feather"]), help="Input format (default: from the file name).")
@click.option("--transport", type=click.Choice(_core.TRANSPORTS), default="auto", show_default=True)
@click.option("--max-shm-bytes", type=SIZE, help="Largest size 'auto' sends through shared memory, e.g. 128MiB (default: settings).")
@click.option("--ttl", "ttl_sec", type=click.IntRange(min=0), help="Seconds until the version expires (default: settings).")
@click.option("--no-notify", is_flag=True, help="Do not notify a running Allye canvas.")
@click.option("--keep-after-read", is_flag=True,
              help="Keep the table readable after a full read (shm_unlink_on_read=False); by default gc frees a "
                   "shared-memory table once it has been read in full.")
@click.option("--progress/--no-progress", default=True, help="Progress bar while reading big files (on stderr).")
@common_options
@click.pass_obj
def send_cmd(obj: Ctx, file: Path, name: Optional[str], fmt: Optional[str], transport: str, max_shm_bytes: Optional[int],
             ttl_sec: Optional[int], no_notify: bool, keep_after_read: bool, progress: bool) -> None:
    """Send a CSV, Parquet or Feather file as a table."""
    fmt = _format_of(file, fmt, "FILE")
    api = tables_api()
    show = progress and not obj.json and sys.stderr.isatty()
    df = _read_input(file, fmt, show)
    kwargs: dict[str, Any] = dict(secret_dir=obj.secret_dir, transport=transport, ttl_sec=ttl_sec,
                                  max_shm_bytes=max_shm_bytes, notify_canvas=False if no_notify else None,
                                  shm_unlink_on_read=not keep_after_read)
    if show and len(df) > 1_000_000:
        # Ctrl-C during the conversion cancels the send before anything is written.
        with Bar(f"sending {name or file.stem} (rows)", "rows", total=len(df)) as bar:
            table_name = api.send_dataframe(df, name or file.stem, progress=lambda d, n: bar.update(d), **kwargs)
    else:
        table_name = api.send_dataframe(df, name or file.stem, **kwargs)
    info = api.describe_table(table_name, secret_dir=obj.secret_dir)
    if obj.json:
        info.pop("schema", None)
        emit_json(info)
    else:
        click.echo(f"sent {table_name!r}: {df.shape[0]:,} rows x {df.shape[1]} columns via {info['transport']} "
                   f"({human_bytes(info['bytes'])})")


@main.command("rm")
@click.argument("names", nargs=-1, required=True)
@common_options
@click.pass_obj
def rm_cmd(obj: Ctx, names: tuple[str, ...]) -> None:
    """Remove tables: mark them removed and delete their payloads in this store. Goes on
    past a name that does not exist (exit 3 at the end if one did not)."""
    api = tables_api()
    reports: list[dict[str, Any]] = []
    missing = 0
    for n in names:
        try:
            r = api.remove_table(n, secret_dir=obj.secret_dir)
        except errors.TableNotFoundError as exc:
            missing += 1
            err = not_found(obj, n, exc)
            reports.append({"table_name": n, "error": str(err)})
            click.echo(f"error: {one_line(str(err))}", err=True)
            continue
        reports.append(r)
        if not obj.json:
            click.echo(f"removed {r['table_name']!r} ({len(r['deleted'])} payloads deleted)")
    if obj.json:
        emit_json(reports)
    if missing:
        sys.exit(EXIT_NOT_FOUND)


@main.command("watch")
@click.argument("name", required=False)
@click.option("--timeout", "timeout_sec", type=TIMEOUT, help="Stop after this many seconds without a new version (exit 5).")
@click.option("--count", type=click.IntRange(min=1), help="Stop after this many versions (exit 0).")
@click.option("--errors", "include_errors", is_flag=True, help="Also report failed sends and removals.")
@click.option("--stream", "as_stream", is_flag=True,
              help="Follow NAME as a stream (its new chunks) even before it exists; a stream NAME is followed anyway.")
@common_options
@click.pass_obj
def watch_cmd(obj: Ctx, name: Optional[str], timeout_sec: Optional[float], count: Optional[int], include_errors: bool,
              as_stream: bool) -> None:
    """Print each new version of NAME (or of any table) as it lands; one JSON line each with --json.
    A streaming table NAME: each new chunk (its rows) as it is appended."""
    if name is not None:
        from .. import streams

        if as_stream or streams.is_stream(name, secret_dir=obj.secret_dir):
            _watch_stream(obj, name, timeout_sec, count)
            return
    api = tables_api()
    versions = api.watch(name, secret_dir=obj.secret_dir, timeout_sec=timeout_sec, include_errors=include_errors)
    click.echo(f"watching {name or 'all tables'} in {api.store_path(obj.secret_dir)} (Ctrl-C to stop)", err=True)

    def show(rec: dict[str, Any]) -> None:
        if obj.json:
            click.echo(json.dumps(rec, ensure_ascii=False, default=str))
        else:
            shape = rec["shape"] or ("?", "?")
            what = f"{shape[0]:,} x {shape[1]}" if rec["status"] == "ready" else f"error: {rec['metadata'].get('error')}"
            click.echo(f"{rec['created_at']}  {rec['table_name']}  {rec['status']}  {what}  {rec['producer']}  {rec['id']}")

    _print_each(versions, show, count, timeout_sec, f"no new version of {name or 'any table'}")


def _print_each(items: Iterable[Any], show: Callable[[Any], None], count: Optional[int], timeout_sec: Optional[float],
                nothing: str) -> None:
    """``adc watch``'s loop: shows each item as it comes (stdout flushed after each),
    stops after ``count`` items; items that end (``timeout_sec`` without news) are
    :class:`~..errors.WaitTimeoutError`, whose message starts with ``nothing``."""
    seen = 0
    for item in items:
        show(item)
        sys.stdout.flush()
        seen += 1
        if count is not None and seen >= count:
            return
    if timeout_sec is not None:
        raise errors.WaitTimeoutError(
            f"{nothing} within the timeout of {timeout_sec:g} s (--timeout)" + (f"; saw {seen}" if seen else "")
        )


def _watch_stream(obj: Ctx, name: str, timeout_sec: Optional[float], count: Optional[int]) -> None:
    """``adc watch`` of a stream: each new chunk as it lands (text: a summary and its
    first rows; --json: one line per chunk with its records)."""
    from .. import streams

    api = tables_api()
    chunks = streams.follow(name, secret_dir=obj.secret_dir, timeout_sec=timeout_sec)
    click.echo(f"following stream {name} in {api.store_path(obj.secret_dir)} (Ctrl-C to stop)", err=True)

    def show(chunk: "pa.Table") -> None:
        if obj.json:
            click.echo(json.dumps({"table_name": name, "rows": chunk.num_rows, "records": chunk.to_pylist()},
                                  ensure_ascii=False, default=str))
        else:
            click.echo(f"{name}  +{chunk.num_rows:,} rows")
            click.echo(chunk.slice(0, 5).to_pandas().to_string(index=False))
            if chunk.num_rows > 5:
                click.echo(f"... ({chunk.num_rows - 5:,} more)")

    _print_each(chunks, show, count, timeout_sec, f"no new chunk of stream {name}")
