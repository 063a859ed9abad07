"""Type stubs of the Rust extension ``allye_data_connector._core`` (see rust/allye-py).

Checked against the built module by ``python -m mypy.stubtest allye_data_connector._core``
in ``.ci/run``.
"""

import os
from typing import Any, Callable, Literal, NotRequired, Optional, Protocol, Sequence, TypedDict, Union, final, overload, type_check_only

__version__: str
__all__ = [
    "ArrayClosedError",
    "ArrayError",
    "ArrayExistsError",
    "ArrayLayoutError",
    "ArrayNotFoundError",
    "LockedView",
    "SharedArrayHandle",
    "collect_arrays",
    "list_arrays",
    "AllyeError",
    "ArrowDataError",
    "NanFoundError",
    "COMPRESSIONS",
    "GC_SCOPES",
    "CancelledError",
    "ConversionError",
    "DEFAULT_AUTO_GC_GRACE_SEC",
    "DEFAULT_POLL_SEC",
    "DEFAULT_COMPRESSED_CHUNK_ROWS",
    "DEFAULT_KEEP_VERSIONS",
    "DEFAULT_MAX_SHM_BYTES",
    "DEFAULT_PRODUCER",
    "InvalidArgumentError",
    "InvalidInputError",
    "METADATA_KEY",
    "ManifestTail",
    "ManifestWatcher",
    "PayloadCorruptError",
    "PayloadError",
    "PayloadMissingError",
    "RemoteUnavailableError",
    "MissingDependencyError",
    "StorageFullError",
    "StoreError",
    "StoreIOError",
    "StoreUnusableError",
    "TRANSPORTS",
    "ObjectNotFoundError",
    "TableExpiredError",
    "TableNotFoundError",
    "UnknownTransportError",
    "WaitTimeoutError",
    "__version__",
    "check_remote_table_name",
    "check_table_name",
    "check_transport",
    "collect_orphans",
    "compact",
    "gc",
    "get_live",
    "latest",
    "list_tables",
    "normalize_compression",
    "read_live",
    "remove_table",
    "resolve_store",
    "store_and_settings_stamp",
    "send",
    "table_state",
    "table_states",
]

# ---- records: the dicts the functions return (keys and values of the core's records) ----
# Plain dicts at runtime, built in rust/allye-py/src/records.rs from the core's serde
# records; typed here only (``type_check_only``: nothing of that name exists at runtime).

@type_check_only
class Payload(TypedDict):
    """The ``payload`` of a ``ready`` line (PROTOCOL.md)."""

    transport: str
    locator: str
    data_size: int
    shape: list[int]
    schema_sha256: str
    created_at: str
    expires_at: Optional[str]

@type_check_only
class _Line(TypedDict):
    version: int
    id: str
    table_name: str
    producer: str
    status: str
    created_at: str
    ttl_sec: Optional[int]
    metadata: dict[str, Any]

@type_check_only
class Event(_Line):
    """One manifest line of any status: a version, or the start, failure or removal of one."""

    payload: Optional[Payload]

@type_check_only
class Version(_Line):
    """A ``ready`` line: a table's (or an object's) version, with its payload."""

    payload: Payload

@type_check_only
class TableState(TypedDict):
    """A table as the Receiver lists it (``state``: writing, ready, error, removed, consumed)."""

    table_name: str
    state: str
    error: Optional[str]
    latest: Optional[Event]
    ready: Optional[Version]
    expired: bool

@type_check_only
class Removal(TypedDict):
    """What a removal did: ``deleted`` and ``skipped`` as ``[transport, locator]`` pairs."""

    table_name: str
    id: str
    deleted: list[list[str]]
    skipped: list[list[str]]

@type_check_only
class GcAction(TypedDict):
    """One thing gc did (or would do). ``transport``: a payload's wire transport,
    ``"shared_array"`` or ``"stream_chunk"``; ``table_name`` ``"<namespace>/<object>"`` for
    named objects; ``id`` empty for anything that is not a transfer's payload."""

    action: str  # "delete", "skip" or "record"
    transport: str
    locator: str
    table_name: str
    reason: str
    id: str
    scope: str  # one of GC_SCOPES: "store" (this store's), "orphan" (a deleted store's or a dead load's leftover)

@type_check_only
class CompactReport(TypedDict):
    lines_before: int
    lines_after: int
    bytes_before: int
    bytes_after: int

