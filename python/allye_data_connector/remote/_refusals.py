"""What a Flight client is told when the server refuses or fails its call
(docs/PROTOCOL.md 10.1, "The Flight server"): one line of at most
:data:`MAX_MESSAGE_CHARS` characters, the right gRPC status, and the call's request id,
which the server's log line about it carries too. Never a traceback, a server path or
the client's own input beyond a short quote.

Which status a refusal gets, and how:

- ``INVALID_ARGUMENT``: :class:`InvalidRequest` (a ``ValueError``);
- ``NOT_FOUND``: :class:`NotFound` (a ``KeyError``);
- ``UNIMPLEMENTED``: :class:`Unsupported` (a ``NotImplementedError``);
- ``UNKNOWN``: :class:`StreamFailed`, a failure after a stream began;
- ``UNAUTHENTICATED``, ``PERMISSION_DENIED``, ``UNAVAILABLE`` (the store is full),
  ``INTERNAL`` (a fault of ours): pyarrow's own ``FlightUnauthenticatedError``,
  ``FlightUnauthorizedError``, ``FlightUnavailableError``, ``FlightInternalError``.

Why the classes of our own, and :func:`install_format_hook`: pyarrow's Flight server
gives a call a status from a raised ``flight.Flight*Error`` only for the statuses of the
last line (their messages go out as written); ``INVALID_ARGUMENT`` and ``NOT_FOUND`` come
only from a Python ``ValueError`` or ``KeyError``, and for any Python exception pyarrow
appends ``traceback.format_exception(...)`` (the server's frames, with their file paths)
to the status message and to the ``x-arrow-status-detail-bin`` trailer. The hook makes
``traceback.format_exception`` give the class name alone for a :class:`Refusal` (which is
what pyarrow itself sent before it formatted tracebacks); every other exception is
formatted exactly as before. A client then reads, for example,
``no table 'x' on this server (request 5f0c2a91). Detail: Python exception: NotFound``.
"""

from __future__ import annotations

import functools
import inspect
import logging
import secrets
import traceback
from typing import Any, Callable, Iterator, Optional, TypeVar

import pyarrow.flight as flight

logger = logging.getLogger("allye_data_connector.remote.server")

#: Longest message a client is sent (a quoted name or value is cut to fit).
MAX_MESSAGE_CHARS = 400
#: Longest quote of a client's own input inside a message.
MAX_QUOTE_CHARS = 64
#: Longest refusal the server's log line repeats.
_LOGGED = 2000


class Refusal(Exception):
    """An error whose message (and only that) a client may read. ``detail``: what the
    server's log says besides (a local error's text, which may name server paths)."""

    def __init__(self, message: str, *, detail: Optional[str] = None) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail

    def __str__(self) -> str:  # KeyError's own __str__ would quote the message
        return self.message


class InvalidRequest(Refusal, ValueError):
    """The request cannot be served as sent (``INVALID_ARGUMENT``)."""


class NotFound(Refusal, KeyError):
    """What the request names is not on this server (``NOT_FOUND``)."""


class Unsupported(Refusal, NotImplementedError):
    """A Flight method this server does not offer (``UNIMPLEMENTED``)."""


class StreamFailed(Refusal):
    """The server failed after the stream began (``UNKNOWN``: a stream's status cannot
    change once data went out)."""


def request_id() -> str:
    """A new request id: 8 hex digits, unpredictable, for one call."""
    return secrets.token_hex(4)


def quote(value: Any) -> str:
    """``repr(value)``, one line, cut to :data:`MAX_QUOTE_CHARS` characters."""
    text = repr(value)
    return text if len(text) <= MAX_QUOTE_CHARS else text[: MAX_QUOTE_CHARS - 3] + "..."


