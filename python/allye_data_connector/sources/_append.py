"""``load(mode="append")``: the source's rows become chunks of a streaming table as they
arrive, every chunk line carrying how far the load got, so that a kill, cancel or error
after chunk k resumes after chunk k (:func:`run`)."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any, Optional, Union

import pyarrow as pa
import pyarrow.compute as pc

from .. import _core
from ..errors import AllyeError, CancelledError, SourceError, TableNotFoundError
from ..streams import evolve
from ..streams.api import stream_schema
from ..progress import Cancel, is_cancelled
from ._feed import Feed, LoadProgress, decode_cursor, encode_cursor, larger, newer
from .base import DataSource

logger = logging.getLogger(__name__)

#: Age at which a group of batches becomes a chunk when the next batch arrives (the
#: stream Writer's flush interval).
_FLUSH_AFTER_SEC = float(_core.DEFAULT_FLUSH_INTERVAL_SEC)


def _adopt(table: str, store: str) -> None:
    """A plain table about to be appended to becomes a stream (the core's
    ``stream_adopt``): its current version is the first chunk, with the load state its
    ``ready`` line had (a replace with a cursor, or an append of before streams), so the
    append resumes after it."""
    line = _core.stream_adopt(table, secret_dir=store)
    if line is not None:
        logger.info("%r became a streaming table: its version %s is the first chunk (%d rows)",
                    table, line.get("adopted"), line["rows"])


def _resume_point(table: str, store: str, described: str, cursor: Optional[str],
                  lines: Sequence[Mapping[str, Any]], schema: Optional[pa.Schema]) -> tuple[Optional[pa.Scalar], int]:
    """Where this load starts: (rows must have a cursor above this, rows past it already
    appended by a load of the same source that was killed or cancelled)."""
    key = _core.METADATA_LOAD
    state = next((ln[key] for ln in reversed(lines)
                  if isinstance(ln.get(key), dict) and ln[key].get("source") == described
                  and ln[key].get("cursor") == cursor), None)
    if cursor is None:
        return None, int(state.get("skip", 0)) if state else 0
    if schema is None or not lines:
        return None, 0
    if cursor not in schema.names:
        raise SourceError(f"the table {table!r} has no column {cursor!r} to resume from")
    if state is not None and "last" in state:
        last = None if state["last"] is None else decode_cursor(state["last"], schema.field(cursor).type)
        return last, int(state.get("skip", 0))
    # Rows appended without this source's state (adc.append, another source): resume
    # after the largest value the stream holds.
    column = pa.table(_core.stream_read(table, secret_dir=store)[1])[cursor]
    m = pc.max(column)
    return (m if m.is_valid else None), 0


def _published_rows(table: str, store: str) -> Optional[int]:
    """Rows of the stream's latest v1 publication (None: none)."""
    try:
        event = _core.latest(table, secret_dir=store)
    except TableNotFoundError:
        return None
    rows = ((event.get("metadata") or {}).get(_core.METADATA_STREAM) or {}).get("rows")
    return None if rows is None else int(rows)


def _order_by_cursor(src: DataSource) -> bool:
    """True when the source's rows come in cursor order (a SQL source with a cursor
    orders them itself). Then every row up to a chunk's largest value is in that chunk or
    an earlier one (a chunk never ends inside a run of equal values), and a run after a
    kill resumes with ``WHERE cursor > <that value>`` instead of re-reading the killed
    run's rows."""
    return bool(src.cursor) and bool(src.ordered_by_cursor)


def run(src: DataSource, table: str, store: str, *, progress: Union[bool, LoadProgress, None],
        cancel: Optional[Cancel], batch_rows: int, durable: bool, chunk_bytes: int, publish: bool) -> dict[str, Any]:
    """``mode="append"``: the source's rows become chunks of stream ``table`` as they arrive.

    A group of batches is appended when the next batch arrives and the group holds
    ``chunk_bytes`` or is older than the flush interval; the last group at the end, with
    the final state. So every chunk but the last says ``{"last": <resume bound>, "skip":
    rows past it this load appended}`` and the last one ``{"last": <largest cursor>}``:
    a run after a kill re-reads from the same bound and drops the ``skip`` rows it
    already has. That holds for any source that returns its rows in the same order when
    read again (a file that only grows at its end, a paged API), whatever the order of
    the cursor values. A SQL source with a cursor orders its rows by it, so its chunks
    say ``{"last": <largest value so far>}`` and a re-run queries only past it; a group
    never ends inside a run of equal cursor values (the run moves to the next group), so
    no row of a tie is left behind."""
    lock = _wait_for_load_lock(table, store, cancel)
    try:
        return _append_locked(src, table, store, progress=progress, cancel=cancel, batch_rows=batch_rows,
                              durable=durable, chunk_bytes=chunk_bytes, publish=publish)
    finally:
        lock.release()