@type_check_only
class ArrayInfo(TypedDict):
    """One shared array as ``list_arrays`` reports it (``state``: ready, initialising,
    destroyed or missing)."""

    name: str
    segment: str
    state: str
    dtype: str
    shape: tuple[int, ...]
    nbytes: int
    creator_pid: Optional[int]
    creator_alive: Optional[bool]
    openers: list[int]
    lock_recoveries: int

@type_check_only
class Writer(TypedDict):
    """A writing process: pid, start time (clock ticks since boot) and boot id, when known."""

    pid: int
    start: Optional[int]
    boot_id: Optional[str]

@type_check_only
class Chunk(TypedDict):
    """One line of a stream's chunk log (PROTOCOL.md 8.13)."""

    chunk: str
    rows: int
    bytes: int
    writer: Writer
    appended_ns: int
    time_column: NotRequired[str]
    tmin: NotRequired[int]
    tmax: NotRequired[int]
    compacted: NotRequired[str]
    allye_load: NotRequired[dict[str, Any]]
    schema: NotRequired[str]
    adopted: NotRequired[str]
    merged: NotRequired[MergedChunks]

@type_check_only
class MergedChunks(TypedDict):
    """What a consolidated chunk replaced: its level and the chunk files, in log order."""

    level: int
    chunks: list[str]

@type_check_only
class FieldConflict(TypedDict):
    """A field an append to a stream could not store (``SchemaConflictError.conflicts``)."""

    field: str
    value_type: str
    column_type: str
    part: int

@type_check_only
class ConsolidateReport(TypedDict):
    """What ``stream_consolidate`` did."""

    merges: int
    chunks_replaced: int
    rows: int
    busy: bool

@type_check_only
class StreamReadInfo(TypedDict):
    """What a stream read covered: its first row, rows and chunks, of how many in all."""

    first_row: int
    rows: int
    chunks: int
    total_chunks: int
    total_rows: int

@type_check_only
class CompactedFile(TypedDict):
    source: str
    file: os.PathLike[str]
    rows: int
    bytes: int

@type_check_only
class StreamCompactReport(TypedDict):
    chunks_before: int
    rows: int
    files: list[CompactedFile]

@type_check_only
class Capacity(TypedDict):
    """Free and total bytes of /dev/shm and of the store's file system (None where
    unknown), bytes in use by live versions, and the quota."""

    shm_free: Optional[int]
    shm_total: Optional[int]
    store_free: Optional[int]
    store_total: Optional[int]
    used: int
    quota: Optional[int]
    pool_bytes: int
    pool_segments: int
    pool_max_bytes: int

@type_check_only
class PoolStats(TypedDict):
    """This process's pool of pre-mapped segments for large sends and puts (bytes and counts)."""

    max_bytes: int
    free_bytes: int
    free_segments: int
    quarantined_bytes: int
    quarantined_segments: int
    hits: int
    misses: int
    created: int
    recycled: int
    released: int

# ---- vocabulary (rust/allye-core/src/protocol.rs and tuning.rs) --------------------------------------

DEFAULT_MAX_SHM_BYTES: int
DEFAULT_COMPRESSED_CHUNK_ROWS: int
DEFAULT_KEEP_VERSIONS: int
DEFAULT_AUTO_GC_GRACE_SEC: int
DEFAULT_POLL_SEC: float
DEFAULT_PRODUCER: str
TRANSPORTS: tuple[str, ...]
COMPRESSIONS: tuple[str, ...]
GC_SCOPES: tuple[str, ...]
METADATA_KEY: str

def normalize_compression(value: Optional[str]) -> Optional[str]:
    """The canonical compression name, or None for no compression (None, "", "none",
    "uncompressed", any case); anything else raises InvalidArgumentError."""

def check_table_name(name: object) -> str:
    """Returns ``name`` when it is a valid table name, else raises InvalidArgumentError."""

def check_remote_table_name(name: object) -> str:
    """Returns ``name`` when it is a valid name for a table served over the network (the
    send's rule, and not path-like: no control character, no leading ``/``, no empty,
    ``.`` or ``..`` part), else raises InvalidArgumentError."""

def check_transport(value: object) -> str:
    """Returns ``value`` when it is one of TRANSPORTS, else raises InvalidArgumentError."""

# ---- exceptions (rust/allye-py/src/errors.rs) ------------------------------------------

