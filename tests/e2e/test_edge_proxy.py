"""The PROXY protocol through the real server: v1 and v2 over raw sockets and curl, on
cleartext and TLS listeners, HTTP/2 after the header (ALPN h2 and h2c), and every refusal
(a peer outside proxy_allow_ips, a malformed, cut-short or slow header): a close without a
response and one debug line."""

from __future__ import annotations

import json
import socket
import ssl
import struct
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import require_tool
from tests.e2e.conftest import RunningServer
from tests.e2e.test_http2_apps import Certificates, H2Client

APP = "tests.e2e.apps_edge:app"
Serve = Callable[..., RunningServer]
V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
V1 = b"PROXY TCP4 203.0.113.7 10.0.0.1 5555 443\r\n"
GET = b"GET /environ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return Certificates(str(tmp_path_factory.mktemp("certs")))


def v2_header(source: str = "198.51.100.9", port: int = 4242, command: int = 1,
              tlvs: bytes = b"") -> bytes:
    block = (socket.inet_aton(source) + socket.inet_aton("10.0.0.1")
             + struct.pack("!HH", port, 8443) + tlvs)
    return V2_SIGNATURE + bytes([0x20 | command, 0x11]) + struct.pack("!H", len(block)) + block


def tlv(kind: int, value: bytes) -> bytes:
    return bytes([kind]) + struct.pack("!H", len(value)) + value


