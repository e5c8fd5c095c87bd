"""protocol/http2.py: the request policy, the frame gate, and per-stream length errors."""

from __future__ import annotations

import h2.config
import h2.connection
import h2.events
import pytest
from hyperframe.frame import (
    ContinuationFrame,
    DataFrame,
    HeadersFrame,
    PingFrame,
    PriorityFrame,
    RstStreamFrame,
    WindowUpdateFrame,
)
from treadle.protocol.http2 import (
    FLOOD_PAUSE_S,
    FLOOD_STRIKES,
    MAX_BLOCK_FRAMES,
    PREFACE,
    STRIKE_MEMORY_S,
    FloodError,
    FrameGate,
    H2Limits,
    MalformedRequest,
    RequestLimits,
    ServerConnection,
    check_trailers,
    new_server_connection,
    parse_request,
)

LIMITS = RequestLimits(field_count=10, field_size=200, path_size=100)
BASE = [(b":method", b"GET"), (b":scheme", b"https"), (b":authority", b"example.com"),
        (b":path", b"/a?b=c")]


def test_a_good_request_gets_host_from_authority() -> None:
    head = parse_request(BASE + [(b"accept", b"*/*"), (b"x_y", b"1")], LIMITS)
    assert (head.method, head.scheme, head.path, head.authority) == (
        b"GET", b"https", b"/a?b=c", b"example.com")
    assert head.headers == [(b"accept", b"*/*"), (b"x_y", b"1"), (b"host", b"example.com")]
    assert head.content_length is None


def test_host_alone_and_a_matching_host_are_fine() -> None:
    without = [h for h in BASE if h[0] != b":authority"]
    assert parse_request(without + [(b"host", b"a.b:8")], LIMITS).authority == b"a.b:8"
    head = parse_request(BASE + [(b"host", b"Example.COM"), (b"content-length", b"12")], LIMITS)
    assert head.content_length == 12
    assert head.headers == [(b"host", b"Example.COM"), (b"content-length", b"12")]


@pytest.mark.parametrize(
    "headers",
    [
        BASE + [(b"Accept", b"x")],  # upper case name
        BASE + [(b"acc ept", b"x")],
        BASE + [(b"", b"x")],
        BASE + [(b"a\xa0", b"x")],
        BASE + [(b"x", b"a\r\nb: c")],
        BASE + [(b"x", b"a\x00b")],
        BASE + [(b"x", b"a\x0bb")],
        BASE + [(b"x", b" lead")],
        BASE + [(b"x", b"trail\t")],
        BASE + [(b"connection", b"close")],
        BASE + [(b"transfer-encoding", b"chunked")],
        BASE + [(b"keep-alive", b"5")],
        BASE + [(b"upgrade", b"h2c")],
        BASE + [(b"proxy-connection", b"x")],
        BASE + [(b"te", b"gzip")],
        BASE + [(b"accept", b"x"), (b":method", b"GET")],  # pseudo after regular
        BASE[1:],  # no :method
        [h for h in BASE if h[0] != b":path"],
        [h for h in BASE if h[0] != b":scheme"],
        BASE + [(b":path", b"/again")],
        BASE + [(b":method", b"POST")],
        BASE + [(b":protocol", b"websocket")],
        BASE + [(b"host", b"a"), (b"host", b"a")],
        BASE + [(b"host", b"other.example")],
        [h for h in BASE if h[0] != b":authority"] + [(b"host", b"a, b")],
        [h for h in BASE if h[0] != b":authority"],  # neither
        [(b":method", b"GET"), (b":scheme", b"https"), (b":authority", b"u@h"), (b":path", b"/")],
        BASE + [(b"content-length", b"+5")],
        BASE + [(b"content-length", b"5, 5")],
        BASE + [(b"content-length", b"5"), (b"content-length", b"5")],
        BASE + [(b"content-length", b"9" * 19)],
        [(b":method", b"G T"), (b":scheme", b"https"), (b":authority", b"a"), (b":path", b"/")],
        [(b":method", b"GET"), (b":scheme", b"https"), (b":authority", b"a"), (b":path", b"x")],
        [(b":method", b"GET"), (b":scheme", b"https"), (b":authority", b"a"), (b":path", b"*")],
        [(b":method", b"GET"), (b":scheme", b"ht tp"), (b":authority", b"a"), (b":path", b"/")],
        [(b":method", b"GET"), (b":scheme", b"https"), (b":authority", b"a"),
         (b":path", b"/a b")],
    ],
)
def test_malformed_requests_reset_the_stream(headers: list[tuple[bytes, bytes]]) -> None:
    with pytest.raises(MalformedRequest) as caught:
        parse_request(headers, LIMITS)
    assert caught.value.status is None


