"""What the conversions remember between calls (column labels, schema hashes, schemas,
what a schema converts to), held by one object, :data:`CACHES`, and the frame's column
arrays both directions read."""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Optional

import pandas as pd
import pyarrow as pa

#: Threads of the parallel NaN scan of a send (one per CPU, at most 4).
SCAN_WORKERS = min(4, os.cpu_count() or 1)


def column_arrays(df: pd.DataFrame) -> list[Any]:
    """The frame's columns as their backing arrays (NumPy arrays or pandas extension
    arrays), by position, without building a Series per column (a tenth of the cost).
    ``DataFrame._get_column_array`` is private (pandas 1.3 to 3.x); other pandas versions
    take the public, slower way."""
    get = getattr(df, "_get_column_array", None)
    if get is not None:
        return [get(i) for i in range(df.shape[1])]
    return [df.iloc[:, i].values for i in range(df.shape[1])]


class Caches:
    """What the conversions remember between calls: pure functions of their keys, so a
    :meth:`clear` only costs the next calls their first-time price. Each dict holds at
    most :attr:`MAX_ENTRIES` entries (cleared when full)."""

    MAX_ENTRIES = 256

    def __init__(self) -> None:
        #: (Index, its labels) for the last column Index seen (Index objects are immutable).
        self.last_labels: tuple[Any, Any] = (None, None)
        #: schema_sha256 of frames of NumPy dtypes, by their labels (with types) and dtypes.
        self.shas: dict[Any, str] = {}
        #: Schemas of numeric frames, see ``_numeric_schema``.
        self.schemas: dict[Any, tuple[pa.Schema, dict[str, Any], int]] = {}
        #: What ``numeric_frame`` learnt per schema, see there.
        self.frames: dict[Any, Any] = {}
        # The parallel NaN scan's threads, made on first use (see ``after_fork_in_child``).
        self._scan_pool: Optional[ThreadPoolExecutor] = None
        self._scan_pool_lock = threading.Lock()

    def labels(self, columns: pd.Index) -> list[Any]:
        """``columns.tolist()``, remembered for the last Index object: a frame sent again
        (and the two conversions of one send) reads its labels once."""
        last = self.last_labels  # one read: another thread may replace it meanwhile
        if last[0] is columns:
            return last[1]  # type: ignore[no-any-return]
        labels = columns.tolist()
        self.last_labels = (columns, labels)
        return labels

    def put(self, cache: dict[Any, Any], key: Any, value: Any) -> None:
        if len(cache) >= self.MAX_ENTRIES:
            cache.clear()
        cache[key] = value

    def clear(self) -> None:
        self.last_labels = (None, None)
        self.shas.clear()
        self.schemas.clear()
        self.frames.clear()

    def scan_pool(self) -> ThreadPoolExecutor:
        """The NaN scan's thread pool, made on first use in each process."""
        with self._scan_pool_lock:
            if self._scan_pool is None:
                self._scan_pool = ThreadPoolExecutor(max_workers=SCAN_WORKERS, thread_name_prefix="adc-nan-scan")
            return self._scan_pool

    def after_fork_in_child(self) -> None:
        """A forked child inherits the pool object but not its threads, and the lock
        perhaps held by a thread of the parent: both start afresh."""
        self._scan_pool = None
        self._scan_pool_lock = threading.Lock()

    @property
    def scan_pool_started(self) -> bool:
        return self._scan_pool is not None


#: The one set of conversion caches.
CACHES = Caches()
os.register_at_fork(after_in_child=CACHES.after_fork_in_child)


def label_key(label: Any) -> Any:
    # 1, 1.0 and True are equal dict keys but different labels: key on the types too.
    if type(label) is tuple:
        return (label, tuple(map(type, label)))
    return (label, type(label))
