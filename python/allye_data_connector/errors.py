"""The exception hierarchy of allye_data_connector.

Every error the library raises is an :class:`AllyeError`. Each class also derives from
the built-in exception that code written for 0.1.2 (or for Python in general) would
catch: a missing table is a ``KeyError``, bad arguments are ``ValueError`` or
``TypeError``, storage trouble is an ``OSError``. The Rust core raises these very
classes (by name), so there is one hierarchy for both layers.
"""

from __future__ import annotations

__all__ = [
    "AllyeError",
    "TableNotFoundError",
    "TableExpiredError",
    "PayloadError",
    "PayloadMissingError",
    "PayloadCorruptError",
    "UnknownTransportError",
    "InvalidArgumentError",
    "InvalidInputError",
    "ConversionError",
    "ArrowDataError",
    "StoreError",
    "StoreUnusableError",
    "StoreIOError",
    "StorageFullError",
]


class AllyeError(Exception):
    """Base class of every error raised by allye_data_connector."""


class TableNotFoundError(AllyeError, KeyError):
    """No ready version of the table exists (0.1.2 raised a plain ``KeyError``)."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class TableExpiredError(TableNotFoundError):
    """The current version's ``ttl_sec`` has run out; it is no longer served."""


class PayloadError(AllyeError):
    """The manifest names a payload that cannot be read."""


class PayloadMissingError(PayloadError, FileNotFoundError):
    """The payload (segment or file) no longer exists."""


class PayloadCorruptError(PayloadError, ValueError):
    """The payload is not valid Arrow IPC data (truncated, overwritten, garbage)."""


class UnknownTransportError(PayloadError, ValueError):
    """A ``ready`` line names a transport this version does not know."""


class InvalidArgumentError(AllyeError, ValueError):
    """An argument has a value that cannot be used (table name, transport, TTL, ...)."""


class InvalidInputError(AllyeError, TypeError):
    """The data to send is not something we can send (not a DataFrame, ...)."""


class ConversionError(AllyeError, TypeError):
    """A DataFrame column cannot be converted to Arrow (mixed-type objects, ...)."""


class ArrowDataError(AllyeError, ValueError):
    """Arrow refused to encode or decode the data."""


class StoreError(AllyeError, OSError):
    """The store directory or its files cannot be used."""


class StoreUnusableError(StoreError):
    """The store path is not a writable directory."""


class StoreIOError(StoreError):
    """An I/O operation on the store failed."""


class StorageFullError(StoreIOError):
    """The device (``/dev/shm`` or the disk) is full."""


class CancelledError(AllyeError):
    """A send or load was cancelled through its cancel token; nothing was left behind."""


__all__.append("CancelledError")


class ArrayError(AllyeError):
    """A shared array (:class:`~allye_data_connector.SharedArray`) cannot be used as asked."""


class ArrayExistsError(ArrayError, FileExistsError):
    """A shared array of this name already exists (create without ``exist_ok=True``)."""


class ArrayNotFoundError(ArrayError, FileNotFoundError):
    """No shared array of this name exists in the store (never created, destroyed, or freed by gc)."""


class ArrayLayoutError(ArrayError, ValueError):
    """The segment is not a shared array of the expected layout, shape or dtype."""


class ArrayClosedError(ArrayError, RuntimeError):
    """The shared array was closed (or destroyed) in this process; open it again."""


__all__ += ["ArrayError", "ArrayExistsError", "ArrayNotFoundError", "ArrayLayoutError", "ArrayClosedError"]
