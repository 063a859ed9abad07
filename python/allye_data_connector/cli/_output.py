"""How ``adc`` prints: rich tables sized to the terminal, plain aligned text when piped;
JSON; sizes, ages and transports in words; untrusted text (table names, values, error
messages that quote a file) made safe to print."""

from __future__ import annotations

import json
import sys
import unicodedata
from typing import Any, Optional, Sequence

import click

#: Longest value ``adc show`` prints in one cell (display columns; ``--cell-width``).
CELL_WIDTH = 60
#: Longest error line: a message quoting a file's bytes keeps its head and its tail.
ERROR_WIDTH = 1000
#: Columns between two columns of a table (rich's padding (0, 1) on both sides).
_GAP = 2
_ELLIPSIS = "…"
# Code points that move the cursor, start an escape sequence, reorder text or are
# invisible: control characters (C0, DEL, C1: ESC starts every terminal sequence),
# format characters (bidirectional overrides, zero-width), surrogates (undecodable
# bytes), line and paragraph separators.
_UNSAFE = frozenset(("Cc", "Cf", "Cs", "Zl", "Zp"))


def is_terminal() -> bool:
    return sys.stdout.isatty()


def console(stderr: bool = False) -> Any:
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=True)


def emit_json(obj: Any) -> None:
    """``obj`` as indented JSON; non-ASCII text as is, but a code point that could act on
    a terminal (which JSON leaves raw: DEL, C1 controls, bidirectional overrides) as its
    ``\\uXXXX`` escape, so the JSON is the same value and safe to print."""
    text = json.dumps(obj, ensure_ascii=False, default=str, indent=2)
    if not text.replace("\n", "").isprintable():
        text = "".join(json.dumps(c)[1:-1] if c != "\n" and unicodedata.category(c) in _UNSAFE else c for c in text)
    click.echo(text)


def safe(text: Any) -> str:
    """``text`` with every code point that could act on a terminal written as its Python
    escape (``\\x1b``, ``\\n``, ``\\u202e``): what is printed is what is there, and no
    name, value or quoted file can move the cursor, recolour or retitle the terminal."""
    s = str(text)
    if s.isprintable():  # the common case, in C
        return s
    return "".join(c.encode("unicode_escape", "backslashreplace").decode("ascii")
                   if unicodedata.category(c) in _UNSAFE else c for c in s)


def width_of(text: str) -> int:
    """Columns ``text`` takes on a terminal (wide East Asian characters take two)."""
    from rich.cells import cell_len

    return int(cell_len(text))


def cut(text: Any, width: int) -> str:
    """``safe(text)`` in at most ``width`` columns, ending in an ellipsis when cut;
    ``width`` 0 keeps it whole. Only the first ``width`` characters of a long value are
    looked at, so a 10 MB value costs what a short one does."""
    s = str(text)
    if width <= 0:
        return safe(s)
    s = safe(s[: width + 1])
    if width_of(s) <= width:
        return s
    from rich.cells import set_cell_size

    return str(set_cell_size(s, width - 1)).rstrip() + _ELLIPSIS


