"""Issue 14, items 1-3: the process survives the fd limit over HTTP/2, every HTTP/2 close
gives back its descriptors and its worker_connections slot (also above descriptor 1023),
and nothing a client does wrong over TLS reaches the error log as an error.

Timeouts here are safety nets, never measurements.
"""

from __future__ import annotations

import http.client
import resource
import socket
import ssl
import struct
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import psutil
import pytest
from treadle.server.wakeup import DESCRIPTORS as WAKEUP_DESCRIPTORS

from tests.e2e.conftest import RunningServer, start_server
from tests.e2e.test_http2_apps import Certificates, H2Client
from tests.e2e.test_server_connections import raise_fd_limit, wait_for
from tests.e2e.wire import Wire, get

APP = "tests.e2e.test_http2_apps:app"
Serve = Callable[..., RunningServer]
GOAWAY = 0x7
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes.fromhex("000000040000000000")  # + SETTINGS
UPGRADE = (b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade, HTTP2-Settings\r\n"
           b"Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n")
# `python -c LIMITED SOFT HARD APP FLAGS...`: the server under an open-file limit of its own
# (the hard one too, so that it cannot lift it), as a shell's `ulimit -n` would set it.
LIMITED = ("import resource, runpy, sys; "
           "resource.setrlimit(resource.RLIMIT_NOFILE, (int(sys.argv[1]), int(sys.argv[2]))); "
           "sys.argv = ['server', *sys.argv[3:]]; "
           "runpy.run_module('server', run_name='__main__', alter_sys=True)")


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


def limited_server(tmp_path: Path, soft: int, hard: int, *flags: str) -> RunningServer:
    return start_server(APP, *flags, log_path=tmp_path / "server.log",
                        command=(sys.executable, "-c", LIMITED, str(soft), str(hard)))


def open_idle_h2(port: int, over: str, context: ssl.SSLContext | None = None,
                 wait_s: float = 5.0) -> tuple[socket.socket, str]:
    """An HTTP/2 connection (`over` h2c prior knowledge, an h2c upgrade, or TLS given a
    `context` with ALPN h2) that sends its preface and SETTINGS, then nothing: 'served'
    once the server's frames arrive, 'refused' when it closes, 'waiting' when nothing
    comes (in the listen backlog)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=wait_s)
    try:
        if context is not None:
            sock = context.wrap_socket(sock, server_hostname="127.0.0.1")
        sock.sendall((UPGRADE if over == "upgrade" else b"") + PREFACE)
        data = sock.recv(65536)
        while data.startswith(b"HTTP/1.1 101") and len(data) <= data.index(b"\r\n\r\n") + 4:
            more = sock.recv(65536)  # the frames after the 101, or a close
            data = data + more if more else b""
    except TimeoutError:
        return sock, "waiting"
    except (ConnectionResetError, ssl.SSLError):
        data = b""
    return sock, "served" if data else "refused"


def get_hello(server: RunningServer, context: ssl.SSLContext | None) -> bytes:
    """GET / over HTTP/1.1 (over TLS given `context`): the body."""
    if context is None:
        conn = http.client.HTTPConnection(server.host, server.port, timeout=10)
    else:
        conn = http.client.HTTPSConnection(server.host, server.port, timeout=10,
                                           context=context)
    conn.request("GET", "/")
    body = conn.getresponse().read()
    conn.close()
    return body


# -- item 1: the fd limit over HTTP/2 ---------------------------------------------------------


# Both parities over h2c: the last descriptor goes to the socket, or to the wake-up of the
# connection's first turn (which then runs without one). One parity for the other ways in.
@pytest.mark.parametrize(("over", "limit"), [("h2c", 256), ("h2c", 257), ("upgrade", 256),
                                             ("tls", 257)])
def test_http2_at_the_fd_limit_pauses_and_never_exits(tmp_path: Path, certs: Certificates,
                                                      over: str, limit: int) -> None:
    """Idle HTTP/2 connections until the descriptors run out (by accept() itself, or by the
    new connection's wake-up, by parity; an upgraded one is then closed after its 101): the
    newest waits or is refused, the process lives on, serves again once some close, and
    gives every descriptor back."""
    flags = {"h2c": ("--http2-cleartext", "prior-knowledge"),
             "upgrade": ("--http2-cleartext", "upgrade"),
             "tls": ("--certfile", certs.server_pem)}[over]
    server = limited_server(tmp_path, limit, limit, *flags, "--header-timeout", "120",
                            "--keep-alive", "120")
    h2_context = certs.client_context(alpn=("h2",)) if over == "tls" else None
    try:
        process = psutil.Process(server.process.pid)
        baseline = process.num_fds()
        held, outcome = [], "served"
        while outcome == "served" and len(held) < limit:
            sock, outcome = open_idle_h2(server.port, over, h2_context)
            held.append(sock)
        assert outcome in ("waiting", "refused")
        assert server.process.poll() is None, server.log()
        assert wait_for(lambda: "pausing accepting" in server.log()), server.log()
        for sock in held[:10]:
            sock.close()
        http1_context = certs.client_context(alpn=("http/1.1",)) if over == "tls" else None
        assert get_hello(server, http1_context) == b"hello"
        if outcome == "waiting" and over == "h2c":  # taken from the backlog meanwhile
            held[-1].settimeout(10)
            assert held[-1].recv(65536)
        for sock in held:
            sock.close()
        assert wait_for(lambda: process.num_fds() == baseline), (process.num_fds(), baseline)
    finally:
        status = server.stop()
    assert status == 0, server.log()
    log = server.log()
    assert "Traceback" not in log and "CRITICAL" not in log, log[-3000:]


def test_open_file_limit_is_raised_for_http2_connections(tmp_path: Path) -> None:
    """Each HTTP/2 connection holds its socket and a wake-up descriptor; the limit is raised
    for that, so worker_connections of them fit (no descriptor error before the cap)."""
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard != resource.RLIM_INFINITY and hard < 1024:
        pytest.skip(f"needs a hard open-file limit of 1024, it is {hard}")
    server = limited_server(tmp_path, 64, hard, "--http2-cleartext", "prior-knowledge",
                            "--worker-connections", "100", "--header-timeout", "120",
                            "--keep-alive", "120")
    try:
        soft, _ = psutil.Process(server.process.pid).rlimit(psutil.RLIMIT_NOFILE)
        assert soft == 100 * (1 + WAKEUP_DESCRIPTORS) + 64
        held = [open_idle_h2(server.port, "h2c") for _ in range(100)]
        assert [outcome for _, outcome in held] == ["served"] * 100
        for sock, _ in held:
            sock.close()
    finally:
        status = server.stop()
    assert status == 0
    assert_no_error_logged(server)


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
    # the HTTP/2 connections' slots are free: as many new connections are served, at the
    # cap, and no idle one was closed to make room for them
    fresh = [Wire(server.host, server.port) for _ in range(HTTP2_CLOSES)]
    for wire in fresh:
        wire.send(get("/"))
    assert [wire.read_response().body for wire in fresh] == [b"hello"] * HTTP2_CLOSES
    for sock in idle:
        sock.setblocking(False)
        with pytest.raises(BlockingIOError):
            sock.recv(1)
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
