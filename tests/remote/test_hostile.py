"""A hostile Flight client against a real ``adc serve`` process: raw ``pyarrow.flight``
calls only (no project code on the client side), sending what no client of ours sends.
Every refusal must be one line with the right status (pyarrow's class for it:
``ArrowInvalid`` = INVALID_ARGUMENT, ``ArrowKeyError`` = NOT_FOUND,
``FlightUnauthenticatedError`` = UNAUTHENTICATED, ``FlightUnauthorizedError`` =
PERMISSION_DENIED, ``ArrowNotImplementedError`` = UNIMPLEMENTED), carry a request id that
the server's log carries too, and hold no traceback, no server path and no long echo of
the input; nothing may be written; and the server must go on serving the right data."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.flight as flight
import pytest

import allye_data_connector as adc

from .conftest import Server

MAX = adc._core.MAX_REMOTE_REQUEST_BYTES
ONE_MB_NAME = "x" * 1_000_000


def _frame() -> pd.DataFrame:
    return pd.DataFrame({"a": np.arange(1000, dtype="int64"), "b": np.linspace(0, 1, 1000)},
                        index=pd.date_range("2024-01-01", periods=1000, freq="min"))


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[Server]:
    """One token-protected server accepting pushes, holding table ``t``."""
    root = tmp_path_factory.mktemp("hostile")
    adc.send_dataframe(_frame(), "t", secret_dir=root / "srv", shm_unlink_on_read=False)
    s = Server(root / "srv", "--allow-put")
    yield s
    assert s.proc.poll() is None, "the server died: " + s.log()
    s.stop()
    from tests.helpers import unlink_segments

    unlink_segments(s.store)


@pytest.fixture(scope="module")
def client(server: Server) -> Iterator[flight.FlightClient]:
    c = flight.FlightClient(server.location)
    yield c
    c.close()


def _auth(server: Server) -> flight.FlightCallOptions:
    return flight.FlightCallOptions(timeout=30, headers=[(b"authorization", f"Bearer {server.token}".encode())])


def _refused(server: Server, kind: type, call: Callable[[], Any]) -> str:
    """Runs ``call``, which must fail with ``kind``; checks the message is clean and that
    the server logged its request id. Returns the message."""
    with pytest.raises(kind) as info:
        call()
    text = str(info.value)
    assert type(info.value).__name__ == kind.__name__ or isinstance(info.value, kind)
    assert "\n" not in text, f"not one line: {text!r}"
    for leak in ("Traceback", 'File "', ".py", "site-packages", str(server.store), "allye_data_connector"):
        assert leak not in text, f"{leak!r} leaked: {text}"
    assert len(text) < 2000, f"{len(text)} characters: the input is echoed"
    found = re.search(r"\(request ([0-9a-f]{8})\)", text)
    assert found, f"no request id: {text}"
    assert f"request {found.group(1)}:" in server.log(), "the server's log has no line with the request id"
    return text


def _still_serving(server: Server, client: flight.FlightClient) -> None:
    info = client.get_flight_info(flight.FlightDescriptor.for_path("t"), _auth(server))
    table = client.do_get(info.endpoints[0].ticket, _auth(server)).read_all()
    pd.testing.assert_frame_equal(table.to_pandas(), _frame(), check_freq=False)
    assert server.proc.poll() is None


def _command(obj: Any) -> flight.FlightDescriptor:
    return flight.FlightDescriptor.for_command(obj if isinstance(obj, bytes) else json.dumps(obj))


BAD_COMMANDS = {
    "not json": b"{table: t}",
    "not utf-8": b'{"table": "\xff"}',
    "json array": [1, 2],
    "json string": "t",
    "no table": {"columns": ["a"]},
    "table is a number": {"table": 5},
    "table is null": {"table": None},
    "unknown key": {"table": "t", "filter": "a > 1"},
    "columns a string": {"table": "t", "columns": "a"},
    "columns of numbers": {"table": "t", "columns": [1, 2]},
    "rows one value": {"table": "t", "rows": [1]},
    "rows three values": {"table": "t", "rows": [1, 2, 3]},
    "rows of floats": {"table": "t", "rows": [1.5, 2]},
    "rows infinite": {"table": "t", "rows": [0, float("inf")]},
    "rows of strings": {"table": "t", "rows": ["0", "5"]},
    "rows of booleans": {"table": "t", "rows": [True, False]},
    "rows an object": {"table": "t", "rows": {"start": 0}},
    "start not a time": {"table": "t", "start": "garbage"},
    "start a number": {"table": "t", "start": 5},
    "after not a time": {"table": "t", "after": "yesterday-ish"},
    "unknown column": {"table": "t", "columns": ["nope"]},
    "time column unknown": {"table": "t", "start": "2024-01-01", "time_column": "nope"},
    "producer a list": {"table": "t", "producer": ["x"]},
    "name with ..": {"table": "../../x"},
    "absolute name": {"table": "/etc/passwd"},
    "name with NUL": {"table": "t\0"},
    "name with a line break": {"table": "t\nx"},
    "name with an escape": {"table": "\x1b[31mt"},
    "1 MB name": {"table": ONE_MB_NAME},
    "empty name": {"table": ""},
    "nested too deep": b"[" * 200_000,
    "over the size bound": b'{"table": "t", "columns": ["' + b"c" * (MAX + 10) + b'"]}',
}


@pytest.mark.parametrize("what", list(BAD_COMMANDS))
def test_bad_descriptor_is_invalid_argument(server, client, what):
    descriptor = _command(BAD_COMMANDS[what])
    _refused(server, pa.ArrowInvalid, lambda: client.get_flight_info(descriptor, _auth(server)))
    _refused(server, pa.ArrowInvalid, lambda: client.get_schema(descriptor, _auth(server)))


@pytest.mark.parametrize("name", ["../../x", "/abs/path", "a//b", "a\0b", ONE_MB_NAME, "é" * 600])
def test_bad_path_descriptor_is_invalid_argument(server, client, name):
    descriptor = flight.FlightDescriptor.for_path(name)
    text = _refused(server, pa.ArrowInvalid, lambda: client.get_flight_info(descriptor, _auth(server)))
    assert ONE_MB_NAME[:100] not in text


def test_path_descriptor_of_two_parts_is_invalid_argument(server, client):
    descriptor = flight.FlightDescriptor.for_path("t", "u")
    _refused(server, pa.ArrowInvalid, lambda: client.get_flight_info(descriptor, _auth(server)))


@pytest.mark.parametrize("rows", [[-5, 10**30], [10**30, None], [0, -10**30], [None, -990], [-10**30, 3]])
def test_huge_and_negative_rows_slice_as_python_does(server, client, rows):
    info = client.get_flight_info(_command({"table": "t", "rows": rows}), _auth(server))
    got = client.do_get(info.endpoints[0].ticket, _auth(server)).read_all().to_pandas()
    pd.testing.assert_frame_equal(got, _frame().iloc[slice(*rows)], check_freq=False, check_index_type=False)


def test_missing_table_is_not_found(server, client):
    for descriptor in (flight.FlightDescriptor.for_path("nope"), _command({"table": "nope"})):
        text = _refused(server, pa.ArrowKeyError, lambda: client.get_flight_info(descriptor, _auth(server)))
        assert "no table 'nope'" in text


BAD_TICKETS = {
    "empty": b"",
    "not json": b"\x00\x01garbage",
    "json list": b"[]",
    "no id": json.dumps({"table": "t"}).encode(),
    "id a number": json.dumps({"table": "t", "id": 7}).encode(),
    "unknown key": json.dumps({"table": "t", "id": "x", "path": "/etc/passwd"}).encode(),
    "name with ..": json.dumps({"table": "../t", "id": "x"}).encode(),
    "nested too deep": b"{" * 100_000,
    "over the size bound": b" " * (MAX + 1),
}


@pytest.mark.parametrize("what", list(BAD_TICKETS))
def test_bad_ticket_is_invalid_argument(server, client, what):
    ticket = flight.Ticket(BAD_TICKETS[what])
    text = _refused(server, pa.ArrowInvalid, lambda: client.do_get(ticket, _auth(server)).read_all())
    # A stream call shows the status gRPC carried, not only pyarrow's class for it.
    assert "INVALID_ARGUMENT" in text


def test_ticket_of_another_version_is_not_found_and_asks_to_replan(server, client):
    ticket = flight.Ticket(json.dumps({"table": "t", "id": "not-a-version", "source_id": "nope"}).encode())
    text = _refused(server, pa.ArrowKeyError, lambda: client.do_get(ticket, _auth(server)).read_all())
    assert "re-plan" in text and "NOT_FOUND" in text


@pytest.mark.parametrize("kind, body", [
    ("nope", b""),
    ("x" * 100_000, b""),
    ("versions", b"{"),
    ("versions", b'"t"'),
    ("versions", b"[1, 2]"),
    ("versions", json.dumps(["../x"]).encode()),
    ("versions", json.dumps([ONE_MB_NAME]).encode()),
    ("versions", b"[" * 100_000),
    ("versions", b"[" + b'"t",' * (MAX // 4) + b'"t"]'),
])
def test_bad_action_is_invalid_argument(server, client, kind, body):
    text = _refused(server, pa.ArrowInvalid, lambda: list(client.do_action(flight.Action(kind, body), _auth(server))))
    assert "x" * 100 not in text


def test_versions_action_answers_after_the_refusals(server, client):
    (result,) = client.do_action(flight.Action("versions", json.dumps(["t", "nope"]).encode()), _auth(server))
    out = json.loads(result.body.to_pybytes())
    assert out["nope"] is None and out["t"]["id"] == adc._core.latest("t", secret_dir=str(server.store))["id"]


def test_list_flights_with_criteria_is_invalid_and_do_exchange_unimplemented(server, client):
    _refused(server, pa.ArrowInvalid, lambda: list(client.list_flights(b"x" * 1000, _auth(server))))

    def exchange() -> None:
        writer, reader = client.do_exchange(flight.FlightDescriptor.for_command(b"{}"), _auth(server))
        reader.read_all()

    text = _refused(server, pa.ArrowNotImplementedError, exchange)
    assert "UNIMPLEMENTED" in text


def _push(server: Server, client: flight.FlightClient, descriptor: flight.FlightDescriptor,
          options: flight.FlightCallOptions) -> None:
    table = pa.table({"a": [1, 2, 3]})
    writer, meta = client.do_put(descriptor, table.schema, options)
    try:
        writer.write_table(table)
        writer.done_writing()
        meta.read()
    finally:
        writer.close()


def _store_files(server: Server) -> set[str]:
    return {str(p.relative_to(server.store)) for p in server.store.rglob("*") if p.is_file()}


@pytest.mark.parametrize("request_", [
    {"table": "../../x"}, {"table": "/tmp/evil"}, {"table": "a\0b"}, {"table": ONE_MB_NAME},
    {"table": "ok", "producer": "me"}, {"table": 3}, b"not json",
])
def test_bad_push_is_invalid_argument_and_writes_nothing(server, client, request_):
    before_tables = [t["table_name"] for t in adc.list_tables(secret_dir=server.store)]
    before_files = _store_files(server)
    _refused(server, pa.ArrowInvalid, lambda: _push(server, client, _command(request_), _auth(server)))
    _refused(server, pa.ArrowInvalid,
             lambda: _push(server, client, flight.FlightDescriptor.for_path("../up"), _auth(server)))
    assert [t["table_name"] for t in adc.list_tables(secret_dir=server.store)] == before_tables
    assert _store_files(server) - before_files <= {"manifest.lock"}


def test_a_good_push_after_the_bad_ones_is_stored(server, client):
    _push(server, client, _command({"table": "pushed/ok"}), _auth(server))
    assert adc.get_arrow("pushed/ok", secret_dir=server.store).column("a").to_pylist() == [1, 2, 3]
    adc.remove_table("pushed/ok", secret_dir=server.store)


@pytest.mark.parametrize("header", [
    None,
    "Bearer wrong",
    "bearer {token}",
    "Bearer {token} ",
    "Bearer {short}",
    "Basic {token}",
    "{token}",
    "Bearer " + "A" * 4000,
])
def test_missing_or_wrong_token_is_unauthenticated(server, client, header):
    headers = [] if header is None else [
        (b"authorization", header.format(token=server.token, short=server.token[:-1]).encode())]
    options = flight.FlightCallOptions(timeout=30, headers=headers)
    for call in (lambda: client.get_flight_info(flight.FlightDescriptor.for_path("t"), options),
                 lambda: list(client.list_flights(options=options)),
                 lambda: list(client.do_action(flight.Action("versions", b"[]"), options)),
                 lambda: client.do_get(flight.Ticket(b"{}"), options).read_all(),
                 lambda: _push(server, client, _command({"table": "sneaky"}), options)):
        text = _refused(server, flight.FlightUnauthenticatedError, call)
        assert server.token not in text
    assert "sneaky" not in [t["table_name"] for t in adc.list_tables(secret_dir=server.store)]


def test_headers_over_grpcs_bound_are_refused_before_the_server_sees_them(server, client):
    """gRPC bounds a call's headers (8 KiB here): the call ends as RESOURCE_EXHAUSTED
    (pyarrow: ArrowInvalid) before any server code runs, so there is no request id."""
    options = flight.FlightCallOptions(timeout=30, headers=[(b"authorization", b"Bearer " + b"A" * 20_000)])
    with pytest.raises(pa.ArrowInvalid, match="RESOURCE_EXHAUSTED|resource exhausted"):
        client.get_flight_info(flight.FlightDescriptor.for_path("t"), options)
    _still_serving(server, client)


def test_push_to_a_server_without_allow_put_is_permission_denied(start_server):
    closed = start_server("closed", "--no-auth")
    c = flight.FlightClient(closed.location)
    options = flight.FlightCallOptions(timeout=30)
    text = _refused(closed, flight.FlightUnauthorizedError, lambda: _push(closed, c, _command({"table": "x"}), options))
    assert "--allow-put" in text
    assert not adc.list_tables(secret_dir=closed.store)
    c.close()


def test_the_server_still_serves_the_right_data_after_everything(server, client):
    _still_serving(server, client)
    log = server.log()
    assert "Traceback" not in log, "a refusal is logged as one line, a traceback only for a fault of ours"
    assert re.search(r"request [0-9a-f]{8}: get_flight_info refused \(INVALID_ARGUMENT\)", log)
    assert re.search(r"request [0-9a-f]{8}: get_flight_info refused \(NOT_FOUND\)", log)
    assert re.search(r"request [0-9a-f]{8}: do_put refused \(INVALID_ARGUMENT\)", log)


def test_a_value_with_line_breaks_forges_no_log_line_and_a_huge_one_is_not_logged_whole(server, client):
    forged = "x\n2030-01-01 00:00:00,000 INFO request deadbeef: forged\n"
    _refused(server, pa.ArrowInvalid,
             lambda: client.get_flight_info(_command({"table": "t", "start": forged}), _auth(server)))
    _refused(server, pa.ArrowInvalid,
             lambda: client.get_flight_info(_command({"table": "t", "start": "y" * 900_000}), _auth(server)))
    log = server.log()
    assert not any(line.startswith("2030-01-01") for line in log.splitlines()), "a forged log line"
    assert "y" * 5000 not in log
