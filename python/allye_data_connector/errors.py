"""The exception hierarchy of allye_data_connector.

Every error the library raises is an :class:`AllyeError`. Each class also derives from
the built-in exception that code written for 0.1.2 (or for Python in general) would
catch: a missing table is a ``KeyError``, bad arguments are ``ValueError`` or
``TypeError``, storage trouble is an ``OSError``, a wait that ran out is a
``TimeoutError``. The classes are created by the Rust core (``_core``), which raises
them itself, so there is one hierarchy for both layers; this module re-exports them.

- :class:`AllyeError`: base class of every error raised by allye_data_connector.
- :class:`TableNotFoundError` (``KeyError``): no ready version of the table exists.
- :class:`ObjectNotFoundError` (a :class:`TableNotFoundError`): no current named
  object of that name in the namespace.
- :class:`TableExpiredError`: the current version's ``ttl_sec`` has run out.
- :class:`PayloadError`: the manifest names a payload that cannot be read;
  :class:`PayloadMissingError` (``FileNotFoundError``): it no longer exists;
  :class:`PayloadCorruptError` (``ValueError``): it is not valid Arrow IPC data;
  :class:`UnknownTransportError` (``ValueError``): its transport is unknown.
- :class:`InvalidArgumentError` (``ValueError``): an argument cannot be used;
  :class:`SchemaConflictError`: an append to a stream holds values a column cannot take
  (those rows alone were refused; ``conflicts``, ``refused``, ``stored`` say which).
- :class:`InvalidInputError` (``TypeError``): the data to send is not sendable.
- :class:`ConversionError` (``TypeError``): a column cannot be converted to Arrow.
- :class:`ArrowDataError` (``ValueError``): Arrow refused to encode or decode the data;
  :class:`NanFoundError`: a float column a send was told holds no NaN holds one
  (``reject_nan``; nothing was written).
- :class:`StoreError` (``OSError``): the store cannot be used;
  :class:`StoreUnusableError`: not a writable directory; :class:`StoreIOError`: an I/O
  operation failed; :class:`StorageFullError`: the device is full;
  :class:`StoreFullError`: a put would pass the ``max_store_bytes`` quota;
  :class:`StoreNotPrivateError` (a :class:`StoreUnusableError`): the store, something
  in it, or a shared-memory segment it uses is not private to you (another user's,
  writable by others, a symbolic link); nothing was read or written.
- :class:`CancelledError`: a send or load was cancelled; nothing was left behind.
- :class:`WaitTimeoutError` (``TimeoutError``): a wait ran out of time.
- :class:`ArrayError`: a shared array cannot be used as asked;
  :class:`ArrayExistsError` (``FileExistsError``): the name is taken;
  :class:`ArrayNotFoundError` (``FileNotFoundError``): no such array;
  :class:`ArrayLayoutError` (``ValueError``): not the expected layout, shape or dtype;
  :class:`ArrayClosedError` (``RuntimeError``): closed in this process.
- :class:`SourceError`: a data source failed while loading (file, query, connection,
  its own ``read()``); the table's previous version is intact.
- :class:`RemoteUnavailableError` (``ConnectionError``): no peer could serve a table in
  time and no cached version may be served instead.
- :class:`MissingDependencyError` (``ImportError``): an optional dependency is not
  installed; the message names the extra that installs it.
"""

from __future__ import annotations

from ._core import (
    AllyeError,
    ArrayClosedError,
    ArrayError,
    ArrayExistsError,
    ArrayLayoutError,
    ArrayNotFoundError,
    ArrowDataError,
    CancelledError,
    SourceError,
    ConversionError,
    InvalidArgumentError,
    InvalidInputError,
    MissingDependencyError,
    NanFoundError,
    PayloadCorruptError,
    PayloadError,
    PayloadMissingError,
    RemoteUnavailableError,
    SchemaConflictError,
    StorageFullError,
    StoreError,
    StoreFullError,
    StoreIOError,
    StoreNotPrivateError,
    StoreUnusableError,
    ObjectNotFoundError,
    TableExpiredError,
    TableNotFoundError,
    UnknownTransportError,
    WaitTimeoutError,
)

__all__ = [
    "AllyeError",
    "TableNotFoundError",
    "TableExpiredError",
    "ObjectNotFoundError",
    "PayloadError",
    "PayloadMissingError",
    "PayloadCorruptError",
    "UnknownTransportError",
    "InvalidArgumentError",
    "SchemaConflictError",
    "InvalidInputError",
    "ConversionError",
    "ArrowDataError",
    "NanFoundError",
    "StoreError",
    "StoreUnusableError",
    "StoreIOError",
    "StorageFullError",
    "CancelledError",
    "WaitTimeoutError",
    "ArrayError",
    "ArrayExistsError",
    "ArrayNotFoundError",
    "SourceError",
    "ArrayLayoutError",
    "ArrayClosedError",
    "StoreFullError",
    "StoreNotPrivateError",
    "RemoteUnavailableError",
    "MissingDependencyError",
]