def test_limits_answer_with_a_status() -> None:
    many = BASE + [(b"x-%d" % i, b"v") for i in range(11)]
    with pytest.raises(MalformedRequest) as caught:
        parse_request(many, LIMITS)
    assert caught.value.status == 431
    with pytest.raises(MalformedRequest) as caught:
        parse_request(BASE + [(b"x", b"v" * 300)], LIMITS)
    assert caught.value.status == 431
    long_path = [h if h[0] != b":path" else (b":path", b"/" + b"a" * 200) for h in BASE]
    with pytest.raises(MalformedRequest) as caught:
        parse_request(long_path, LIMITS)
    assert caught.value.status == 414
    options = [h if h[0] != b":path" else (b":path", b"*") for h in BASE]
    options[0] = (b":method", b"OPTIONS")
    assert parse_request(options, LIMITS).path == b"*"


def test_trailers_never_carry_pseudo_or_connection_fields() -> None:
    check_trailers([(b"x-checksum", b"abc")])
    for bad in ([(b":path", b"/")], [(b"transfer-encoding", b"x")], [(b"x", b"a\nb")]):
        with pytest.raises(MalformedRequest):
            check_trailers(bad)


def frame_bytes(*frames: object) -> bytes:
    return b"".join(frame.serialize() for frame in frames)  # type: ignore[attr-defined]


def test_gate_caps_a_header_block_before_it_is_decoded() -> None:
    gate = FrameGate(max_header_block=1000, max_concurrent_streams=100)
    first = HeadersFrame(1, data=b"x" * 600)
    more = ContinuationFrame(1, data=b"y" * 600)
    data = PREFACE + frame_bytes(first, more)
    with pytest.raises(FloodError):
        for byte in range(len(data)):  # byte by byte: frame headers split anywhere
            gate.feed(data[byte:byte + 1], 0.0)
    fine = FrameGate(max_header_block=1000, max_concurrent_streams=100)
    done = HeadersFrame(1, data=b"x" * 600, flags=["END_HEADERS"])
    fine.feed(PREFACE + frame_bytes(done, done, done), 0.0)
    # tiny CONTINUATION frames: MAX_BLOCK_FRAMES of them, well under the size limit
    tiny = ContinuationFrame(1, data=b"y")
    start = PREFACE + frame_bytes(HeadersFrame(1, data=b"x"))
    fine.feed(start + frame_bytes(*[tiny] * (MAX_BLOCK_FRAMES - 2)), 0.0)
    fine.feed(frame_bytes(ContinuationFrame(1, data=b"y", flags=["END_HEADERS"])), 0.0)
    gate = FrameGate(max_header_block=1000, max_concurrent_streams=100)
    with pytest.raises(FloodError, match="too many frames"):
        gate.feed(start + frame_bytes(*[tiny] * MAX_BLOCK_FRAMES), 0.0)


def feed_paused(gate: FrameGate, data: bytes, now: float) -> list[float]:
    """Feed `data` as the server does: over a budget, the rest waits for the pause to end
    (the peer sends on as soon as it is read). The times each pause lasted until."""
    pauses = []
    while data:
        data = data[gate.feed(data, now):]
        if data:
            assert gate.paused_until > now
            now = gate.paused_until
            pauses.append(now)
    return pauses


