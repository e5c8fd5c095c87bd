"""The first slice: the hello example over keep-alive with http.client, httpx and curl."""

from __future__ import annotations

import http.client
import subprocess

import httpx

from tests.conftest import require_tool


def test_http_client_keeps_the_connection_alive(serve):
    server = serve("examples.hello:app")
    conn = http.client.HTTPConnection(server.host, server.port, timeout=10)
    bodies = []
    for path in ("/", "/again", "/third?x=1"):
        conn.request("GET", path)
        response = conn.getresponse()
        bodies.append((response.status, response.read()))
        sock = conn.sock
        assert sock is not None  # http.client drops the socket when the server closes
        assert response.getheader("Server") == "treadle"
        assert response.getheader("Date", "").endswith(" GMT")
    assert bodies == [(200, b"Hello, world!\n")] * 3
    conn.close()


def test_httpx_reuses_one_connection(serve):
    server = serve("examples.hello:app")
    with httpx.Client(base_url=server.url, timeout=10) as client:
        first = client.get("/")
        second = client.get("/")
    assert first.status_code == second.status_code == 200
    assert first.text == "Hello, world!\n"
    assert first.http_version == "HTTP/1.1"


def test_curl_reuses_the_connection(serve):
    curl = require_tool("curl")
    server = serve("examples.hello:app", "--no-server-header")
    done = subprocess.run([curl, "-sv", server.url + "/a", server.url + "/b"],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "Hello, world!\n" * 2
    assert "Re-using existing connection" in done.stderr
    assert "server: treadle" not in done.stderr.lower()


def test_response_header_names_keep_the_applications_case(serve):
    """HTTP/1.1 sends names as the application wrote them (as gunicorn and waitress do);
    the server's own headers use the conventional case."""
    from tests.e2e.wire import Wire, get

    server = serve("examples.hello:app")
    wire = Wire(server.host, server.port)
    try:
        wire.send(get("/"))
        names = [name for name, _ in wire.read_response().headers]
    finally:
        wire.close()
    assert "Content-Type" in names and "Content-Length" in names, names
    assert "Date" in names and "Server" in names, names
