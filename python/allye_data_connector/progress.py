"""Progress reports and cancel tokens, as sends and loads take them.

A send converts the DataFrame to Arrow (the slow part for big or text-heavy frames),
then the Rust core writes it at memory speed; a load converts record batches to pandas.
With a progress callback or a cancel token, :mod:`.convert` converts piece by piece:
``progress(done_rows, total_rows)`` after each piece, the token checked before each one.
A send writes nothing before its conversion is complete, so a cancelled send leaves
nothing behind: no manifest line, no segment, no file.
"""

from __future__ import annotations

import threading
from typing import Callable, Optional, Union

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
