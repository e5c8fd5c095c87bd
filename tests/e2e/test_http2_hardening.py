"""HARDENING.md items 22-25 over real sockets, with frames a polite client never sends.

The server speaks h2c with prior knowledge here (no TLS: the frames are the point), so each
test drives h2 as a client, or writes raw frames with hyperframe, on a plain socket.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

import hpack
import psutil
import pytest
from hyperframe.frame import (
    ContinuationFrame,
    DataFrame,
    HeadersFrame,
    PingFrame,
    PriorityFrame,
    SettingsFrame,
    WindowUpdateFrame,
)

from tests.e2e.conftest import RunningServer
from tests.e2e.test_http2_apps import H2Client

APP = "tests.e2e.test_http2_apps:app"
Serve = Callable[..., RunningServer]
PROTOCOL_ERROR, CANCEL, ENHANCE_YOUR_CALM = 0x1, 0x8, 0xB
BASE = [(b":method", b"GET"), (b":scheme", b"http"), (b":authority", b"127.0.0.1"),
        (b":path", b"/")]


@pytest.fixture
def h2c(serve: Serve) -> RunningServer:
    return serve(APP, "--http2-cleartext", "prior-knowledge", "--body-timeout", "1",
                 "--threads", "4", "--log-level", "debug")


def assert_still_serving(server: RunningServer) -> None:
    client = H2Client(server.port)
    stream = client.request("/")
    client.read(lambda: client.answered(stream))
    assert client.bodies[stream] == b"hello"
    client.close()


def assert_no_crash_logged(server: RunningServer) -> None:
    log = server.log()
    assert "Traceback" not in log and "[ERROR]" not in log, log[-2000:]


BAD_HEADERS = {
    "uppercase name": BASE + [(b"X-Upper", b"1")],
    "CR in a value": BASE + [(b"x-a", b"1\r2")],
    "LF in a value": BASE + [(b"x-a", b"1\nx-b: 2")],
    "NUL in a value": BASE + [(b"x-a", b"1\x002")],
    "NUL in a name": BASE + [(b"x\x00a", b"1")],
    "connection": BASE + [(b"connection", b"keep-alive")],
    "transfer-encoding": BASE + [(b"transfer-encoding", b"chunked")],
    "keep-alive": BASE + [(b"keep-alive", b"timeout=5")],
    "upgrade": BASE + [(b"upgrade", b"websocket")],
    "te other than trailers": BASE + [(b"te", b"gzip")],
    "pseudo after a regular field": [BASE[0], (b"accept", b"*/*"), *BASE[1:]],
    "no :method": BASE[1:],
    "two :path": BASE + [(b":path", b"/other")],
    "two host": BASE + [(b"host", b"127.0.0.1"), (b"host", b"127.0.0.1")],
    ":authority and host disagree": BASE + [(b"host", b"evil.example")],
    "bad content-length": BASE + [(b"content-length", b"+1")],
}


def test_invalid_or_smuggled_fields_reset_only_their_stream(h2c: RunningServer) -> None:
    """Item 23: each of these resets its stream with PROTOCOL_ERROR; the connection, and a
    good request on it, carry on."""
    client = H2Client(h2c.port)
    streams = {why: client.request("", headers=headers) for why, headers in BAD_HEADERS.items()}
    client.read(lambda: all(client.answered(s) for s in streams.values()))
    for why, stream in streams.items():
        assert client.resets.get(stream) == PROTOCOL_ERROR, why
        assert stream not in client.heads, why
    good = client.request("/environ")
    client.read(lambda: client.answered(good))
    assert client.status(good) == 200
    assert client.goaway is None
    client.close()
    assert_no_crash_logged(h2c)


def test_connect_is_answered_501_and_the_connection_carries_on(h2c: RunningServer) -> None:
    """A well-formed HTTP/2 CONNECT (no :scheme, no :path) gets 501, as over HTTP/1.1: a
    WSGI application cannot open a tunnel. Other streams are unaffected."""
    client = H2Client(h2c.port)
    connect = client.request("", headers=[(b":method", b"CONNECT"),
                                          (b":authority", b"example.com:443")])
    client.read(lambda: client.answered(connect))
    assert client.status(connect) == 501
    assert_still_serving(h2c)
    client.close()
    assert_no_crash_logged(h2c)


def test_http11_limits_answer_431_and_414_over_http2(serve: Serve) -> None:
    """limit_request_fields, limit_request_field_size and limit_request_line hold for
    HTTP/2 too: the stream gets the same status as an HTTP/1.1 request would."""
    server = serve(APP, "--http2-cleartext", "prior-knowledge", "--limit-request-fields", "5",
                   "--limit-request-field-size", "100", "--limit-request-line", "50")
    client = H2Client(server.port)
    many = client.request("/", extra=[(b"x-%d" % i, b"v") for i in range(6)])
    large = client.request("/", extra=[(b"x-big", b"v" * 200)])
    long_path = client.request("/" + "p" * 60)
    fine = client.request("/", extra=[(b"x-%d" % i, b"v") for i in range(4)])
    client.read(lambda: all(client.answered(s) for s in (many, large, long_path, fine)))
    assert [client.status(s) for s in (many, large, long_path, fine)] == [431, 431, 414, 200]
    client.close()


def test_pseudo_headers_in_trailers_reset_the_stream(h2c: RunningServer) -> None:
    client = H2Client(h2c.port)
    stream = client.conn.get_next_available_stream_id()
    client.conn.send_headers(stream, [(b":method", b"POST")] + BASE[1:3] +
                             [(b":path", b"/upload")])
    client.conn.send_data(stream, b"abc")
    client.conn.send_headers(stream, [(b":path", b"/smuggled")], end_stream=True)
    client.flush()
    client.read(lambda: client.answered(stream))
    assert client.resets.get(stream) == PROTOCOL_ERROR
    assert_still_serving(h2c)


@pytest.mark.parametrize("declared, sent", [(b"3", b"too long"), (b"10", b"short")])
def test_content_length_disagreeing_with_data_resets_the_stream(
    h2c: RunningServer, declared: bytes, sent: bytes
) -> None:
    """Item 24: the application never sees such a body as complete."""
    client = H2Client(h2c.port)
    headers = [(b":method", b"POST"), *BASE[1:3], (b":path", b"/upload"),
               (b"content-length", declared)]
    stream = client.conn.get_next_available_stream_id()
    client.conn.send_headers(stream, headers)
    client.conn.send_data(stream, sent, end_stream=True)
    client.flush()
    client.read(lambda: client.answered(stream))
    assert client.resets.get(stream) == PROTOCOL_ERROR
    assert stream not in client.heads  # no 200 for a body that was not whole
    other = client.request("/")
    client.read(lambda: client.answered(other))
    assert client.bodies[other] == b"hello"
    client.close()
    assert_no_crash_logged(h2c)


def test_rapid_reset_is_cut_off(h2c: RunningServer) -> None:
    """Item 25, CVE-2023-44487: open-and-cancel in a loop ends with GOAWAY
    ENHANCE_YOUR_CALM, long before the application has run thousands of requests."""
    client = H2Client(h2c.port)
    for _ in range(2000):
        stream = client.conn.get_next_available_stream_id()
        client.conn.send_headers(stream, [*BASE[:3], (b":path", b"/slow?0.01")],
                                 end_stream=True)
        client.conn.reset_stream(stream, CANCEL)
    try:
        client.flush()
    except OSError:
        pass  # the server may close before it has read everything
    client.read(lambda: client.goaway is not None)
    assert int(client.goaway.error_code) == ENHANCE_YOUR_CALM
    client.close()
    assert_still_serving(h2c)
    assert_no_crash_logged(h2c)


def raw_connection(server: RunningServer) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    sock.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + SettingsFrame(0).serialize())
    return sock


def read_until_closed(sock: socket.socket, limit: int = 1 << 20) -> bytes:
    got = b""
    while len(got) < limit:
        try:
            data = sock.recv(65536)
        except ConnectionResetError:
            break
        if not data:
            break
        got += data
    return got


def goaway_code(data: bytes) -> int | None:
    """The error code of the first GOAWAY frame in `data` (raw frames from the server)."""
    at = 0
    while at + 9 <= len(data):
        length = int.from_bytes(data[at:at + 3], "big")
        if data[at + 3] == 0x7:
            return int.from_bytes(data[at + 13:at + 17], "big")
        at += 9 + length
    return None


@pytest.mark.parametrize("first_bytes", [b"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n",
                                         b"PRI * HTTP/2.0\r\nHost: x\r\n\r\n"])
def test_a_corrupted_prior_knowledge_preface_gets_goaway(h2c: RunningServer,
                                                        first_bytes: bytes) -> None:
    """HTTP/2 meant (the preface's first line), the rest corrupted: GOAWAY(PROTOCOL_ERROR)
    before the close, not an HTTP/1.1 answer the client cannot read (RFC 9113 3.4)."""
    sock = socket.create_connection(("127.0.0.1", h2c.port), timeout=10)
    sock.sendall(first_bytes)
    data = read_until_closed(sock)
    sock.close()
    assert goaway_code(data) == PROTOCOL_ERROR, data[:80]
    assert not data.startswith(b"HTTP/1.1")
    assert_still_serving(h2c)
    assert_no_crash_logged(h2c)


def test_continuation_flood_is_capped_before_decoding(h2c: RunningServer) -> None:
    """Item 25: a header block that never ends is refused once it passes the header list
    limit (64 KiB), not buffered up to h2's 64 frames or forever."""
    sock = raw_connection(h2c)
    sock.sendall(HeadersFrame(1, data=b"\x82" * 16000).serialize())  # no END_HEADERS
    sent = 16000
    try:  # 512 KiB: eight times the limit (more could reset the connection before we read)
        while sent < 512 << 10:
            sock.sendall(ContinuationFrame(1, data=b"\x82" * 16000).serialize())
            sent += 16000
    except OSError:
        pass  # closed on us: fine too
    assert goaway_code(read_until_closed(sock)) == ENHANCE_YOUR_CALM
    sock.close()
    assert_still_serving(h2c)


@pytest.mark.parametrize("flood", ["ping", "settings", "empty-data", "window-update",
                                   "priority", "unknown-type"])
def test_ping_settings_and_empty_data_floods_are_cut_off(h2c: RunningServer,
                                                         flood: str) -> None:
    """Item 25: every PING and SETTINGS needs an answer; a client sending them by the
    thousand without reading gets GOAWAY ENHANCE_YOUR_CALM, and the answers it never read
    do not pile up in the server. Empty DATA frames (work for nothing, CVE-2019-9518) too,
    and (issue 14 item 8) WINDOW_UPDATE for data never sent, PRIORITY and unknown types."""
    sock = raw_connection(h2c)
    opening = b""
    if flood == "ping":
        frame = PingFrame(0, opaque_data=b"8 bytes!").serialize()
    elif flood == "settings":
        frame = SettingsFrame(0, settings={0x3: 100}).serialize()
    elif flood == "window-update":
        frame = WindowUpdateFrame(0, window_increment=1).serialize()
    elif flood == "priority":
        frame = PriorityFrame(1, depends_on=0, stream_weight=15).serialize()
    elif flood == "unknown-type":
        frame = b"\x00\x00\x00\xfe\x00\x00\x00\x00\x00"  # type 0xfe, no payload
    else:
        block = hpack.Encoder().encode([(b":method", b"POST"), *BASE[1:3],
                                        (b":path", b"/upload")])
        opening = HeadersFrame(1, data=block, flags=["END_HEADERS"]).serialize()
        frame = DataFrame(1, data=b"").serialize()
    try:
        sock.sendall(opening + frame * 20000)
    except OSError:
        pass
    assert goaway_code(read_until_closed(sock)) == ENHANCE_YOUR_CALM
    sock.close()
    assert_still_serving(h2c)
    assert_no_crash_logged(h2c)


def test_zero_window_reader_costs_bounded_memory_and_time(h2c: RunningServer) -> None:
    """Item 25: a client that opens no window for a 50 MiB response holds a bounded memory
    buffer (the rest goes to a temporary file) and no worker; the stream is reset once its
    window has stayed shut for body_timeout (1 s here)."""
    process = psutil.Process(h2c.process.pid)
    assert_still_serving(h2c)
    baseline = process.memory_info().rss
    client = H2Client(h2c.port, settings={0x4: 0})  # SETTINGS_INITIAL_WINDOW_SIZE = 0
    streams = [client.request("/download?50") for _ in range(3)]
    started = time.monotonic()
    assert_still_serving(h2c)  # meanwhile, others are served
    client.read(lambda: all(client.answered(s) for s in streams))
    assert all(client.resets.get(s) == CANCEL for s in streams)
    assert time.monotonic() - started < 10
    assert process.memory_info().rss - baseline < 24 << 20
    client.close()
    assert_no_crash_logged(h2c)


@pytest.mark.parametrize("busy", [False, True])
def test_a_header_block_sent_slowly_is_dropped_at_header_timeout(serve: Serve,
                                                                busy: bool) -> None:
    """Issue 14 item 9: HEADERS without END_HEADERS, then nothing: header_timeout applies to
    the block as to an HTTP/1.1 head (GOAWAY ENHANCE_YOUR_CALM, then the close), whether
    the connection waits parked or a stream of it is in progress (keepalive and the
    application's time, both far longer here, would not end it)."""
    server = serve(APP, "--http2-cleartext", "prior-knowledge", "--header-timeout", "1",
                   "--keep-alive", "120")
    client = H2Client(server.port)
    first = client.request("/")
    client.read(lambda: client.answered(first))
    if busy:
        client.request("/slow?30")
    block = hpack.Encoder().encode(BASE)
    client.sock.sendall(HeadersFrame(5, data=block[:4]).serialize())  # no END_HEADERS
    client.sock.settimeout(20)
    assert goaway_code(read_until_closed(client.sock)) == ENHANCE_YOUR_CALM
    client.close()
    assert_still_serving(server)
