"""Waiting on a store's log, woken by file-system notifications on it (``inotify`` on
Linux, through the Rust ``notify`` crate) with a polling fallback: what
``get_dataframe(wait=True)``, ``adc get --wait``, ``Objects.wait`` and the table watches
block in. The blocking happens in Rust without the GIL, in slices of at most
:data:`SLICE_SEC`, so Ctrl-C (``KeyboardInterrupt``) is honoured within that time.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any, Callable, Optional

from . import _core
from .errors import InvalidArgumentError, TableNotFoundError, WaitTimeoutError

logger = logging.getLogger(__name__)

#: Longest uninterruptible block, in seconds.
SLICE_SEC = 0.1
#: Polling interval of the fallback (the Rust watcher's default).
DEFAULT_POLL_SEC: float = _core.DEFAULT_POLL_SEC
#: Environment variable that forces polling (file systems without events).
FORCE_POLLING_ENV = "ALLYE_WATCH_POLLING"


def _force_polling(force: Optional[bool]) -> bool:
    if force is not None:
        return force
    return os.environ.get(FORCE_POLLING_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def new_watcher(secret_dir: Optional[str], *, force_polling: Optional[bool] = None, poll_interval_sec: Optional[float] = None) -> Any:
    w = _core.ManifestWatcher(secret_dir=secret_dir, force_polling=_force_polling(force_polling), poll_interval_sec=poll_interval_sec)
    logger.debug("watching the manifest of %s by %s", secret_dir or "the default store", w.mode)
    return w


def wait_until(
    attempt: Callable[[], Any],
    *,
    secret_dir: Optional[str],
    timeout_sec: Optional[float],
    force_polling: Optional[bool] = None,
    poll_interval_sec: Optional[float] = None,
) -> Any:
    """Calls ``attempt()`` until it stops raising :class:`TableNotFoundError`, retrying
    each time the manifest changes; after ``timeout_sec`` (None: forever) raises
    :class:`WaitTimeoutError` (a ``TableNotFoundError`` too) naming the timeout."""
    if timeout_sec is not None and timeout_sec < 0:
        raise InvalidArgumentError(f"timeout_sec={timeout_sec:g} is negative: pass seconds >= 0, or None to wait forever")
    try:
        return attempt()
    except TableNotFoundError as exc:
        if timeout_sec is not None and timeout_sec <= 0:
            raise _timed_out(exc, timeout_sec) from exc
    deadline = None if timeout_sec is None else time.monotonic() + timeout_sec
    watcher = new_watcher(secret_dir, force_polling=force_polling, poll_interval_sec=poll_interval_sec)
    # A version may have landed between the first attempt and the watcher's start.
    while True:
        try:
            return attempt()
        except TableNotFoundError as exc:
            if deadline is not None and time.monotonic() >= deadline:
                raise _timed_out(exc, timeout_sec) from exc
        while True:
            left = SLICE_SEC if deadline is None else min(SLICE_SEC, deadline - time.monotonic())
            if left <= 0 or watcher.wait(left):
                break


def _timed_out(exc: TableNotFoundError, timeout_sec: Optional[float]) -> WaitTimeoutError:
    if isinstance(exc, WaitTimeoutError):
        return exc
    return WaitTimeoutError(f"{exc}; waited the whole timeout of {timeout_sec:g} s (timeout_sec) for it")
