"""Progress reports and cancel tokens, as sends and loads take them.

A send converts the DataFrame to Arrow (the slow part for big or text-heavy frames),
then the Rust core writes it at memory speed; a load converts record batches to pandas.
With a progress callback or a cancel token, :mod:`.frames` converts piece by piece:
``progress(done_rows, total_rows)`` after each piece, the token checked before each one.
A send writes nothing before its conversion is complete, so a cancelled send leaves
nothing behind: no manifest line, no segment, no file. :class:`Bar` is the one progress
bar the package draws (``adc.load``, ``adc send``).
"""

from __future__ import annotations

import sys
import threading
from typing import Callable, Literal, Optional, Union

from .errors import CancelledError

#: ``progress(done_rows, total_rows)``; its return value is ignored.
Progress = Callable[[int, int], object]
#: A ``threading.Event`` (set: cancel) or a callable returning True to cancel.
Cancel = Union[threading.Event, Callable[[], bool]]


def is_cancelled(cancel: Optional[Cancel]) -> bool:
    if cancel is None:
        return False
    if isinstance(cancel, threading.Event):
        return cancel.is_set()
    return bool(cancel())


def check(cancel: Optional[Cancel], what: str) -> None:
    """Raises :class:`~.errors.CancelledError` when ``cancel`` says so; ``what`` names the
    operation ("the send", "the load")."""
    if is_cancelled(cancel):
        raise CancelledError(f"{what} was cancelled; nothing was written")


def interactive() -> bool:
    """Whether a progress bar can be drawn: in Jupyter (rich draws through an ipywidgets
    Output) or with stderr on a terminal."""
    if "ipykernel" in sys.modules:
        return True
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


#: What a :class:`Bar` counts, and so the columns it shows besides the bar itself.
BarUnit = Literal["rows", "bytes", "load"]


class Bar:
    """The progress bar of this package, drawn by rich on stderr: ``"rows"`` (done of
    total, time left) and ``"bytes"`` (size, speed, time left) vanish when closed;
    ``"load"`` (a spinner, the percentage once the total is known, the source's message
    and the time taken) stays, so that a finished load shows what it did. Use as a
    context manager, or :meth:`close` it."""

    def __init__(self, description: str, unit: BarUnit, total: Optional[int] = None) -> None:
        from rich.console import Console
        from rich.progress import (BarColumn, DownloadColumn, MofNCompleteColumn, ProgressColumn, SpinnerColumn,
                                   TaskProgressColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn,
                                   TransferSpeedColumn)
        from rich.progress import Progress as RichProgress

        columns: tuple[Union[str, ProgressColumn], ...]
        if unit == "load":
            columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(),
                       TextColumn("{task.fields[msg]}"), TimeElapsedColumn())
        elif unit == "bytes":
            columns = ("[progress.description]{task.description}", BarColumn(), DownloadColumn(),
                       TransferSpeedColumn(), TimeRemainingColumn())
        else:
            columns = ("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                       TimeRemainingColumn())
        console = Console(stderr=True) if unit == "load" else Console(stderr=True, highlight=False, soft_wrap=True)
        self._rich = RichProgress(*columns, console=console, transient=unit != "load")
        self._rich.start()
        self._task = self._rich.add_task(description, total=total, msg="")

    def update(self, done: int, total: Optional[int] = None, msg: str = "") -> None:
        """``done`` of ``total`` (None: the total stays as it is, unknown at first)."""
        self._rich.update(self._task, completed=done, total=total, msg=msg)

    def advance(self, amount: int) -> None:
        self._rich.update(self._task, advance=amount)

    def close(self) -> None:
        # In Jupyter rich's stop() does not draw the last state (100%): draw it first.
        self._rich.refresh()
        self._rich.stop()

    def __enter__(self) -> "Bar":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
