"""The ``adc`` group: the context every command gets, errors printed as one line with
the exit codes scripts can trust, the options every command takes before or after it,
and ``--version``.

Exit codes, the same for every command (:func:`exit_code` maps the error classes to
them): 0 success; 1 any other failure; 2 bad usage or a bad option value; 3 not found
(a table, also expired or removed; an input file; an array or object); 4 unreadable (a
payload missing or corrupt, an input file or source that cannot be read); 5 timed out
(``watch --timeout``, ``get --wait``, a silent peer); 130 interrupted or cancelled. Every error prints one line (``error: ...``) on stderr,
without a traceback unless ``--debug``. ``--json`` (before or after the command) prints
machine-readable output on stdout.
"""

from __future__ import annotations

import difflib
import logging
import os
import re
import sys
from types import ModuleType
from typing import Any, Callable, NoReturn, Optional, Sequence

import click

from .. import errors
from ._output import ERROR_WIDTH, one_line


EXIT_ERROR, EXIT_USAGE, EXIT_NOT_FOUND, EXIT_PAYLOAD, EXIT_TIMEOUT, EXIT_INTERRUPTED = 1, 2, 3, 4, 5, 130

logger = logging.getLogger(__name__)


class Ctx:
    def __init__(self, secret_dir: Optional[str], as_json: bool, debug: bool) -> None:
        self.secret_dir = secret_dir
        self.json = as_json
        self.debug = debug


def tables_api() -> ModuleType:
    """The table calls, imported on first use (pandas and pyarrow take ~0.5 s to import,
    which ``adc --version`` and ``adc --help`` need not pay)."""
    from .. import tables

    return tables


# ---- errors ----------------------------------------------------------------------------


def exit_code(exc: BaseException) -> int:
    """The exit code of an error, for every command: the one place the error hierarchy
    (:mod:`..errors`, and the built-in exceptions it derives from) meets the codes.
    Checked in this order, as the classes overlap (a wait that ran out is also a missing
    table; a missing payload is also a missing file)."""
    if isinstance(exc, (KeyboardInterrupt, errors.CancelledError)):
        return EXIT_INTERRUPTED
    if isinstance(exc, TimeoutError) or (isinstance(exc, errors.RemoteUnavailableError)
                                         and getattr(exc, "timed_out", False)):
        return EXIT_TIMEOUT  # WaitTimeoutError, a peer silent for --timeout
    if isinstance(exc, (errors.PayloadError, errors.SourceError, PermissionError)):
        return EXIT_PAYLOAD  # the data is there and cannot be read: a payload, an input file, a source
    if isinstance(exc, (errors.TableNotFoundError, FileNotFoundError)):
        return EXIT_NOT_FOUND  # a table (expired, removed), an array, an object, an input file
    if isinstance(exc, errors.InvalidArgumentError) and not isinstance(exc, errors.SchemaConflictError):
        return EXIT_USAGE  # a value of an option or argument that cannot be used
    if isinstance(exc, click.ClickException):
        return exc.exit_code
    return EXIT_ERROR


# The library's messages name what a Python caller passes (an argument, a function); a
# command line user has an option or a command for each.
_CLI_SPELLING = tuple((re.compile(p), r) for p, r in (
    (r"\bapply to mode=(['\"])replace\1", "apply to a load without --append"),
    (r"\bload with mode=(['\"])replace\1", "load without --append"),
    (r"\bmode=(['\"])replace\1", "a load without --append"),
    (r"\bload\(mode=(['\"])append\1\)", "load --append"),
    (r"\bmode=(['\"])append\1", "--append"),
    (r"\bremove_table\(('(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\")\)", r"`adc rm \1`"),
    (r"\bas token= or \$ALLYE_REMOTE_TOKEN", "with --token, --token-file or $ALLYE_REMOTE_TOKEN"),
    (r"\btoken=", "--token"),
    (r" \(allow_put=True\)", ""),
    (r"\bgc\(dry_run=False\)", "`adc gc --delete`"),
    (r"\btimeout_sec=", "--timeout "),
))


