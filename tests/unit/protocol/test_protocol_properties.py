"""Properties: chunking never changes events; a CLIENT's output is read back exactly by a
SERVER and the other way round; any bytes either parse or raise RemoteProtocolError."""

from __future__ import annotations

import os
from typing import Any

import h11
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from protocol_strategies import field_lists, field_names, methods, requests, targets

from treadle import protocol

# PROTOCOL_EXAMPLES=5000 for a deeper local run; the default keeps the suite fast.
settings.register_profile(
    "protocol", max_examples=int(os.environ.get("PROTOCOL_EXAMPLES", "150")), deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
PROFILE = settings.get_profile("protocol")


def describe(event: Any) -> Any:
    name = type(event).__name__
    if name == "Request":
        return (name, event.method, event.target, event.http_version,
                event.headers.raw_items())
    if name in ("Response", "InformationalResponse"):
        return (name, event.status_code, event.reason, event.http_version,
                event.headers.raw_items())
    if name == "Data":
        return (name, bytes(event.data))
    if name == "EndOfMessage":
        return (name, event.headers.raw_items())
    return (name,)


def read_all(module: Any, pieces: list[bytes], role: str = "SERVER") -> list[Any]:
    """Described events (Data merged) of `pieces`, answering each request with a 404;
    reading stops where the connection must close."""
    conn = module.Connection(getattr(module, role))
    events: list[Any] = []
    for piece in pieces:
        conn.receive_data(piece)
        for _ in range(10_000):
            event = conn.next_event()
            if event is module.NEED_DATA or event is module.PAUSED:
                break
            described = describe(event)
            if described[0] == "Data" and events and events[-1][0] == "Data":
                events[-1] = ("Data", events[-1][1] + described[1])
            else:
                events.append(described)
            if described[0] == "EndOfMessage":
                conn.send(module.Response(status_code=404, headers=[("Content-Length", "0")]))
                conn.send(module.EndOfMessage())
                if conn.our_state is module.MUST_CLOSE:
                    return events
                conn.start_next_cycle()
        else:
            raise AssertionError("next_event() never asked for more data")
    return events


def split(raw: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(raw) + 1) for c in cuts} | {0, len(raw)})
    return [raw[points[i] : points[i + 1]] for i in range(len(points) - 1)]


pipelines = st.lists(requests(), min_size=1, max_size=3)


@PROFILE
@given(pipelines, st.lists(st.integers(0, 10_000), max_size=12))
def test_any_chunking_gives_the_same_events(
    messages: list[tuple[bytes, list[Any]]], cuts: list[int]
) -> None:
    raw = b"".join(m for m, _ in messages)
    expected = [e for _, events in messages for e in events]
    # Stop at the first request that leaves the connection unusable (HTTP/1.0 closes).
    whole = read_all(protocol, [raw])
    assert whole == expected[: len(whole)]
    assert read_all(protocol, split(raw, cuts)) == whole


@PROFILE
@given(requests())
def test_bytewise_equals_whole(message: tuple[bytes, list[Any]]) -> None:
    raw, expected = message
    assert read_all(protocol, [raw[i : i + 1] for i in range(len(raw))]) == expected


@PROFILE
@given(requests())
def test_h11_reads_valid_requests_the_same(message: tuple[bytes, list[Any]]) -> None:
    raw, _ = message
    # Documented difference: BWS before a chunk extension's ";" is RFC 9112 7.1.1 grammar,
    # which we accept and h11 rejects.
    assume(b' ; q="x y"\r\n' not in raw)
    assert read_all(protocol, [raw]) == read_all(h11, [raw])


def _exchange(sender: Any, receiver: Any, events: list[Any]) -> list[Any]:
    received: list[Any] = []
    for event in events:
        data = sender.send(event)
        if data:  # b"" would mean EOF
            receiver.receive_data(data)
        for _ in range(1000):
            got = receiver.next_event()
            if got is protocol.NEED_DATA or got is protocol.PAUSED:
                break
            received.append(got)
    return received