def _wait_for_load_lock(table: str, store: str, cancel: Optional[Cancel]) -> Any:
    """The stream's load lock: one appending load at a time (two would resume from the
    same state and append the same rows twice). Waits for another load to end."""
    waiting = False
    while True:
        lock = _core.stream_load_lock(table, secret_dir=store)
        if lock is not None:
            return lock
        if not waiting:
            logger.info("another load is appending to %r: waiting for it to end", table)
            waiting = True
        if is_cancelled(cancel):
            raise CancelledError(f"the load into {table!r} was cancelled while waiting for another load "
                                 "appending to it; nothing was appended")
        time.sleep(0.05)


def _append_locked(src: DataSource, table: str, store: str, *, progress: Union[bool, LoadProgress, None],
                   cancel: Optional[Cancel], batch_rows: int, durable: bool, chunk_bytes: int,
                   publish: bool) -> dict[str, Any]:
    """:func:`run` under the stream's load lock: finds where to resume, appends the
    source's rows as :class:`_Chunks`, then publishes the stream."""
    described = src.describe()
    if not _core.stream_exists(table, secret_dir=store):
        _adopt(table, store)
    lines = _core.stream_chunks(table, secret_dir=store)
    schema = stream_schema(store, table) if lines else None
    lower, skip = _resume_point(table, store, described, src.cursor, lines, schema)
    if lower is not None and not lower.is_valid:
        lower = None
    src.last_cursor = None if lower is None else lower.as_py()
    feed = Feed(src, table, progress, cancel, batch_rows, f"the load into {table!r} was cancelled")
    # The stream's schema evolves: batches keep their own types (the core unifies them),
    # and records whose values cannot share a column are refused one by one.
    feed.schema = schema
    feed.refused = []
    chunks = _Chunks(src, table, store, feed, lower=lower, skip=skip, durable=durable, chunk_bytes=chunk_bytes)
    try:
        try:
            for b in feed.start():
                chunks.add(b)
            feed.check_cancel()
            chunks.finish()
        except BaseException as e:
            kept = (f"; the {chunks.rows:,} rows appended before stay and the next append resumes after them"
                    if chunks.rows else "; nothing was appended")
            if isinstance(e, CancelledError):
                raise CancelledError(f"the load into {table!r} was cancelled{kept}") from None
            if isinstance(e, (AllyeError, KeyboardInterrupt, SystemExit)):
                raise
            raise SourceError(f"the source {described} failed{kept}: {src.redact(str(e))}") from e
        feed.show(feed.rows, feed.rows, f"{feed.rows:,} rows loaded")
    finally:
        feed.close()
    event: Optional[_core.Version] = None
    total = sum(int(ln["rows"]) for ln in _core.stream_chunks(table, secret_dir=store))
    # Also when nothing was appended now: a killed run (or publish=False) may have left
    # chunks the v1 version does not hold yet.
    if publish and total and (chunks.rows or _published_rows(table, store) != total):
        from ..streams import api as streams

        event = streams.publish(table, secret_dir=store)
    logger.info("appended %d rows from %s to %r in %d chunks (%d rows)", chunks.rows, described, table,
                chunks.count, total)
    refused = list(feed.refused or []) + [r for t in chunks.refused for r in t.to_pylist()]
    if refused:
        raise evolve.refusal(table, feed.conflicts + chunks.conflicts, refused, len(refused), chunks.rows,
                             None, "row(s) of the source")
    return {
        "table_name": table, "rows": total, "rows_loaded": chunks.rows,
        "id": None if event is None else event["id"], "chunks": chunks.count,
        "cursor": src.cursor, "last_cursor": None if chunks.best is None else chunks.best.as_py(),
    }