class AllyeError(Exception): ...
class TableNotFoundError(AllyeError, KeyError): ...
class ObjectNotFoundError(TableNotFoundError): ...
class TableExpiredError(TableNotFoundError): ...
class PayloadError(AllyeError): ...
class PayloadMissingError(PayloadError, FileNotFoundError): ...
class PayloadCorruptError(PayloadError, ValueError): ...
class UnknownTransportError(PayloadError, ValueError): ...
class InvalidArgumentError(AllyeError, ValueError): ...
class InvalidInputError(AllyeError, TypeError): ...
class ConversionError(AllyeError, TypeError): ...
class ArrowDataError(AllyeError, ValueError): ...
class NanFoundError(ArrowDataError): ...
class StoreError(AllyeError, OSError): ...
class StoreUnusableError(StoreError): ...
class StoreIOError(StoreError): ...
class StorageFullError(StoreIOError): ...
class CancelledError(AllyeError): ...
class WaitTimeoutError(TableNotFoundError, TimeoutError): ...
class ArrayError(AllyeError): ...
class ArrayExistsError(ArrayError, FileExistsError): ...
class ArrayNotFoundError(ArrayError, FileNotFoundError): ...
class ArrayLayoutError(ArrayError, ValueError): ...
class ArrayClosedError(ArrayError, RuntimeError): ...
class RemoteUnavailableError(AllyeError, ConnectionError): ...
class MissingDependencyError(AllyeError, ImportError): ...

class SchemaConflictError(InvalidArgumentError):
    table: str
    conflicts: list[FieldConflict]
    refused: Any
    stored: Any

# ---- tables ----------------------------------------------------------------------------

class _ArrowStream(Protocol):
    def __arrow_c_stream__(self, requested_schema: object = ...) -> object: ...

@type_check_only
class _ArrowSchema(Protocol):
    def __arrow_c_schema__(self) -> object: ...

def resolve_store(secret_dir: Optional[str] = None) -> str:
    """The store directory ``secret_dir`` (else $ALLYE_SECRET_DIR, else ~/.allye_secrets) resolves to."""

def store_and_settings_stamp(secret_dir: Optional[str] = None) -> tuple[str, Optional[tuple[int, int, int]]]:
    """``resolve_store`` and the stamp ``(mtime_ns, size, inode)`` of the store's ``settings.yaml`` (None without one)."""

@overload
def send(
    data: _ArrowStream,
    *,
    secret_dir: Optional[str] = None,
    table_name: Optional[str] = None,
    producer: str = ...,  # DEFAULT_PRODUCER
    transport: str = "auto",
    max_shm_bytes: int = ...,  # DEFAULT_MAX_SHM_BYTES
    chunk_rows: Optional[int] = None,
    ttl_sec: Optional[int] = None,
    compression: Optional[str] = None,
    metadata: Optional[dict[str, Any]] = None,
    shape: Optional[tuple[int, int]] = None,
    schema_sha256: Optional[str] = None,
    durable: bool = False,
    auto_gc: bool = True,
    auto_gc_grace_sec: int = ...,  # DEFAULT_AUTO_GC_GRACE_SEC
    keep_versions: int = ...,  # DEFAULT_KEEP_VERSIONS
    pool_max_bytes: Optional[int] = None,
    reject_nan: Sequence[int] = ...,
    record: Literal[True] = True,
) -> Version:
    """Sends Arrow data; returns the ``ready`` event (the manifest line's object; ``None``
    with ``record=False``). With
    ``auto_gc``, then frees (bounded) superseded versions of the store older than the
    latest ``keep_versions``, ``auto_gc_grace_sec`` after they were superseded.
    ``reject_nan``: float32/float64 columns (indices) that must hold no NaN: the core
    looks while it copies them and raises ``NanFoundError``, writing nothing, when one does."""
@overload
def send(
    data: _ArrowStream,
    *,
    secret_dir: Optional[str] = None,
    table_name: Optional[str] = None,
    producer: str = ...,  # DEFAULT_PRODUCER
    transport: str = "auto",
    max_shm_bytes: int = ...,  # DEFAULT_MAX_SHM_BYTES
    chunk_rows: Optional[int] = None,
    ttl_sec: Optional[int] = None,
    compression: Optional[str] = None,
    metadata: Optional[dict[str, Any]] = None,
    shape: Optional[tuple[int, int]] = None,
    schema_sha256: Optional[str] = None,
    durable: bool = False,
    auto_gc: bool = True,
    auto_gc_grace_sec: int = ...,  # DEFAULT_AUTO_GC_GRACE_SEC
    keep_versions: int = ...,  # DEFAULT_KEEP_VERSIONS
    pool_max_bytes: Optional[int] = None,
    reject_nan: Sequence[int] = ...,
    record: bool,
) -> Optional[Version]: ...

