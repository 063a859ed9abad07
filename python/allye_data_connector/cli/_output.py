"""How ``adc`` prints: rich tables in a terminal, plain aligned text when piped; JSON;
sizes, ages and transports in words."""

from __future__ import annotations

import json
import sys
from typing import Any, Optional, Sequence

import click


def is_terminal() -> bool:
    return sys.stdout.isatty()


def console(stderr: bool = False) -> Any:
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=True)


def emit_json(obj: Any) -> None:
    click.echo(json.dumps(obj, ensure_ascii=False, default=str, indent=2))


def print_table(headers: Sequence[str], rows: Sequence[Sequence[str]], *, right: Sequence[str] = (),
                 title: Optional[str] = None) -> None:
    """A table: rich in a terminal (cells wrap, never cut), else plain aligned text with
    every cell whole (for grep, awk, less and files)."""
    if is_terminal():
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
        console().print(t)
        return
    if title:
        click.echo(title)
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c.rjust(w) if h in right else c.ljust(w) for c, w, h in zip(cells, widths, headers)).rstrip()

    click.echo(line(headers))
    for r in rows:
        click.echo(line(r))


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


def one_line(text: str) -> str:
    return " ".join(str(text).split())


def transport_name(name: Optional[str]) -> str:
    return (name or "").replace("_arrow_ipc_v1", "").replace("_arrow_stream_v1", "")
