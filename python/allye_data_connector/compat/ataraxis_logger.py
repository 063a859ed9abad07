"""ataraxis-data-structures' ``DataLogger`` and ``LogPackage`` on a stream.

ataraxis runs logger processes that take ``LogPackage`` objects off a
``multiprocessing.Queue`` and save each as its own ``.npy`` file; ``compress_logs``
packs them into one ``.npz`` per source. Here ``input_queue.put(package)`` buffers the
message in the putting process itself and a background thread appends the buffered
messages in bulk to a stream (the log fast path: ``source_id`` uint8, ``timestamp``
uint64, ``payload`` bytes), so no message crosses a process boundary or becomes a file
while logging. The store is the logger's ``output_directory`` and the stream is named
after ``instance_name``: ``get_dataframe(instance_name, secret_dir=logger.output_directory)``
reads the log, live. ``stop()`` returns once every package put so far, in any process,
is in the stream.

As ataraxis, ``stop()`` leaves one ``.npy`` file per message in ``output_directory``
(``<source:03d>_<timestamp:020d>.npy``, the packed bytes ataraxis writes), so scripts that
read or count them keep working; they are exported from the stream when ``stop()`` is
called, not while logging, and ``DataLogger(..., npy_files=False)`` skips them (the
messages are in the stream either way: that is what makes logging fast).
``compress_logs`` writes one ``.npz`` per source (keys ``<source>_<timestamp>``, as
ataraxis names them); with ``remove_sources=True`` it deletes the ``.npy`` files and
compacts the stream into one zstd Arrow file per source.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import numpy as np

from .. import _core
from ..errors import InvalidArgumentError
from ..streams import LogWriter, compact_stream, read

_PRODUCERS = ".producers"


@dataclass(frozen=True, init=False)
class LogPackage:
    """One message: the source (uint8), its acquisition time stamp (uint64, e.g.
    ``perf_counter_ns``) and the payload (a uint8 NumPy array or bytes). Positional as
    in ataraxis' README (``LogPackage(source_id, time_stamp, data)``); the keywords of
    ataraxis' class (``acquisition_time``, ``serialized_data``) and of the README
    (``time_stamp``, ``data``) are both accepted."""

    source_id: Any
    acquisition_time: Any
    serialized_data: Any

    def __init__(self, source_id: Any, acquisition_time: Any = None, serialized_data: Any = None, *,
                 time_stamp: Any = None, data: Any = None) -> None:
        stamp = acquisition_time if acquisition_time is not None else time_stamp
        payload = serialized_data if serialized_data is not None else data
        if stamp is None or payload is None:
            raise InvalidArgumentError("LogPackage needs source_id, a time stamp and the data")
        object.__setattr__(self, "source_id", source_id)
        object.__setattr__(self, "acquisition_time", stamp)
        object.__setattr__(self, "serialized_data", payload)

    def get_data(self) -> tuple[str, np.ndarray]:
        """ataraxis' file name and packed message: source id (1 byte), time stamp (8
        bytes, little-endian), then the payload."""
        source = int(self.source_id)
        stamp = int(self.acquisition_time)
        payload = np.frombuffer(_payload_bytes(self.serialized_data), dtype=np.uint8)
        packed = np.concatenate([np.array([source], dtype=np.uint8),
                                 np.frombuffer(np.uint64(stamp).tobytes(), dtype=np.uint8), payload])
        return f"{source:03d}_{stamp:020d}.npy", packed


def _payload_bytes(data: Any) -> bytes:
    if isinstance(data, np.ndarray):
        return data.tobytes()
    return bytes(data)


# One LogWriter per (store, stream) and process; forked children make their own.
_WRITERS: dict[tuple[str, str, int], LogWriter] = {}
_WRITERS_LOCK = threading.Lock()


def _after_fork_in_child() -> None:
    # The parent's lock may have been held by one of its threads at the fork.
    global _WRITERS_LOCK
    _WRITERS_LOCK = threading.Lock()


os.register_at_fork(after_in_child=_after_fork_in_child)


def _writer_for(store: str, table: str) -> LogWriter:
    key = (store, table, os.getpid())
    with _WRITERS_LOCK:
        w = _WRITERS.get(key)
        if w is None or w.closed:
            w = LogWriter(table, secret_dir=store, flush_interval=0.05)
            _WRITERS[key] = w
            _register_producer(store, table, w)
        return w


def _register_producer(store: str, table: str, writer: LogWriter) -> None:
    """Marks this process as a producer of the logger and answers its ``stop()``: a
    thread watches ``<pid>.req``; on a new request it flushes, then writes ``<pid>.ack``."""
    pid = os.getpid()
    folder = Path(store) / _PRODUCERS
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{pid}.pid").write_text(table)

    def answer() -> None:
        req, ack = folder / f"{pid}.req", folder / f"{pid}.ack"
        done = ""
        while not writer.closed:
            try:
                wanted = req.read_text()
            except OSError:
                wanted = done
            if wanted and wanted != done:
                try:
                    writer.flush()
                finally:
                    ack.write_text(wanted)
                    done = wanted
            time.sleep(0.005)

    threading.Thread(target=answer, name="adc-datalogger-producer", daemon=True).start()


class _InputQueue:
    """What ``DataLogger.input_queue`` returns: ``put(LogPackage)`` from any process
    (it pickles as the store and stream names)."""

    def __init__(self, store: str, table: str) -> None:
        self._store = store
        self._table = table

    def __reduce__(self) -> tuple[Any, ...]:
        return (_InputQueue, (self._store, self._table))

    def put(self, package: LogPackage, block: bool = True, timeout: Optional[float] = None) -> None:
        if not isinstance(package, LogPackage):
            raise InvalidArgumentError(f"the DataLogger's queue takes LogPackage objects, got {type(package).__name__}")
        _writer_for(self._store, self._table).put(package.source_id, package.acquisition_time,
                                                   package.serialized_data)

    put_nowait = put

    def empty(self) -> bool:
        """Always True: nothing waits in a queue (puts are buffered per process)."""
        return True


class DataLogger:
    """ataraxis' ``DataLogger``: ``start()``, ``stop()`` (both idempotent; a stopped logger
    can be started again), ``input_queue`` (``put(LogPackage(...))`` from any process),
    ``compress_logs(remove_sources=...)`` and ``output_directory``
    (``<output_directory>/<instance_name>_data_log``, made at once). Extra keyword
    arguments of ataraxis (``thread_count``, ``sleep_timer``, ...) are accepted and
    unused: there are no logger processes to size."""

    def __init__(self, output_directory: Any, instance_name: str = "data_logger", exist_ok: bool = False,
                 *, npy_files: bool = True, **_ataraxis_options: Any) -> None:
        if not isinstance(instance_name, str) or not instance_name:
            raise InvalidArgumentError(f"instance_name must be a non-empty str, got {instance_name!r}")
        _core.check_table_name(instance_name)
        self._name = instance_name
        self._output = Path(output_directory) / f"{instance_name}_data_log"
        self._output.mkdir(parents=True, exist_ok=True)
        self._store = str(self._output.resolve())
        self._started = False
        self._queue = _InputQueue(self._store, self._name)
        self._npy_files = bool(npy_files)
        self._exported = 0  # rows of the stream already exported as .npy files

    def __repr__(self) -> str:
        return f"DataLogger(name={self._name!r}, output_directory={str(self._output)!r}, started={self._started})"

    @property
    def name(self) -> str:
        return self._name

    @property
    def output_directory(self) -> Path:
        """The folder holding the log (the stream's store)."""
        return self._output

    @property
    def started(self) -> bool:
        return self._started

    @property
    def input_queue(self) -> _InputQueue:
        """Where producers put ``LogPackage`` objects (picklable: pass it to processes)."""
        return self._queue

    def start(self) -> None:
        """Starts logging (idempotent)."""
        self._started = True

    def stop(self) -> None:
        """Returns once every package put so far, by this or any other live process, is
        in the stream (idempotent)."""
        if not self._started:
            return
        self._flush_everyone()
        self._started = False
        if self._npy_files:
            self._export_npy()

    def _export_npy(self) -> None:
        """One ``.npy`` per message not exported yet, as ataraxis' logger processes write
        them (rows are only ever appended until ``compress_logs`` compacts the stream)."""
        if not _core.stream_exists(self._name, secret_dir=self._store):
            return
        table = read(self._name, secret_dir=self._store)
        if table.num_rows <= self._exported:
            return
        new = table.slice(self._exported)
        sources = new.column("source_id").to_numpy()
        stamps = new.column("timestamp").to_numpy()
        for source, stamp, payload in zip(sources, stamps, new.column("payload").to_pylist()):
            name, packed = LogPackage(source, stamp, payload).get_data()
            np.save(self._output / name, packed, allow_pickle=False)
        self._exported = table.num_rows

    def _flush_everyone(self, timeout: float = 30.0) -> None:
        key = (self._store, self._name, os.getpid())
        with _WRITERS_LOCK:
            own = _WRITERS.get(key)
        if own is not None and not own.closed:
            own.flush()
        folder = Path(self._store) / _PRODUCERS
        if not folder.is_dir():
            return
        token = str(time.time_ns())
        waiting = []
        for marker in folder.glob("*.pid"):
            pid = int(marker.stem)
            if pid == os.getpid():
                continue
            if not _alive(pid):
                marker.unlink(missing_ok=True)
                continue
            (folder / f"{pid}.req").write_text(token)
            waiting.append(pid)
        deadline = time.monotonic() + timeout
        while waiting and time.monotonic() < deadline:
            waiting = [p for p in waiting if _alive(p) and _read(folder / f"{p}.ack") != token]
            if waiting:
                time.sleep(0.002)

    def compress_logs(self, remove_sources: bool = False, memory_mapping: bool = True, verbose: bool = False,
                      **_ataraxis_options: Any) -> None:
        """Writes one ``<source>_log.npz`` per source into ``output_directory`` (each
        message under ``<source:03d>_<timestamp:020d>``, its packed bytes as ataraxis
        stores them). With ``remove_sources``, also compacts the stream: one zstd Arrow
        file per source replaces the per-append chunks (verified before they go)."""
        self._flush_everyone()
        if not _core.stream_exists(self._name, secret_dir=self._store):
            return
        table = read(self._name, secret_dir=self._store)
        sources = table.column("source_id").to_numpy()
        stamps = table.column("timestamp").to_numpy()
        payloads = table.column("payload").to_pylist()
        for source in np.unique(sources):
            entries = {}
            for i in np.flatnonzero(sources == source):
                name, packed = LogPackage(source, stamps[i], payloads[i]).get_data()
                entries[name[:-4]] = packed
            target = self._output / f"{int(source)}_log.npz"
            tmp = target.with_name(target.name + f".tmp-{os.getpid()}.npz")
            np.savez(tmp, **entries)  # type: ignore[arg-type]
            os.replace(tmp, target)
        if remove_sources:
            for npy in self._output.glob("*.npy"):
                npy.unlink(missing_ok=True)
            compact_stream(self._name, secret_dir=self._store)
            self._exported = table.num_rows


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""
