"""``adc``: the command line of allye_data_connector (click for parsing, rich for tables
and progress in a terminal; plain text when the output is piped or redirected).

Exit codes scripts can trust: 0 success; 1 any other error; 2 bad usage; 3 no such table
(or expired, or removed); 4 payload missing or corrupt; 5 timed out (``watch --timeout``,
``get --wait``); 130 interrupted. Every error prints one line (``error: ...``) on stderr,
without a traceback unless ``--debug``. ``--json`` (before or after the command) prints
machine-readable output on stdout.

The package (pandas, pyarrow) is imported only by the commands that need it, so that
``adc --version`` and ``adc --help`` answer at once.
"""

from __future__ import annotations

import difflib
import json
import logging
import os
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, NoReturn, Optional, Sequence

import click

from . import _core, errors

if TYPE_CHECKING:  # imported lazily at run time (pandas and pyarrow take ~0.5 s to import)
    import pyarrow as pa

EXIT_ERROR, EXIT_USAGE, EXIT_NOT_FOUND, EXIT_PAYLOAD, EXIT_TIMEOUT, EXIT_INTERRUPTED = 1, 2, 3, 4, 5, 130

logger = logging.getLogger(__name__)


class _Ctx:
    def __init__(self, secret_dir: Optional[str], as_json: bool, debug: bool) -> None:
        self.secret_dir = secret_dir
        self.json = as_json
        self.debug = debug


def _api() -> Any:
    from . import api

    return api


# ---- output ----------------------------------------------------------------------------


def _is_terminal() -> bool:
    return sys.stdout.isatty()


def _console(stderr: bool = False) -> Any:
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=True)


def _emit_json(obj: Any) -> None:
    click.echo(json.dumps(obj, ensure_ascii=False, default=str, indent=2))


def _print_table(headers: Sequence[str], rows: Sequence[Sequence[str]], *, right: Sequence[str] = (),
                 title: Optional[str] = None) -> None:
    """A table: rich in a terminal (cells wrap, never cut), else plain aligned text with
    every cell whole (for grep, awk, less and files)."""
    if _is_terminal():
        from rich.table import Table
        from rich.text import Text

        t = Table(title=title, title_justify="left", box=None, pad_edge=False, header_style="bold underline")
        for i, h in enumerate(headers):
            widest = max([len(h)] + [len(r[i]) for r in rows])
            # Short columns keep their width; long ones (names, types) fold onto more lines.
            short = dict(no_wrap=True, min_width=widest) if widest <= 24 else dict(overflow="fold", min_width=16)
            t.add_column(h, justify="right" if h in right else "left", **short)
        for r in rows:
            t.add_row(*(Text(c) for c in r))  # Text: names are not rich markup
        _console().print(t)
        return
    if title:
        click.echo(title)
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c.rjust(w) if h in right else c.ljust(w) for c, w, h in zip(cells, widths, headers)).rstrip()

    click.echo(line(headers))
    for r in rows:
        click.echo(line(r))


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


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


# ---- parsing ---------------------------------------------------------------------------

_SIZE_UNITS = {
    "": 1, "b": 1,
    "k": 1000, "kb": 1000, "m": 1000**2, "mb": 1000**2, "g": 1000**3, "gb": 1000**3, "t": 1000**4, "tb": 1000**4,
    "kib": 1024, "mib": 1024**2, "gib": 1024**3, "tib": 1024**4,
}


def parse_size(text: str) -> int:
    """``"128MiB"`` -> 134217728, ``"1GB"`` -> 10**9, ``"4096"`` -> 4096 (``KiB`` and
    friends are powers of 1024, ``KB`` or ``K`` powers of 1000)."""
    m = re.fullmatch(r"\s*([0-9][0-9_]*(?:\.[0-9]+)?)\s*([a-zA-Z]*)\s*", str(text))
    unit = m.group(2).lower() if m else None
    if m is None or unit not in _SIZE_UNITS:
        raise click.BadParameter(f"{text!r} is not a size: use bytes or a unit, e.g. 4096, 64MiB, 1GB, 512KiB")
    value = float(m.group(1).replace("_", "")) * _SIZE_UNITS[unit]
    if value != int(value):
        raise click.BadParameter(f"{text!r} is not a whole number of bytes")
    return int(value)


class _Size(click.ParamType):  # type: ignore[type-arg]
    name = "SIZE"

    def convert(self, value: Any, param: Optional[click.Parameter], ctx: Optional[click.Context]) -> int:
        if isinstance(value, int):
            return value
        try:
            return parse_size(value)
        except click.BadParameter as exc:
            self.fail(exc.message, param, ctx)


SIZE = _Size()
TIMEOUT = click.FloatRange(min=0)


# ---- errors ----------------------------------------------------------------------------


def _exit_code(exc: BaseException) -> int:
    if isinstance(exc, errors.WaitTimeoutError):
        return EXIT_TIMEOUT
    if isinstance(exc, errors.TableNotFoundError):
        return EXIT_NOT_FOUND
    if isinstance(exc, errors.PayloadError):
        return EXIT_PAYLOAD
    return EXIT_ERROR


