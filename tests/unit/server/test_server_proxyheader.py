"""server/proxyheader.py on a real socket pair: it takes exactly the header's bytes (what
follows stays in the kernel for TLS or the engine), waits for the rest of a partial header,
and counts each refusal once (treadle_rejected_total's proxy_protocol) with its reason in
the debug line."""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from treadle.server.parking import Action
from treadle.server.proxyheader import new_reader, take_proxy_header
from treadle.server.wsgi import TrustedProxies


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    ours, theirs = socket.socketpair()
    ours.setblocking(False)
    yield ours, theirs
    ours.close()
    theirs.close()


def connection(sock: socket.socket, peer: str | None = "127.0.0.1", mode: str = "auto",
               allowed: tuple[str, ...] = ("127.0.0.1",)) -> Any:
    counted: list[str] = []
    runtime = SimpleNamespace(error_log=logging.getLogger("test.proxyheader"),
                              proxy_allowed=TrustedProxies(allowed),
                              trusted_proxies=TrustedProxies(("127.0.0.1",)),
                              count_rejected=counted.append, counted=counted)
    return SimpleNamespace(sock=sock, proxy=new_reader(mode), peer_host=peer, peer_port="1",
                           trusted_proxy=True, proxy_environ=None, runtime=runtime)


def test_exactly_the_header_is_taken(pair: tuple[socket.socket, socket.socket]) -> None:
    ours, theirs = pair
    conn = connection(ours)
    theirs.sendall(b"PROXY TCP4 203.0.113.7 10.0.0.1 5555 443\r\n\x16\x03\x01")
    assert take_proxy_header(conn) == (None, b"")
    assert ours.recv(100) == b"\x16\x03\x01"  # a ClientHello's first bytes, untouched
    assert (conn.peer_host, conn.peer_port, conn.trusted_proxy) == ("203.0.113.7", "5555",
                                                                    False)
    assert conn.proxy is None and conn.proxy_environ["PROXY_PROTOCOL"] == "TCP4"


def test_a_partial_header_waits_and_bytes_that_were_not_one_go_on(
        pair: tuple[socket.socket, socket.socket]) -> None:
    ours, theirs = pair
    conn = connection(ours)
    theirs.sendall(b"PROXY TCP4 203.0.113.7")
    assert take_proxy_header(conn) == (Action.WAIT, b"")
    theirs.sendall(b" 10.0.0.1 5555 443\r\nGET")
    assert take_proxy_header(conn) == (None, b"")
    assert ours.recv(100) == b"GET"
    conn = connection(ours)
    theirs.sendall(b"PRO")
    assert take_proxy_header(conn) == (Action.WAIT, b"")
    theirs.sendall(b"PFIND / HTTP/1.1\r\n")
    assert take_proxy_header(conn) == (None, b"PRO")  # handed to the engine
    assert ours.recv(100) == b"PFIND / HTTP/1.1\r\n"


@pytest.mark.parametrize(("data", "peer", "reason"), [
    (b"PROXY TCP4 1.2.3.4\n", "127.0.0.1", "proxy_malformed"),
    (b"\r\n\r\n\x00\r\nQUIT\n\x2f\x11\x00\x00", "127.0.0.1", "proxy_unknown_command"),
    (b"\r\n\r\n\x00\r\nQUIT\n\x21\x11\x20\x00", "127.0.0.1", "proxy_too_long"),
    (b"PROXY UNKNOWN\r\n", "192.0.2.1", "proxy_forbidden"),
])
def test_each_refusal_is_counted_once_and_logged_with_its_reason(
        pair: tuple[socket.socket, socket.socket], data: bytes, peer: str, reason: str,
        caplog: pytest.LogCaptureFixture) -> None:
    ours, theirs = pair
    theirs.sendall(data)
    conn = connection(ours, peer)
    with caplog.at_level(logging.DEBUG, logger="test.proxyheader"):
        assert take_proxy_header(conn) == (Action.CLOSE, b"")
    assert conn.runtime.counted == ["proxy_protocol"]
    assert [r.getMessage().endswith(f"({reason})") for r in caplog.records] == [True]


def test_a_unix_socket_peer_is_always_allowed(pair: tuple[socket.socket, socket.socket]
                                              ) -> None:
    ours, theirs = pair
    conn = connection(ours, peer=None, allowed=("10.0.0.0/8",))
    theirs.sendall(b"PROXY TCP6 2001:db8::1 ::1 1 2\r\n")
    assert take_proxy_header(conn) == (None, b"")
    assert conn.peer_host == "2001:db8::1"


def test_the_client_leaving_mid_header_is_counted(pair: tuple[socket.socket, socket.socket]
                                                  ) -> None:
    ours, theirs = pair
    theirs.sendall(b"PROXY TCP4")
    theirs.shutdown(socket.SHUT_WR)
    conn = connection(ours)
    assert take_proxy_header(conn) == (Action.CLOSE, b"")  # the bytes, then the end
    assert conn.runtime.counted == ["proxy_protocol"]