def latest(table_name: str, *, secret_dir: Optional[str] = None, producer: Optional[str] = None) -> Version:
    """The current ``ready`` event of a table (raises if none, removed, or expired)."""

def list_tables(*, secret_dir: Optional[str] = None, producer: Optional[str] = None) -> list[Version]:
    """Every table's current ``ready`` event, sorted by name (removed tables left out)."""

def table_states(*, secret_dir: Optional[str] = None, producer: Optional[str] = None) -> list[TableState]:
    """Every table's state: ``table_name``, ``state`` (writing, ready, error, removed),
    ``error``, ``latest`` (last line), ``ready`` (current version), ``expired``."""

def table_state(table_name: str, *, secret_dir: Optional[str] = None, producer: Optional[str] = None) -> TableState:
    """One table's state (raises TableNotFoundError when never mentioned)."""

def get_live(
    table_name: str,
    *,
    secret_dir: Optional[str] = None,
    producer: Optional[str] = None,
    record_read: bool = True,
) -> tuple[Version, _ArrowStream]:
    """``(ready event, Arrow table)``; the table's buffers point into the mapping. A removed
    table raises TableNotFoundError; ``record_read=False`` for a look that is not a load
    (it does not count for ``shm_unlink_on_read``)."""

def read_live(
    table_name: str,
    *,
    secret_dir: Optional[str] = None,
    producer: Optional[str] = None,
    record_read: bool = True,
) -> _ArrowStream:
    """``get_live`` without the event: the Arrow table only."""

def remove_table(table_name: str, *, secret_dir: Optional[str] = None) -> Removal:
    """Appends a removal line, deletes the table's payloads in this store; report
    ``{"table_name", "id", "deleted": [[transport, locator]], "skipped": [...]}``."""

# ---- maintenance -----------------------------------------------------------------------

def gc(*, secret_dir: Optional[str] = None, dry_run: bool = True, keep_versions: int = ...) -> list[GcAction]:
    """Every collector of the core's ``Store::gc``, in its order: the store's payloads,
    deleted stores' segments, shared arrays, streams, named objects. ``keep_versions``
    defaults to DEFAULT_KEEP_VERSIONS. The actions taken (or that would be taken)."""

def collect_orphans(*, dry_run: bool = True) -> list[GcAction]:
    """Frees (or reports) the shared-memory segments of this user's deleted stores; gc
    actions with an empty ``table_name`` and ``id``."""

def compact(*, secret_dir: Optional[str] = None) -> CompactReport:
    """Rewrites the manifest keeping only live lines; returns what it did."""

# ---- watching --------------------------------------------------------------------------

@final
class ManifestWatcher:
    """Wakes up when the store's manifest changes (file-system events, else polling)."""

    def __new__(
        cls, *, secret_dir: Optional[str] = None, force_polling: bool = False, poll_interval_sec: Optional[float] = None
    ) -> ManifestWatcher: ...
    @property
    def mode(self) -> str:
        """``"events"`` or ``"polling"``."""
    def mark_seen(self) -> None: ...
    def wait(self, timeout_sec: float) -> bool:
        """Blocks without the GIL until the manifest may have changed or the timeout; returns whether it changed."""

@final
class ManifestTail:
    """Reads the manifest lines appended since the last call."""

    def __new__(cls, *, secret_dir: Optional[str] = None, from_start: bool = False) -> ManifestTail: ...
    def read_new(self) -> list[Event]:
        """The new complete lines' events."""

# ---- shared arrays (Linux only: absent elsewhere) ------------------------------------

@final
class LockedView:
    """``with LockedView(handle, view) as v:`` holds the array's lock around the block."""

    def __new__(cls, handle: SharedArrayHandle, view: Any, lock: bool = True) -> LockedView: ...
    def __call__(self, *args: Any, **kwargs: Any) -> LockedView:
        """``ctx(with_lock=True)``: the context of that kind (this one, or one over the same view)."""
    def as_method(self) -> Callable[..., LockedView]:
        """``ctx.__call__`` as a builtin bound to ``ctx``, called without a dict of keywords."""
    def __enter__(self) -> Any: ...
    def __exit__(self, kind: object, value: object, traceback: object, /) -> bool: ...

