"""``adc serve`` with its DoGet slowed down, for the tests of silence (``timeout_sec``).

    python -m tests.remote.slow_server MODE DELAY -- <adc arguments>

MODE ``throttle``: each message after the first waits DELAY seconds (a slow link that is
never silent for long); ``hang-mid``: three messages, then silence; ``hang-open``: DoGet
is silent before its first message. It is the real server (the ``adc`` command in this
process); only the module function that cuts a table into messages, or the decoding of
the ticket, is wrapped.
"""

from __future__ import annotations

import sys
import time
from typing import Any, Iterator

from allye_data_connector.cli import main
from allye_data_connector.remote import _wire, server

FOREVER = 3600.0


def _slowed(mode: str, delay: float) -> None:
    cut = server.chunked

    def chunked(table: Any, max_bytes: int = server.MAX_MESSAGE_BYTES) -> Iterator[Any]:
        for i, batch in enumerate(cut(table, max_bytes)):
            if mode == "hang-mid" and i == 3:
                time.sleep(FOREVER)
            if i and mode == "throttle":
                time.sleep(delay)
            yield batch

    server.chunked = chunked  # type: ignore[assignment]
    if mode == "hang-open":
        decode = _wire.request_of_ticket

        def request_of_ticket(raw: bytes) -> Any:
            time.sleep(FOREVER)
            return decode(raw)

        _wire.request_of_ticket = request_of_ticket  # type: ignore[assignment]


if __name__ == "__main__":
    mode, delay, sep, *argv = sys.argv[1:]
    assert sep == "--" and mode in ("throttle", "hang-mid", "hang-open"), sys.argv
    _slowed(mode, float(delay))
    main(argv)