def _not_found(obj: _Ctx, name: str, exc: errors.TableNotFoundError) -> errors.TableNotFoundError:
    """The same error, its message telling the command line user what exists: close
    names, and ``adc ls``."""
    message = str(exc).replace("; list what exists with list_tables()", "")
    try:
        known = [t["table_name"] for t in _api().list_tables(secret_dir=obj.secret_dir, all_states=True, with_schema=False)]
    except errors.AllyeError:
        known = []
    close = difflib.get_close_matches(name, [k for k in known if k != name], n=3, cutoff=0.6)
    if close:
        message += "; did you mean " + " or ".join(repr(c) for c in close) + "?"
    message += "; `adc ls` lists the tables" + (" (`adc ls --all` the removed ones too)" if name in known else "")
    new = type(exc)(message)
    new.__cause__ = exc
    return new


class AdcGroup(click.Group):
    """One line per error (``error: ...``), the exit codes above, tracebacks only with
    ``--debug``."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException, KeyboardInterrupt):
            raise
        except Exception as exc:
            if isinstance(exc, BrokenPipeError):
                raise
            obj = ctx.find_object(_Ctx)
            if obj is not None and obj.debug:
                import traceback

                traceback.print_exc()
            if isinstance(exc, errors.AllyeError):
                message = _one_line(str(exc))
            else:  # not ours: name the kind of failure, keep the traceback for --debug
                message = f"{type(exc).__name__}: {_one_line(str(exc))}"
                if obj is None or not obj.debug:
                    message += " (run with --debug for the traceback)"
            click.echo(f"error: {message}", err=True)
            ctx.exit(_exit_code(exc))

    def main(self, args: Optional[Sequence[str]] = None, prog_name: Optional[str] = None, **extra: Any) -> NoReturn:  # type: ignore[override]
        extra.pop("standalone_mode", None)
        try:
            rv = super().main(args, prog_name, standalone_mode=False, **extra)
            code = rv if isinstance(rv, int) else 0
        except click.UsageError as exc:
            # click prints usage, a hint and the error over four lines; one is enough.
            where = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
            click.echo(f"error: {_one_line(exc.format_message()).rstrip('.')}{where}", err=True)
            code = exc.exit_code
        except click.ClickException as exc:
            click.echo(f"error: {_one_line(exc.format_message())}", err=True)
            code = exc.exit_code
        except (click.Abort, KeyboardInterrupt):
            click.echo("interrupted", err=True)
            code = EXIT_INTERRUPTED
        except BrokenPipeError:
            # The reader went away (`adc ls | head`): stop quietly, as cat does.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            code = EXIT_ERROR
        sys.exit(code)


def _set_json(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if value:
        ctx.ensure_object(_Ctx).json = True


def _set_debug(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if value:
        ctx.ensure_object(_Ctx).debug = True
        logging.getLogger().setLevel(logging.DEBUG)


def _set_secret_dir(ctx: click.Context, param: click.Parameter, value: Optional[str]) -> None:
    if value is not None:
        ctx.ensure_object(_Ctx).secret_dir = value


def _common_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """``--json``, ``--debug`` and ``--secret-dir`` after the command as well as before it."""
    f = click.option("--secret-dir", "-d", type=click.Path(file_okay=False), expose_value=False, callback=_set_secret_dir,
                     help="Store directory (same as before the command).")(f)
    f = click.option("--debug", is_flag=True, expose_value=False, callback=_set_debug,
                     help="Debug logging, and tracebacks on errors.")(f)
    f = click.option("--json", is_flag=True, expose_value=False, callback=_set_json,
                     help="Machine-readable JSON on stdout.")(f)
    return f


def _version() -> str:
    from . import __version__  # the extension's, loaded with the package (importlib.metadata costs ~40 ms)

    return __version__


def _print_version(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if value and not ctx.resilient_parsing:
        click.echo(f"adc (allye_data_connector) {_version()}")
        ctx.exit(0)


@click.group(cls=AdcGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--secret-dir", "-d", envvar="ALLYE_SECRET_DIR", type=click.Path(file_okay=False), help="Store directory (default: $ALLYE_SECRET_DIR, else ~/.allye_secrets).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable JSON on stdout.")
@click.option("--debug", is_flag=True, help="Debug logging, and tracebacks on errors.")
@click.option("--version", is_flag=True, expose_value=False, is_eager=True, callback=_print_version, help="Show the version and exit.")
@click.pass_context
def main(ctx: click.Context, secret_dir: Optional[str], as_json: bool, debug: bool) -> None:
    """Move pandas DataFrames between processes: list, inspect, get, send, remove and
    watch the tables of an Allye store.

    Every error prints one line; --debug adds the traceback. Exit codes: 0 success,
    1 error, 2 bad usage, 3 no such table, 4 payload missing or corrupt, 5 timed out,
    130 interrupted."""
    logging.basicConfig(level=logging.DEBUG if debug else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    ctx.obj = _Ctx(secret_dir, as_json, debug)


# ---- ls, show --------------------------------------------------------------------------


def _transport(name: Optional[str]) -> str:
    return (name or "").replace("_arrow_ipc_v1", "").replace("_arrow_stream_v1", "")


@main.command("ls")
@click.option("--all", "-a", "all_states", is_flag=True, help="Also tables whose latest state is writing, error or removed.")
@click.option("--producer", help="Only this producer's tables (python, allye, ...).")
@click.option("--arrays", "arrays", is_flag=True, help="List shared arrays instead: shape, dtype, creator and openers.")
@click.option("--objects", "objects", is_flag=True, help="List named objects instead (of every namespace, or of --namespace).")
@click.option("--namespace", "namespace", help="List the named objects of this namespace (implies --objects).")
@click.option("--remote", "remote_peer", metavar="PEER", help="List the tables a peer serves (host:port or Flight URI; see adc serve).")
@click.option("--token", envvar="ALLYE_REMOTE_TOKEN", help="With --remote: the peer's bearer token (default: $ALLYE_REMOTE_TOKEN).")
@click.option("--token-file", type=click.Path(dir_okay=False, exists=True), help="With --remote: file holding the peer's token.")
@_common_options
@click.pass_obj
def ls_cmd(obj: _Ctx, all_states: bool, producer: Optional[str], arrays: bool, objects: bool,
           namespace: Optional[str], remote_peer: Optional[str], token: Optional[str], token_file: Optional[str]) -> None:
    """List tables with their state, shape, size and age (--arrays: shared arrays;
    --objects: named objects; --remote PEER: a peer's tables)."""
    if arrays:
        _ls_arrays(obj)
        return
    if objects or namespace is not None:
        _ls_objects(obj, namespace)
        return
    if remote_peer is not None:
        _ls_remote(obj, remote_peer, token, token_file)
        return
    api = _api()
    rows = api.list_tables(secret_dir=obj.secret_dir, producer=producer, all_states=True, with_schema=False)
    if not all_states:
        rows = [r for r in rows if r["id"] is not None]  # a current version exists
    if obj.json:
        _emit_json(rows)
        return
    cells = []
    for r in rows:
        shape = r["shape"]
        state = r["state"] + (" (expired)" if r["expired"] else "")
        if r["error"]:
            state += f": {r['error']}"
        cells.append([r["table_name"], state, r["producer"] or "", f"{shape[0]:,}" if shape else "",
                      str(shape[1]) if shape else "", _human_bytes(r["bytes"]), _transport(r["transport"]),
                      _human_age(r["age_sec"]), r["expires_at"] or ""])
    if not rows:
        click.echo(f"no tables in {api.store_path(obj.secret_dir)}", err=True)
        return
    _print_table(("table", "state", "producer", "rows", "cols", "size", "transport", "age", "expires"), cells,
                 right=("rows", "cols", "size", "age"), title=str(api.store_path(obj.secret_dir)) if _is_terminal() else None)
    held, count = _core.pool_held() if _is_terminal() else (0, 0)
    if count:
        click.echo(f"shared-memory pool: {_human_bytes(held)} in {count} pre-mapped segment(s) of this user's running "
                   "processes (given back when idle; `adc cleanup` frees a killed process's)", err=True)


def _ls_arrays(obj: _Ctx) -> None:
    from .shared_array import list_arrays

    rows = list_arrays(secret_dir=obj.secret_dir)
    if obj.json:
        _emit_json(rows)
        return
    store = _api().store_path(obj.secret_dir)
    if not rows:
        click.echo(f"no shared arrays in {store}", err=True)
        return
    cells = []
    for r in rows:
        creator = "" if r["creator_pid"] is None else f"{r['creator_pid']}" + ("" if r["creator_alive"] is not False else " (dead)")
        cells.append([r["name"], r["state"], r["dtype"], str(tuple(r["shape"])), _human_bytes(r["nbytes"]), creator,
                      ", ".join(str(p) for p in r["openers"]), r["segment"]])
    _print_table(("array", "state", "dtype", "shape", "size", "creator", "openers", "segment"), cells,
                 right=("size",), title=f"{store} (shared arrays)" if _is_terminal() else None)


@main.command("show")
@click.argument("name")
@click.option("--head", "head", default=5, show_default=True, type=click.IntRange(min=0), help="Rows to show.")
@click.option("--max-columns", default=20, show_default=True, type=click.IntRange(min=0),
              help="Columns listed in the schema and the rows (0: all; --json always lists all).")
@click.option("--producer", help="The version of this producer.")
@click.option("--object", "is_object", is_flag=True, help="Show a named object (of the default namespace, or of --namespace).")
@click.option("--namespace", "namespace", help="Show the named object NAME of this namespace (implies --object).")
@_common_options
@click.pass_obj
def show_cmd(obj: _Ctx, name: str, head: int, max_columns: int, producer: Optional[str], is_object: bool,
             namespace: Optional[str]) -> None:
    """Schema, shape, state and the first rows of a table (--object: a named object)."""
    if is_object or namespace is not None:
        _show_object(obj, name, namespace, head)
        return
    api = _api()
    try:
        info = api.describe_table(name, secret_dir=obj.secret_dir, producer=producer)
    except errors.TableNotFoundError as exc:
        raise _not_found(obj, name, exc) from None
    df = None
    if info["state"] not in ("removed",) and info["id"] and not info["expired"] and head > 0 and info["schema"] is not None:
        df = api.get_dataframe(name, secret_dir=obj.secret_dir, producer=producer, head=head)
        if df.ndim == 1:  # a Series was sent
            df = df.to_frame()
    if obj.json:
        out = dict(info)
        out["head"] = None if df is None else json.loads(df.to_json(orient="split", date_format="iso", default_handler=str))
        _emit_json(out)
        return
    lines = [f"{name}  state: {info['state']}" + (f" ({info['error']})" if info["error"] else "")]
    for key in ("producer", "id", "created_at", "expires_at", "transport", "shape", "bytes", "num_batches", "index_columns"):
        if info.get(key) is not None:
            value = _human_bytes(info[key]) + f" ({info[key]:,})" if key == "bytes" else info[key]
            lines.append(f"  {key:<13} {value}")
    if info.get("age_sec") is not None:
        lines.append(f"  {'age':<13} {_human_age(info['age_sec'])}")
    if info.get("schema_error"):
        lines.append(f"  payload unreadable: {info['schema_error']}")
    for line in lines:
        click.echo(line)
    if info.get("schema_error") and info["id"] and not info["expired"]:
        # The version is listed but cannot be read: exit with the reader's error (its
        # class sets the exit code) rather than 0.
        from .partial import Selection

        api.get_arrow(name, secret_dir=obj.secret_dir, producer=producer, selection=Selection(head=0))
    schema = info.get("schema") or []
    if schema:
        index = set(info.get("index_columns") or [])
        data_fields = [f for f in schema if f["name"] not in index]
        shown = schema if not max_columns or len(data_fields) <= max_columns else (
            [f for f in schema if f["name"] in index] + data_fields[:max_columns])
        click.echo("")
        _print_table(("column", "arrow type"), [[f["name"], f["type"]] for f in shown],
                     title=f"schema: {len(data_fields):,} columns" + (f" and the index ({', '.join(sorted(index))})" if index else ""))
        if len(shown) < len(schema):
            _more_columns(name, len(schema) - len(shown), max_columns)
    if df is not None:
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

            from .convert import arrow_to_dataframe

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
@_common_options
@click.pass_obj
def get_cmd(obj: _Ctx, name: str, output: Path, fmt: Optional[str], columns: Optional[str], head: Optional[int],
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
    api = _api()
    from . import partial
    from .watching import wait_until

    selection = partial.Selection(columns=[c.strip() for c in columns.split(",")] if columns else None, head=head,
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
        raise _not_found(obj, name, exc) from None
    _write_table(table, output, fmt)
    n_index = len(partial.index_columns(table))
    result = {"table_name": name, "output": str(output), "format": fmt, "rows": table.num_rows,
              "columns": table.num_columns - n_index}
    if obj.json:
        _emit_json(result)
    else:
        click.echo(f"wrote {result['rows']:,} rows x {result['columns']} columns of {name!r} to {output} ({fmt})")


# ---- send ------------------------------------------------------------------------------


def _read_input(path: Path, fmt: str, progress: bool) -> Any:
    """Reads a CSV, Parquet or Feather file into a DataFrame, with a progress bar
    (bytes read) for files larger than 8 MiB. A file that is not what its name says
    raises :class:`~.errors.InvalidInputError` (one line, no traceback)."""
    import pyarrow as pa

    try:
        return _read_input_unchecked(path, fmt, progress)
    except (ValueError, OSError, pa.ArrowException) as exc:
        raise errors.InvalidInputError(
            f"cannot read {str(path)!r} as {fmt}: {_one_line(str(exc)) or type(exc).__name__}; "
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

                reader = pcsv.open_csv(pa.PythonFile(_Counting(), mode="r"))
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
@click.option("--transport", type=click.Choice(_core.TRANSPORTS), default="auto", show_default=True)
@click.option("--max-shm-bytes", type=SIZE, help="Largest size 'auto' sends through shared memory, e.g. 128MiB (default: settings).")
@click.option("--ttl", "ttl_sec", type=click.IntRange(min=0), help="Seconds until the version expires (default: settings).")
@click.option("--no-notify", is_flag=True, help="Do not notify a running Allye canvas.")
@click.option("--keep-after-read", is_flag=True,
              help="Keep the table readable after a full read (shm_unlink_on_read=False); by default gc frees a "
                   "shared-memory table once it has been read in full.")
@click.option("--progress/--no-progress", default=True, help="Progress bar while reading big files (on stderr).")
@_common_options
@click.pass_obj
def send_cmd(obj: _Ctx, file: Path, name: Optional[str], fmt: Optional[str], transport: str, max_shm_bytes: Optional[int],
             ttl_sec: Optional[int], no_notify: bool, keep_after_read: bool, progress: bool) -> None:
    """Send a CSV, Parquet or Feather file as a table."""
    fmt = _format_of(file, fmt, "FILE")
    api = _api()
    show = progress and not obj.json and sys.stderr.isatty()
    df = _read_input(file, fmt, show)
    kwargs: dict[str, Any] = dict(secret_dir=obj.secret_dir, transport=transport, ttl_sec=ttl_sec,
                                  max_shm_bytes=max_shm_bytes, notify_canvas=False if no_notify else None,
                                  shm_unlink_on_read=not keep_after_read)
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


# ---- rm, gc ----------------------------------------------------------------------------


@main.command("rm")
@click.argument("names", nargs=-1, required=True)
@_common_options
@click.pass_obj
def rm_cmd(obj: _Ctx, names: tuple[str, ...]) -> None:
    """Remove tables: mark them removed and delete their payloads in this store. Goes on
    past a name that does not exist (exit 3 at the end if one did not)."""
    api = _api()
    reports: list[dict[str, Any]] = []
    missing = 0
    for n in names:
        try:
            r = api.remove_table(n, secret_dir=obj.secret_dir)
        except errors.TableNotFoundError as exc:
            missing += 1
            err = _not_found(obj, n, exc)
            reports.append({"table_name": n, "error": str(err)})
            click.echo(f"error: {_one_line(str(err))}", err=True)
            continue
        reports.append(r)
        if not obj.json:
            click.echo(f"removed {r['table_name']!r} ({len(r['deleted'])} payloads deleted)")
    if obj.json:
        _emit_json(reports)
    if missing:
        sys.exit(EXIT_NOT_FOUND)


@main.command("gc")
@click.option("--delete", "delete", is_flag=True, help="Delete what would be freed (without it, gc only reports, as gc() does).")
@click.option("--dry-run", "dry_run", is_flag=True, help="Only report what would be deleted (the default).")
@click.option("--keep-versions", default=1, show_default=True, type=click.IntRange(min=1), help="Versions kept per table and producer.")
@_common_options
@click.pass_obj
def gc_cmd(obj: _Ctx, delete: bool, dry_run: bool, keep_versions: int) -> None:
    """Report, or with --delete free, what no reader can be served any more in this
    store: expired versions, superseded versions (all but the latest --keep-versions),
    shared memory sent to be read once and read, and what failed or dead senders left.

    Like gc() in Python, it only reports unless told to delete (gc(dry_run=False),
    `adc gc --delete`)."""
    if delete and dry_run:
        raise click.UsageError("--delete and --dry-run contradict each other; pass one")
    api = _api()
    actions = api.gc(secret_dir=obj.secret_dir, dry_run=not delete, keep_versions=keep_versions)
    if obj.json:
        _emit_json(actions)
        return
    verb = "deleted" if delete else "would delete"
    for a in actions:
        what = {"delete": verb, "skip": "skipped", "record": "recorded a failed send of"}.get(a["action"], a["action"])
        table = f"{a['table_name']!r} " if a["table_name"] else ""  # a deleted store's segment has no table
        click.echo(f"{what} {table}{_transport(a['transport'])} {a['locator']} ({a['reason']})")
    n = sum(a["action"] == "delete" for a in actions)
    if delete:
        click.echo(f"{n} payloads deleted")
    else:
        click.echo(f"{n} payloads would be deleted" + ("; run `adc gc --delete` to delete them" if n else ""))


@main.command("cleanup")
@click.option("--dry-run", "dry_run", is_flag=True, help="Only report what would be freed.")
@_common_options
@click.pass_obj
def cleanup_cmd(obj: _Ctx, dry_run: bool) -> None:
    """Free the shared memory that deleted stores left behind (a store directory removed
    with rm -rf keeps its segments in /dev/shm until reboot). Touches only your segments
    of stores whose directory is gone: never a live store's, 0.1.2's or another
    program's. `adc gc --delete` of any store does it too."""
    actions = _api().cleanup_orphans(dry_run=dry_run)
    if obj.json:
        _emit_json(actions)
        return
    verb = "would free" if dry_run else "freed"
    for a in actions:
        click.echo(f"{verb} {a['locator']} ({a['reason']})")
    stores = len({a["reason"] for a in actions})
    click.echo(f"{verb} {len(actions)} segments of {stores} deleted stores" if actions else "no segments of deleted stores")


# ---- watch, config, demo ---------------------------------------------------------------


@main.command("watch")
@click.argument("name", required=False)
@click.option("--timeout", "timeout_sec", type=TIMEOUT, help="Stop after this many seconds without a new version (exit 5).")
@click.option("--count", type=click.IntRange(min=1), help="Stop after this many versions (exit 0).")
@click.option("--errors", "include_errors", is_flag=True, help="Also report failed sends and removals.")
@click.option("--stream", "as_stream", is_flag=True,
              help="Follow NAME as a stream (its new chunks) even before it exists; a stream NAME is followed anyway.")
@_common_options
@click.pass_obj
def watch_cmd(obj: _Ctx, name: Optional[str], timeout_sec: Optional[float], count: Optional[int], include_errors: bool,
              as_stream: bool) -> None:
    """Print each new version of NAME (or of any table) as it lands; one JSON line each with --json.
    A streaming table NAME: each new chunk (its rows) as it is appended."""
    if name is not None and (as_stream or _is_stream(obj, name)):
        _watch_stream(obj, name, timeout_sec, count)
        return
    api = _api()
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
        raise errors.WaitTimeoutError(
            f"no new version of {name or 'any table'} within the timeout of {timeout_sec:g} s (--timeout)"
            + (f"; saw {seen}" if seen else "")
        )


#: Settings that are sizes in bytes: `--set` takes units for them (128MiB, 1GB).
_SIZE_SETTINGS = ("max_shm_bytes", "max_store_bytes")


@main.command("config")
@click.option("--set", "assignments", multiple=True, metavar="KEY=VALUE",
              help="Save a setting to the store's settings.yaml (sizes take units: max_shm_bytes=128MiB).")
@_common_options
@click.pass_obj
def config_cmd(obj: _Ctx, assignments: tuple[str, ...]) -> None:
    """Show the effective settings and where each value comes from (--set saves one)."""
    from . import settings as _settings

    store = _api().store_path(obj.secret_dir)
    if assignments:
        file = _settings.settings_file(store)
        current = _settings.Settings.from_yaml(file) if file.exists() else _settings.Settings()
        known = set(_settings.ENV)
        for a in assignments:
            key, sep, value = a.partition("=")
            key = key.strip()
            if not sep or key not in known:
                raise click.BadParameter(f"{a!r}: use KEY=VALUE with KEY one of {', '.join(sorted(known))}", param_hint="--set")
            if key in _SIZE_SETTINGS and value.strip().lower() not in ("", "none", "null"):
                try:
                    value = str(parse_size(value))
                except click.BadParameter as exc:
                    raise click.BadParameter(f"{key}: {exc.message}", param_hint="--set") from None
            setattr(current, key, _settings.parse_setting(key, value, "--set"))
        _settings.save(current, store)
    resolved = _settings.load(store)
    rows = [{"name": k, "value": getattr(resolved.settings, k), "source": resolved.sources[k], "env": _settings.ENV[k]} for k in _settings.ENV]
    if obj.json:
        _emit_json({"store": str(store), "file": str(resolved.file), "settings": rows})
        return
    click.echo(f"store {store}  (file {resolved.file})")
    _print_table(("setting", "value", "from", "environment variable"),
                 [[r["name"], repr(r["value"]), r["source"], r["env"]] for r in rows])


@main.command("demo")
@click.option("--secret-dir", "demo_dir", type=click.Path(file_okay=False),
              help="Store to run in (default: the global --secret-dir or $ALLYE_SECRET_DIR, else a temporary one).")
@click.option("--keep", is_flag=True, help="Leave the demo's tables in the store (to try adc ls / show / get on them).")
@click.option("--rows", default=1_000_000, show_default=True, type=click.IntRange(min=1), help="Rows of the big frame.")
@click.pass_obj
def demo_cmd(obj: _Ctx, demo_dir: Optional[str], keep: bool, rows: int) -> None:
    """The README's main job: send real frames from this process, read them in another
    one, prove no copy was made, and clean up."""
    from .demo import run

    sys.exit(run(secret_dir=demo_dir or obj.secret_dir, keep=keep, rows=rows))


# --- streams ---


def _is_stream(obj: _Ctx, name: str) -> bool:
    from . import _core

    return bool(_core.stream_exists(name, secret_dir=_api().store_path(obj.secret_dir)))


def _watch_stream(obj: _Ctx, name: str, timeout_sec: Optional[float], count: Optional[int]) -> None:
    """``adc watch`` of a stream: each new chunk as it lands (text: a summary and its
    first rows; --json: one line per chunk with its records)."""
    from . import streams

    api = _api()
    chunks = streams.follow(name, secret_dir=obj.secret_dir, timeout_sec=timeout_sec)
    click.echo(f"following stream {name} in {api.store_path(obj.secret_dir)} (Ctrl-C to stop)", err=True)
    seen = 0
    for chunk in chunks:
        if obj.json:
            click.echo(json.dumps({"table_name": name, "rows": chunk.num_rows, "records": chunk.to_pylist()},
                                  ensure_ascii=False, default=str))
        else:
            click.echo(f"{name}  +{chunk.num_rows:,} rows")
            click.echo(chunk.slice(0, 5).to_pandas().to_string(index=False))
            if chunk.num_rows > 5:
                click.echo(f"... ({chunk.num_rows - 5:,} more)")
        sys.stdout.flush()
        seen += 1
        if count is not None and seen >= count:
            return
    if timeout_sec is not None:
        raise errors.WaitTimeoutError(
            f"no new chunk of stream {name} within the timeout of {timeout_sec:g} s (--timeout)"
            + (f"; saw {seen}" if seen else "")
        )
# --- sources ------------------------------------------------------------------------------


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
@_common_options
@click.pass_obj
def load_cmd(obj: _Ctx, source_uri: str, table: Optional[str], append: bool, params: tuple[str, ...],
             query: Optional[str], cursor: Optional[str], kind: Optional[str], progress: bool) -> None:
    """Load a file or a database query into a table: written as it is read, published
    at the end; Ctrl-C cancels and leaves the previous version intact (with --append:
    the chunks appended so far, from which the next --append resumes). Examples:
    `adc load data.csv`, `adc load 'postgresql://u@host/db' --table t --query 'select ...'`."""
    from .loading import load
    from .sources import _iter_params, redact_uri, resolve

    values: dict[str, Any] = _iter_params(params)
    if query is not None:
        values["query"] = query
    if cursor is not None:
        values["cursor"] = cursor
    if table is None:
        if "://" in source_uri:
            raise click.UsageError("pass --table NAME: the table to load a database source into")
        table = Path(source_uri.rstrip("/")).name.split(".")[0]
    src = resolve(source_uri, values, kind=kind)
    out = load(src, table, secret_dir=obj.secret_dir, mode="append" if append else "replace",
               progress=progress and not obj.json)
    if obj.json:
        _emit_json({**out, "source": src.describe()})
    else:
        new = f" ({out['rows_loaded']:,} new)" if append else ""
        click.echo(f"loaded {table!r}: {out['rows']:,} rows{new} from {redact_uri(src.describe())}")


@main.command("sources")
@_common_options
@click.pass_obj
def sources_cmd(obj: _Ctx) -> None:
    """List the available data sources (built-in and installed through the entry point
    group allye_data_connector.sources) and their parameters."""
    from .sources import describe_sources

    listed = describe_sources()
    if obj.json:
        _emit_json(listed)
        return
    rows = []
    for s in listed:
        params = ", ".join(p["name"] + (" (secret)" if p.get("secret") else "") for p in s["params"])
        rows.append([s["name"], s["title"], params])
    _print_table(("source", "title", "params"), rows)
# --- remote ---


def _token_option(f: Callable[..., Any]) -> Callable[..., Any]:
    f = click.option("--token-file", type=click.Path(dir_okay=False, exists=True),
                     help="File holding the peer's bearer token (its <store>/remote/token).")(f)
    return click.option("--token", envvar="ALLYE_REMOTE_TOKEN", help="The peer's bearer token (default: $ALLYE_REMOTE_TOKEN).")(f)


def _remote(obj: _Ctx, peer: str, token: Optional[str], token_file: Optional[str], **kw: Any) -> Any:
    from .remote import connect

    if token_file is not None:
        token = Path(token_file).read_text().strip()
    return connect([peer], secret_dir=obj.secret_dir, token=token, **kw)


def _ls_remote(obj: _Ctx, peer: str, token: Optional[str], token_file: Optional[str]) -> None:
    with _remote(obj, peer, token, token_file) as r:
        rows = r.list_tables(peer)
    if obj.json:
        _emit_json(rows)
        return
    if not rows:
        click.echo(f"no tables at {peer}", err=True)
        return
    _print_table(("table", "rows", "cols", "size", "created", "id"),
                 [[x["table_name"], f"{x['rows']:,}", str((x.get("shape") or [0, 0])[1]), _human_bytes(x["bytes"]),
                   x.get("created_at") or "", x["id"]] for x in rows], right=("rows", "cols", "size"))


@main.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (loopback by default).")
@click.option("--port", default=_core.DEFAULT_REMOTE_PORT, show_default=True, type=click.IntRange(0, 65535), help="Port (0: any free one).")
@click.option("--allow-put", is_flag=True, help="Accept tables pushed by clients (DoPut; adc push).")
@click.option("--no-auth", is_flag=True, help="No bearer token: any client that reaches the port may read (trusted network).")
@click.option("--insecure", is_flag=True, help="Allow a non-loopback address without TLS.")
@click.option("--tls-cert", type=click.Path(dir_okay=False, exists=True), help="PEM certificate chain of the server.")
@click.option("--tls-key", type=click.Path(dir_okay=False, exists=True), help="PEM private key of the server.")
@click.option("--tls-client-ca", type=click.Path(dir_okay=False, exists=True),
              help="PEM CA whose client certificates are accepted (mutual TLS, replaces the token).")
@click.option("--registry", metavar="zk://HOST:PORT", help="Register this node and its tables in ZooKeeper.")
@click.option("--advertise", metavar="URI", help="The location clients should use (default: the bound address).")
@click.option("--max-message-bytes", envvar="ALLYE_FLIGHT_MAX_MESSAGE_BYTES", type=click.IntRange(min=1024), default=None,
              help="Largest record batch message of a DoGet (default 16 MiB).")
@_common_options
@click.pass_obj
def serve_cmd(obj: _Ctx, host: str, port: int, allow_put: bool, no_auth: bool, insecure: bool, tls_cert: Optional[str],
              tls_key: Optional[str], tls_client_ca: Optional[str], registry: Optional[str], advertise: Optional[str],
              max_message_bytes: Optional[int]) -> None:
    """Serve this store over Arrow Flight until SIGTERM or Ctrl-C. The bearer token is in
    <store>/remote/token (created on first use, mode 0600)."""
    import logging

    from .serving import serve, token_path

    logging.basicConfig(level=logging.DEBUG if obj.debug else logging.INFO, format="%(message)s")

    def ready(location: str) -> None:
        auth = "mutual TLS" if tls_client_ca else "no auth" if no_auth else f"token in {token_path(obj.secret_dir)}"
        if obj.json:  # one line: scripts read it to learn the port
            click.echo(json.dumps({"location": location, "auth": auth}))
        else:
            click.echo(f"serving {location} ({auth})")
        sys.stdout.flush()

    serve(secret_dir=obj.secret_dir, host=host, port=port, allow_put=allow_put, no_auth=no_auth, insecure=insecure,
          tls_cert=tls_cert, tls_key=tls_key, tls_client_ca=tls_client_ca, registry=registry, advertise=advertise,
          max_message_bytes=max_message_bytes, ready=ready)


@main.command("pull")
@click.argument("peer")
@click.argument("name")
@click.option("--columns", help="Comma-separated columns (a partial pull).")
@click.option("--start", help="First time of the index (or --time-column), inclusive.")
@click.option("--end", help="End time, exclusive.")
@click.option("--time-column", help="Time column for --start/--end instead of the index.")
@click.option("--as", "local_name", help="Store the pulled table under this name (default: NAME).")
@_token_option
@_common_options
@click.pass_obj
def pull_cmd(obj: _Ctx, peer: str, name: str, columns: Optional[str], start: Optional[str], end: Optional[str],
             time_column: Optional[str], local_name: Optional[str], token: Optional[str], token_file: Optional[str]) -> None:
    """Pull a table from PEER into this store (only if it changed); with --columns,
    --start, --end only that part moves and is stored."""
    cols = None if columns is None else [c.strip() for c in columns.split(",") if c.strip()]
    with _remote(obj, peer, token, token_file, check_ttl_sec=0) as r:
        ev = r.pull(name, columns=cols, start=start, end=end, time_column=time_column, local_name=local_name)
    adc = (ev.get("metadata") or {}).get("adc") or {}
    payload = ev.get("payload") or {}
    out = {"table_name": ev["table_name"], "id": ev["id"], "remote_id": adc.get("remote_id"),
           "shape": payload.get("shape"), "bytes": payload.get("data_size")}
    if obj.json:
        _emit_json(out)
    else:
        click.echo(f"{out['table_name']}: version {out['id']} (remote {out['remote_id']}), shape {out['shape']}")


@main.command("push")
@click.argument("peer")
@click.argument("name")
@_token_option
@_common_options
@click.pass_obj
def push_cmd(obj: _Ctx, peer: str, name: str, token: Optional[str], token_file: Optional[str]) -> None:
    """Send this store's current version of NAME to PEER (which must run adc serve --allow-put)."""
    with _remote(obj, peer, token, token_file) as r:
        out = r.push(name, peer)
    if obj.json:
        _emit_json(out)
    else:
        click.echo(f"{name}: pushed to {peer} as version {out.get('id')}")


if __name__ == "__main__":  # pragma: no cover
    main()


# --- objects ---


def _ls_objects(obj: _Ctx, namespace: Optional[str]) -> None:
    from .named_objects import namespaces, objects

    spaces = [namespace] if namespace is not None else namespaces(obj.secret_dir)
    rows = [info for ns in spaces for info in objects(ns, obj.secret_dir).list()]
    if obj.json:
        _emit_json(rows)
        return
    store = _api().store_path(obj.secret_dir)
    if not rows:
        click.echo(f"no named objects in {store}" + (f" (namespace {namespace!r})" if namespace else ""), err=True)
        return
    cells = []
    for r in rows:
        shape = r.get("shape")
        what = r.get("dtype") or r.get("type") or ""
        cells.append([r["namespace"], r["name"], r["kind"] or "", what, "" if not shape else str(tuple(shape)),
                      _human_bytes(r["bytes"]), _transport(r["transport"]), r["created_at"] or "",
                      _one_line(r["description"] or "")])
    _print_table(("namespace", "object", "kind", "type", "shape", "size", "transport", "created", "description"), cells,
                 right=("size",), title=f"{store} (named objects)" if _is_terminal() else None)


def _show_object(obj: _Ctx, name: str, namespace: Optional[str], head: int) -> None:
    from .named_objects import objects

    objs = objects(namespace if namespace is not None else _core_default_namespace(), obj.secret_dir)
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
        _emit_json(out)
        return
    click.echo(f"{name}  namespace: {info['namespace']}  kind: {info['kind']}")
    for key in ("type", "dtype", "shape", "order", "buffers", "bytes", "transport", "id", "created_at", "expires_at",
                "description", "writer"):
        if info.get(key) is not None:
            value = _human_bytes(info[key]) + f" ({info[key]:,})" if key == "bytes" else info[key]
            click.echo(f"  {key:<13} {value}")
    if schema is not None:
        click.echo("")
        _print_table(("column", "arrow type"), [[f.name, str(f.type)] for f in schema], title="schema")
    if head > 0 and info["kind"] == "numpy":
        value = objs[name]
        click.echo("")
        click.echo(repr(value.reshape(-1)[:head]) if value.ndim else repr(value))


def _core_default_namespace() -> str:
    from . import _core

    return str(_core.DEFAULT_NAMESPACE)