def cli_spelling(message: str) -> str:
    """``message`` with the Python spellings it names (``mode='append'``,
    ``remove_table('t')``, ``token=``) as the command line's (``--append``, ``adc rm
    't'``, ``--token``)."""
    for pattern, repl in _CLI_SPELLING:
        message = pattern.sub(repl, message)
    return message


def error_line(exc: BaseException, debug: bool = False) -> str:
    """The one line (``error: ...``) an error prints: our errors' message; a file the
    system could not open as ``path: reason``; anything else with its class, and a hint
    at ``--debug``. Made safe to print (a message may quote a file's bytes) and bounded."""
    if isinstance(exc, errors.AllyeError):
        message = cli_spelling(str(exc))
    elif isinstance(exc, click.ClickException):
        message = exc.format_message()
    elif isinstance(exc, OSError):  # a file, a port: the system's reason, with what it is about
        message = f"{exc.filename}: {exc.strerror}" if exc.filename and exc.strerror else exc.strerror or str(exc)
    else:  # not ours: name the kind of failure, keep the traceback for --debug
        message = f"{type(exc).__name__}: {exc}" + ("" if debug else " (run with --debug for the traceback)")
    return "error: " + one_line(message, ERROR_WIDTH)


def not_found(obj: Ctx, name: str, exc: errors.TableNotFoundError) -> errors.TableNotFoundError:
    """The same error, its message telling the command line user what exists: close
    names, and ``adc ls``."""
    message = str(exc).replace("; list what exists with list_tables()", "")
    try:
        known = [t["table_name"] for t in tables_api().list_tables(secret_dir=obj.secret_dir, all_states=True, with_schema=False)]
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
            obj = ctx.find_object(Ctx)
            debug = obj is not None and obj.debug
            if debug:
                import traceback

                traceback.print_exc()
            click.echo(error_line(exc, debug), err=True)
            ctx.exit(exit_code(exc))

    def main(self, args: Optional[Sequence[str]] = None, prog_name: Optional[str] = None, **extra: Any) -> NoReturn:  # type: ignore[override]
        extra.pop("standalone_mode", None)
        try:
            rv = super().main(args, prog_name, standalone_mode=False, **extra)
            code = rv if isinstance(rv, int) else 0
        except click.UsageError as exc:
            # click prints usage, a hint and the error over four lines; one is enough.
            where = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
            click.echo(f"error: {one_line(exc.format_message(), ERROR_WIDTH).rstrip('.')}{where}", err=True)
            code = exc.exit_code
        except click.ClickException as exc:
            click.echo(error_line(exc), err=True)
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
        ctx.ensure_object(Ctx).json = True


def _set_debug(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if value:
        ctx.ensure_object(Ctx).debug = True
        logging.getLogger().setLevel(logging.DEBUG)


def _set_secret_dir(ctx: click.Context, param: click.Parameter, value: Optional[str]) -> None:
    if value is not None:
        ctx.ensure_object(Ctx).secret_dir = value


def common_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """``--json``, ``--debug`` and ``--secret-dir`` after the command as well as before it."""
    f = click.option("--secret-dir", "-d", type=click.Path(file_okay=False), expose_value=False, callback=_set_secret_dir,
                     help="Store directory (same as before the command).")(f)
    f = click.option("--debug", is_flag=True, expose_value=False, callback=_set_debug,
                     help="Debug logging, and tracebacks on errors.")(f)
    f = click.option("--json", is_flag=True, expose_value=False, callback=_set_json,
                     help="Machine-readable JSON on stdout.")(f)
    return f


def _version() -> str:
    from .. import __version__  # the extension's, loaded with the package (importlib.metadata costs ~40 ms)

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
    1 failure, 2 bad usage or option value, 3 not found (table, file), 4 unreadable
    (payload, file, source), 5 timed out, 130 interrupted or cancelled."""
    logging.basicConfig(level=logging.DEBUG if debug else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    ctx.obj = Ctx(secret_dir, as_json, debug)