def one_line(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    """``text`` with every control character (line breaks included) made a space, cut to
    ``limit`` characters."""
    flat = "".join(" " if (ord(c) < 32 or 127 <= ord(c) < 160) else c for c in text).strip()
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def _with_id(message: str, rid: str) -> str:
    return f"{one_line(message, MAX_MESSAGE_CHARS - 20)} (request {rid})"


_REFUSED_AS: dict[type, str] = {
    InvalidRequest: "INVALID_ARGUMENT",
    NotFound: "NOT_FOUND",
    Unsupported: "UNIMPLEMENTED",
    StreamFailed: "UNKNOWN",
    flight.FlightUnauthenticatedError: "UNAUTHENTICATED",
    flight.FlightUnauthorizedError: "PERMISSION_DENIED",
    flight.FlightUnavailableError: "UNAVAILABLE",
}


#: pyarrow's own refusals that the server raises on purpose: passed on with the request id.
_PASSED_ON = (flight.FlightUnauthenticatedError, flight.FlightUnauthorizedError, flight.FlightUnavailableError)


def _status(exc: BaseException) -> str:
    for kind, status in _REFUSED_AS.items():
        if isinstance(exc, kind):
            return status
    return "INTERNAL"


def refused(exc: BaseException, rid: str, method: str) -> BaseException:
    """What the client gets for ``exc`` raised while serving ``method`` (logged here, with
    ``rid``): the same kind of refusal, its message one line ending with the request id;
    anything else (a fault of ours) an ``INTERNAL`` error that says only that, with the
    traceback in the log."""
    # The log line is one line too (a client's value may hold line breaks: no forged
    # log lines) and bounded (a client's 1 MB value is not logged whole).
    if isinstance(exc, Refusal):
        logger.info("request %s: %s refused (%s): %s%s", rid, method, _status(exc), one_line(exc.message, _LOGGED),
                    f" [{one_line(exc.detail, _LOGGED)}]" if exc.detail else "")
        return type(exc)(_with_id(exc.message, rid))
    if isinstance(exc, _PASSED_ON):
        logger.info("request %s: %s refused (%s): %s", rid, method, _status(exc), one_line(str(exc), _LOGGED))
        same: BaseException = type(exc)(_with_id(str(exc), rid))
        return same
    logger.error("request %s: %s failed", rid, method, exc_info=exc)
    internal: BaseException = flight.FlightInternalError(
        f"the server failed to serve this call (request {rid}); its log has the detail")
    return internal


_F = TypeVar("_F", bound=Callable[..., Any])


def guarded(method: _F) -> _F:
    """A Flight method whose every failure reaches the client through :func:`refused`
    under one request id per call (for a generator method, the failures while it is
    iterated too)."""
    name = method.__name__

    if inspect.isgeneratorfunction(method):
        @functools.wraps(method)
        def iterate(self: Any, *args: Any) -> Iterator[Any]:
            rid = request_id()
            try:
                yield from method(self, *args)
            except Exception as exc:
                raise refused(exc, rid, name) from None

        return iterate  # type: ignore[return-value]

    @functools.wraps(method)
    def call(self: Any, *args: Any) -> Any:
        rid = request_id()
        try:
            return method(self, *args)
        except Exception as exc:
            raise refused(exc, rid, name) from None

    return call  # type: ignore[return-value]


# ---- the format hook -----------------------------------------------------------------------

_HOOKED = "_allye_refusals_hook"


def install_format_hook() -> None:
    """Makes ``traceback.format_exception`` give a :class:`Refusal`'s class name alone
    (see the module docs); idempotent, and a no-op for every other exception."""
    current = traceback.format_exception
    if getattr(current, _HOOKED, False):
        return

    @functools.wraps(current)
    def format_exception(exc: Any, /, *args: Any, **kwargs: Any) -> list[str]:
        value = args[0] if args else kwargs.get("value", exc)
        if isinstance(value, Refusal):
            return [type(value).__name__]
        return current(exc, *args, **kwargs)

    setattr(format_exception, _HOOKED, True)
    traceback.format_exception = format_exception
