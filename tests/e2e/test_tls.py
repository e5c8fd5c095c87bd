"""TLS: ALPN picks the protocol, client certificates (mTLS), the handshake off the hot
threads, and what bad or silent clients cost (one debug line, nothing else)."""

from __future__ import annotations

import http.client
import socket
import ssl
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import RunningServer, run_server
from tests.e2e.test_http2_apps import Certificates

APP = "tests.e2e.test_http2_apps:app"
Serve = Callable[..., RunningServer]


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return Certificates(str(tmp_path_factory.mktemp("certs")))


def https(server: RunningServer, path: str) -> str:
    return f"https://127.0.0.1:{server.port}{path}"


def log_lines_after_start(server: RunningServer) -> list[str]:
    return [line for line in server.log().splitlines()
            if "Listening at" not in line and "Serving " not in line]


def test_alpn_gives_h2_or_http11_and_the_environ_says_https(serve: Serve,
                                                            certs: Certificates) -> None:
    server = serve(APP, "--certfile", certs.server_pem)
    assert server.url.startswith("https://")
    with httpx.Client(http2=True, verify=certs.client_context()) as client:
        response = client.get(https(server, "/environ?x=1"))
    assert response.http_version == "HTTP/2"
    environ = response.json()
    assert (environ["wsgi.url_scheme"], environ["HTTPS"]) == ("https", "on")
    assert environ["SERVER_PROTOCOL"] == "HTTP/2"
    assert "treadle.peercert" not in environ  # no client certificate asked for
    with httpx.Client(http2=False, verify=certs.client_context(alpn=("http/1.1",))) as client:
        response = client.get(https(server, "/"))
    assert (response.http_version, response.text) == ("HTTP/1.1", "hello")


def test_tls_connection_settings(serve: Serve, certs: Certificates) -> None:
    server = serve(APP, "--certfile", certs.server_pem, "--ssl-min-version", "1.3",
                   "--http-protocols", "h1")
    context = certs.client_context(alpn=("h2", "http/1.1"))
    with socket.create_connection(("127.0.0.1", server.port)) as raw, \
            context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
        assert tls.version() == "TLSv1.3"
        assert tls.compression() is None
        assert tls.selected_alpn_protocol() == "http/1.1"  # h2 is not in http_protocols
    old = certs.client_context()
    old.maximum_version = ssl.TLSVersion.TLSv1_2
    with socket.create_connection(("127.0.0.1", server.port)) as raw, \
            pytest.raises(ssl.SSLError):
        old.wrap_socket(raw, server_hostname="127.0.0.1")


def test_cipher_list_takes_effect(serve: Serve, certs: Certificates) -> None:
    cipher = "ECDHE-ECDSA-AES256-GCM-SHA384"  # trustme keys are ECDSA
    server = serve(APP, "--certfile", certs.server_pem, "--ciphers", cipher)
    context = certs.client_context()
    context.maximum_version = ssl.TLSVersion.TLSv1_2  # TLS 1.3 suites are separate
    with socket.create_connection(("127.0.0.1", server.port)) as raw, \
            context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
        assert tls.cipher()[0] == cipher


def test_client_certificates_accepted_and_refused(serve: Serve, certs: Certificates) -> None:
    server = serve(APP, "--certfile", certs.server_pem, "--ca-certs", certs.ca_pem,
                   "--cert-reqs", "required", "--log-level", "debug")
    with httpx.Client(http2=True, verify=certs.client_context(with_cert=True)) as client:
        environ = client.get(https(server, "/environ")).json()
    assert environ["treadle.peercert"]["subjectAltName"] == [["email", "client@example.com"]]
    assert environ["SSL_CLIENT_CERT"].startswith("-----BEGIN CERTIFICATE-----")
    with httpx.Client(http2=True, verify=certs.client_context()) as client, \
            pytest.raises(httpx.TransportError):
        client.get(https(server, "/environ"))
    deadline = time.monotonic() + 5
    while "TLS handshake with 127.0.0.1 failed" not in server.log():
        assert time.monotonic() < deadline, server.log()
        time.sleep(0.05)