@final
class SharedArrayHandle:
    """One open shared array; ``np.asarray(handle)`` is a writable view of its data."""

    @staticmethod
    def create(
        name: str,
        shape: Sequence[int],
        typestr: str,
        *,
        secret_dir: Optional[str] = None,
        exist_ok: bool = False,
        fill: Optional[bytes] = None,
        data: Optional[bytes] = None,
    ) -> tuple[SharedArrayHandle, bool]:
        """``(handle, reclaimed)``; ``fill`` is one element's bytes, ``data`` the whole data's."""
    @staticmethod
    def open(name: str, *, secret_dir: Optional[str] = None) -> SharedArrayHandle: ...
    @property
    def name(self) -> str: ...
    @property
    def segment(self) -> str: ...
    @property
    def store(self) -> str: ...
    @property
    def shape(self) -> tuple[int, ...]: ...
    @property
    def typestr(self) -> str: ...
    @property
    def nbytes(self) -> int: ...
    @property
    def closed(self) -> bool: ...
    @property
    def destroyed(self) -> bool: ...
    @property
    def lock_recoveries(self) -> int: ...
    @property
    def holder_died(self) -> bool: ...
    @property
    def __array_interface__(self) -> dict[str, Any]: ...
    def lock(self) -> None:
        """Takes the cross-process lock without the GIL; warns HolderDiedWarning after a takeover."""
    def lock_timeout(self, timeout_sec: float) -> bool: ...
    def unlock(self) -> None: ...
    def read(self, view: Any, index: Any, lock: bool = True) -> Any: ...
    def write(self, view: Any, index: Any, value: Any, lock: bool = True) -> None: ...
    def add(self, view: Any, index: Any, value: Any, lock: bool = True) -> None: ...
    def close(self) -> None: ...
    def destroy(self) -> None: ...

def list_arrays(*, secret_dir: Optional[str] = None) -> list[ArrayInfo]:
    """Every shared array of the store (name, segment, state, dtype, shape, nbytes,
    creator_pid, creator_alive, openers, lock_recoveries)."""

def collect_arrays(*, secret_dir: Optional[str] = None, dry_run: bool = True) -> list[GcAction]:
    """Frees abandoned shared arrays (step 3 of ``gc``); gc actions with ``transport`` ``"shared_array"``."""

# --- streams (rust/allye-py/src/streams.rs) ---

DEFAULT_PUBLISH_INTERVAL_SEC: float
DEFAULT_FLUSH_INTERVAL_SEC: float
DEFAULT_WRITER_MAX_ROWS: int
DEFAULT_WRITER_MAX_BYTES: int
DEFAULT_WRITER_IDLE_SEC: float
STREAM_TRANSPORT: str
METADATA_STREAM: str
LOG_SOURCE_COLUMN: str
LOG_TIME_COLUMN: str
LOG_PAYLOAD_COLUMN: str

def stream_append(
    data: Any,
    table_name: str,
    *,
    secret_dir: Optional[str] = None,
    time_column: Optional[str] = None,
    durable: bool = False,
    publish_interval_sec: Optional[float] = None,
    load: Optional[dict[str, Any]] = None,
) -> Optional[Chunk]:
    """Appends Arrow data (or a list of Arrow data whose schemas may differ) to a stream as
    one chunk; returns the chunk's line (None: no rows). ``load``: a load's state, written
    on the chunk's line (``allye_load``). A field that cannot be unified with the
    stream's column is ``SchemaConflictError`` (``conflicts[i]["part"]``: which list item)."""

def stream_schema(table_name: str, *, secret_dir: Optional[str] = None) -> Optional[_ArrowSchema]:
    """The stream's schema (``pa.schema(...)`` of it), or None when it has no chunk."""

def widen_type(column: Any, value: Any) -> Optional[_ArrowSchema]:
    """The type a stream column of type ``column`` becomes to also hold values of type
    ``value`` (``pa.field(...).type`` of it), or None when no type holds both."""

def stream_adopt(table_name: str, *, secret_dir: Optional[str] = None) -> Optional[Chunk]:
    """Makes the stream from the plain table of that name if the stream has no chunk yet."""

def stream_consolidate(
    table_name: str, *, secret_dir: Optional[str] = None, max_merges: int = 64
) -> ConsolidateReport:
    """Merges runs of small chunks of the stream into larger ones (the readers' first read)."""