def _host_first(items: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    return [i for i in items if i[0].lower() == b"host"] + [
        i for i in items if i[0].lower() != b"host"]


@PROFILE
@given(methods, targets, field_lists(), st.lists(st.binary(min_size=0, max_size=50),
       max_size=4), st.booleans(), field_lists(max_size=3), st.integers(200, 599),
       field_lists(), st.lists(st.binary(max_size=50), max_size=4))
def test_client_and_server_understand_each_other(
    method: str, target: bytes, fields: list[tuple[bytes, bytes]], pieces: list[bytes],
    chunked: bool, trailers: list[tuple[bytes, bytes]], status: int,
    response_fields: list[tuple[bytes, bytes]], response_pieces: list[bytes],
) -> None:
    client = protocol.Connection(protocol.CLIENT)
    server = protocol.Connection(protocol.SERVER)
    body = b"".join(pieces)
    fields = [(b"Host", b"example.com"), *fields]
    fields.append((b"Transfer-Encoding", b"chunked") if chunked
                  else (b"Content-Length", str(len(body)).encode()))
    request = protocol.Request(method=method, target=target, headers=fields)
    end = protocol.EndOfMessage(headers=trailers if chunked else [])
    got = _exchange(client, server, [request, *map(protocol.Data, pieces), end])
    assert got[0].headers.raw_items() == _host_first(fields)
    assert (got[0].method, got[0].target) == (method.encode(), target)
    assert b"".join(e.data for e in got[1:-1]) == body
    assert got[-1] == end
    if status in (204, 304):
        response_pieces = []  # these responses have no body
    response = protocol.Response(status_code=status, headers=response_fields)
    got = _exchange(server, client, [response, *map(protocol.Data, response_pieces),
                                     protocol.EndOfMessage()])
    assert got[0].status_code == status
    sent_fields = [(n, v) for n, v in got[0].headers.raw_items()
                   if n != b"Transfer-Encoding"]
    assert sent_fields == response_fields
    assert b"".join(e.data for e in got[1:-1]) == b"".join(response_pieces)
    assert type(got[-1]) is protocol.EndOfMessage
    assert client.states == server.states == {protocol.CLIENT: protocol.DONE,
                                              protocol.SERVER: protocol.DONE}


def parses_or_rejects(raw: bytes, pieces: list[bytes]) -> None:
    conn = protocol.Connection(protocol.SERVER, max_incomplete_event_size=4096)
    try:
        for piece in [*pieces, b""]:
            conn.receive_data(piece)
            for _ in range(10_000):
                event = conn.next_event()
                if event is protocol.NEED_DATA or type(event) is protocol.ConnectionClosed:
                    break
                if event is protocol.PAUSED:
                    if conn.our_state is not protocol.SEND_RESPONSE:
                        return  # a protocol switch: nothing more to parse
                    conn.send(protocol.Response(status_code=404,
                                                headers=[("Content-Length", "0")]))
                    conn.send(protocol.EndOfMessage())
                    if conn.our_state is protocol.MUST_CLOSE:
                        return
                    conn.start_next_cycle()
            else:
                raise AssertionError("next_event() loops")
    except protocol.RemoteProtocolError as exc:
        assert exc.error_status_hint in (400, 413, 414, 431, 501, 505)


MUTATION_BYTES = st.sampled_from(
    [b"\r", b"\n", b"\r\n", b"\x00", b"\t", b" ", b":", b",", b";", b"\x0b", b"\x85",
     b"0", b"f", b"-", b"+", b"\"", b"\xff", b"chunked", b"Content-Length: 1\r\n"]
)


@st.composite
def mutated_requests(draw: Any) -> bytes:
    raw = b"".join(m for m, _ in draw(st.lists(requests(), min_size=1, max_size=2)))
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(raw)))
        kind = draw(st.sampled_from(["insert", "delete", "replace"]))
        if kind == "insert":
            raw = raw[:at] + draw(MUTATION_BYTES) + raw[at:]
        elif kind == "delete":
            raw = raw[:at] + raw[at + draw(st.integers(1, 3)):]
        else:
            raw = raw[:at] + draw(MUTATION_BYTES) + raw[at + 1:]
    return raw


@PROFILE
@given(st.binary(max_size=400), st.lists(st.integers(0, 400), max_size=6))
def test_random_bytes_parse_or_raise_remote_protocol_error(
    raw: bytes, cuts: list[int]
) -> None:
    parses_or_rejects(raw, split(raw, cuts))


@PROFILE
@given(mutated_requests(), st.lists(st.integers(0, 2000), max_size=6))
def test_mutated_requests_parse_or_raise_remote_protocol_error(
    raw: bytes, cuts: list[int]
) -> None:
    parses_or_rejects(raw, split(raw, cuts))


def outcome(module: Any, pieces: list[bytes]) -> Any:
    try:
        return ("events", read_all(module, pieces))
    except module.RemoteProtocolError as exc:
        return ("error", exc.error_status_hint)


@PROFILE
@given(mutated_requests(), st.lists(st.integers(0, 2000), max_size=6))
def test_mutated_requests_give_one_answer_however_they_arrive(
    raw: bytes, cuts: list[int]
) -> None:
    whole = outcome(protocol, [raw])
    pieces = outcome(protocol, split(raw, cuts))
    if whole[0] == "error" or pieces[0] == "error":
        assert pieces[0] == whole[0]
        assert pieces[1] == whole[1]
    else:
        assert pieces == whole


_ = field_names  # re-exported strategies used by other modules
