"""Type stubs of the Rust extension ``allye_data_connector._core`` (see rust/allye-py)."""

from typing import Any, Optional, Protocol, Sequence

__version__: str

class _ArrowStream(Protocol):
    def __arrow_c_stream__(self, requested_schema: object = ...) -> object: ...

def resolve_store(secret_dir: Optional[str] = None) -> str: ...
def send(
    data: _ArrowStream,
    *,
    secret_dir: Optional[str] = None,
    table_name: Optional[str] = None,
    producer: str = "python",
    transport: str = "auto",
    max_shm_bytes: int = 67108864,
    chunk_rows: int = 500000,
    ttl_sec: Optional[int] = None,
    compression: Optional[str] = None,
    metadata_json: Optional[str] = None,
    shape: Optional[tuple[int, int]] = None,
    schema_sha256: Optional[str] = None,
    durable: bool = False,
) -> str:
    """Sends Arrow data; returns the ``ready`` manifest line (JSON)."""

def latest(table_name: str, *, secret_dir: Optional[str] = None, producer: Optional[str] = None) -> str:
    """The current ``ready`` line of a table (JSON)."""

def list_tables(*, secret_dir: Optional[str] = None, producer: Optional[str] = None) -> str:
    """JSON array of every table's current ``ready`` event (removed tables left out)."""

def gc(*, secret_dir: Optional[str] = None, dry_run: bool = True, keep_versions: int = 1) -> str:
    """JSON array of the actions taken (or that would be taken)."""

def compact(*, secret_dir: Optional[str] = None) -> str:
    """Rewrites the manifest keeping only live lines; JSON report
    ``{"lines_before", "lines_after", "bytes_before", "bytes_after"}``."""


def table_states(*, secret_dir: Optional[str] = None, producer: Optional[str] = None) -> str:
    """JSON array of every table's state: ``table_name``, ``state`` (writing, ready, error,
    removed), ``error``, ``latest`` (last line), ``ready`` (current version), ``expired``."""

def table_state(table_name: str, *, secret_dir: Optional[str] = None, producer: Optional[str] = None) -> str:
    """JSON object of one table's state (raises TableNotFoundError when never mentioned)."""

def get_live(
    table_name: str,
    *,
    secret_dir: Optional[str] = None,
    producer: Optional[str] = None,
    record_read: bool = True,
) -> tuple[str, _ArrowStream]:
    """``(ready line, Arrow table)``; the table's buffers point into the mapping. A removed
    table raises TableNotFoundError; ``record_read=False`` for a look that is not a load
    (it does not count for ``shm_unlink_on_read``)."""

def remove_table(table_name: str, *, secret_dir: Optional[str] = None) -> str:
    """Appends a removal line, deletes the table's payloads in this store; JSON report
    ``{"table_name", "id", "deleted": [[transport, locator]], "skipped": [...]}``."""

class ManifestWatcher:
    """Wakes up when the store's manifest changes (file-system events, else polling)."""

    def __init__(
        self, *, secret_dir: Optional[str] = None, force_polling: bool = False, poll_interval_sec: Optional[float] = None
    ) -> None: ...
    @property
    def mode(self) -> str:
        """``"events"`` or ``"polling"``."""
    def mark_seen(self) -> None: ...
    def wait(self, timeout_sec: float) -> bool:
        """Blocks without the GIL until the manifest may have changed or the timeout; returns whether it changed."""

class ManifestTail:
    """Reads the manifest lines appended since the last call."""

    def __init__(self, *, secret_dir: Optional[str] = None, from_start: bool = False) -> None: ...
    def read_new(self) -> str:
        """JSON array of the new complete lines' events."""

# ---- shared arrays (Linux only: absent elsewhere) ------------------------------------

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

def list_arrays(*, secret_dir: Optional[str] = None) -> list[dict[str, Any]]:
    """Every shared array of the store (name, segment, state, dtype, shape, nbytes,
    creator_pid, creator_alive, openers, lock_recoveries)."""

def collect_arrays(*, secret_dir: Optional[str] = None, dry_run: bool = True) -> list[dict[str, Any]]:
    """Frees abandoned shared arrays; gc actions with ``transport`` ``"shared_array"``."""