def stream_read(
    table_name: str,
    *,
    secret_dir: Optional[str] = None,
    row_start: Optional[int] = None,
    row_end: Optional[int] = None,
    t_start: Optional[int] = None,
    t_end: Optional[int] = None,
) -> tuple[StreamReadInfo, _ArrowStream]:
    """``(info, Arrow table)`` of the selected chunks, zero-copy."""

def stream_exists(table_name: str, *, secret_dir: Optional[str] = None) -> bool: ...
def list_streams(*, secret_dir: Optional[str] = None) -> list[str]: ...
def stream_chunks(table_name: str, *, secret_dir: Optional[str] = None) -> list[Chunk]: ...
def stream_publish(
    table_name: str, *, secret_dir: Optional[str] = None, interval_sec: Optional[float] = None
) -> Optional[Version]: ...
def stream_remove(table_name: str, *, secret_dir: Optional[str] = None) -> int: ...
def stream_compact(
    table_name: str,
    *,
    secret_dir: Optional[str] = None,
    source_column: Optional[str] = None,
    compression: Optional[str] = ...,
) -> StreamCompactReport:
    """Compacts a stream; ``compression`` defaults to ``"zstd"`` (None: uncompressed)."""

@final
class StreamFollower:
    """Yields a stream's new chunks as they land."""

    def __new__(
        cls,
        table_name: str,
        *,
        secret_dir: Optional[str] = None,
        from_start: bool = False,
        force_polling: bool = False,
        poll_interval_sec: Optional[float] = None,
    ) -> StreamFollower: ...
    def next_chunks(self, timeout_sec: float) -> list[tuple[Chunk, _ArrowStream]]: ...

__all__ += [
    "DEFAULT_PUBLISH_INTERVAL_SEC",
    "DEFAULT_FLUSH_INTERVAL_SEC",
    "DEFAULT_WRITER_MAX_ROWS",
    "DEFAULT_WRITER_MAX_BYTES",
    "METADATA_STREAM",
    "LOG_SOURCE_COLUMN",
    "LOG_TIME_COLUMN",
    "LOG_PAYLOAD_COLUMN",
    "stream_append",
    "stream_schema",
    "widen_type",
    "stream_adopt",
    "stream_consolidate",
    "DEFAULT_WRITER_IDLE_SEC",
    "STREAM_TRANSPORT",
    "SchemaConflictError",
    "stream_read",
    "stream_exists",
    "list_streams",
    "stream_chunks",
    "stream_publish",
    "stream_remove",
    "stream_compact",
    "StreamFollower",
]

# --- named objects (rust/allye-py/src/objects.rs) ---

__all__ += [
    "DEFAULT_ALLOW_PICKLE",
    "DEFAULT_NAMESPACE",
    "OBJECT_BYTES_COLUMN",
    "OBJECT_KINDS",
    "OBJECT_METADATA_KEY",
    "StoreFullError",
    "StoreNotPrivateError",
    "capacity",
    "default_pool_max_bytes",
    "pool_held",
    "pool_release",
    "pool_stats",
    "check_namespace_name",
    "check_store_private",
    "get_object",
    "get_object_bytes",
    "MappedBytes",
    "list_objects",
    "namespace_store",
    "namespaces",
    "object_latest",
    "objects_used",
    "put_object",
    "create_namespace",
    "remove_namespace",
    "remove_object",
]

DEFAULT_NAMESPACE: str
DEFAULT_ALLOW_PICKLE: bool
OBJECT_METADATA_KEY: str
#: The one column of an object stored as raw bytes (an array's, a pickle's).
OBJECT_BYTES_COLUMN: str
OBJECT_KINDS: list[str]

class StoreFullError(StoreError): ...
class StoreNotPrivateError(StoreUnusableError): ...

def put_object(
    data: Union[_ArrowStream, list[Any]],
    name: str,
    *,
    namespace: str = ...,
    secret_dir: Optional[str] = None,
    metadata: Optional[dict[str, Any]] = None,
    transport: str = "auto",
    max_shm_bytes: int = ...,
    ttl_sec: Optional[int] = None,
    durable: bool = False,
    quota: Optional[int] = None,
    auto_gc: bool = True,
    auto_gc_grace_sec: int = ...,
    keep_versions: int = ...,
    pool_max_bytes: Optional[int] = None,
    reject_nan: Sequence[int] = ...,
    keep_description: bool = False,
    record: bool = True,
) -> Optional[Version]:
    """Publishes a new version of object ``name``; returns its ``ready`` event (``None``
    with ``record=False``). ``data``:
    Arrow data, or for the kinds ``numpy`` and ``pickle`` a list of raw values (``bytes``
    or contiguous ``uint8`` arrays), each stored as it is (``reject_nan`` as :func:`send`'s;
    ``keep_description``: without a description of its own, the version keeps the
    previous one's)."""

