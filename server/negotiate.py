"""Which protocol a connection speaks: the TLS handshake and ALPN, h2c prior knowledge, and
the HTTP/1.1 `Upgrade: h2c` switch. Every connection starts as an HTTP1Connection (the
poller's unit); one that turns out to speak HTTP/2 is handed to an H2Driver, which then
owns its socket and its place in the open-connection count (and parks in the poller itself).

h2c is served only when http2_cleartext allows it, and (http2_cleartext_trusted_only, on by
default) only to peers in forwarded_allow_ips (HARDENING 22): otherwise the preface goes to
the HTTP/1.1 engine (a 400: `PRI *` is not an OPTIONS request) and `Upgrade: h2c` is
ignored, as HTTP/1.1 allows.
"""

from __future__ import annotations

import base64
import binascii
import socket
import ssl
import time
from typing import Any, Protocol

from h2.errors import ErrorCodes

from .. import protocol
from ..protocol.http2 import PREFACE, goaway_frame
from .errors import RequestBodyError
from .h2stream import H2Stream
from .http2 import H2Driver
from .parking import Action, Phase
from .runtime import Host, Runtime
from .sockio import send_all
from .tls import TLSSocket, connection_environ, handshake_step, negotiated_h2, wrap
from .wsgi import build_environ


class Preamble(Protocol):
    """What negotiation needs of a new connection (server/http1.py's HTTP1Connection)."""

    sock: socket.socket
    phase: Phase
    deadline: float
    tls_environ: dict[str, Any] | None
    closed: bool
    h2c_watch: bool
    preface_seen: bytes
    proxy_environ: dict[str, Any] | None  # what a PROXY header said (server/proxyheader.py)

    @property
    def runtime(self) -> Runtime: ...
    @property
    def host(self) -> Host: ...
    @property
    def engine(self) -> protocol.Connection: ...
    @property
    def peer_host(self) -> str | None: ...
    @property
    def peer_port(self) -> str: ...
    @property
    def listener_name(self) -> str: ...
    @property
    def listener_port(self) -> int: ...
    @property
    def early_done(self) -> bool: ...
    @property
    def early_body(self) -> list[bytes | bytearray]: ...
    @property
    def body_error(self) -> RequestBodyError | None: ...

    def abort(self, reset: bool = False) -> None: ...

DISPATCH, WAIT, CLOSE, HANDED_OFF = (Action.DISPATCH, Action.WAIT, Action.CLOSE,
                                     Action.HANDED_OFF)

_UPGRADE_DROPPED = frozenset({b"connection", b"upgrade", b"http2-settings", b"keep-alive",
                              b"transfer-encoding", b"te", b"proxy-connection"})


def hand_over(conn: Preamble, initial: bytes, environ_extra: dict[str, Any],
              upgrade_request: Any = None) -> None:
    """Start an H2Driver on `conn`'s socket: the driver owns it from now on (`conn` never
    closes it), and closes it itself when no thread or descriptor is left to serve it."""
    if conn.proxy_environ:  # our own TLS has the last word on the scheme
        environ_extra = {**conn.proxy_environ, **environ_extra}
    driver = H2Driver(conn.runtime, conn.host, conn.sock, conn.peer_host, conn.peer_port,
                      (conn.listener_name, conn.listener_port), environ_extra)
    conn.closed = True  # the driver closes the socket and counts the connection closed
    upgrade = None
    if upgrade_request is not None:
        request, settings, body = upgrade_request
        headers = [(name, value) for name, value in request.headers
                   if name not in _UPGRADE_DROPPED]
        environ = build_environ(driver.environ_base, request.method, request.target, b"2",
                                headers, conn.runtime.root_path, driver.trusted_proxy)
        stream = H2Stream(driver, 1, environ, None)
        # Came over HTTP/1.1: nothing to acknowledge (flow 0).
        stream.inbox.extend(bytes(piece) for piece in body)
        stream.inbox_flow.extend([0] * len(body))
        upgrade = (settings, stream)
    driver.start(initial, upgrade)


# -- TLS -------------------------------------------------------------------------------------