def test_gate_meters_pings_and_resets_over_time() -> None:
    gate = FrameGate(max_header_block=1000, max_concurrent_streams=100)
    gate.feed(PREFACE, 0.0)
    ping = frame_bytes(PingFrame(0, opaque_data=b"12345678"))
    assert gate.feed(ping * 10, 0.0) == 170  # a new connection starts with a tenth
    assert gate.feed(ping * 100, 10.0) == 1700  # and earns its burst at 10 a second
    assert gate.feed(ping * 10, 11.0) == 170
    assert gate.paused_until == 0.0
    # one too many: admitted up to that frame's header, the peer paused for FLOOD_PAUSE_S
    assert gate.feed(ping * 3, 11.0) == 9
    assert gate.paused_until == 11.0 + FLOOD_PAUSE_S and gate.strikes == 1
    with pytest.raises(FloodError, match="PING"):  # going on: the next strike ends it
        feed_paused(gate, ping[9:] + ping * 1000, gate.paused_until)
    gate = FrameGate(max_header_block=1000, max_concurrent_streams=100)
    gate.feed(PREFACE, 0.0)
    acks = frame_bytes(PingFrame(0, opaque_data=b"12345678", flags=["ACK"]))
    gate.feed(acks * 10, 0.0)  # we send no PING: answers to none are metered too
    assert gate.feed(acks, 0.0) == 9 and gate.strikes == 1  # its header: the rest waits
    gate = FrameGate(max_header_block=1000, max_concurrent_streams=100)
    gate.feed(PREFACE, 0.0)
    reset = frame_bytes(RstStreamFrame(1))
    gate.feed(reset * 15, 0.0)
    for _ in range(5):
        gate.note_reset(0.0)
    assert gate.strikes == 0
    assert gate.feed(reset * 2, 0.0) == 9
    assert gate.strikes == 1
    with pytest.raises(FloodError, match="resets"):  # a malformed request counts too
        gate.note_reset(0.0)


def test_gate_forgets_strikes_after_a_while() -> None:
    """A client over a budget now and then (a burst of PINGs every minute) is only paused;
    strikes count towards the end only within STRIKE_MEMORY_S of each other."""
    gate = FrameGate(max_header_block=1000, max_concurrent_streams=100)
    gate.feed(PREFACE, 0.0)
    ping = frame_bytes(PingFrame(0, opaque_data=b"12345678"))
    gate.feed(ping * 10, 0.0)
    now = 0.0
    for _ in range(2 * FLOOD_STRIKES):
        now += STRIKE_MEMORY_S + 10  # the bucket is full again, the last strike forgotten
        assert feed_paused(gate, ping * 101, now) == [now + FLOOD_PAUSE_S]
        assert gate.strikes == 1


def test_gate_meters_empty_data_frames() -> None:
    gate = FrameGate(max_header_block=1000, max_concurrent_streams=100)
    gate.feed(PREFACE, 0.0)
    gate.feed(frame_bytes(DataFrame(1, data=b"", flags=["END_STREAM"])) * 500, 0.0)  # free
    gate.feed(frame_bytes(DataFrame(1, data=b"x")) * 500, 0.0)  # real data: not metered
    empty = frame_bytes(DataFrame(1, data=b""))
    gate.feed(empty * 10, 0.0)
    assert gate.strikes == 0
    with pytest.raises(FloodError, match="empty DATA"):  # at once: no pause for these
        gate.feed(empty, 0.0)


def client_and_server(limits: H2Limits) -> tuple[h2.connection.H2Connection,
                                                 h2.connection.H2Connection]:
    client = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    client.initiate_connection()
    server = new_server_connection(limits)
    server.initiate_connection()
    server.receive_data(client.data_to_send())
    client.receive_data(server.data_to_send())
    server.receive_data(client.data_to_send())
    return client, server


