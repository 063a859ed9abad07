"""``adc``: the command line of allye_data_connector (click for parsing, rich for tables
and progress).

Exit codes scripts can trust: 0 success; 1 any other library error; 2 bad usage;
3 no such table (or expired, or removed); 4 payload missing or corrupt; 5 timed out
(``watch``/``get --wait``); 130 interrupted. Errors print one line without a traceback
unless ``--debug``. ``--json`` prints machine-readable output on stdout.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any, Optional

import click

from . import api, errors
from . import settings as _settings

EXIT_ERROR, EXIT_USAGE, EXIT_NOT_FOUND, EXIT_PAYLOAD, EXIT_TIMEOUT, EXIT_INTERRUPTED = 1, 2, 3, 4, 5, 130


class _Ctx:
    def __init__(self, secret_dir: Optional[str], as_json: bool, debug: bool) -> None:
        self.secret_dir = secret_dir
        self.json = as_json
        self.debug = debug


def _console(stderr: bool = False) -> Any:
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=True)


def _emit_json(obj: Any) -> None:
    click.echo(json.dumps(obj, ensure_ascii=False, default=str, indent=2))


def _human_bytes(n: Optional[int]) -> str:
    if n is None:
        return ""
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return str(n)


def _human_age(sec: Optional[float]) -> str:
    if sec is None:
        return ""
    sec = max(0.0, sec)
    for div, unit in ((86400, "d"), (3600, "h"), (60, "m")):
        if sec >= div:
            return f"{sec / div:.1f}{unit}"
    return f"{sec:.0f}s"


class AdcGroup(click.Group):
    """Maps library errors onto exit codes and one-line messages."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            ctx.exit(EXIT_INTERRUPTED)
        except errors.AllyeError as exc:
            obj = ctx.find_object(_Ctx)
            if obj is not None and obj.debug:
                raise
            click.echo(f"error: {exc}", err=True)
            if isinstance(exc, errors.TableNotFoundError):
                code = EXIT_NOT_FOUND
            elif isinstance(exc, errors.PayloadError):
                code = EXIT_PAYLOAD
            else:
                code = EXIT_ERROR
            ctx.exit(code)