class _Chunks:
    """The batches of an appending load, grouped into chunks and appended with the load's
    state on each chunk line (the rules are :func:`run`'s)."""

    def __init__(self, src: DataSource, table: str, store: str, feed: Feed, *, lower: Optional[pa.Scalar],
                 skip: int, durable: bool, chunk_bytes: int) -> None:
        self.table, self.store, self.feed, self.durable, self.chunk_bytes = table, store, feed, durable, chunk_bytes
        self.cursor = src.cursor
        self.ordered = _order_by_cursor(src)
        #: The resume bound: rows must have a larger cursor value.
        self.lower = lower
        #: The largest cursor value seen, the rows dropped as already appended included.
        self.best: Optional[pa.Scalar] = lower
        #: The largest cursor value committed in a chunk so far (sources ordered by it).
        self.committed: Optional[pa.Scalar] = lower
        #: Rows and chunks this load appended; rows past ``lower`` the chunks say they hold.
        self.rows, self.count, self.skip = 0, 0, skip
        #: Rows a killed run of this load appended already, still to drop.
        self.to_skip = skip
        #: Rows refused because a column could not take their values, and why.
        self.refused: list[pa.Table] = []
        self.conflicts: list[dict[str, Any]] = []
        self.base: dict[str, Any] = {"source": src.describe(), "mode": "append"}
        if self.cursor:
            self.base["cursor"] = self.cursor
        self.group: list[pa.RecordBatch] = []
        self.started = 0.0

    def add(self, b: pa.RecordBatch) -> None:
        """One batch of the source: past the resume point, into the group; the group
        before it appended first when it is full or old (and may end there)."""
        cursor = self.cursor
        if cursor:
            b = newer(b, cursor, self.lower)
        if self.to_skip and b.num_rows:
            # Rows a killed run of this load appended already: dropped, but counted in
            # the largest cursor value.
            dropped, b = b.slice(0, self.to_skip), b.slice(self.to_skip)
            self.to_skip -= dropped.num_rows
            if cursor:
                self.best = larger(self.best, dropped, cursor)
        if not b.num_rows:
            return
        if self.group and (sum(g.nbytes for g in self.group) >= self.chunk_bytes
                           or time.monotonic() - self.started >= _FLUSH_AFTER_SEC):
            rest = self._held_back(b)
            if rest is not None:
                self._commit(final=False)
                self.group = rest
                self.started = time.monotonic()
        if not self.group:
            self.started = time.monotonic()
        if cursor:
            self.best = larger(self.best, b, cursor)
        self.group.append(b)
        self.feed.count(b.num_rows)

    def finish(self) -> None:
        """Appends the last group, with the final state."""
        self._commit(final=True)
        self.group = []

    def _held_back(self, nxt: pa.RecordBatch) -> Optional[list[pa.RecordBatch]]:
        """The rows of the group to carry into the next group: the run of values equal to
        the next batch's first cursor value at the group's end (None: the whole group)."""
        cursor = self.cursor
        if not cursor:
            return []
        group = self.group
        tail = group[-1][cursor]
        head = nxt[cursor][0]
        if not tail[len(tail) - 1].is_valid or not head.is_valid or tail[len(tail) - 1] != head:
            return []
        equal = pc.equal(tail, head.cast(tail.type)).to_pylist()
        i = len(equal)
        while i and equal[i - 1]:
            i -= 1
        if i == 0:
            return None
        group[-1], rest = group[-1].slice(0, i), group[-1].slice(i)
        return [rest]

    def _state(self, appended: int, consumed: int, final: bool) -> dict[str, Any]:
        """The load state the chunk line of the group records: ``appended`` rows stored,
        ``consumed`` rows of the source it covers (those refused included: a rerun
        must not read them again)."""
        state = dict(self.base, rows_loaded=self.rows + appended)
        if final:
            if self.cursor:
                state["last"] = None if self.best is None else encode_cursor(self.best)
        elif self.ordered:
            state["last"] = None if self.committed is None else encode_cursor(self.committed)
        else:
            if self.cursor:
                state["last"] = None if self.lower is None else encode_cursor(self.lower)
            state["skip"] = self.skip + consumed
        if self.feed.seen["state"] is not None:
            state["state"] = self.feed.seen["state"]
        return state

    def _commit(self, final: bool) -> None:
        consumed = sum(b.num_rows for b in self.group)
        if not consumed:
            return
        if self.ordered and not final:
            for b in self.group:
                self.committed = larger(self.committed, b, str(self.cursor))
        # One part per run of batches of one schema (a source's batches may differ: the
        # stream's schema evolves); the core merges them into one chunk.
        parts: list[pa.Table] = []
        for b in self.group:
            if parts and parts[-1].schema.equals(b.schema):
                parts[-1] = pa.concat_tables([parts[-1], pa.Table.from_batches([b])])
            else:
                parts.append(pa.Table.from_batches([b]))
        done = evolve.append_parts(parts, self.table, secret_dir=self.store, durable=self.durable,
                                   load=lambda appended: self._state(appended, consumed, final))
        appended = consumed - sum(len(r) for r in done.refused)
        for part, rows in zip(parts, done.refused):
            if len(rows):
                self.refused.append(part.take(pa.array(rows)))
        self.conflicts.extend(done.conflicts)
        self.rows += appended
        if done.line is not None:
            self.count += 1
        if not final:
            self.skip += consumed