def test_plain_http_and_silent_clients_cost_one_debug_line(serve: Serve,
                                                           certs: Certificates) -> None:
    """A handshake waiting for the client holds no thread (one worker here), and a failed
    or unfinished one is a single debug line."""
    server = serve(APP, "--certfile", certs.server_pem, "--threads", "1",
                   "--handshake-timeout", "1.5", "--log-level", "debug")
    silent = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(3)]
    with socket.create_connection(("127.0.0.1", server.port)) as plain:
        plain.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        plain.settimeout(5)
        try:
            assert plain.recv(1024) == b""  # closed, no answer
        except ConnectionResetError:
            pass  # closed with our unread bytes pending: also no answer
    with httpx.Client(http2=True, verify=certs.client_context()) as client:
        assert client.get(https(server, "/")).text == "hello"
    for sock in silent:  # still open: the one worker answered while they waited
        sock.setblocking(False)
        with pytest.raises(BlockingIOError):
            sock.recv(1)
        sock.setblocking(True)
    for sock in silent:
        sock.settimeout(5)
        assert sock.recv(1) == b""  # closed by handshake_timeout
        sock.close()
    lines = log_lines_after_start(server)
    assert len(lines) == 4, lines
    assert sum("TLS handshake not finished in time" in line for line in lines) == 3
    assert sum("TLS handshake with 127.0.0.1 failed" in line for line in lines) == 1
    assert all("[DEBUG]" in line for line in lines)


def test_http11_over_tls_sends_files_without_sendfile(serve: Serve,
                                                      certs: Certificates) -> None:
    server = serve(APP, "--certfile", certs.server_pem)
    context = certs.client_context(alpn=("http/1.1",))
    conn = http.client.HTTPSConnection("127.0.0.1", server.port, context=context)
    conn.request("GET", "/file")
    response = conn.getresponse()
    assert response.read() == bytes(range(256)) * 4096 * 3
    conn.request("POST", "/upload", body=b"y" * 300_000)
    assert conn.getresponse().read() == b"300000"  # keep-alive over TLS
    conn.close()


def test_encrypted_key_with_password_from_the_environment(
    serve: Serve, certs: Certificates, tmp_path: Path
) -> None:
    from cryptography.hazmat.primitives import serialization

    pem = Path(certs.server_pem).read_bytes()
    key = serialization.load_pem_private_key(pem, None)
    encrypted = key.private_bytes(serialization.Encoding.PEM,
                                  serialization.PrivateFormat.PKCS8,
                                  serialization.BestAvailableEncryption(b"s3cret"))
    (tmp_path / "key.pem").write_bytes(encrypted)
    (tmp_path / "cert.pem").write_bytes(pem[pem.index(b"-----BEGIN CERTIFICATE"):])
    flags = ("--certfile", str(tmp_path / "cert.pem"), "--keyfile", str(tmp_path / "key.pem"))
    server = serve(APP, *flags, env={"TREADLE_KEYFILE_PASSWORD": "s3cret"})
    with httpx.Client(http2=True, verify=certs.client_context()) as client:
        assert client.get(https(server, "/")).text == "hello"
    result = run_server(APP, "-b", "127.0.0.1:0", *flags,
                        env={"TREADLE_KEYFILE_PASSWORD": "wrong"})
    assert result.returncode == 2
    assert result.stderr.startswith("treadle: error: keyfile_password (env "
                                    "TREADLE_KEYFILE_PASSWORD): cannot decrypt the private key")
    assert result.stderr.count("\n") == 1


def test_bad_cipher_list_stops_the_server_with_status_2(certs: Certificates) -> None:
    result = run_server(APP, "-b", "127.0.0.1:0", "--certfile", certs.server_pem,
                        "--ciphers", "NO-SUCH-CIPHER")
    assert result.returncode == 2
    assert "OpenSSL selects no cipher" in result.stderr