@click.group(cls=AdcGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--secret-dir", "-d", envvar="ALLYE_SECRET_DIR", type=click.Path(file_okay=False), help="Store directory (default: $ALLYE_SECRET_DIR, else ~/.allye_secrets).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable JSON on stdout.")
@click.option("--debug", is_flag=True, help="Debug logging, and tracebacks on errors.")
@click.version_option(package_name="allye_data_connector", prog_name="adc")
@click.pass_context
def main(ctx: click.Context, secret_dir: Optional[str], as_json: bool, debug: bool) -> None:
    """Move pandas DataFrames between processes: list, inspect, get, send, remove and
    watch the tables of an Allye store."""
    logging.basicConfig(level=logging.DEBUG if debug else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    ctx.obj = _Ctx(secret_dir, as_json, debug)


@main.command("ls")
@click.option("--all", "-a", "all_states", is_flag=True, help="Also tables whose latest state is writing, error or removed.")
@click.option("--producer", help="Only this producer's tables (python, allye, ...).")
@click.option("--arrays", "arrays", is_flag=True, help="List shared arrays instead: shape, dtype, creator and openers.")
@click.pass_obj
def ls_cmd(obj: _Ctx, all_states: bool, producer: Optional[str], arrays: bool) -> None:
    """List tables with their state, shape, size and age (--arrays: shared arrays)."""
    if arrays:
        _ls_arrays(obj)
        return
    rows = api.list_tables(secret_dir=obj.secret_dir, producer=producer, all_states=True, with_schema=False)
    if not all_states:
        rows = [r for r in rows if r["id"] is not None]  # a current version exists
    if obj.json:
        _emit_json(rows)
        return
    from rich.table import Table

    t = Table(title=str(api.store_path(obj.secret_dir)), title_justify="left")
    for col, justify in (("table", "left"), ("state", "left"), ("producer", "left"), ("rows", "right"), ("cols", "right"),
                         ("size", "right"), ("transport", "left"), ("age", "right"), ("expires", "left")):
        t.add_column(col, justify=justify)  # type: ignore[arg-type]
    for r in rows:
        shape = r["shape"] or ("", "")
        state = r["state"] + (" (expired)" if r["expired"] else "")
        if r["error"]:
            state += f": {r['error']}"
        t.add_row(r["table_name"], state, r["producer"] or "", f"{shape[0]:,}" if shape[0] != "" else "", str(shape[1]),
                  _human_bytes(r["bytes"]), (r["transport"] or "").replace("_arrow_ipc_v1", "").replace("_arrow_stream_v1", ""),
                  _human_age(r["age_sec"]), r["expires_at"] or "")
    _console().print(t)
    if not rows:
        click.echo("no tables", err=True)


def _ls_arrays(obj: _Ctx) -> None:
    from .shared_array import list_arrays

    rows = list_arrays(secret_dir=obj.secret_dir)
    if obj.json:
        _emit_json(rows)
        return
    from rich.table import Table

    t = Table(title=f"{api.store_path(obj.secret_dir)} (shared arrays)", title_justify="left")
    for col, justify in (("array", "left"), ("state", "left"), ("dtype", "left"), ("shape", "left"), ("size", "right"),
                         ("creator", "left"), ("openers", "left"), ("segment", "left")):
        t.add_column(col, justify=justify)  # type: ignore[arg-type]
    for r in rows:
        creator = "" if r["creator_pid"] is None else f"{r['creator_pid']}" + ("" if r["creator_alive"] is not False else " (dead)")
        t.add_row(r["name"], r["state"], r["dtype"], str(tuple(r["shape"])), _human_bytes(r["nbytes"]), creator,
                  ", ".join(str(p) for p in r["openers"]), r["segment"])
    _console().print(t)
    if not rows:
        click.echo("no shared arrays", err=True)


@main.command("show")
@click.argument("name")
@click.option("--head", "head", default=5, show_default=True, help="Rows to show.")
@click.option("--producer", help="The version of this producer.")
@click.pass_obj
def show_cmd(obj: _Ctx, name: str, head: int, producer: Optional[str]) -> None:
    """Schema, shape, state and the first rows of a table."""
    info = api.describe_table(name, secret_dir=obj.secret_dir, producer=producer)
    df = None
    if info["state"] not in ("removed",) and info["id"] and not info["expired"] and head > 0 and info["schema"] is not None:
        df = api.get_dataframe(name, secret_dir=obj.secret_dir, producer=producer, head=head)
    if obj.json:
        out = dict(info)
        out["head"] = None if df is None else json.loads(df.to_json(orient="split", date_format="iso", default_handler=str))
        _emit_json(out)
        return
    con = _console()
    con.print(f"[bold]{name}[/bold]  state: {info['state']}" + (f" ({info['error']})" if info["error"] else ""))
    for key in ("producer", "id", "created_at", "expires_at", "transport", "shape", "bytes", "num_batches", "index_columns"):
        if info.get(key) is not None:
            value = _human_bytes(info[key]) + f" ({info[key]:,})" if key == "bytes" else info[key]
            con.print(f"  {key:<13} {value}")
    if info.get("age_sec") is not None:
        con.print(f"  {'age':<13} {_human_age(info['age_sec'])}")
    if info.get("schema_error"):
        con.print(f"  [red]payload unreadable:[/red] {info['schema_error']}")
    if info.get("schema"):
        from rich.table import Table

        t = Table("column", "arrow type", title="schema", title_justify="left")
        for f in info["schema"]:
            t.add_row(f["name"], f["type"])
        con.print(t)
    if df is not None:
        con.print(df.to_string())


_FORMATS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv", ".feather": "feather", ".arrow": "feather", ".ipc": "feather"}


def _format_of(path: Path, fmt: Optional[str]) -> str:
    if fmt:
        return fmt
    found = _FORMATS.get(path.suffix.lower())
    if found is None:
        raise click.UsageError(f"cannot tell the format of {path.name!r}: use .parquet, .csv or .feather, or --format")
    return found


@main.command("get")
@click.argument("name")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True, help="Output file: .parquet, .csv or .feather.")
@click.option("--format", "fmt", type=click.Choice(["parquet", "csv", "feather"]), help="Output format (default: from the file name).")
@click.option("--columns", help="Comma-separated columns to keep.")
@click.option("--head", type=int, help="Only the first N rows.")
@click.option("--rows", help="Row range START:STOP (Python slicing).")
@click.option("--start", help="Time range start (inclusive) on the DatetimeIndex or --time-column.")
@click.option("--end", help="Time range end (exclusive).")
@click.option("--time-column", help="Datetime column for --start/--end.")
@click.option("--producer", help="The version of this producer.")
@click.option("--wait", is_flag=True, help="Wait for a first version to appear.")
@click.option("--timeout", "timeout_sec", type=float, default=30.0, show_default=True, help="Seconds --wait waits.")
@click.pass_obj
def get_cmd(obj: _Ctx, name: str, output: Path, fmt: Optional[str], columns: Optional[str], head: Optional[int],
            rows: Optional[str], start: Optional[str], end: Optional[str], time_column: Optional[str],
            producer: Optional[str], wait: bool, timeout_sec: float) -> None:
    """Write a table (or part of it) to a Parquet, CSV or Feather file."""
    import pyarrow as pa

    fmt = _format_of(output, fmt)
    row_range = None
    if rows:
        try:
            a, b = rows.split(":")
            row_range = (int(a) if a.strip() else None, int(b) if b.strip() else None)
        except ValueError:
            raise click.BadParameter(f"{rows!r} is not START:STOP", param_hint="--rows") from None
    try:
        df = api.get_dataframe(
            name, secret_dir=obj.secret_dir, producer=producer, wait=wait, timeout_sec=timeout_sec,
            columns=[c.strip() for c in columns.split(",")] if columns else None, head=head, rows=row_range,
            start=start, end=end, time_column=time_column, dtype_backend="pyarrow" if fmt != "csv" else None,
        )
    except errors.TableNotFoundError:
        if wait:
            click.echo(f"error: no version of {name!r} appeared within {timeout_sec:g} s", err=True)
            sys.exit(EXIT_TIMEOUT)
        raise
    output.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "csv":
        df.to_csv(output)
    else:
        table = pa.Table.from_pandas(df, preserve_index=None)
        if fmt == "parquet":
            import pyarrow.parquet as pq

            pq.write_table(table, output)
        else:
            import pyarrow.feather as feather

            feather.write_feather(table, output)
    result = {"table_name": name, "output": str(output), "format": fmt, "rows": int(df.shape[0]), "columns": int(df.shape[1])}
    if obj.json:
        _emit_json(result)
    else:
        click.echo(f"wrote {df.shape[0]:,} rows x {df.shape[1]} columns of {name!r} to {output} ({fmt})")


def _read_input(path: Path, fmt: str, progress: bool) -> Any:
    """Reads a CSV, Parquet or Feather file into a DataFrame, with a progress bar
    (bytes read) for files larger than 8 MiB."""
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
    from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn, TransferSpeedColumn

    with Progress("[progress.description]{task.description}", BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                  TimeRemainingColumn(), console=_console(stderr=True), transient=True) as bar:
        task = bar.add_task(f"reading {path.name}", total=size)
        if fmt == "csv":
            import pyarrow.csv as pcsv

            with open(path, "rb") as fh:

                class _Counting:
                    def read(self, n: int = -1) -> bytes:
                        data = fh.read(n)
                        bar.update(task, advance=len(data))
                        return data

                    def readable(self) -> bool:
                        return True

                    closed = False

                reader = pcsv.open_csv(pa.PythonFile(_Counting(), mode="r"))  # type: ignore[arg-type]
                table = reader.read_all()
            return table.to_pandas()
        import pyarrow.parquet as pq

        pf = pq.ParquetFile(path)
        parts = []
        for i in range(pf.num_row_groups):
            parts.append(pf.read_row_group(i))
            bar.update(task, completed=int(size * (i + 1) / max(1, pf.num_row_groups)))
        return pa.concat_tables(parts).to_pandas() if parts else pf.read().to_pandas()


@main.command("send")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--name", help="Table name (default: the file name without extension).")
@click.option("--format", "fmt", type=click.Choice(["parquet", "csv", "feather"]), help="Input format (default: from the file name).")
@click.option("--transport", type=click.Choice(["auto", "shm", "file"]), default="auto", show_default=True)
@click.option("--ttl", "ttl_sec", type=int, help="Seconds until the version expires (default: settings).")
@click.option("--no-notify", is_flag=True, help="Do not notify a running Allye canvas.")
@click.option("--progress/--no-progress", default=True, help="Progress bar while reading big files (on stderr).")
@click.pass_obj
def send_cmd(obj: _Ctx, file: Path, name: Optional[str], fmt: Optional[str], transport: str, ttl_sec: Optional[int],
             no_notify: bool, progress: bool) -> None:
    """Send a CSV, Parquet or Feather file as a table."""
    fmt = _format_of(file, fmt)
    show = progress and not obj.json
    df = _read_input(file, fmt, show)
    kwargs: dict[str, Any] = dict(secret_dir=obj.secret_dir, transport=transport, ttl_sec=ttl_sec,
                                  notify_canvas=False if no_notify else None)
    if show and len(df) > 1_000_000:
        # Ctrl-C during the conversion cancels the send before anything is written.
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

        with Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                      console=_console(stderr=True), transient=True) as bar:
            task = bar.add_task(f"sending {name or file.stem} (rows)", total=len(df))
            table_name = api.send_dataframe(df, name or file.stem, progress=lambda d, n: bar.update(task, completed=d), **kwargs)
    else:
        table_name = api.send_dataframe(df, name or file.stem, **kwargs)
    info = api.describe_table(table_name, secret_dir=obj.secret_dir)
    if obj.json:
        info.pop("schema", None)
        _emit_json(info)
    else:
        click.echo(f"sent {table_name!r}: {df.shape[0]:,} rows x {df.shape[1]} columns via {info['transport']} "
                   f"({_human_bytes(info['bytes'])})")


