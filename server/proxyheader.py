"""The PROXY protocol preamble (proxy_protocol): who the client is, when a TCP proxy says so.

A connection on a server with proxy_protocol on may start with a PROXY header (v1 or v2,
parsed by protocol/proxy.py). The poller reads it here before anything else: before the
TLS handshake (the header comes in cleartext ahead of the ClientHello) and before the
HTTP/1.1 engine or the h2c preface watch. It peeks at the socket and consumes exactly the
header's bytes, so what follows stays in the kernel for the ssl module or the engine. The
header is optional, as in gunicorn: a connection that does not start with one is served with
its socket's peer.

A header from a peer outside proxy_allow_ips, a malformed one, one cut short or not whole
within header_timeout: the connection is closed without a response, with one debug line,
and counted in treadle_rejected_total{reason="proxy_protocol"} (server/metrics.py).
A header naming the client (TCP4/TCP6) makes it the peer: REMOTE_ADDR/REMOTE_PORT, the
access log, and the forwarded_allow_ips decision follow it; LOCAL, UNKNOWN and other
families keep the socket's peer.
"""

from __future__ import annotations

import socket
from typing import Any, Protocol

from ..protocol.proxy import ProxyHeaderReader, ProxyInfo, ProxyProtocolError
from .parking import Action
from .runtime import Runtime

WAIT, CLOSE = Action.WAIT, Action.CLOSE

class ProxyPreamble(Protocol):
    """What reading the header needs of a new connection (server/http1.py's HTTP1Connection)."""

    sock: socket.socket
    proxy: ProxyHeaderReader | None
    peer_host: str | None
    peer_port: str
    trusted_proxy: bool
    proxy_environ: dict[str, Any] | None

    @property
    def runtime(self) -> Runtime: ...


def new_reader(mode: str) -> ProxyHeaderReader:
    """The reader for a proxy_protocol mode: v1, v2 or auto."""
    return ProxyHeaderReader(v1=mode != "v2", v2=mode != "v1")


def take_proxy_header(conn: ProxyPreamble) -> tuple[Action | None, bytes]:
    """Read what there is of the header, without blocking and never past its end.

    (WAIT, b"") while it is incomplete; (CLOSE, b"") when it is refused (logged, counted)
    or the client left; (None, lead) once it is read or known to be absent: `conn.proxy` is
    then None, and `lead` holds bytes taken while that was undecided (HTTP bytes that
    began like a header), which belong to the next layer."""
    reader = conn.proxy
    assert reader is not None
    while True:
        try:
            data = conn.sock.recv(reader.room(), socket.MSG_PEEK)
        except BlockingIOError:
            return WAIT, b""
        except OSError:
            return CLOSE, b""
        if not data:
            if reader.held:
                reject(conn, "proxy_truncated", "the connection closed inside its PROXY header")
            return CLOSE, b""
        try:
            taken = reader.receive(data)
        except ProxyProtocolError as exc:
            reject(conn, "proxy_" + exc.reason, str(exc))
            return CLOSE, b""
        if taken and not _consume(conn.sock, taken):
            return CLOSE, b""
        if reader.absent:
            conn.proxy = None
            return None, reader.held
        if reader.info is not None:
            conn.proxy = None
            if not conn.runtime.proxy_allowed.trusts(conn.peer_host):
                reject(conn, "proxy_forbidden", "a PROXY header from a peer not in "
                       "proxy_allow_ips")
                return CLOSE, b""
            apply_header(conn, reader.info)
            return None, b""
        # Incomplete: every byte seen was taken; the next peek says whether more came.


def _consume(sock: socket.socket, count: int) -> bool:
    """Take `count` bytes the peek saw (they are in the kernel's buffer already)."""
    while count > 0:
        try:
            got = sock.recv(count)
        except OSError:
            return False
        if not got:
            return False
        count -= len(got)
    return True


def apply_header(conn: ProxyPreamble, info: ProxyInfo) -> None:
    """The client the header names becomes the connection's peer; the environ learns the
    rest (gunicorn's PROXY_PROTOCOL, PROXY_ADDR, PROXY_PORT; https from the SSL TLV)."""
    environ: dict[str, Any] = {
        "PROXY_PROTOCOL": "LOCAL" if info.command == "LOCAL" else info.family,
        "treadle.proxy": info,
    }
    if info.names_client:
        conn.peer_host = info.source
        conn.peer_port = str(info.source_port)
        conn.trusted_proxy = conn.runtime.trusted_proxies.trusts(info.source)
        environ["PROXY_ADDR"] = info.destination
        environ["PROXY_PORT"] = str(info.destination_port)
    tls = info.tls
    if tls is not None and tls.over_tls:
        environ["wsgi.url_scheme"] = "https"
        environ["HTTPS"] = "on"
        if tls.version:
            environ["SSL_PROTOCOL"] = tls.version
        if tls.cipher:
            environ["SSL_CIPHER"] = tls.cipher
    conn.proxy_environ = environ


def reject(conn: ProxyPreamble, reason: str, why: str) -> None:
    """One debug line (naming `reason`) and one count in treadle_rejected_total
    (reason="proxy_protocol"); the caller closes the connection without a word."""
    conn.runtime.error_log.debug("closing %s: %s (%s)", conn.peer_host, why, reason)
    conn.runtime.count_rejected("proxy_protocol")
