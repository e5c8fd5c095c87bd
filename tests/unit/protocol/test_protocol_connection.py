"""Connection: limits keywords, error handling, pass-through and switching details."""

from __future__ import annotations

import pytest
from treadle.protocol import (
    CLIENT,
    DONE,
    ERROR,
    NEED_DATA,
    SERVER,
    Connection,
    Data,
    EndOfMessage,
    RemoteProtocolError,
    Request,
    Response,
)

from treadle import protocol

GET = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"


def test_role_and_limits_are_checked() -> None:
    with pytest.raises(ValueError, match="expected CLIENT or SERVER"):
        Connection(DONE)
    with pytest.raises(ValueError, match="max_field_count"):
        Connection(SERVER, max_field_count=-1)


@pytest.mark.parametrize(("kwargs", "raw", "hint"), [
    ({"max_request_line_size": 10}, b"GET /abcdefgh HTTP/1.1\r\n", 414),
    ({"max_field_count": 1}, b"GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n\r\n", 431),
    ({"max_field_size": 8}, b"GET / HTTP/1.1\r\nHost: abcdef\r\n\r\n", 431),
    ({"max_incomplete_event_size": 30}, b"GET / HTTP/1.1\r\nHost: abcdefghij\r\n\r\n", 431),
])
def test_limits_give_their_status_hints(kwargs: dict[str, int], raw: bytes, hint: int) -> None:
    conn = Connection(SERVER, **kwargs)
    conn.receive_data(raw)
    with pytest.raises(RemoteProtocolError) as info:
        conn.next_event()
    assert info.value.error_status_hint == hint
    assert conn.their_state is ERROR
    with pytest.raises(RemoteProtocolError, match="peer state is ERROR"):
        conn.next_event()


def test_zero_line_and_field_limits_leave_the_head_cap() -> None:
    conn = Connection(SERVER, 100_000, max_request_line_size=0, max_field_size=0)
    long_target, long_host = b"/" + b"a" * 20_000, b"b" * 20_000
    conn.receive_data(b"GET " + long_target + b" HTTP/1.1\r\nHost: " + long_host + b"\r\n\r\n")
    assert type(conn.next_event()) is Request


def test_head_cap_holds_when_the_head_arrives_in_one_piece() -> None:
    """Documented difference: h11 accepts a large head if it arrives at once."""
    conn = Connection(SERVER)
    conn.receive_data(b"GET / HTTP/1.1\r\nHost: a\r\nX: " + b"x" * 17_000 + b"\r\n\r\n")
    with pytest.raises(RemoteProtocolError) as info:
        conn.next_event()
    assert info.value.error_status_hint == 431


def test_passthrough_keeps_the_data_object() -> None:
    conn = Connection(SERVER)
    conn.receive_data(GET)
    conn.next_event()
    conn.next_event()
    conn.send(Response(status_code=200, headers=[("Content-Length", "3")]))
    payload = bytearray(b"abc")
    parts = conn.send_with_data_passthrough(Data(data=payload))
    assert parts is not None and parts[0] is payload
    assert conn.send_with_data_passthrough(EndOfMessage()) == [b""]


def test_trailing_data_after_upgrade() -> None:
    conn = Connection(SERVER)
    conn.receive_data(b"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: x\r\n\r\nNEW PROTOCOL")
    assert type(conn.next_event()) is Request
    assert type(conn.next_event()) is EndOfMessage
    assert conn.next_event() is protocol.PAUSED
    conn.send(protocol.InformationalResponse(status_code=101, headers=[("Upgrade", "x")]))
    assert conn.states == {CLIENT: protocol.SWITCHED_PROTOCOL,
                           SERVER: protocol.SWITCHED_PROTOCOL}
    assert conn.trailing_data == (b"NEW PROTOCOL", False)


def test_receive_after_eof_is_refused() -> None:
    conn = Connection(SERVER)
    conn.receive_data(b"")
    conn.receive_data(b"")
    with pytest.raises(RuntimeError):
        conn.receive_data(b"x")


def test_connection_closed_repeats() -> None:
    conn = Connection(SERVER)
    conn.receive_data(b"")
    assert type(conn.next_event()) is protocol.ConnectionClosed
    assert type(conn.next_event()) is protocol.ConnectionClosed


def test_need_data_for_partial_head_and_http12_served_as_11() -> None:
    conn = Connection(SERVER)
    conn.receive_data(b"GET / HTTP/1.2\r\nHost: a\r\n")
    assert conn.next_event() is NEED_DATA
    conn.receive_data(b"\r\n")
    request = conn.next_event()
    assert isinstance(request, Request) and request.http_version == b"1.1"
    assert conn.their_http_version == b"1.1"


def test_local_errors_put_us_in_error() -> None:
    conn = Connection(CLIENT)
    with pytest.raises(protocol.LocalProtocolError):
        conn.send(Data(data=b"x"))
    assert conn.our_state is ERROR
    with pytest.raises(protocol.LocalProtocolError, match="our state is ERROR"):
        conn.send(Request(method="GET", target="/", headers=[("Host", "a")]))


def test_response_head_split_across_a_reader_swap() -> None:
    """A response that starts arriving while the server is IDLE and ends after our
    request moved it to SEND_RESPONSE is read whole; the line limit is not tripped by the
    reader swap."""
    conn = Connection(CLIENT, max_request_line_size=20)
    conn.receive_data(b"HTTP/1.1 200 OK\r\nX: " + b"a" * 30)
    assert conn.next_event() is NEED_DATA
    conn.send(Request(method="GET", target="/", headers=[("Host", "a")]))
    conn.receive_data(b"b\r\nContent-Length: 0\r\n\r\n")
    response = conn.next_event()
    assert isinstance(response, Response)
    assert response.headers[0] == (b"x", b"a" * 30 + b"b")


def test_passthrough_errors_like_send() -> None:
    conn = Connection(SERVER)
    with pytest.raises(protocol.LocalProtocolError):
        conn.send_with_data_passthrough(Data(data=b"x"))  # no response started
    assert conn.our_state is ERROR
    with pytest.raises(protocol.LocalProtocolError, match="our state is ERROR"):
        conn.send_with_data_passthrough(Data(data=b"x"))
    assert conn.send_with_data_passthrough is not None
    client = Connection(CLIENT)
    assert client.send_with_data_passthrough(protocol.ConnectionClosed()) is None