def get_object(
    name: str, *, namespace: str = ..., secret_dir: Optional[str] = None, allow_pickle: bool = ...
) -> tuple[Version, _ArrowStream]:
    """``(ready event, Arrow table over the mapping)``; pickles only from a private store."""

@final
class MappedBytes:
    """Read-only bytes of a mapped payload: ``np.asarray(b)`` is a uint8 view whose base
    holds the mapping."""
    @property
    def __array_interface__(self) -> dict[str, Any]: ...
    def __len__(self) -> int: ...

def get_object_bytes(
    name: str, *, namespace: str = ..., secret_dir: Optional[str] = None, allow_pickle: bool = ...
) -> tuple[dict[str, Any], list[MappedBytes] | list[bytes] | _ArrowStream]:
    """``(metadata.adc_object of the current version, data)``: :func:`get_object`'s data,
    with an array's or a pickle's values as :class:`MappedBytes` (one per record batch;
    ``bytes`` for an object held inside its log line) instead of a table."""

def object_latest(name: str, *, namespace: str = ..., secret_dir: Optional[str] = None) -> Version: ...
def list_objects(*, namespace: str = ..., secret_dir: Optional[str] = None) -> list[Version]: ...
def remove_object(name: str, *, namespace: str = ..., secret_dir: Optional[str] = None) -> Removal: ...
def objects_used(*, namespace: Optional[str] = None, secret_dir: Optional[str] = None) -> int: ...
def namespaces(*, secret_dir: Optional[str] = None) -> list[str]: ...
def create_namespace(name: str, *, secret_dir: Optional[str] = None) -> bool: ...
def remove_namespace(name: str, *, secret_dir: Optional[str] = None) -> int: ...
def namespace_store(namespace: str, *, secret_dir: Optional[str] = None) -> str: ...
def capacity(*, secret_dir: Optional[str] = None, quota: Optional[int] = None) -> Capacity: ...
def pool_stats() -> PoolStats:
    """This process's pool of pre-mapped segments."""
def pool_release() -> None:
    """Gives back every segment this process's pool holds."""
def pool_held() -> tuple[int, int]:
    """``(bytes, segments)`` of this user's pool segments in /dev/shm, every process's."""
def default_pool_max_bytes() -> int:
    """The pool's default bound: 1/8 of /dev/shm."""
def check_store_private(*, namespace: Optional[str] = None, secret_dir: Optional[str] = None) -> None: ...
def check_namespace_name(name: str) -> str: ...

@final
class ObjectWriter:
    """An object written in place: ``np.asarray(w)`` is a writable uint8 view of its bytes."""
    @property
    def __array_interface__(self) -> dict[str, Any]: ...
    @property
    def nbytes(self) -> int: ...
    def commit(self) -> Version: ...
    def abort(self, reason: str) -> None: ...

def create_object(
    name: str,
    nbytes: int,
    *,
    namespace: str = ...,
    secret_dir: Optional[str] = None,
    metadata: Optional[dict[str, Any]] = None,
    ttl_sec: Optional[int] = None,
    durable: bool = False,
    quota: Optional[int] = None,
    auto_gc: bool = True,
    auto_gc_grace_sec: int = ...,
    keep_versions: int = ...,
) -> ObjectWriter:
    """Starts an object written in place in a new segment; publish it with ``commit()``."""

__all__ += ["ObjectWriter", "create_object"]

# --- sources: loading a stream of batches (rust/allye-py/src/sources.rs) ---

__all__ += ["METADATA_LOAD", "ScratchDir", "SourceError", "send_stream"]

class SourceError(AllyeError): ...

def send_stream(
    data: Any,
    table_name: str,
    *,
    secret_dir: Optional[str] = None,
    producer: str = ...,
    ttl_sec: Optional[int] = None,
    compression: Optional[str] = None,
    metadata: Optional[dict[str, Any]] = None,
    finish: Optional[Any] = None,
    durable: bool = False,
    auto_gc: bool = True,
    auto_gc_grace_sec: int = ...,
    keep_versions: int = ...,
) -> Version:
    """Writes the batches of an Arrow stream into one new version as they arrive (a file
    payload) and publishes it at the end; ``finish()`` returns a dict merged into the
    ``ready`` line's metadata. Any error leaves the previous version current."""

