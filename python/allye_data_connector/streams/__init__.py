"""Streaming tables: tables that grow by appends from many processes, read live.

``append(table, data)`` adds one immutable chunk and names it in the stream's chunk log
(:mod:`.api`, with ``read``, ``follow``, ``compact_stream``, ``remove_stream``);
:class:`Writer` buffers rows in a background thread (panoply's SDK model, with errors
that are never lost; :mod:`.writer`); ``append_log``/:class:`LogWriter` are the
fixed-schema fast path for timestamped messages (ataraxis' ``LogPackage``; :mod:`.log`).
Every stream is also published as an ordinary v1 version (all rows so far) at most every
``publish_interval_sec`` and at exit, for 0.1.2 and the widgets (:mod:`._background`).
The format is in docs/PROTOCOL.md ("Streams")."""

from .api import (
    DEFAULT_FLUSH_INTERVAL_SEC,
    DEFAULT_PUBLISH_INTERVAL_SEC,
    append,
    compact_stream,
    follow,
    is_stream,
    publish,
    read,
    remove_stream,
)
from .log import LOG_SCHEMA, PAYLOAD_COLUMN, SOURCE_COLUMN, TIME_COLUMN, LogWriter, append_log, log_table
from .writer import Writer, WriterClosedError

__all__ = [
    "DEFAULT_FLUSH_INTERVAL_SEC",
    "DEFAULT_PUBLISH_INTERVAL_SEC",
    "LOG_SCHEMA",
    "PAYLOAD_COLUMN",
    "SOURCE_COLUMN",
    "TIME_COLUMN",
    "LogWriter",
    "Writer",
    "WriterClosedError",
    "append",
    "append_log",
    "compact_stream",
    "follow",
    "is_stream",
    "log_table",
    "publish",
    "read",
    "remove_stream",
]
