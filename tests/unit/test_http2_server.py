"""server/tls.py and the h2c checks of server/negotiate.py, without a running server."""

from __future__ import annotations

import socket
import ssl
import threading
import time
from pathlib import Path

import pytest
import trustme
from treadle.config import load
from treadle.server.negotiate import wants_upgrade
from treadle.server.sockio import wait_ready
from treadle.server.tls import TLSConfigError, TLSSocket, build_context, handshake_step, wrap

from treadle import protocol


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def pem(ca: trustme.CA, tmp_path: Path) -> str:
    path = tmp_path / "server.pem"
    ca.issue_cert("127.0.0.1").private_key_and_cert_chain_pem.write_to_path(str(path))
    return str(path)


def test_no_certificate_no_context(tmp_path: Path) -> None:
    assert build_context(load([], {}, tmp_path)) is None


def test_context_follows_the_settings(pem: str, ca: trustme.CA, tmp_path: Path) -> None:
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    cfg = load(["--certfile", pem, "--ssl-min-version", "1.3", "--ca-certs", "ca.pem",
                "--cert-reqs", "1", "--http-protocols", "h1,h2"], {}, tmp_path)
    context = build_context(cfg)
    assert context is not None
    assert context.minimum_version == ssl.TLSVersion.TLSv1_3
    assert context.verify_mode == ssl.CERT_OPTIONAL
    assert context.options & ssl.OP_NO_COMPRESSION
    assert context.sslsocket_class is TLSSocket


def test_unusable_files_are_one_line_errors(pem: str, tmp_path: Path) -> None:
    other = trustme.CA().issue_cert("x")
    other.private_key_pem.write_to_path(str(tmp_path / "other-key.pem"))
    cfg = load(["--certfile", pem, "--keyfile", "other-key.pem"], {}, tmp_path)
    with pytest.raises(TLSConfigError, match="does not match the certificate"):
        build_context(cfg)
    cfg = load(["--certfile", pem, "--ciphers", "NOPE"], {}, tmp_path)
    with pytest.raises(TLSConfigError, match="OpenSSL selects no cipher"):
        build_context(cfg)


def test_non_blocking_handshake_steps_and_alpn(pem: str, ca: trustme.CA, tmp_path: Path) -> None:
    """The server side never blocks: it steps when bytes are there, and reads say
    BlockingIOError, not SSLWantReadError, when nothing is."""
    context = build_context(load(["--certfile", pem], {}, tmp_path))
    assert context is not None
    server_raw, client_raw = socket.socketpair()
    server_raw.setblocking(False)
    tls = wrap(context, server_raw)
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    client_context.set_alpn_protocols(["h2", "http/1.1"])
    client = client_context.wrap_socket(client_raw, server_hostname="127.0.0.1",
                                        do_handshake_on_connect=False)
    done = threading.Thread(target=client.do_handshake)
    done.start()
    assert tls.gettimeout() == 0.0
    while not handshake_step(tls, deadline=float("inf")):
        wait_ready(tls, False, time.monotonic() + 5)  # the client's next flight, as the poller
    done.join(5)
    assert tls.selected_alpn_protocol() == "h2"
    with pytest.raises(BlockingIOError):
        tls.recv(100)
    client.sendall(b"ping")
    wait_ready(tls, False, time.monotonic() + 5)
    assert tls.recv(100) == b"ping"
    client.close()
    tls.close()


def request(*headers: tuple[bytes, bytes]) -> protocol.Request:
    return protocol.Request(method=b"GET", target=b"/", headers=[(b"host", b"x"), *headers])


def test_which_requests_may_switch_to_h2c() -> None:
    settings = (b"http2-settings", b"AAMAAABkAARAAAAAAAIAAAAA")
    assert wants_upgrade(request((b"upgrade", b"h2c"), settings)) == settings[1]
    assert wants_upgrade(request((b"upgrade", b"websocket, H2C"), settings)) == settings[1]
    assert wants_upgrade(request((b"upgrade", b"h2c"))) is None  # no settings
    assert wants_upgrade(request(settings)) is None  # no upgrade
    assert wants_upgrade(request((b"upgrade", b"websocket"), settings)) is None
    assert wants_upgrade(request((b"upgrade", b"h2c"), settings, settings)) is None
    assert wants_upgrade(request((b"upgrade", b"h2c"), settings,
                                 (b"content-length", b"5"))) == settings[1]  # after the body
    assert wants_upgrade(request((b"upgrade", b"h2c"), settings,
                                 (b"transfer-encoding", b"chunked"))) is None  # streamed
    assert wants_upgrade(request((b"upgrade", b"h2c"), (b"http2-settings", b"!!"))) is None