@main.command("rm")
@click.argument("names", nargs=-1, required=True)
@click.pass_obj
def rm_cmd(obj: _Ctx, names: tuple[str, ...]) -> None:
    """Remove tables: mark them removed and delete their payloads in this store."""
    reports = [api.remove_table(n, secret_dir=obj.secret_dir) for n in names]
    if obj.json:
        _emit_json(reports)
    else:
        for r in reports:
            click.echo(f"removed {r['table_name']!r} ({len(r['deleted'])} payloads deleted)")


@main.command("gc")
@click.option("--dry-run", is_flag=True, help="Only report what would be removed.")
@click.pass_obj
def gc_cmd(obj: _Ctx, dry_run: bool) -> None:
    """Remove expired payloads of this store."""
    actions = api.gc(secret_dir=obj.secret_dir, dry_run=dry_run)
    if obj.json:
        _emit_json(actions)
        return
    verb = "would delete" if dry_run else "deleted"
    for a in actions:
        click.echo(f"{verb if a['action'] == 'delete' else 'skipped'} {a['table_name']!r} {a['transport']} {a['locator']} ({a['reason']})")
    click.echo(f"{sum(a['action'] == 'delete' for a in actions)} payloads {verb}")


@main.command("watch")
@click.argument("name", required=False)
@click.option("--timeout", "timeout_sec", type=float, help="Stop after this many seconds without a new version (exit 5).")
@click.option("--count", type=int, help="Stop after this many versions (exit 0).")
@click.option("--errors", "include_errors", is_flag=True, help="Also report failed sends and removals.")
@click.pass_obj
def watch_cmd(obj: _Ctx, name: Optional[str], timeout_sec: Optional[float], count: Optional[int], include_errors: bool) -> None:
    """Print each new version of NAME (or of any table) as it lands; one JSON line each with --json."""
    seen = 0
    versions = api.watch(name, secret_dir=obj.secret_dir, timeout_sec=timeout_sec, include_errors=include_errors)
    click.echo(f"watching {name or 'all tables'} in {api.store_path(obj.secret_dir)} (Ctrl-C to stop)", err=True)
    for rec in versions:
        if obj.json:
            click.echo(json.dumps(rec, ensure_ascii=False, default=str))
        else:
            shape = rec["shape"] or ("?", "?")
            what = f"{shape[0]:,} x {shape[1]}" if rec["status"] == "ready" else f"error: {rec['metadata'].get('error')}"
            click.echo(f"{rec['created_at']}  {rec['table_name']}  {rec['status']}  {what}  {rec['producer']}  {rec['id']}")
        sys.stdout.flush()
        seen += 1
        if count is not None and seen >= count:
            return
    if timeout_sec is not None:
        sys.exit(EXIT_TIMEOUT)


