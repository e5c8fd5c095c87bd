"""HTTP/2 end to end with real clients: httpx, curl, h2load, h2 itself; streams of one
connection served concurrently; the same environ and header policy as HTTP/1.1;
failures; Flask; h2c only when enabled; graceful stop with streams in flight."""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from collections.abc import Callable

import h2.config
import h2.connection
import h2.events
import httpx
import pytest

from tests.conftest import require_tool
from tests.e2e.conftest import RunningServer
from tests.e2e.test_http2_apps import Certificates, H2Client

APP = "tests.e2e.test_http2_apps:app"
Serve = Callable[..., RunningServer]


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return Certificates(str(tmp_path_factory.mktemp("certs")))


@pytest.fixture
def tls_server(serve: Serve, certs: Certificates) -> RunningServer:
    # two workers per connection (a quarter of 4 would be 1): a held stream must not
    # delay the next one on the same connection
    return serve(APP, "--certfile", certs.server_pem, "--threads", "4",
                 "--http2-max-workers-per-connection", "2", "--forwarded-allow-ips", "192.0.2.1")


def url(server: RunningServer, path: str, scheme: str = "https") -> str:
    return f"{scheme}://127.0.0.1:{server.port}{path}"


def test_httpx_sees_the_same_environ_policy_as_http11(tls_server: RunningServer,
                                                      certs: Certificates) -> None:
    headers = {"X_Smuggled": "1", "X-Forwarded-For": "203.0.113.9", "X-Custom": "a",
               "Content-Type": "text/plain"}
    with httpx.Client(http2=True, verify=certs.client_context()) as client:
        response = client.post(url(tls_server, "/environ?q=%20x"), headers=headers,
                               content=b"body bytes")
    assert response.http_version == "HTTP/2"
    environ = response.json()
    assert environ["SERVER_PROTOCOL"] == "HTTP/2"
    assert environ["REQUEST_METHOD"] == "POST"
    assert (environ["PATH_INFO"], environ["QUERY_STRING"]) == ("/environ", "q=%20x")
    assert environ["HTTP_HOST"] == f"127.0.0.1:{tls_server.port}"  # from :authority
    assert (environ["CONTENT_TYPE"], environ["CONTENT_LENGTH"]) == ("text/plain", "10")
    assert environ["body"] == "body bytes"
    assert environ["HTTP_X_CUSTOM"] == "a"
    assert "HTTP_X_SMUGGLED" not in environ  # underscore names dropped
    assert "HTTP_X_FORWARDED_FOR" not in environ  # 127.0.0.1 is not a trusted proxy
    # connection-specific response headers from the application are dropped in HTTP/2
    assert response.headers["x-kept"] == "yes"
    for name in ("connection", "transfer-encoding", "keep-alive", "upgrade"):
        assert name not in response.headers
    assert response.headers["server"] == "treadle"


