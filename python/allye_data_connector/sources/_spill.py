"""The spill of a parallel PostgreSQL read: one page range read on its own connection,
in the first connection's snapshot, by a thread that writes its batches to an Arrow IPC
stream file as they come."""

from __future__ import annotations

import logging
import threading
from typing import Any, Optional

import pyarrow as pa

from . import _adbc
from .base import redact_uri

logger = logging.getLogger(__name__)


class Spill:
    """One page range of a PostgreSQL table, read on its own connection in the snapshot
    of the first (``SET TRANSACTION SNAPSHOT``) by a thread that writes its batches to an
    Arrow IPC stream file as they come (the driver decodes with the GIL released)."""

    def __init__(self, uri: str, driver: Optional[str], snapshot: str, query: str,
                 params: Optional[tuple[Any, ...]], path: str, connect_timeout_sec: float):
        self.path, self.query, self.params = path, query, params
        self.connect_timeout_sec = connect_timeout_sec
        self.error: Optional[BaseException] = None
        #: Whether its query ran (after that, a failure fails the load).
        self.started = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(uri, driver, snapshot, query, params),
                                        name="adc-sql-range", daemon=True)
        self._thread.start()

    def _run(self, uri: str, driver: Optional[str], snapshot: str, query: str,
             params: Optional[tuple[Any, ...]]) -> None:
        conn = cur = None
        try:
            conn = _adbc.connect(uri, driver, self.connect_timeout_sec)
            cur = conn.cursor()
            cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            cur.execute(f"SET TRANSACTION SNAPSHOT '{snapshot}'")
            cur.execute(query, params)
            self.started = True
            reader = cur.fetch_record_batch()
            with pa.OSFile(self.path, "wb") as f, pa.ipc.new_stream(f, reader.schema) as w:
                for batch in reader:
                    if self._stop.is_set():
                        break
                    w.write_batch(batch)
            reader.close()
        except BaseException as e:  # handed to the reading thread
            self.error = e
        finally:
            for thing in (cur, conn):
                if thing is not None:
                    try:
                        thing.close()
                    except Exception as e:
                        logger.debug("closing %s: %s", type(thing).__name__, redact_uri(str(e)))

    def reader(self) -> pa.RecordBatchReader:
        """The range's batches, once its thread has read them all."""
        self._thread.join()
        if self.error is not None:
            raise self.error
        return pa.ipc.open_stream(pa.OSFile(self.path, "rb"))

    def stop(self) -> None:
        self._stop.set()

    def join(self) -> None:
        self._thread.join()
