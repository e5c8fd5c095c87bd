"""Issue 14, items 1-3: the process survives the fd limit over HTTP/2, every HTTP/2 close
gives back its descriptors and its worker_connections slot (also above descriptor 1023),
and nothing a client does wrong over TLS reaches the error log as an error.

Timeouts here are safety nets, never measurements.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Callable

import httpx
import psutil
import pytest

from tests.e2e.conftest import RunningServer
from tests.e2e.test_http2_apps import Certificates, H2Client
from tests.e2e.test_server_connections import raise_fd_limit, wait_for
from tests.e2e.wire import Wire, get

APP = "tests.e2e.test_http2_apps:app"
Serve = Callable[..., RunningServer]
GOAWAY = 0x7


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return Certificates(str(tmp_path_factory.mktemp("certs")))


def assert_no_error_logged(server: RunningServer) -> None:
    log = server.log()
    assert "Traceback" not in log and "[ERROR]" not in log, log[-3000:]


def read_to_end(sock: socket.socket) -> bytes:
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except ConnectionResetError:
        pass
    return data


def frame_types(data: bytes) -> list[int]:
    """The type of each whole HTTP/2 frame in `data`."""
    types, pos = [], 0
    while len(data) - pos >= 9:
        length = int.from_bytes(data[pos:pos + 3], "big")
        types.append(data[pos + 3])
        pos += 9 + length
    return types


def h2_hello(port: int) -> None:
    """One HTTP/2 request over h2c prior knowledge; then the client closes."""
    client = H2Client(port)
    stream = client.request("/")
    client.read(lambda: client.answered(stream))
    assert client.bodies[stream] == b"hello"
    client.close()


def assert_stopped_cleanly(server: RunningServer) -> None:
    """Exit status 0, and no graceful stop spent waiting for connections that were gone."""
    assert server.stop() == 0
    assert "graceful_timeout reached" not in server.log(), server.log()[-3000:]


# -- item 2: closing above descriptor 1023 ----------------------------------------------------


IDLE_HTTP1 = 1100  # enough to put the HTTP/2 sockets above select()'s limit of 1023
HTTP2_CLOSES = 20


def test_http2_closes_above_fd_1023_release_fds_and_slots(serve: Serve) -> None:
    raise_fd_limit(4096)  # ours; the server inherits it
    cap = IDLE_HTTP1 + HTTP2_CLOSES
    server = serve(APP, "--http2-cleartext", "prior-knowledge", "--worker-connections",
                   str(cap), "--header-timeout", "120", "--keep-alive", "120",
                   "--graceful-timeout", "10")
    process = psutil.Process(server.process.pid)
    baseline = process.num_fds()
    idle = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(IDLE_HTTP1)]
    assert wait_for(lambda: process.num_fds() >= baseline + IDLE_HTTP1)
    for _ in range(HTTP2_CLOSES):
        h2_hello(server.port)
    assert wait_for(lambda: process.num_fds() == baseline + IDLE_HTTP1), process.num_fds()
    # the HTTP/2 connections' slots are free: as many new connections are served, at the cap
    fresh = [Wire(server.host, server.port) for _ in range(HTTP2_CLOSES)]
    for wire in fresh:
        wire.send(get("/"))
    assert [wire.read_response().body for wire in fresh] == [b"hello"] * HTTP2_CLOSES
    for sock in idle + [wire.sock for wire in fresh]:
        sock.close()
    assert wait_for(lambda: process.num_fds() == baseline), (process.num_fds(), baseline)
    assert_stopped_cleanly(server)
    assert "ValueError" not in server.log()


# -- item 3: a bad preface over TLS ---------------------------------------------------------


def test_bad_http2_prefaces_over_tls_are_not_errors(serve: Serve, certs: Certificates) -> None:
    """50 clients choose h2 by ALPN and send an HTTP/1.1 request instead of the preface:
    those that wait get a GOAWAY (or a close); those that close (or reset) at once make our
    write fail, which once raised a BufferError logged with a traceback."""
    server = serve(APP, "--certfile", certs.server_pem)
    context = certs.client_context(alpn=("h2",))
    for number in range(50):
        raw = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        with context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            assert tls.selected_alpn_protocol() == "h2"
            tls.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            if number % 3 == 0:
                assert GOAWAY in frame_types(read_to_end(tls))
            elif number % 3 == 1:
                tls.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with httpx.Client(http2=True, verify=certs.client_context()) as client:
        response = client.get(f"https://127.0.0.1:{server.port}/")
    assert (response.http_version, response.text) == ("HTTP/2", "hello")
    assert server.stop() == 0
    assert_no_error_logged(server)