@main.command("config")
@click.option("--set", "assignments", multiple=True, metavar="KEY=VALUE", help="Save a setting to the store's settings.yaml.")
@click.pass_obj
def config_cmd(obj: _Ctx, assignments: tuple[str, ...]) -> None:
    """Show the effective settings and where each value comes from (--set saves one)."""
    store = api.store_path(obj.secret_dir)
    if assignments:
        current = _settings.Settings.from_yaml(_settings.settings_file(store)) if _settings.settings_file(store).exists() else _settings.Settings()
        known = {f for f in _settings.ENV}
        for a in assignments:
            key, sep, value = a.partition("=")
            key = key.strip()
            if not sep or key not in known:
                raise click.BadParameter(f"{a!r}: use KEY=VALUE with KEY one of {', '.join(sorted(known))}", param_hint="--set")
            setattr(current, key, _settings._coerce(_settings.Settings, key, value, "--set"))
        _settings.save(current, store)
    resolved = _settings.load(store)
    rows = [{"name": k, "value": getattr(resolved.settings, k), "source": resolved.sources[k], "env": _settings.ENV[k]} for k in _settings.ENV]
    if obj.json:
        _emit_json({"store": str(store), "file": str(resolved.file), "settings": rows})
        return
    from rich.table import Table

    t = Table("setting", "value", "from", "environment variable", title=f"store {store}  (file {resolved.file})", title_justify="left")
    for r in rows:
        t.add_row(r["name"], repr(r["value"]), r["source"], r["env"])
    _console().print(t)


@main.command("demo", context_settings={"ignore_unknown_options": True})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def demo_cmd(args: tuple[str, ...]) -> None:
    """The README's main job: send and read back real frames through both transports."""
    from .demo import main as demo_main

    sys.exit(demo_main(list(args)))


if __name__ == "__main__":  # pragma: no cover
    main()