def exchange(port: int, data: bytes, context: ssl.SSLContext | None = None,
             preamble: bytes = b"") -> bytes:
    """Send `preamble` in cleartext, then `data` (over TLS when `context`); everything the
    server sends until it closes. A reset counts as the end."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        raw.sendall(preamble)
        sock: Any = context.wrap_socket(raw, server_hostname="127.0.0.1") if context else raw
        sock.sendall(data)
        received = b""
        while True:
            try:
                chunk = sock.recv(65536)
            except (ConnectionResetError, ssl.SSLError):
                return received
            if not chunk:
                return received
            received += chunk


def environ_of(response: bytes) -> dict[str, Any]:
    head, _, body = response.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 "), response[:200]
    return json.loads(body)  # type: ignore[no-any-return]


def wait_for_log(server: RunningServer, text: str) -> str:
    deadline = time.monotonic() + 10
    while text not in server.log():
        assert time.monotonic() < deadline, server.log()
        time.sleep(0.05)
    return server.log()


# -- what a header says --------------------------------------------------------------------


def test_v1_and_v2_name_the_client_in_the_environ_and_the_access_log(
        serve: Serve, tmp_path: Path) -> None:
    access = tmp_path / "access.log"
    server = serve(APP, "--proxy-protocol", "auto", "--access-logfile", str(access))
    environ = environ_of(exchange(server.port, V1 + GET))
    assert (environ["REMOTE_ADDR"], environ["REMOTE_PORT"]) == ("203.0.113.7", "5555")
    assert (environ["PROXY_PROTOCOL"], environ["PROXY_ADDR"], environ["PROXY_PORT"]) == (
        "TCP4", "10.0.0.1", "443")
    environ = environ_of(exchange(server.port, v2_header() + GET))
    assert (environ["REMOTE_ADDR"], environ["REMOTE_PORT"], environ["proxy.version"]) == (
        "198.51.100.9", "4242", 2)
    # the header is optional, as in gunicorn: without one the socket's peer stands
    environ = environ_of(exchange(server.port, GET))
    assert environ["REMOTE_ADDR"] == "127.0.0.1" and "PROXY_PROTOCOL" not in environ
    lines = access.read_text().splitlines()
    assert [line.split()[0] for line in lines] == ["203.0.113.7", "198.51.100.9", "127.0.0.1"]


def test_local_and_unknown_keep_the_socket_peer(serve: Serve) -> None:
    server = serve(APP, "--proxy-protocol")  # no value: auto, as in gunicorn
    environ = environ_of(exchange(server.port, b"PROXY UNKNOWN\r\n" + GET))
    assert (environ["REMOTE_ADDR"], environ["PROXY_PROTOCOL"]) == ("127.0.0.1", "UNKNOWN")
    environ = environ_of(exchange(server.port, v2_header(command=0) + GET))
    assert (environ["REMOTE_ADDR"], environ["PROXY_PROTOCOL"]) == ("127.0.0.1", "LOCAL")


def test_forwarded_headers_are_trusted_by_the_client_the_header_names(serve: Serve) -> None:
    """In a TCP proxy the HTTP head is the client's own: its X-Forwarded-For is dropped
    unless that client is in forwarded_allow_ips (the proxy's own address is not enough)."""
    server = serve(APP, "--proxy-protocol", "v1")
    forwarded = GET.replace(b"\r\n\r\n", b"\r\nX-Forwarded-For: 192.0.2.1\r\n\r\n")
    assert "HTTP_X_FORWARDED_FOR" not in environ_of(exchange(server.port, V1 + forwarded))
    environ = environ_of(exchange(server.port, b"PROXY UNKNOWN\r\n" + forwarded))
    assert environ["HTTP_X_FORWARDED_FOR"] == "192.0.2.1"  # the socket's peer, 127.0.0.1


def test_the_ssl_tlv_makes_the_scheme_https(serve: Serve) -> None:
    server = serve(APP, "--proxy-protocol", "v2")
    ssl_tlv = tlv(0x20, b"\x01" + b"\x00" * 4 + tlv(0x21, b"TLSv1.3")
                  + tlv(0x23, b"TLS_AES_256_GCM_SHA384"))
    environ = environ_of(exchange(server.port, v2_header(tlvs=tlv(0x02, b"shop.example")
                                                         + ssl_tlv) + GET))
    assert (environ["wsgi.url_scheme"], environ["HTTPS"]) == ("https", "on")
    assert (environ["SSL_PROTOCOL"], environ["SSL_CIPHER"]) == ("TLSv1.3",
                                                                "TLS_AES_256_GCM_SHA384")
    assert environ["proxy.authority"] == "shop.example"


def test_curl_haproxy_protocol_over_cleartext_and_h2c(serve: Serve) -> None:
    curl = require_tool("curl")
    server = serve(APP, "--proxy-protocol", "v1", "--http2-cleartext", "prior-knowledge")
    url = f"http://127.0.0.1:{server.port}/environ"
    out = subprocess.run([curl, "-sS", "--haproxy-protocol", url], capture_output=True,
                         timeout=30, check=True)
    environ = json.loads(out.stdout)
    assert (environ["PROXY_PROTOCOL"], environ["REMOTE_ADDR"]) == ("TCP4", "127.0.0.1")
    assert environ["PROXY_ADDR"] == "127.0.0.1" and environ["PROXY_PORT"] == str(server.port)
    out = subprocess.run([curl, "-sS", "--haproxy-protocol", "--http2-prior-knowledge", url],
                         capture_output=True, timeout=30, check=True)
    environ = json.loads(out.stdout)
    assert (environ["SERVER_PROTOCOL"], environ["PROXY_PROTOCOL"]) == ("HTTP/2", "TCP4")


# -- TLS: the header comes before the handshake -------------------------------------------


def test_over_tls_the_header_precedes_the_handshake(serve: Serve, certs: Certificates) -> None:
    server = serve(APP, "--proxy-protocol", "auto", "--certfile", certs.server_pem)
    context = certs.client_context(alpn=("http/1.1",))
    environ = environ_of(exchange(server.port, GET, context, preamble=V1))
    assert (environ["REMOTE_ADDR"], environ["wsgi.url_scheme"]) == ("203.0.113.7", "https")
    # our own TLS has the last word on the scheme, whatever a TLV says
    environ = environ_of(exchange(server.port, GET, context, preamble=v2_header()))
    assert (environ["REMOTE_ADDR"], environ["HTTPS"]) == ("198.51.100.9", "on")
    environ = environ_of(exchange(server.port, GET, context))  # no header
    assert environ["REMOTE_ADDR"] == "127.0.0.1"
    curl = require_tool("curl")
    out = subprocess.run([curl, "-sS", "--haproxy-protocol", "--cacert", certs.ca_pem,
                          f"https://127.0.0.1:{server.port}/environ"],
                         capture_output=True, timeout=30, check=True)
    environ = json.loads(out.stdout)
    assert (environ["PROXY_PROTOCOL"], environ["SERVER_PROTOCOL"]) == ("TCP4", "HTTP/2")


def test_http2_over_tls_after_a_v2_header(serve: Serve, certs: Certificates) -> None:
    server = serve(APP, "--proxy-protocol", "v2", "--certfile", certs.server_pem)
    client = H2Client(server.port, certs.client_context(), preamble=v2_header())
    stream = client.request("/environ")
    client.read(lambda: stream in client.ended)
    environ = json.loads(client.bodies[stream])
    assert (environ["REMOTE_ADDR"], environ["SERVER_PROTOCOL"]) == ("198.51.100.9", "HTTP/2")
    client.sock.close()


# -- refusals: a close, no response, one debug line ---------------------------------------


@pytest.mark.parametrize(("preamble", "logged"), [
    (b"PROXY TCP4 203.0.113.7 10.0.0.1 5555\r\n", "bad PROXY v1 line"),
    (b"PROXY TCP4 203.0.113.7 10.0.0.1 5555 443\n", "control bytes"),
    (b"PROXY " + b"x" * 120, "longer than 107 bytes"),
    (V2_SIGNATURE + b"\x22\x11\x00\x0c" + b"\x00" * 12, "unknown command 2"),
    (V2_SIGNATURE + b"\x21\x11\xff\xff", "over the 4096 allowed"),
    (V2_SIGNATURE + b"\x21\x11\x00\x04" + b"\x00" * 4, "TCP4 address block of 4 bytes"),
])
def test_bad_headers_close_without_a_response(serve: Serve, preamble: bytes,
                                              logged: str) -> None:
    server = serve(APP, "--proxy-protocol", "auto", "--log-level", "debug")
    assert exchange(server.port, preamble + GET) == b""
    wait_for_log(server, logged)
    assert environ_of(exchange(server.port, V1 + GET))["REMOTE_ADDR"] == "203.0.113.7"


def test_a_peer_outside_proxy_allow_ips_is_closed_on(serve: Serve, certs: Certificates
                                                     ) -> None:
    server = serve(APP, "--proxy-protocol", "auto", "--proxy-allow-from", "10.0.0.0/8",
                   "--log-level", "debug")
    assert exchange(server.port, V1 + GET) == b""
    log = wait_for_log(server, "a PROXY header from a peer not in proxy_allow_ips")
    assert log.count("not in proxy_allow_ips") == 1
    environ = environ_of(exchange(server.port, GET))  # without a header: served as usual
    assert environ["REMOTE_ADDR"] == "127.0.0.1"
    tls = serve(APP, "--proxy-protocol", "auto", "--proxy-allow-from", "192.0.2.1",
                "--certfile", certs.server_pem)
    with pytest.raises((ssl.SSLError, ConnectionError)):
        exchange(tls.port, GET, certs.client_context(alpn=("http/1.1",)), preamble=V1)


def test_a_header_cut_short_or_too_slow_is_closed_on(serve: Serve) -> None:
    server = serve(APP, "--proxy-protocol", "auto", "--header-timeout", "1",
                   "--log-level", "debug")
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(V1[:20])
        sock.shutdown(socket.SHUT_WR)
        assert sock.recv(100) == b""
    wait_for_log(server, "the connection closed inside its PROXY header")
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(V2_SIGNATURE[:8])  # and nothing more
        assert sock.recv(100) == b""  # closed at header_timeout
    wait_for_log(server, "PROXY header not received in time")