def one_line(text: str, limit: int = 0) -> str:
    """``text`` on one line, made safe (:func:`safe`); with ``limit``, a longer text keeps
    its head and its tail around an ellipsis (the tail says what to do)."""
    s = safe(" ".join(str(text).split()))
    if limit and len(s) > limit:
        s = s[: limit * 2 // 3] + f" {_ELLIPSIS} " + s[-(limit // 3):]
    return s


def fit_widths(headers: Sequence[str], rows: Sequence[Sequence[str]], width: int,
               shrink: Sequence[str]) -> list[int]:
    """Column widths that fit ``width`` terminal columns: each column as wide as its
    widest cell, then the ``shrink`` columns (names, states, descriptions: the ones an
    ellipsis hurts least) narrowed, the widest first, never below their header. Numbers,
    sizes and times are never cut. May stay wider than ``width`` when the columns that
    can shrink are all at their header's width."""
    natural = [max([width_of(h)] + [width_of(r[i]) for r in rows]) for i, h in enumerate(headers)]
    widths = list(natural)
    floor = {headers.index(h): max(width_of(h), 4) for h in shrink if h in headers}
    excess = sum(widths) + _GAP * (len(widths) - 1) - width
    while excess > 0:
        room = [i for i in floor if widths[i] > floor[i]]
        if not room:
            break
        i = max(room, key=lambda j: widths[j])
        widths[i] -= 1
        excess -= 1
    return widths


def print_table(headers: Sequence[str], rows: Sequence[Sequence[str]], *, right: Sequence[str] = (),
                title: Optional[str] = None, shrink: Sequence[str] = (), fold: bool = False) -> None:
    """A table. In a terminal: rich, one line per row, as wide as the terminal at most;
    the ``shrink`` columns are narrowed to fit and end in an ellipsis when cut
    (:func:`fit_widths`), or with ``fold`` go on over more lines (a reference table,
    where every word counts: ``adc sources``, ``adc config``). Piped or redirected: plain text aligned by display width (wide
    characters count two) with every cell whole, for grep, awk, less and files. Cells
    are printed safe (:func:`safe`) either way."""
    rows = [[safe(c) for c in r] for r in rows]
    headers = [safe(h) for h in headers]
    if is_terminal():
        from rich.table import Table
        from rich.text import Text

        con = console()
        widths = fit_widths(headers, rows, con.width, shrink)
        if title:
            con.print(Text(safe(title), overflow="fold"), soft_wrap=False)
        t = Table(box=None, pad_edge=False, header_style="bold underline", show_edge=False)
        for h, w in zip(headers, widths):
            folds = fold and h in shrink
            t.add_column(h, justify="right" if h in right else "left", width=w, no_wrap=not folds,
                         overflow="fold" if folds else "ellipsis")
        for r in rows:
            t.add_row(*(Text(c) for c in r))  # Text: names are not rich markup
        con.print(t, soft_wrap=False)
        return
    if title:
        click.echo(safe(title))
    widths = [max([width_of(h)] + [width_of(r[i]) for r in rows]) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        out = []
        for c, w, h in zip(cells, widths, headers):
            pad = " " * (w - width_of(c))
            out.append(pad + c if h in right else c + pad)
        return "  ".join(out).rstrip()

    click.echo(line(headers))
    for r in rows:
        click.echo(line(r))


def terminal_width() -> int:
    """The terminal's width in columns (rich's reading of it: $COLUMNS, else the tty)."""
    return int(console().width)


def human_bytes(n: Optional[int]) -> str:
    if n is None:
        return ""
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return str(n)


def human_age(sec: Optional[float]) -> str:
    if sec is None:
        return ""
    sec = max(0.0, sec)
    for div, unit in ((86400, "d"), (3600, "h"), (60, "m")):
        if sec >= div:
            return f"{sec / div:.1f}{unit}"
    return f"{sec:.0f}s"


def seconds_until(when: Optional[str]) -> Optional[float]:
    """Seconds from now until the ISO 8601 time ``when`` (negative once past)."""
    if not when:
        return None
    from datetime import datetime, timezone

    try:
        t = datetime.fromisoformat(when)
    except ValueError:
        return None
    if t.tzinfo is None:
        t = t.replace(tzinfo=timezone.utc)
    return (t - datetime.now(timezone.utc)).total_seconds()


def human_when(when: Optional[str]) -> str:
    """An ISO time as a terminal shows it: ``in 59.0m`` ahead, ``3.2h ago`` past."""
    sec = seconds_until(when)
    if sec is None:
        return when or ""
    return f"in {human_age(sec)}" if sec >= 0 else f"{human_age(-sec)} ago"


def plural(n: int, noun: str, nouns: Optional[str] = None) -> str:
    """``1 payload``, ``2 payloads``, ``1,000 rows``."""
    return f"{n:,} {noun if n == 1 else (nouns or noun + 's')}"


def transport_name(name: Optional[str]) -> str:
    return (name or "").replace("_arrow_ipc_v1", "").replace("_arrow_stream_v1", "")
