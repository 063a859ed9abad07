"""A DoGet stream whose deadline bounds silence, not the transfer (docs/PROTOCOL.md
8.16): it fails once the server has sent nothing for ``timeout_sec``, before its first
message or between two, however long the whole stream takes.

gRPC's deadline covers a whole call, so a pull with the usual 10 s deadline failed
after 10 s even while data streamed in. Here the call has no deadline; a watchdog
thread cancels the stream (``FlightStreamReader.cancel``) once no message has come for
``timeout_sec`` while the reader waits for one (time the caller spends on a batch it
already has does not count). Before the first message there is no reader to cancel yet (pyarrow's
``do_get`` returns only once the schema message has arrived), so ``do_get`` runs in a
helper thread that the caller stops waiting for; a reader it gets late is cancelled at
once. gRPC keepalive (``keepalive_ms``) still notices a dead peer or a partition first;
the watchdog is for a peer that is up but silent.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Iterator, Optional

import pyarrow as pa
import pyarrow.flight as flight


class Silent(Exception):
    """The peer sent nothing for ``timeout_sec`` (raised by :class:`Stream`; the client
    turns it into :class:`~..errors.RemoteUnavailableError`)."""


class Stream:
    """One DoGet, opened by the constructor (waiting at most ``timeout_sec`` for the
    first message), read with :meth:`batches`, :meth:`read_all` or :meth:`reader`."""

    def __init__(self, client: flight.FlightClient, ticket: flight.Ticket, options: flight.FlightCallOptions,
                 timeout_sec: float) -> None:
        self.timeout_sec = timeout_sec
        self.silent = False
        self._lock = threading.Lock()
        #: When the reader began waiting for the next message (None: not waiting). Only
        #: that wait counts as silence: time the caller spends on a batch it has is not
        #: the peer's.
        self._waiting: Optional[float] = None
        self._done = threading.Event()
        self._reader = self._open(client, ticket, options)
        self._watch = threading.Thread(target=self._watchdog, name="adc-doget-watchdog", daemon=True)
        self._watch.start()

    # -- opening --
    def _open(self, client: flight.FlightClient, ticket: flight.Ticket,
              options: flight.FlightCallOptions) -> flight.FlightStreamReader:
        box: dict[str, Any] = {}
        opened = threading.Event()
        abandoned = [False]

        def run() -> None:
            try:
                reader = client.do_get(ticket, options)
            except BaseException as exc:  # handed to the waiting caller
                box["error"] = exc
                opened.set()
                return
            with self._lock:
                box["reader"] = reader
                late = abandoned[0]
            opened.set()
            if late:
                reader.cancel()

        threading.Thread(target=run, name="adc-doget-open", daemon=True).start()
        if not opened.wait(self.timeout_sec):
            with self._lock:
                abandoned[0] = True
                late = box.get("reader")
            if late is None:
                self.silent = True
                raise Silent(f"no answer to DoGet within {self.timeout_sec:g}s")
        if "error" in box:
            raise box["error"]
        reader: flight.FlightStreamReader = box["reader"]
        return reader

    # -- the watchdog --
    def _watchdog(self) -> None:
        poll = max(0.02, min(0.5, self.timeout_sec / 4))
        while not self._done.wait(poll):
            since = self._waiting
            if since is not None and time.monotonic() - since > self.timeout_sec:
                self.silent = True
                self._reader.cancel()
                return

    def close(self) -> None:
        """Stops the watchdog (a stream read to its end stops it too)."""
        self._done.set()

    # -- reading --
    @property
    def schema(self) -> pa.Schema:
        return self._reader.schema

    def batches(self) -> Iterator[pa.RecordBatch]:
        """The stream's record batches; :class:`Silent` once it went silent."""
        try:
            while True:
                self._waiting = time.monotonic()
                try:
                    chunk = self._reader.read_chunk()
                except StopIteration:
                    return
                except flight.FlightCancelledError:
                    if self.silent:
                        raise Silent(f"the stream sent nothing for {self.timeout_sec:g}s") from None
                    raise
                finally:
                    self._waiting = None
                if chunk.data is not None:
                    yield chunk.data
        finally:
            self.close()

    def read_all(self) -> pa.Table:
        """The whole stream as a table (its batches as they came)."""
        return pa.Table.from_batches(list(self.batches()), schema=self.schema)

    def reader(self) -> pa.RecordBatchReader:
        """A RecordBatchReader over :meth:`batches` (for ``_core.receive``)."""
        return pa.RecordBatchReader.from_batches(self.schema, self.batches())