def test_curl_over_tls_and_h2c_only_when_enabled(serve: Serve, certs: Certificates) -> None:
    curl = require_tool("curl")
    tls = serve(APP, "--certfile", certs.server_pem)
    out = subprocess.run([curl, "-s", "--http2", "--cacert", certs.ca_pem, "-w",
                          " %{http_version}", url(tls, "/")], capture_output=True, text=True,
                         timeout=30)
    assert out.stdout == "hello 2"
    off = serve(APP)  # http2_cleartext off: neither kind of h2c (HARDENING 22)
    out = subprocess.run([curl, "-s", "--http2", "-w", " %{http_version}",
                          url(off, "/", "http")], capture_output=True, text=True, timeout=30)
    assert out.stdout == "hello 1.1"  # Upgrade: h2c ignored
    with socket.create_connection(("127.0.0.1", off.port)) as sock:
        sock.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        assert sock.recv(100)[:12] in (b"HTTP/1.1 400", b"HTTP/1.1 505")  # not HTTP/2
    both = serve(APP, "--http2-cleartext", "both")
    for flag in ("--http2-prior-knowledge", "--http2"):
        out = subprocess.run([curl, "-s", flag, "-w", " %{http_version}",
                              url(both, "/", "http")], capture_output=True, text=True,
                             timeout=30)
        assert out.stdout == "hello 2", flag
    upgrade_only = serve(APP, "--http2-cleartext", "upgrade")
    out = subprocess.run([curl, "-s", "--http2-prior-knowledge", url(upgrade_only, "/", "http")],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode != 0  # prior knowledge is not enabled there


def test_h2load_smoke_run_has_no_failures(serve: Serve) -> None:
    h2load = require_tool("h2load")
    server = serve(APP, "--http2-cleartext", "prior-knowledge")
    out = subprocess.run([h2load, "-n", "2000", "-c", "4", "-m", "20", url(server, "/", "http")],
                         capture_output=True, text=True, timeout=60)
    assert "2000 succeeded, 0 failed, 0 errored, 0 timeout" in out.stdout, out.stdout


def test_http2_settings_are_announced(serve: Serve) -> None:
    server = serve(APP, "--http2-cleartext", "prior-knowledge",
                   "--http2-max-concurrent-streams", "7", "--http2-initial-window-size",
                   "1048576", "--http2-max-frame-size", "32768",
                   "--http2-max-header-list-size", "4096")
    client = H2Client(server.port)
    stream = client.request("/")
    client.read(lambda: client.answered(stream))
    remote = client.conn.remote_settings
    assert (remote.max_concurrent_streams, remote.initial_window_size, remote.max_frame_size,
            remote.max_header_list_size, remote.enable_push) == (7, 1048576, 32768, 4096, 0)
    # the connection window grows to the streams' windows together (capped at 16 MiB)
    assert client.conn.outbound_flow_control_window >= 7 * 1048576 - 65535 - 100
    client.close()


def test_a_held_stream_does_not_delay_the_next_one(tls_server: RunningServer,
                                                   certs: Certificates) -> None:
    """Stream 1 is held by the application until the client has the answer of stream 3
    (same connection) and only then asks, on stream 5, to release it."""
    client = H2Client(tls_server.port, certs.client_context())
    held = client.request("/hold")
    quick = client.request("/")
    client.read(lambda: client.answered(quick))
    assert client.bodies[quick] == b"hello"
    assert not client.answered(held)  # it cannot be: nothing has released it yet
    release = client.request("/release")
    client.read(lambda: client.answered(held) and client.answered(release))
    assert client.bodies[held] == b"held, released"
    client.close()


def test_connection_thread_never_waits_for_the_pool(serve: Serve) -> None:
    """One worker, busy in a slow stream: the connection still answers PING at once, and a
    stream queued behind the busy pool is served afterwards, not lost or deadlocked."""
    server = serve(APP, "--http2-cleartext", "prior-knowledge", "--threads", "1")
    client = H2Client(server.port)
    slow = client.request("/slow?1.5")
    queued = client.request("/")
    client.conn.ping(b"poolbusy")
    client.flush()
    client.read(lambda: any(type(e).__name__ == "PingAckReceived" for e in client.events))
    assert not client.answered(slow) and not client.answered(queued)
    client.read(lambda: client.answered(slow) and client.answered(queued))
    assert (client.bodies[slow], client.bodies[queued]) == (b"slow done", b"hello")
    client.close()


def test_100_continue_when_the_application_reads_the_body(tls_server: RunningServer,
                                                          certs: Certificates) -> None:
    client = H2Client(tls_server.port, certs.client_context())
    stream = client.conn.get_next_available_stream_id()
    client.conn.send_headers(stream, [(b":method", b"POST"), (b":scheme", b"https"),
                                      (b":authority", b"127.0.0.1"), (b":path", b"/upload"),
                                      (b"expect", b"100-continue")])
    client.flush()
    client.read(lambda: bool(client.informational))
    assert client.informational == [(stream, [(b":status", b"100")])]
    client.conn.send_data(stream, b"z" * 1000, end_stream=True)
    client.flush()
    client.read(lambda: client.answered(stream))
    assert (client.status(stream), client.bodies[stream]) == (200, b"1000")
    client.close()


def test_file_wrapper_and_application_failures(tls_server: RunningServer,
                                               certs: Certificates) -> None:
    client = H2Client(tls_server.port, certs.client_context())
    file_stream = client.request("/file")
    before = client.request("/fail-before")
    after = client.request("/fail-after")
    client.read(lambda: all(client.answered(s) for s in (file_stream, before, after)))
    assert client.bodies[file_stream] == bytes(range(256)) * 4096 * 3
    assert client.status(before) == 500
    assert client.bodies[before] == b"500 Internal Server Error\n"
    assert client.resets[after] == 2  # INTERNAL_ERROR: the client cannot take it as whole
    ok = client.request("/")  # the connection is still fine
    client.read(lambda: client.answered(ok))
    assert client.bodies[ok] == b"hello"
    client.close()
    log = tls_server.log()
    assert "failing before the response" in log and "failing after the response" in log


def test_flask_over_http2(serve: Serve, certs: Certificates) -> None:
    pytest.importorskip("flask")
    server = serve("examples.flask_app:app", "--certfile", certs.server_pem)
    with httpx.Client(http2=True, verify=certs.client_context()) as client:
        item = client.get(url(server, "/items/2"))
        echo = client.post(url(server, "/echo"), json={"a": [1, 2]})
    assert item.http_version == "HTTP/2"
    assert item.json() == {"id": 2, "name": "treadle"}
    assert echo.json() == {"received": {"a": [1, 2]}, "scheme": "https"}


def test_graceful_stop_finishes_streams_in_flight(serve: Serve, certs: Certificates) -> None:
    """SIGTERM: GOAWAY at once, the streams in flight still complete, then the close.

    curl (nghttp2) carries three streams on one connection through the stop; the raw h2
    client shows the GOAWAY (h2 as a client stops reading at a GOAWAY: python-hyper/h2#1181).
    """
    curl = require_tool("curl")
    server = serve(APP, "--certfile", certs.server_pem, "--threads", "4",
                   "--http2-max-workers-per-connection", "3")  # curl's three at once
    slow = url(server, "/slow?2")
    transfers = subprocess.Popen([curl, "-s", "--http2", "--parallel", "--cacert", certs.ca_pem,
                                  slow, slow, slow], stdout=subprocess.PIPE, text=True)
    client = H2Client(server.port, certs.client_context())
    stream = client.request("/slow?2")
    client.conn.ping(b"in order")  # its ACK comes after the server has read the request
    client.flush()
    client.read(lambda: any(type(e).__name__ == "PingAckReceived" for e in client.events))
    time.sleep(0.5)  # curl's three: set up, not a measurement (they have 2 s in the app)
    server.send_signal(signal.SIGTERM)
    client.read(lambda: client.goaway is not None)
    assert (client.goaway.last_stream_id, int(client.goaway.error_code)) == (stream, 0)
    out, _ = transfers.communicate(timeout=30)
    assert (transfers.returncode, out) == (0, "slow done" * 3)
    assert server.stop() == 0
    log = server.log()
    assert "Traceback" not in log and "dropping" not in log
    client.close()


def _upgrade_with_body(port: int, body: bytes) -> tuple[bytes, int | None, bytes]:
    """POST `body` with `Upgrade: h2c` as h2's own client: (the HTTP/1.1 status line, the
    stream-1 HTTP/2 status or None, the response body, whichever protocol carried it)."""
    client = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    settings = client.initiate_upgrade_connection()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: t\r\nConnection: Upgrade, HTTP2-Settings\r\n"
                     b"Upgrade: h2c\r\nHTTP2-Settings: " + settings + b"\r\n"
                     b"Content-Length: %d\r\n\r\n" % len(body) + body)
        data = b""
        while b"\r\n\r\n" not in data:
            data += sock.recv(65536)
        head, rest = data.split(b"\r\n\r\n", 1)
        status_line = head.split(b"\r\n", 1)[0]
        if not status_line.startswith(b"HTTP/1.1 101"):  # served over HTTP/1.1
            return status_line, None, rest
        sock.sendall(client.data_to_send())
        status, got, ended, pending = None, b"", False, rest
        while not ended:
            for event in client.receive_data(pending):
                if isinstance(event, h2.events.ResponseReceived) and event.stream_id == 1:
                    status = int(dict(event.headers)[b":status"])
                elif isinstance(event, h2.events.DataReceived) and event.stream_id == 1:
                    got += event.data
                    client.acknowledge_received_data(event.flow_controlled_length, 1)
                elif isinstance(event, h2.events.StreamEnded) and event.stream_id == 1:
                    ended = True
            sock.sendall(client.data_to_send())
            if not ended:
                pending = sock.recv(65536)
                assert pending, "closed before stream 1 ended"
        return status_line, status, got


def test_h2c_upgrade_with_a_body_is_upgraded_after_the_body(serve: Serve) -> None:
    """RFC 7540 3.2: the request's body arrives over HTTP/1.1, then stream 1 answers it over
    HTTP/2 with the whole body read through wsgi.input."""
    server = serve("tests.e2e.apps_core:app", "--http2-cleartext", "upgrade")
    line, status, body = _upgrade_with_body(server.port, b"hello over h2c")
    assert line.startswith(b"HTTP/1.1 101") and status == 200
    assert body == b"hello over h2c"
    empty = _upgrade_with_body(server.port, b"")
    assert empty[1] == 200 and empty[2] == b""
    # a body the poller does not receive whole before dispatch (over request_buffer_size,
    # 1 MiB) stays HTTP/1.1
    line, status, body = _upgrade_with_body(server.port, b"x" * 1_100_000)
    assert line.startswith(b"HTTP/1.1 200") and status is None