METADATA_LOAD: str

@final
class ScratchDir:
    """A load's scratch folder in the temporary directory (``adc-<purpose>-<16 hex>``,
    private, naming its owner process), removed by :meth:`remove` or when the handle is
    dropped; a process killed meanwhile leaves it to gc (scope ``"orphan"``)."""

    def __new__(cls, purpose: str) -> ScratchDir: ...
    @property
    def path(self) -> str: ...
    def remove(self) -> None: ...

# --- data sources' and remote defaults (tuning.rs) ---

DEFAULT_LOAD_BATCH_ROWS: int
DEFAULT_SQL_CONNECT_TIMEOUT_SEC: int
DEFAULT_REMOTE_PORT: int
DEFAULT_MAX_MESSAGE_BYTES: int
DEFAULT_CHECK_TTL_SEC: float
DEFAULT_REMOTE_TIMEOUT_SEC: float
DEFAULT_KEEPALIVE_MS: int
DEFAULT_MAX_FULL_PULL_BYTES: int
MAX_REMOTE_REQUEST_BYTES: int

__all__ += [
    "DEFAULT_LOAD_BATCH_ROWS",
    "DEFAULT_SQL_CONNECT_TIMEOUT_SEC",
    "DEFAULT_REMOTE_PORT",
    "DEFAULT_MAX_MESSAGE_BYTES",
    "DEFAULT_CHECK_TTL_SEC",
    "DEFAULT_REMOTE_TIMEOUT_SEC",
    "DEFAULT_KEEPALIVE_MS",
    "DEFAULT_MAX_FULL_PULL_BYTES",
    "MAX_REMOTE_REQUEST_BYTES",
]

# --- appending loads: the lock a load holds on a stream (streams.rs) ---

@final
class StreamLoadLock:
    """The lock a load holds on a stream while it appends to it."""

    def release(self) -> None: ...

def stream_load_lock(table_name: str, *, secret_dir: Optional[str] = None) -> Optional[StreamLoadLock]:
    """Takes the lock of a load appending to the stream if free now; None when another load holds it."""

__all__ += ["StreamLoadLock", "stream_load_lock"]

# --- receiving in place (receive.rs) ---

def receive(
    stream: _ArrowStream,
    *,
    rows: int,
    null_counts: list[int],
    data_bytes: Optional[list[Optional[int]]] = None,
    secret_dir: Optional[str] = None,
    table_name: Optional[str] = None,
    producer: str = ...,  # DEFAULT_PRODUCER
    ttl_sec: Optional[int] = None,
    metadata: Optional[dict[str, Any]] = None,
    shape: Optional[tuple[int, int]] = None,
    schema_sha256: Optional[str] = None,
    durable: bool = False,
    auto_gc: bool = True,
    auto_gc_grace_sec: int = ...,  # DEFAULT_AUTO_GC_GRACE_SEC
    keep_versions: int = ...,  # DEFAULT_KEEP_VERSIONS
) -> Version:
    """Receives an Arrow stream announced to hold ``rows`` rows (and each column's nulls and
    value bytes) in place, as one new version; the auto-gc arguments apply as to ``send``."""

def receivable(schema: Any, data_bytes: Optional[list[Optional[int]]] = None) -> bool: ...

__all__ += ["receive", "receivable"]

# --- the store's trust rule for files Python keeps in a store (trust.rs) ---

SETTINGS_FILE: str
REMOTE_DIR: str

def ensure_store_dir(name: Optional[str] = None, *, secret_dir: Optional[str] = None) -> str:
    """Creates the store (and ``<store>/<name>``) private if missing, checks them; returns the path."""

def read_store_file(name: str, *, secret_dir: Optional[str] = None) -> Optional[bytes]:
    """``<store>/<name>`` read under the trust rule; None when missing."""

def write_store_file(name: str, data: bytes, *, secret_dir: Optional[str] = None, exclusive: bool = False) -> bool:
    """Writes ``<store>/<name>`` atomically (0600); with ``exclusive``, keeps an existing file (False)."""

__all__ += ["SETTINGS_FILE", "REMOTE_DIR", "ensure_store_dir", "read_store_file", "write_store_file"]
