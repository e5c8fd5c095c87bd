"""The public API is h11's: the names, and the two programs from h11's documentation."""

from __future__ import annotations

import h11
import pytest

from treadle import protocol

CONTRACT_NAMES = (
    "Connection CLIENT SERVER IDLE SEND_RESPONSE SEND_BODY DONE MUST_CLOSE CLOSED "
    "MIGHT_SWITCH_PROTOCOL SWITCHED_PROTOCOL ERROR NEED_DATA PAUSED Event Request "
    "InformationalResponse Response Data EndOfMessage ConnectionClosed ProtocolError "
    "LocalProtocolError RemoteProtocolError PRODUCT_ID"
).split()


def test_all_is_h11s_public_names() -> None:
    assert sorted(protocol.__all__) == sorted(CONTRACT_NAMES)
    # h11's own __all__ leaves out two names it documents and exports:
    assert set(protocol.__all__) - set(h11.__all__) == {"MIGHT_SWITCH_PROTOCOL", "PRODUCT_ID"}
    assert len(protocol.__all__) == len(set(protocol.__all__))


@pytest.mark.parametrize("name", CONTRACT_NAMES)
def test_every_contract_name_is_offered(name: str) -> None:
    assert hasattr(protocol, name)
    assert hasattr(h11, name)


def test_markers_are_their_own_type() -> None:
    for name in ("CLIENT", "SERVER", "IDLE", "DONE", "NEED_DATA", "PAUSED", "ERROR"):
        marker = getattr(protocol, name)
        assert type(marker) is marker
        assert repr(marker) == name


def test_client_program_from_h11_docs() -> None:
    h11_ = protocol
    conn = h11_.Connection(h11_.CLIENT)
    data = conn.send(h11_.Request(method=b'POST', target=b'/upload', headers=[
        (b'host', b'example.com'), (b'content-type', b'application/json'),
        (b'transfer-encoding', b'chunked')]))
    data += conn.send(h11_.Data(data=b'{"key": "value"}'))
    data += conn.send(h11_.EndOfMessage())
    assert data == (
        b"POST /upload HTTP/1.1\r\nhost: example.com\r\ncontent-type: application/json\r\n"
        b"transfer-encoding: chunked\r\n\r\n10\r\n{\"key\": \"value\"}\r\n0\r\n\r\n"
    )
    assert conn.our_state is protocol.DONE


def _run_server_program(module: object, raw_data: bytes) -> list[object]:
    h11_ = module
    seen = []
    conn = h11_.Connection(h11_.SERVER)  # type: ignore[attr-defined]
    conn.receive_data(raw_data)
    while True:
        event = conn.next_event()
        if event is h11_.NEED_DATA:  # type: ignore[attr-defined]
            break
        elif event is h11_.PAUSED:  # type: ignore[attr-defined]
            conn.start_next_cycle()
            break
        seen.append(event)
    return seen


def test_server_program_from_h11_docs() -> None:
    raw = (
        b"POST /upload HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5\r\nhello\r\n0\r\n\r\n"
    )
    ours = _run_server_program(protocol, raw)
    theirs = _run_server_program(h11, raw)
    assert [type(e).__name__ for e in ours] == ["Request", "Data", "EndOfMessage"]
    assert [type(e).__name__ for e in ours] == [type(e).__name__ for e in theirs]
    assert ours[0].headers.raw_items() == theirs[0].headers.raw_items()  # type: ignore[attr-defined]
    assert ours[1].data == theirs[1].data == b"hello"  # type: ignore[attr-defined]
