"""Issue 14 item 5 over HTTP/2: a request body up to request_buffer_size is received before
the stream's worker starts, as on HTTP/1.1 (tests/e2e/test_slow_clients.py), so slow
uploads hold no worker; and while only such bodies are arriving, the connection waits in
the poller, holding no thread either.

With one pool thread, HTTP/1.1 is answered while six HTTP/2 uploads trickle (before, the
first stream's worker waited on its body); bodies past the bound (a stream's, or the
connection's in all) stream to the application, whole; a graceful stop lets a body that
is still arriving finish.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable

import pytest

from tests.e2e.conftest import RunningServer
from tests.e2e.test_http2_apps import H2Client
from tests.e2e.test_http2_fairness import APP, h1_get
from tests.e2e.test_http2_parking import SPARE_THREADS, threads_of
from tests.e2e.test_server_connections import wait_for

Serve = Callable[..., RunningServer]
UPLOADS = 6
BODY_BYTES = 100_000


def h2c_server(serve: Serve, *flags: str) -> RunningServer:
    return serve(APP, "--http2-cleartext", "prior-knowledge", "--threads", "1",
                 "--body-timeout", "60", "--min-rate-grace", "60", *flags)


def begin_upload(client: H2Client, length: int | None, first: bytes) -> int:
    """POST /upload with the first bytes of its body, and no end."""
    stream = client.conn.get_next_available_stream_id()
    headers = [(b":method", b"POST"), (b":scheme", b"http"), (b":authority", b"127.0.0.1"),
               (b":path", b"/upload")]
    if length is not None:
        headers.append((b"content-length", str(length).encode()))
    client.conn.send_headers(stream, headers)
    if first:
        client.conn.send_data(stream, first)
    client.flush()
    return stream


def send_body(client: H2Client, stream: int, body: bytes) -> None:
    """The rest of a body, as the flow-control windows allow, then its end."""
    conn = client.conn
    while body:
        room = min(conn.local_flow_control_window(stream), conn.max_outbound_frame_size)
        if room <= 0:
            client.read(lambda: conn.local_flow_control_window(stream) > 0)
            continue
        conn.send_data(stream, body[:room])
        body = body[room:]
        client.flush()
    conn.end_stream(stream)
    client.flush()


def test_trickling_uploads_hold_no_worker_and_no_thread(serve: Serve) -> None:
    server = h2c_server(serve)
    assert h1_get(server, "/") == b"hello"
    baseline = threads_of(server.process.pid)
    clients = [H2Client(server.port) for _ in range(UPLOADS)]
    streams = [begin_upload(client, BODY_BYTES, b"x") for client in clients]
    assert h1_get(server, "/") == b"hello"  # the only worker is free
    assert wait_for(lambda: threads_of(server.process.pid) <= baseline + SPARE_THREADS), \
        threads_of(server.process.pid)  # parked: no thread per upload
    send_body(clients[0], streams[0], b"x" * (BODY_BYTES - 1))
    clients[0].read(lambda: clients[0].answered(streams[0]), timeout_s=20)
    assert (clients[0].status(streams[0]), clients[0].bodies[streams[0]]) == \
        (200, str(BODY_BYTES).encode())
    for client in clients:
        client.close()


@pytest.mark.parametrize("length", [True, False], ids=["content-length", "no-length"])
def test_bodies_past_the_bound_stream_to_the_application_whole(serve: Serve,
                                                                length: bool) -> None:
    """The bound is 150,000 bytes: the first stream is gathered, the second takes the
    connection past it (released while arriving), the third is larger than it."""
    server = h2c_server(serve, "--threads", "4", "--request-buffer-size", "150000")
    client = H2Client(server.port)
    sizes = [100_000, 80_000, 400_000]
    streams = [begin_upload(client, size if length else None, b"") for size in sizes]
    for stream, size in zip(streams, sizes, strict=True):
        send_body(client, stream, bytes(range(256)) * (size // 256) + b"z" * (size % 256))
    client.read(lambda: all(client.answered(s) for s in streams), timeout_s=30)
    assert [(client.status(s), client.bodies[s]) for s in streams] == \
        [(200, str(size).encode()) for size in sizes]
    assert h1_get(server, "/") == b"hello"
    client.close()


def test_a_stalled_body_gets_408_before_any_worker(serve: Serve) -> None:
    server = h2c_server(serve, "--body-timeout", "1", "--log-level", "debug")
    client = H2Client(server.port)
    stream = begin_upload(client, BODY_BYTES, b"x" * 10)
    client.read(lambda: client.answered(stream), timeout_s=20)
    assert client.status(stream) == 408
    assert h1_get(server, "/") == b"hello"
    second = begin_upload(client, 5, b"")  # the connection carries on
    send_body(client, second, b"12345")
    client.read(lambda: client.answered(second))
    assert client.bodies[second] == b"5"
    client.close()


def test_a_graceful_stop_lets_an_arriving_body_finish(serve: Serve) -> None:
    """The rest of the body goes out as raw DATA frames and the answer is read raw: h2 as a
    client takes the stop's GOAWAY for the end of the connection and refuses to go on."""
    import hpack
    from hyperframe.frame import DataFrame, Frame, HeadersFrame

    server = h2c_server(serve)
    client = H2Client(server.port)
    size = 20_000  # within the first windows: no WINDOW_UPDATE needed to send it all
    stream = begin_upload(client, size, b"x")
    time.sleep(0.3)  # parked, with its body arriving
    server.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    rest = b"x" * (size - 1)
    client.sock.sendall(b"".join(
        DataFrame(stream, rest[at:at + 16384],
                  flags=["END_STREAM"] if at + 16384 >= len(rest) else []).serialize()
        for at in range(0, len(rest), 16384)))
    received = bytearray()
    client.sock.settimeout(20)
    while chunk := client.sock.recv(65536):
        received += chunk
    answer: dict[str, bytes] = {}
    decoder, at = hpack.Decoder(), 0
    while at + 9 <= len(received):
        frame, length = Frame.parse_frame_header(memoryview(received[at:at + 9]))
        frame.parse_body(memoryview(received[at + 9:at + 9 + length]))
        at += 9 + length
        if isinstance(frame, HeadersFrame) and frame.stream_id == stream:
            answer["status"] = dict(decoder.decode(frame.data, raw=True))[b":status"]
        elif isinstance(frame, DataFrame) and frame.stream_id == stream:
            answer["body"] = answer.get("body", b"") + frame.data
    assert answer == {"status": b"200", "body": str(size).encode()}
    client.close()
    assert server.process.wait(timeout=20) == 0
