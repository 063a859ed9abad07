"""Watching for new versions of tables: :func:`iter_versions` yields a record for each
``ready`` line appended to the store's manifest, :class:`Watch` runs it in a background
thread with a callback (what ``watch()`` returns). Woken as :mod:`.._wait` waits.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from typing import Any, Callable, Optional

from .. import _core
from .._wait import SLICE_SEC, new_watcher
from . import records

logger = logging.getLogger(__name__)


def iter_versions(
    table_name: Optional[str] = None,
    *,
    secret_dir: Optional[str] = None,
    producer: Optional[str] = None,
    timeout_sec: Optional[float] = None,
    include_errors: bool = False,
    force_polling: Optional[bool] = None,
    poll_interval_sec: Optional[float] = None,
    stop: Optional[threading.Event] = None,
) -> Iterator[dict[str, Any]]:
    """Yields a record for every new ``ready`` line (of ``table_name``, or of any table)
    appended after the call, in manifest order; with ``include_errors``, ``error`` lines
    too (a removal, a failed send). Stops after ``timeout_sec`` without a new version
    (None: never), or when ``stop`` is set."""
    # Set up now (not at the first next()): what lands after this call is news.
    tail = _core.ManifestTail(secret_dir=secret_dir, from_start=False)
    watcher = new_watcher(secret_dir, force_polling=force_polling, poll_interval_sec=poll_interval_sec)
    # Versions that exist already are not news, even if a compaction rewrites them.
    seen: set[str] = set()
    for st in _core.table_states(secret_dir=secret_dir):
        for ev in (st["ready"], st["latest"]):
            if ev:
                seen.add(ev["id"] + ":" + ev["status"])
    return _versions(tail, watcher, seen, table_name, producer, timeout_sec, include_errors, stop)


def _versions(
    tail: Any,
    watcher: Any,
    seen: set[str],
    table_name: Optional[str],
    producer: Optional[str],
    timeout_sec: Optional[float],
    include_errors: bool,
    stop: Optional[threading.Event],
) -> Iterator[dict[str, Any]]:
    deadline = None if timeout_sec is None else time.monotonic() + timeout_sec
    while True:
        for ev in tail.read_new():
            if ev["status"] not in ("ready", "error") or (ev["status"] == "error" and not include_errors):
                continue
            if ev["status"] == "ready" and not ev.get("payload"):
                continue
            if table_name is not None and ev["table_name"] != table_name:
                continue
            if producer is not None and ev["producer"] != producer:
                continue
            key = ev["id"] + ":" + ev["status"]
            if key in seen:
                continue
            seen.add(key)
            yield {**records.version(ev), "status": ev["status"], "metadata": ev.get("metadata") or {}}
            if timeout_sec is not None:
                deadline = time.monotonic() + timeout_sec
        while True:
            if stop is not None and stop.is_set():
                return
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                return
            left = SLICE_SEC if deadline is None else min(SLICE_SEC, deadline - now)
            if watcher.wait(left):
                break


class Watch:
    """A background watch started by :func:`watch` with a callback; ``stop()`` ends it."""

    def __init__(self, callback: Callable[[dict[str, Any]], Any], kwargs: dict[str, Any]) -> None:
        self._stop = threading.Event()
        self.errors: list[BaseException] = []
        self._callback = callback
        self._kwargs = kwargs
        # Set up here, not in the thread: a version that lands once this returns is news
        # (a thread that started late would take it for the starting point and miss it).
        self._versions = iter_versions(stop=self._stop, **kwargs)
        self._thread = threading.Thread(target=self._run, name="allye-watch", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            for rec in self._versions:
                try:
                    self._callback(rec)
                except Exception as exc:  # noqa: BLE001 - a failing callback must not end the watch silently
                    logger.exception("watch callback failed on %r", rec.get("table_name"))
                    self.errors.append(exc)
        except Exception as exc:  # noqa: BLE001
            logger.exception("watch stopped")
            self.errors.append(exc)

    def stop(self, timeout_sec: Optional[float] = 5.0) -> None:
        self._stop.set()
        self._thread.join(timeout_sec)

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def __enter__(self) -> "Watch":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
