"""HTTP/2 connections with nothing to do wait in the poller like idle HTTP/1.1 ones: no
thread and no descriptor but their socket each; they wake for a new request on the same
connection, the idle timeout and a graceful stop still reach them (GOAWAY)."""

from __future__ import annotations

import gc
import http.client
import os
import signal
from collections.abc import Callable
from typing import Any

import h2.events
import psutil
import pytest

from tests.e2e.conftest import RunningServer
from tests.e2e.test_http2_apps import Certificates, H2Client
from tests.e2e.test_server_connections import raise_fd_limit, wait_for

APP = "tests.e2e.test_http2_apps:app"
Serve = Callable[..., RunningServer]
IDLE = 300
THREADS = 4
SPARE_THREADS = 4  # server/h2threads.py SPARE_MAX: driver threads kept for reuse


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return Certificates(str(tmp_path_factory.mktemp("certs")))


def h2_server(serve: Serve, certs: Certificates, over: str, *flags: str) -> RunningServer:
    transport = (("--certfile", certs.server_pem) if over == "tls"
                 else ("--http2-cleartext", "prior-knowledge"))
    return serve(APP, *transport, "--threads", str(THREADS), *flags)


def connect(server: RunningServer, certs: Certificates, over: str) -> H2Client:
    """An HTTP/2 connection that has exchanged SETTINGS, then stays quiet."""
    client = H2Client(server.port, certs.client_context() if over == "tls" else None)
    client.read(lambda: any(isinstance(e, h2.events.RemoteSettingsChanged)
                            for e in client.events))
    return client


def threads_of(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/task"))


def state_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    """`/h2-states`: how many h2 connection states are alive in the server (after a full
    collection); anything else: hello (the HTTP/2 test app's answer)."""
    from treadle.protocol.http2 import ServerConnection

    body = b"hello"
    if environ["PATH_INFO"] == "/h2-states":
        gc.collect()
        body = str(sum(isinstance(o, ServerConnection) for o in gc.get_objects())).encode()
    start_response("200 OK", [("Content-Length", str(len(body)))])
    return [body]


def h2_states(server: RunningServer, certs: Certificates, over: str) -> int:
    """Asked over HTTP/1.1 (a request of its own holds no h2 state)."""
    if over == "tls":
        conn: http.client.HTTPConnection = http.client.HTTPSConnection(
            "127.0.0.1", server.port, context=certs.client_context(alpn=("http/1.1",)))
    else:
        conn = http.client.HTTPConnection("127.0.0.1", server.port)
    try:
        conn.request("GET", "/h2-states")
        return int(conn.getresponse().read())
    finally:
        conn.close()


def hello(client: H2Client) -> bytes:
    stream = client.request("/")
    client.read(lambda: client.answered(stream))
    return client.bodies[stream]


@pytest.mark.parametrize("over", ["h2c", "tls"])
def test_idle_http2_connections_hold_no_thread_and_wake_for_a_request(
        serve: Serve, certs: Certificates, over: str) -> None:
    raise_fd_limit(4096)
    server = h2_server(serve, certs, over, "--keep-alive", "120", "--header-timeout", "120")
    process = psutil.Process(server.process.pid)
    assert hello(connect(server, certs, over)) == b"hello"  # one driver thread met
    baseline_threads = threads_of(process.pid)
    baseline_fds = process.num_fds()
    clients = [connect(server, certs, over) for _ in range(IDLE)]
    # all parked: at most the spare driver threads beyond the baseline, and one descriptor
    # (the socket) per connection
    assert wait_for(lambda: threads_of(process.pid) <= baseline_threads + SPARE_THREADS), \
        threads_of(process.pid)
    assert threads_of(process.pid) <= THREADS + 4 + SPARE_THREADS  # main, poller, ...
    assert wait_for(lambda: process.num_fds() <= baseline_fds + IDLE + 1), process.num_fds()
    # a parked connection wakes for a new request, on the same connection; twice
    for client in (clients[0], clients[-1], clients[0]):
        assert hello(client) == b"hello"
    assert all(not client.closed and client.goaway is None for client in clients)
    for client in clients:
        client.close()
    assert wait_for(lambda: process.num_fds() <= baseline_fds), process.num_fds()
    assert server.stop() == 0
    assert "Traceback" not in server.log()


@pytest.mark.parametrize("over", ["h2c", "tls"])
def test_idle_timeout_closes_a_parked_connection(serve: Serve, certs: Certificates,
                                                 over: str) -> None:
    """keepalive after a request (not header_timeout, which is far longer here): GOAWAY
    naming the last stream served, then the close."""
    server = h2_server(serve, certs, over, "--keep-alive", "1", "--header-timeout", "60")
    client = connect(server, certs, over)
    assert hello(client) == b"hello"
    client.read(lambda: client.closed, timeout_s=20)
    assert client.goaway is not None
    assert (client.goaway.last_stream_id, int(client.goaway.error_code)) == (1, 0)
    assert server.stop() == 0


def test_sigterm_says_goaway_to_parked_connections(serve: Serve,
                                                   certs: Certificates) -> None:
    """A graceful stop reaches connections that wait in the poller: each is told GOAWAY
    and closed, and the server exits without waiting out graceful_timeout."""
    raise_fd_limit(4096)
    servers: dict[str, RunningServer] = {}
    clients: list[tuple[str, Any]] = []
    for over in ("h2c", "tls"):
        servers[over] = h2_server(serve, certs, over, "--keep-alive", "120",
                                  "--graceful-timeout", "60")
        for number in range(50):
            client = connect(servers[over], certs, over)
            if number % 2:
                assert hello(client) == b"hello"  # some have served a stream, some none
            clients.append((over, client))
    for server in servers.values():
        server.send_signal(signal.SIGTERM)
    for _, client in clients:
        client.read(lambda client=client: client.closed, timeout_s=20)
        assert client.goaway is not None and int(client.goaway.error_code) == 0
    for server in servers.values():
        assert server.stop() == 0
        log = server.log()
        assert "graceful_timeout reached" not in log and "Traceback" not in log, log[-2000:]


@pytest.mark.parametrize("over", ["h2c", "tls"])
def test_long_parked_connections_keep_their_h2_state_packed(
        serve: Serve, certs: Certificates, over: str) -> None:
    """Parked a while (server/h2cold.py COLD_AFTER_S), a connection's h2 state (settings,
    HPACK tables, windows) is one bytes object, out of the garbage collector's way: none is
    alive while every connection waits. Each wakes whole: its next request, whose headers
    refer to the HPACK table both sides built with the first, is answered."""
    transport = (("--certfile", certs.server_pem) if over == "tls"
                 else ("--http2-cleartext", "prior-knowledge"))
    server = serve("tests.e2e.test_http2_parking:state_app", *transport, "--keep-alive",
                   "120", "--header-timeout", "120")
    clients = [connect(server, certs, over) for _ in range(20)]
    for client in clients[::2]:
        assert hello(client) == b"hello"
    assert wait_for(lambda: h2_states(server, certs, over) == 0, timeout_s=30), \
        h2_states(server, certs, over)
    for client in clients:
        assert hello(client) == b"hello"
        assert not client.closed and client.goaway is None
    for client in clients:
        client.close()
    assert server.stop() == 0
    assert "Traceback" not in server.log()
