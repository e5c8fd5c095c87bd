"""103 Early Hints (environ["wsgi.early_hints"], as gunicorn 25 offers it) through the real
server: over HTTP/1.1 (curl shows them, raw bytes exact), not to HTTP/1.0 clients, over
HTTP/2 as informational HEADERS (a raw h2 client, httpx), checked by the response header
policy, ignored once the head has gone, and never in the way of 100 Continue."""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Callable

import httpx
import pytest

from tests.conftest import require_tool
from tests.e2e.apps_edge import PRELOAD
from tests.e2e.conftest import RunningServer
from tests.e2e.test_http2_apps import Certificates, H2Client

APP = "tests.e2e.apps_edge:app"
Serve = Callable[..., RunningServer]
HINT_1 = b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload; as=style\r\n\r\n"
HINT_2 = (b"HTTP/1.1 103 Early Hints\r\nLink: </app.js>; rel=preload; as=script\r\n"
          b"X-Hint: two\r\n\r\n")


@pytest.fixture(scope="module")
def server(serve_module: Callable[..., RunningServer]) -> RunningServer:
    return serve_module(APP, "--http2-cleartext", "prior-knowledge")


def raw(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
        return received


def get(path: str, version: bytes = b"1.1") -> bytes:
    return b"GET %s HTTP/%s\r\nHost: x\r\nConnection: close\r\n\r\n" % (path.encode(), version)


def test_http11_gets_each_103_before_the_response(server: RunningServer) -> None:
    got = raw(server.port, get("/hints"))
    assert got.startswith(HINT_1 + HINT_2 + b"HTTP/1.1 200 OK\r\n")
    assert got.endswith(b"\r\n\r\nfinal")


def test_curl_shows_the_103s(server: RunningServer) -> None:
    curl = require_tool("curl")
    out = subprocess.run([curl, "-sv", f"http://127.0.0.1:{server.port}/hints"],
                         capture_output=True, timeout=30, check=True, text=True)
    statuses = [line for line in out.stderr.splitlines() if line.startswith("< HTTP/")]
    assert statuses == ["< HTTP/1.1 103 Early Hints", "< HTTP/1.1 103 Early Hints",
                        "< HTTP/1.1 200 OK"]
    assert out.stdout == "final"


def test_http10_clients_get_none(server: RunningServer) -> None:
    assert raw(server.port, get("/hints", b"1.0")).startswith(b"HTTP/1.1 200 OK\r\n")


def test_hints_are_checked_like_response_headers_and_ignored_after_the_head(
        server: RunningServer) -> None:
    got = raw(server.port, get("/hints-bad"))
    assert got.startswith(b"HTTP/1.1 500 ") and b"Injected" not in got
    got = raw(server.port, get("/hints-late"))
    assert got.startswith(b"HTTP/1.1 200 OK\r\n") and b" 103 " not in got
    assert got.endswith(b"head \r\n4\r\nbody\r\n0\r\n\r\n")


def test_a_failure_after_a_hint_is_still_a_500(server: RunningServer) -> None:
    got = raw(server.port, get("/hints-fail"))
    assert got.startswith(HINT_1 + b"HTTP/1.1 500 Internal Server Error\r\n"), got[:200]
    client = H2Client(server.port)
    stream = client.request("/hints-fail")
    client.read(lambda: stream in client.ended)
    client.sock.close()
    assert [status for _, (status, *_) in client.informational] == [(b":status", b"103")]
    assert client.heads[stream][0] == (b":status", b"500") and stream not in client.resets


def test_100_continue_still_comes_after_a_103(server: RunningServer) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"POST /hints-upload HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                     b"Expect: 100-continue\r\nConnection: close\r\n\r\n")
        received = b""
        while not (b"HTTP/1.1 100 " in received and received.endswith(b"\r\n\r\n")):
            chunk = sock.recv(65536)
            assert chunk, received
            received += chunk
        assert received.startswith(HINT_1 + b"HTTP/1.1 100 Continue\r\n\r\n"), received
        sock.sendall(b"hello")
        while chunk := sock.recv(65536):
            received += chunk
    assert received.endswith(b"\r\n\r\n5") and b"HTTP/1.1 200 OK\r\n" in received


def test_http2_sends_informational_headers_before_the_response(server: RunningServer
                                                               ) -> None:
    client = H2Client(server.port)
    stream = client.request("/hints")
    client.read(lambda: stream in client.ended)
    client.sock.close()
    assert client.informational == [
        (stream, [(b":status", b"103"), (b"link", PRELOAD.encode())]),
        (stream, [(b":status", b"103"), (b"link", b"</app.js>; rel=preload; as=script"),
                  (b"x-hint", b"two")]),
    ]
    assert client.heads[stream][0] == (b":status", b"200")
    assert client.bodies[stream] == b"final"
    got = [type(event).__name__ for event in client.events
           if type(event).__name__ in ("InformationalResponseReceived", "ResponseReceived")]
    assert got == ["InformationalResponseReceived"] * 2 + ["ResponseReceived"]


def test_httpx_over_http11_and_http2_gets_the_final_response(
        serve: Serve, tmp_path_factory: pytest.TempPathFactory) -> None:
    certs = Certificates(str(tmp_path_factory.mktemp("certs")))
    tls = serve(APP, "--certfile", certs.server_pem)
    for http2 in (False, True):
        with httpx.Client(http2=http2, verify=certs.client_context(
                alpn=("h2",) if http2 else ("http/1.1",))) as client:
            response = client.get(f"https://127.0.0.1:{tls.port}/hints")
        assert response.http_version == ("HTTP/2" if http2 else "HTTP/1.1")
        assert (response.status_code, response.text) == (200, "final")
        assert response.headers["link"] == PRELOAD
    curl = require_tool("curl")
    out = subprocess.run([curl, "-sv", "--http2", "--cacert", certs.ca_pem,
                          f"https://127.0.0.1:{tls.port}/hints"],
                         capture_output=True, timeout=30, check=True, text=True)
    assert [line for line in out.stderr.splitlines() if line.startswith("< HTTP/")] == [
        "< HTTP/2 103 ", "< HTTP/2 103 ", "< HTTP/2 200 "]
