"""http2_cleartext_trusted_only (on by default, as gunicorn 26.2 behaves): h2c, by prior
knowledge or `Upgrade: h2c`, only for peers in forwarded_allow_ips; other peers are
answered as a server without h2c answers (the preface goes to the HTTP/1.1 engine: 400, its
`*` target outside OPTIONS; the upgrade is ignored and the request served over HTTP/1.1)."""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Callable

from tests.conftest import require_tool
from tests.e2e.conftest import RunningServer
from tests.e2e.test_http2_apps import H2Client

APP = "tests.e2e.apps_edge:app"
Serve = Callable[..., RunningServer]
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
UPGRADE = (b"GET /environ HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\n"
           b"Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n")


def first_bytes(port: int, data: bytes, preamble: bytes = b"") -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(preamble + data)
        return sock.recv(65536)


def test_untrusted_peers_get_http11(serve: Serve) -> None:
    server = serve(APP, "--http2-cleartext", "both", "--forwarded-allow-ips", "10.0.0.1")
    without_h2c = serve(APP)
    answer = first_bytes(without_h2c.port, PREFACE).split(b"\r\n")[0]
    assert answer == b"HTTP/1.1 400 Bad Request"
    assert first_bytes(server.port, PREFACE).split(b"\r\n")[0] == answer
    answer = first_bytes(server.port, UPGRADE)
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n"), answer[:100]  # no 101: ignored
    curl = require_tool("curl")
    url = f"http://127.0.0.1:{server.port}/environ"
    out = subprocess.run([curl, "-s", "--http2", url], capture_output=True, timeout=30,
                         text=True, check=True)
    assert '"SERVER_PROTOCOL": "HTTP/1.1"' in out.stdout
    out = subprocess.run([curl, "-s", "--http2-prior-knowledge", url], capture_output=True,
                         timeout=30)
    assert out.returncode != 0


def test_trusted_peers_and_the_setting_off_get_h2c(serve: Serve) -> None:
    for flags in (("--forwarded-allow-ips", "127.0.0.0/8"),  # a trusted peer
                  ("--forwarded-allow-ips", "10.0.0.1", "--no-http2-cleartext-trusted-only")):
        server = serve(APP, "--http2-cleartext", "both", *flags)
        assert first_bytes(server.port, UPGRADE).startswith(b"HTTP/1.1 101 ")
        client = H2Client(server.port)
        stream = client.request("/environ")
        client.read(lambda: stream in client.ended)  # noqa: B023 (read at once)
        client.sock.close()
        assert b'"SERVER_PROTOCOL": "HTTP/2"' in client.bodies[stream]


def test_behind_a_proxy_protocol_header_the_client_it_names_decides(serve: Serve) -> None:
    server = serve(APP, "--http2-cleartext", "prior-knowledge", "--proxy-protocol", "v1")
    untrusted = b"PROXY TCP4 203.0.113.7 10.0.0.1 5555 80\r\n"
    assert first_bytes(server.port, PREFACE, untrusted).startswith(b"HTTP/1.1 400 ")
    client = H2Client(server.port, preamble=b"PROXY TCP4 127.0.0.1 127.0.0.1 5555 80\r\n")
    stream = client.request("/environ")
    client.read(lambda: stream in client.ended)
    client.sock.close()
    assert b'"REMOTE_PORT": "5555"' in client.bodies[stream]
