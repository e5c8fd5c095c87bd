"""Slow clients over HTTP/1.1, cleartext and TLS (issue 14 items 4 and 5): a worker never
waits on a client's socket.

- A response the client does not read is buffered (memory, then a temporary file; a
  wsgi.file_wrapper file is continued with sendfile) and drained by the poller: with one
  worker thread, another client is answered meanwhile, and the slow reader still gets every
  byte, then keep-alive and pipelining carry on. A reader below min_response_rate is cut off.
- Request bodies up to request_buffer_size (Content-Length or chunked) are received before
  the application is called: uploads trickling in hold no worker. A body slower than
  min_request_rate gets 408, whether it was being received first or streamed.

Timeouts here are safety nets, never measurements.
"""

from __future__ import annotations

import hashlib
import socket
import ssl
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e.apps_slowio import pattern
from tests.e2e.conftest import RunningServer
from tests.e2e.test_http2_apps import Certificates
from tests.e2e.test_server_connections import wait_for
from tests.e2e.wire import Wire

APP = "tests.e2e.apps_slowio:app"
BIG_BYTES = 8_000_000  # far more than the kernel's socket buffers take
Serve = Callable[..., RunningServer]


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return Certificates(str(tmp_path_factory.mktemp("certs")))


def connect(port: int, context: ssl.SSLContext | None = None) -> Wire:
    """A raw client with a small receive buffer (a slow reader hides little in it)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    sock.settimeout(20.0)
    sock.connect(("127.0.0.1", port))
    wire = Wire.__new__(Wire)
    wire.sock = context.wrap_socket(sock, server_hostname="127.0.0.1") if context else sock
    wire.buffer = b""
    return wire


def get(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: t\r\n\r\n".encode()


def probe(port: int, context: ssl.SSLContext | None = None) -> bytes:
    """GET / on a fresh connection; its body (the server has a worker free for it)."""
    wire = connect(port, context)
    wire.sock.settimeout(10.0)
    try:
        wire.send(get("/"))
        return wire.read_response().body
    finally:
        wire.sock.close()


def tls_setup(tls: bool, certs: Certificates) -> tuple[tuple[str, ...], ssl.SSLContext | None]:
    if not tls:
        return (), None
    return ("--certfile", certs.server_pem), certs.client_context(alpn=("http/1.1",))


# -- slow readers --------------------------------------------------------------------------


@pytest.mark.parametrize("tls", [False, True], ids=["tcp", "tls"])
@pytest.mark.parametrize("memory", ["16000000", "65536"], ids=["in-memory", "spilled"])
def test_unread_response_holds_no_worker_and_arrives_whole(serve: Serve, certs: Certificates,
                                                           tls: bool, memory: str) -> None:
    flags, context = tls_setup(tls, certs)
    server = serve(APP, "--threads", "1", "--response-buffer-size", memory, *flags)
    reader = connect(server.port, context)
    reader.send(get(f"/pattern?n={BIG_BYTES}") + get("/pattern?n=1000"))  # pipelined
    # Nothing read yet: the only worker thread must still serve others.
    assert probe(server.port, context) == b"hello"
    first, second = reader.read_response(), reader.read_response()
    assert first.complete and first.body == pattern(BIG_BYTES)
    assert second.body == pattern(1000)
    reader.send(get("/"))  # kept alive after the drained responses
    assert reader.read_response().body == b"hello"
    reader.sock.close()


@pytest.mark.parametrize("tls", [False, True], ids=["sendfile", "tls"])
def test_unread_file_response_holds_no_worker_and_arrives_whole(
        serve: Serve, certs: Certificates, tmp_path: Path, tls: bool) -> None:
    flags, context = tls_setup(tls, certs)
    path = tmp_path / "big.bin"
    path.write_bytes(pattern(BIG_BYTES))
    server = serve(APP, "--threads", "1", *flags)
    reader = connect(server.port, context)
    reader.send(get(f"/file?path={path}") + get("/"))
    assert probe(server.port, context) == b"hello"
    response = reader.read_response()
    assert response.complete and response.body == pattern(BIG_BYTES)
    assert reader.read_response().body == b"hello"
    reader.sock.close()


def test_reader_below_min_response_rate_is_cut_off(serve: Serve) -> None:
    server = serve(APP, "--min-response-rate", "1000000", "--min-rate-grace", "0.5",
                   "--log-level", "debug")
    reader = connect(server.port)
    reader.send(get("/pattern?n=30000000"))
    assert wait_for(lambda: "reads the response too slowly" in server.log(), 20.0), server.log()
    response = reader.read_response()
    assert not response.complete and len(response.body) < 30_000_000
    assert probe(server.port) == b"hello"


def test_graceful_stop_finishes_a_buffered_response(serve: Serve) -> None:
    server = serve(APP, "--threads", "1", "--graceful-timeout", "20")
    reader = connect(server.port)
    reader.send(get(f"/pattern?n={BIG_BYTES}"))
    assert probe(server.port) == b"hello"  # the worker is done: the poller holds the rest
    server.send_signal()
    response = reader.read_response()
    assert response.complete and response.body == pattern(BIG_BYTES)
    assert reader.closed_by_peer()  # stopping: no keep-alive
    assert server.stop() == 0


# -- slow uploads --------------------------------------------------------------------------


def _upload_head(size: int | None) -> bytes:
    framing = "Transfer-Encoding: chunked" if size is None else f"Content-Length: {size}"
    return f"POST /upload HTTP/1.1\r\nHost: t\r\n{framing}\r\n\r\n".encode()


def _answer(body: bytes) -> bytes:
    return f"{len(body)} {hashlib.sha256(body).hexdigest()}".encode()


def test_trickling_uploads_hold_no_worker(serve: Serve) -> None:
    server = serve(APP, "--threads", "2")
    body = pattern(1_000_000)
    by_length = [connect(server.port) for _ in range(3)]
    chunked = [connect(server.port) for _ in range(3)]
    for wire in by_length:
        wire.send(_upload_head(len(body)) + body[:1])
    for wire in chunked:
        wire.send(_upload_head(None) + b"1\r\n" + body[:1] + b"\r\n")
    time.sleep(0.5)  # (on a server that dispatched them, every worker now waits on them)
    assert probe(server.port) == b"hello"
    by_length[0].send(body[1:])
    assert by_length[0].read_response().body == _answer(body)
    rest = body[1:]
    chunked[0].send(b"".join(b"%x\r\n%s\r\n" % (len(rest[i:i + 1000]), rest[i:i + 1000])
                             for i in range(0, len(rest), 1000)) + b"0\r\n\r\n")
    assert chunked[0].read_response().body == _answer(body)
    for wire in by_length + chunked:
        wire.sock.close()


@pytest.mark.parametrize("size", [3_000_000, None], ids=["content-length", "chunked"])
def test_body_larger_than_the_buffer_streams_whole(serve: Serve, size: int | None) -> None:
    server = serve(APP)
    body = pattern(3_000_000)
    wire = connect(server.port)
    if size is None:
        wire.send(_upload_head(None) + b"".join(
            b"%x\r\n%s\r\n" % (len(body[i:i + 7000]), body[i:i + 7000])
            for i in range(0, len(body), 7000)) + b"0\r\n\r\n")
    else:
        wire.send(_upload_head(size) + body)
    assert wire.read_response().body == _answer(body)
    wire.sock.close()


@pytest.mark.parametrize("buffered", [True, False], ids=["received-first", "streamed"])
def test_upload_below_min_request_rate_gets_408(serve: Serve, buffered: bool) -> None:
    flags = () if buffered else ("--request-buffer-size", "0")
    server = serve(APP, "--min-request-rate", "2000", "--min-rate-grace", "0.5",
                   "--log-level", "debug", *flags)
    wire = connect(server.port)
    wire.send(_upload_head(100_000))
    wire.sock.settimeout(0.1)
    answer = b""
    deadline = time.monotonic() + 15.0
    while b"\r\n\r\n" not in answer and time.monotonic() < deadline:
        wire.send(b"y" * 50)  # 500 B/s: each piece well within body_timeout
        try:
            answer += wire.sock.recv(65536)
        except TimeoutError:
            pass
    assert answer.startswith(b"HTTP/1.1 408 "), answer
    assert "the body arrives too slowly" in server.log()
    wire.sock.close()