def test_a_body_longer_than_content_length_is_left_to_the_stream_not_the_connection() -> None:
    client, server = client_and_server(H2Limits())
    client.send_headers(1, BASE + [(b"content-length", b"3")])
    client.send_data(1, b"toolong", end_stream=True)
    client.send_headers(3, BASE, end_stream=True)
    events = server.receive_data(client.data_to_send())
    kinds = [type(event) for event in events]
    assert h2.events.ConnectionTerminated not in kinds
    assert kinds.count(h2.events.RequestReceived) == 2
    assert server.local_settings.max_concurrent_streams == 100


def test_limits_are_announced() -> None:
    limits = H2Limits(max_concurrent_streams=7, initial_window_size=1 << 20,
                      max_frame_size=1 << 15, max_header_list_size=4096)
    client, _server = client_and_server(limits)
    remote = client.remote_settings
    assert (remote.max_concurrent_streams, remote.initial_window_size, remote.max_frame_size,
            remote.max_header_list_size, remote.enable_push) == (7, 1 << 20, 1 << 15, 4096, 0)
    assert limits.connection_window == 7 << 20
    assert H2Limits().connection_window == 65535 * 100
    assert H2Limits(initial_window_size=1 << 30).connection_window == 1 << 30


def test_closed_streams_are_remembered_only_so_many() -> None:
    """A long-lived connection's memory stays flat: h2 alone would keep 65,536 closed streams
    (about 10 MiB); a late frame for a forgotten stream still gets RST_STREAM, not a
    connection error."""
    client, server = client_and_server(H2Limits())
    streams = 3000
    for stream_id in range(1, 2 * streams, 2):
        client.send_headers(stream_id, BASE, end_stream=True)
        server.receive_data(client.data_to_send())
        server.send_headers(stream_id, [(b":status", b"204")], end_stream=True)
        client.receive_data(server.data_to_send())
    remembered = len(server._closed_streams)  # h2's own record; nothing public reports it
    assert remembered <= ServerConnection.MAX_CLOSED_STREAMS < streams
    events = server.receive_data(frame_bytes(DataFrame(1, b"late")))
    assert not any(isinstance(e, h2.events.ConnectionTerminated) for e in events)
    answer = server.data_to_send()
    assert answer[3:4] == b"\x03" and int.from_bytes(answer[5:9], "big") == 1  # RST_STREAM(1)


def test_gate_meters_priority_unknown_and_unexplained_window_updates() -> None:
    """Issue 14 item 8: frames that are work for nothing are metered like PING."""
    unknown = b"\x00\x00\x00\xfe\x00\x00\x00\x00\x00"  # type 0xfe, empty
    floods = {"PRIORITY": frame_bytes(PriorityFrame(1, depends_on=0, stream_weight=15)),
              "unknown types": unknown,
              "WINDOW_UPDATE": frame_bytes(WindowUpdateFrame(0, window_increment=1))}
    for name, frame in floods.items():
        gate = FrameGate(max_header_block=1000, max_concurrent_streams=100)
        gate.feed(PREFACE + frame * 10, 0.0)  # a plausible number: fine
        with pytest.raises(FloodError, match=name):
            feed_paused(gate, frame * 2000, 0.0)
    # WINDOW_UPDATE that answers DATA we sent is never a flood, however fast
    gate = FrameGate(max_header_block=1000, max_concurrent_streams=100)
    gate.feed(PREFACE, 0.0)
    for _ in range(100):
        gate.note_data_sent(500)
        gate.feed(floods["WINDOW_UPDATE"] * 1000, 0.0)


def test_gate_knows_since_when_a_header_block_is_arriving() -> None:
    """Issue 14 item 9: the server applies header_timeout from when a block began."""
    gate = FrameGate(max_header_block=1000, max_concurrent_streams=100)
    gate.feed(PREFACE, 0.0)
    assert gate.block_since is None
    gate.feed(frame_bytes(HeadersFrame(1, data=b"x" * 10)), 5.0)
    gate.feed(frame_bytes(ContinuationFrame(1, data=b"y" * 10)), 6.0)
    assert gate.block_since == 5.0
    gate.feed(frame_bytes(ContinuationFrame(1, data=b"y", flags=["END_HEADERS"])), 7.0)
    assert gate.block_since is None