def handshake(conn: Preamble) -> Action:
    """One step of the TLS handshake, on a worker. WAIT: park until the client's next bytes
    (the poller then dispatches again); CLOSE: it failed (logged at debug); HANDED_OFF: it
    chose h2; DISPATCH never (an HTTP/1.1 connection then waits for its head: WAIT)."""
    runtime = conn.runtime
    if not isinstance(conn.sock, TLSSocket):
        assert runtime.tls_context is not None  # only TLS servers dispatch handshakes
        conn.sock = wrap(runtime.tls_context, conn.sock)
    try:
        if not handshake_step(conn.sock, conn.deadline):
            return WAIT
    except (ssl.SSLError, OSError, ValueError) as exc:
        runtime.error_log.debug("TLS handshake with %s failed: %s", conn.peer_host, exc)
        runtime.count_rejected("tls_handshake")
        return CLOSE
    extra = connection_environ(conn.sock)
    if runtime.h2_enabled and negotiated_h2(conn.sock):
        hand_over(conn, b"", extra)
        return HANDED_OFF
    conn.tls_environ = extra
    conn.phase = Phase.HEAD
    conn.deadline = time.monotonic() + runtime.header_timeout_s
    return WAIT


# -- h2c ---------------------------------------------------------------------------------------


def watch_preface(conn: Preamble, data: bytes) -> tuple[Action | None, bytes]:
    """The first bytes of a cleartext connection when prior knowledge is on: (HANDED_OFF,
    b"") for the HTTP/2 preface, (WAIT, b"")
    while they may still become it, else (None, everything seen so far) for the HTTP/1.1
    engine."""
    seen = conn.preface_seen + data
    if len(seen) < len(PREFACE) and PREFACE.startswith(seen) and data:
        conn.preface_seen = seen
        return WAIT, b""
    conn.preface_seen = b""
    conn.h2c_watch = False
    if seen.startswith(PREFACE):
        hand_over(conn, seen, {})
        return HANDED_OFF, b""
    if seen.startswith(_PREFACE_LINE):  # HTTP/2 meant, the preface corrupted (RFC 9113 3.4)
        _refuse_preface(conn)
        return CLOSE, b""
    return None, seen


_PREFACE_LINE = PREFACE[:PREFACE.index(b"\r\n") + 2]  # b"PRI * HTTP/2.0\r\n"


def _refuse_preface(conn: Preamble) -> None:
    """GOAWAY(PROTOCOL_ERROR), then no more writes: the client learns why before the close."""
    conn.runtime.error_log.debug("closing %s: a corrupted HTTP/2 preface", conn.peer_host)
    conn.runtime.count_rejected("bad_request")
    try:
        conn.sock.send(goaway_frame(0, ErrorCodes.PROTOCOL_ERROR))
        conn.sock.shutdown(socket.SHUT_WR)
    except OSError:
        pass


def wants_upgrade(request: Any) -> bytes | None:
    """The HTTP2-Settings of a request that asks for h2c and can have it: exactly one valid
    settings field, and no chunked body (only a body the poller received whole before
    dispatch, see `upgrade`, moves to HTTP/2; RFC 7540 3.2 lets a server ignore the rest)."""
    upgrade = settings = None
    for name, value in request.headers:
        if name == b"upgrade":
            upgrade = value
        elif name == b"http2-settings":
            if settings is not None:
                return None
            settings = value
        elif name == b"transfer-encoding":
            return None
    if upgrade is None or settings is None:
        return None
    assert isinstance(upgrade, bytes) and isinstance(settings, bytes)
    if b"h2c" not in [token.strip().lower() for token in upgrade.split(b",")]:
        return None
    try:
        base64.b64decode(settings + b"=" * (-len(settings) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        return None
    return settings


def upgrade(conn: Preamble, request: Any) -> bool:
    """Switch to h2c when the request asks for it and may; True when handed over (the
    request is then stream 1, answered over HTTP/2)."""
    settings = wants_upgrade(request)
    if settings is None:
        return False
    engine = conn.engine
    # The body must be here whole, upgraded after it (RFC 7540 3.2): the poller receives
    # bodies up to request_buffer_size before dispatch; an empty one may still be buffered.
    # A larger body, or one that broke, is served over HTTP/1.1 (the upgrade ignored).
    if conn.body_error is not None:
        return False
    if not conn.early_done and (conn.early_body or
                                type(engine.next_event()) is not protocol.EndOfMessage):
        return False
    switch = engine.send(protocol.InformationalResponse(
        status_code=101, headers=[(b"connection", b"Upgrade"), (b"upgrade", b"h2c")]))
    send_all(conn.sock, switch or b"", conn.runtime.body_timeout_s)
    trailing, _closed = engine.trailing_data
    hand_over(conn, bytes(trailing), {}, (request, settings, conn.early_body))
    return True
