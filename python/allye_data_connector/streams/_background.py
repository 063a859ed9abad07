"""What a process runs in the background for its streams: the publisher thread, which
publishes the streams it appended to as v1 versions at most every interval, and the
flush of every open :class:`~.writer.Writer` and of those publications at exit (also
in ``multiprocessing`` children, which skip ``atexit``)."""

from __future__ import annotations

import atexit
import logging
import multiprocessing.util
import os
import threading
import time
import weakref
from typing import Any, Optional

from .. import _core

logger = logging.getLogger(__name__)


class _Publisher:
    """Publishes the streams this process appended to, at most every interval (a daemon
    thread) and once more at exit, so that 0.1.2 and the widgets see every row; and
    consolidates their small chunks in the same thread (``_core.stream_consolidate``), so
    that a process's first read of a stream of many appends maps a few files."""

    #: Merges per stream per wake-up (each replaces CONSOLIDATE_FANOUT small chunks).
    MERGES_PER_ROUND = 64
    #: At exit, how long the last consolidations may take.
    EXIT_BUDGET_SEC = 2.0

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._dirty: dict[tuple[str, str], float] = {}
        #: Streams with chunks to consolidate: the number of appends that asked for it.
        self._merge: dict[tuple[str, str], int] = {}
        self._wake = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._pid = os.getpid()

    def after_fork_in_child(self) -> None:
        """A forked child starts with nothing pending and no thread: the parent's thread is
        not here, and the lock may have been held by it at the fork (taking it would hang)."""
        self.__init__()  # type: ignore[misc]

    def _start(self) -> None:
        """Under the lock: started once per process."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="adc-stream-publisher", daemon=True)
            self._thread.start()

    def mark(self, store: str, table_name: str, interval: float) -> None:
        with self._lock:
            self._start()
            first = (store, table_name) not in self._dirty
            self._dirty[(store, table_name)] = interval
            self._merge[(store, table_name)] = self._merge.get((store, table_name), 0) + 1
        if first:
            self._wake.set()

    def consolidate_later(self, store: str, table_name: str) -> None:
        """An append without publication: its chunks are consolidated all the same."""
        with self._lock:
            self._start()
            self._merge[(store, table_name)] = self._merge.get((store, table_name), 0) + 1

    def _run(self) -> None:
        while True:
            self._wake.wait(0.25)
            self._wake.clear()
            with self._lock:
                dirty = dict(self._dirty)
                merge = dict(self._merge)
            for (store, table), interval in dirty.items():
                try:
                    if _core.stream_publish(table, secret_dir=store, interval_sec=interval) is not None:
                        with self._lock:
                            if self._dirty.get((store, table)) == interval:
                                del self._dirty[(store, table)]
                except Exception as exc:  # noqa: BLE001 - a background thread must not die
                    logger.warning("cannot publish stream %r: %s", table, exc)
                    with self._lock:
                        self._dirty.pop((store, table), None)
            for (store, table), asked in merge.items():
                self._consolidate(store, table, asked)

    def _consolidate(self, store: str, table: str, asked: int) -> None:
        try:
            report = _core.stream_consolidate(table, secret_dir=store, max_merges=self.MERGES_PER_ROUND)
        except Exception as exc:  # noqa: BLE001 - a background thread must not die
            logger.warning("cannot consolidate stream %r: %s", table, exc)
            report = {"merges": 0, "chunks_replaced": 0, "rows": 0, "busy": False}
        if report["merges"] < self.MERGES_PER_ROUND:
            # Nothing left to merge (or another process is on it): done until the next append.
            with self._lock:
                if self._merge.get((store, table)) == asked:
                    del self._merge[(store, table)]

    def forget(self, store: str, table_name: str) -> None:
        """Drops a pending publication (the stream is published now, or removed)."""
        with self._lock:
            self._dirty.pop((store, table_name), None)
            if not _core.stream_exists(table_name, secret_dir=store):
                self._merge.pop((store, table_name), None)

    def publish_now(self, store: str, table_name: str) -> Optional[_core.Version]:
        self.forget(store, table_name)
        return _core.stream_publish(table_name, secret_dir=store)

    def flush_all(self) -> None:
        with self._lock:
            if self._pid != os.getpid():
                return
            dirty, self._dirty = self._dirty, {}
            merge, self._merge = self._merge, {}
        for store, table in dirty:
            try:
                _core.stream_publish(table, secret_dir=store)
            except Exception as exc:  # noqa: BLE001 - at exit: say it, go on
                logger.warning("cannot publish stream %r at exit: %s", table, exc)
        deadline = time.monotonic() + self.EXIT_BUDGET_SEC
        for store, table in merge:
            while time.monotonic() < deadline:
                try:
                    report = _core.stream_consolidate(table, secret_dir=store, max_merges=8)
                except Exception as exc:  # noqa: BLE001 - at exit: say it, go on
                    logger.warning("cannot consolidate stream %r at exit: %s", table, exc)
                    break
                if report["merges"] < 8:
                    break


#: The one publisher of this process.
PUBLISHER = _Publisher()
os.register_at_fork(after_in_child=PUBLISHER.after_fork_in_child)

#: The writers of this process not closed yet (each adds itself when made).
OPEN_WRITERS: "weakref.WeakSet[Any]" = weakref.WeakSet()


def _close_at_exit() -> None:
    """Flushes every open writer of this process, then publishes what it appended."""
    for w in list(OPEN_WRITERS):
        if getattr(w, "_pid", None) != os.getpid():
            continue
        try:
            w.close()
        except Exception as exc:  # noqa: BLE001 - at exit: say it, go on
            if exc is not getattr(w, "_logged", None):  # a background error was logged when it happened
                logger.error("%r could not flush at exit: %s", w, exc)
    PUBLISHER.flush_all()


def _register_exit_hooks(_: object = None) -> None:
    # multiprocessing children leave through os._exit, which skips atexit; their exit
    # runs the finalizers registered this way. A forked child starts with none (its
    # bootstrap clears the registry), hence the re-registration after each fork.
    multiprocessing.util.Finalize(None, _close_at_exit, exitpriority=100)


class _ForkHook:
    """An object for ``register_after_fork`` to hold (it keeps a weak reference)."""


_FORK_HOOK = _ForkHook()
atexit.register(_close_at_exit)
_register_exit_hooks()
multiprocessing.util.register_after_fork(_FORK_HOOK, _register_exit_hooks)
