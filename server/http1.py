"""The HTTP/1.1 driver: one client connection, engine events <-> socket bytes.

A connection lives in one of two places: parked in the poller (waiting for a request head,
for a request body, idle between requests, draining a response to a slow reader, or
lingering after an error) or held by one worker thread that runs the WSGI exchange
(server/exchange.py) and then looks for the next request. The poller reads heads, and bodies
up to request_buffer_size (Content-Length or chunked), so a slow client never holds a worker
for those; a body that breaks or stalls before dispatch (body_timeout for each wait, or
slower than min_request_rate) still reaches the application, whose wsgi.input read then
fails, exactly as when streaming. Larger bodies stream as the application reads them, under
the same two limits (only the time spent waiting for the client counts towards the rate).
A response the client does not take at once is drained by the poller after the application
is done (phase WRITE), then the connection carries on as it would have. Workers serve
pipelined requests that are already buffered, try one non-blocking read for the next request
when no one waits for a worker, and only then park the connection. It is what the poller
parks (a Parkable, server/parking.py); the response side of each request is its H1Sink
(server/h1sink.py).
"""

from __future__ import annotations

import socket
import struct
import time
from typing import Any

from .. import protocol
from ..protocol.http2 import CONNECT_REFUSAL
from ..protocol.proxy import ProxyHeaderReader
from .errors import RequestBodyError, is_client_gone
from .exchange import Exchange
from .h1body import RECV_SIZE, RequestBody
from .h1sink import H1Sink, error_response
from .metrics import rejection_of
from .negotiate import handshake, upgrade, watch_preface
from .parking import Action, Phase, lingered, shut_and_linger
from .proxyheader import new_reader, take_proxy_header
from .rates import RateClock
from .runtime import Host, Runtime
from .sockio import lingering_ok, recv_copy
from .wsgi import build_environ

LINGER_S = 2.0  # how long a rejected connection is read (and discarded) before the close
# A body of which this much was waiting in one round of the poller streams to the
# application at once: its client is fast (see on_readable).
FAST_BODY_BYTES = 256 * 1024

# Module aliases of the one definition (server/parking.py): globals are read faster than
# enum attributes on this path. Phases are ordered: see parking.py.
DISPATCH, WAIT, CLOSE, HANDED_OFF = (Action.DISPATCH, Action.WAIT, Action.CLOSE,
                                     Action.HANDED_OFF)
HANDSHAKE, IDLE, HEAD, LINGER, BODY, WRITE = (Phase.HANDSHAKE, Phase.IDLE, Phase.HEAD,
                                              Phase.LINGER, Phase.BODY, Phase.WRITE)

_TIMED_OUT = (HEAD, HANDSHAKE)  # phases whose deadline passing refuses the client (a BODY
# is counted by _why_body_late: a timeout or the minimum rate)
_Request = protocol.Request
_Data = protocol.Data
_EndOfMessage = protocol.EndOfMessage
_LINGER_RESET = struct.pack("ii", 1, 0)
_NEED_DATA = protocol.NEED_DATA
_DONE = protocol.DONE
_SEND_BODY = protocol.SEND_BODY


class HTTP1Connection(RequestBody):
    """One client connection and its engine; see the module comment for who holds it when."""

    __slots__ = (  # (and RequestBody's: the phase, the deadline and the body's state)
        "runtime",
        "host",
        "sock",
        "fd",
        "peer_host",
        "peer_port",
        "listener_name",
        "listener_port",
        "engine",
        "request",
        "heap_deadline",
        "registered",
        "wants_write",
        "closing",
        "lingered_bytes",
        "environ_base",
        "trusted_proxy",
        "closed",
        "tls_environ",
        "h2c_watch",
        "preface_seen",
        "sink",
        "proxy",
        "proxy_environ",
    )

    def __init__(self, runtime: Runtime, host: Host, sock: socket.socket, peer: Any,
                 local: tuple[str, int]) -> None:
        self.runtime = runtime
        self.host = host
        self.sock = sock
        self.fd = sock.fileno()
        if isinstance(peer, tuple):
            self.peer_host: str | None = peer[0]
            self.peer_port = str(peer[1])
        else:
            self.peer_host = None
            self.peer_port = ""
        self.listener_name, self.listener_port = local
        limits = runtime.limits
        self.engine = protocol.Connection(
            protocol.SERVER,
            max_incomplete_event_size=limits.head_size,
            max_request_line_size=limits.request_line,
            max_field_count=limits.field_count,
            max_field_size=limits.field_size,
        )
        self.request: Any = None
        self.phase: Phase = HEAD
        self.deadline = 0.0
        self.heap_deadline: float | None = None
        self.registered = False
        self.wants_write = False  # phase WRITE: wait for writable (else readable: TLS)
        self.closing = False  # close once the buffered response is sent
        self.lingered_bytes = 0
        self.environ_base: dict[str, Any] | None = None
        self.trusted_proxy = runtime.trusted_proxies.trusts(self.peer_host)
        self.expecting_continue = False
        self.sent_continue = False
        self.body_consumed = 0
        self.body_error: RequestBodyError | None = None
        self.early_body: list[bytes | bytearray] = []  # body the poller received for the app
        self.early_done = False  # the whole body is in early_body
        self.body_clock: RateClock | None = None  # min_request_rate, from the body's start
        self.body_paused_s = 0.0  # when we last stopped waiting for the body
        self.closed = False
        self.tls_environ: dict[str, Any] | None = None  # TLS: scheme, client certificate
        self.h2c_watch = False  # the first bytes may be the HTTP/2 preface (h2c)
        self.preface_seen = b""
        self.sink: H1Sink | None = None  # made for the first request
        self.proxy: ProxyHeaderReader | None = None  # a PROXY header may come first
        self.proxy_environ: dict[str, Any] | None = None  # what the PROXY header said

    # -- in the poller ------------------------------------------------------------------

    def on_readable(self) -> Action:
        """Read what arrived; DISPATCH when a whole head is here. Never blocks."""
        lead = b""
        if self.proxy is not None:  # before TLS, h2c or HTTP/1.1: server/proxyheader.py
            action, lead = take_proxy_header(self)
            if action is None:
                action = self.begin(lead)
            if action is not None:
                return action
        if self.phase == HANDSHAKE:  # a worker takes the next handshake step
            return DISPATCH
        try:
            data = lead + recv_copy(self.sock, RECV_SIZE)
        except BlockingIOError:
            if not lead:
                return WAIT
            data = lead
        except OSError:
            return CLOSE
        if self.phase == LINGER:
            return lingered(self, data)
        if self.h2c_watch:
            switched, data = watch_preface(self, data)
            if switched is not None:
                return switched
        self.engine.receive_data(data)
        action = self.read_early_body() if self.phase == BODY else self.next_request()
        taken = len(data)
        while action == WAIT and self.phase == BODY and data:
            # A body arriving: take all that is there now, not one piece per round of the
            # poller; a client sending this fast needs no shelter from the pool, and its
            # application reads the rest as it comes (holding a megabyte per request here
            # instead cost a third more CPU per 1 MiB upload, in cache misses).
            if taken >= FAST_BODY_BYTES:
                self.body_paused_s = time.monotonic()
                return DISPATCH
            try:
                data = recv_copy(self.sock, RECV_SIZE)
            except BlockingIOError:
                break
            except OSError:
                return CLOSE
            taken += len(data)
            self.engine.receive_data(data)
            action = self.read_early_body()
        if action == WAIT and self.phase == IDLE:
            self.phase = HEAD  # the first bytes of a head: header_timeout from now
            self.deadline = time.monotonic() + self.runtime.header_timeout_s
        return action

    def next_request(self) -> Action:
        """Ask the engine for the next request: DISPATCH, WAIT (need bytes) or CLOSE."""
        try:
            event = self.engine.next_event()
        except protocol.RemoteProtocolError as exc:
            return self.reject(exc.error_status_hint, str(exc))
        if type(event) is _Request:
            if event.method == b"CONNECT":
                return self.reject(501, CONNECT_REFUSAL)
            self.request = event
            self.expecting_continue = self.engine.they_are_waiting_for_100_continue
            self.sent_continue = False
            self.body_consumed = 0
            self.body_error = None
            self.early_body = []
            self.early_done = False
            self.body_clock = None
            if self.expecting_continue:
                return DISPATCH  # the application asks for the body as it reads it
            return self.read_early_body()
        if event is _NEED_DATA:
            return WAIT
        return CLOSE  # ConnectionClosed (or PAUSED after a protocol switch we never agree to)

    def on_deadline(self) -> Action:
        """The deadline passed while parked: a small body that did not arrive in time goes
        to the application (whose read fails); anything else is closed."""
        if self.phase in _TIMED_OUT:  # (an idle keep-alive or a linger ends as it should)
            self.runtime.count_rejected("timeout")
        if self.phase == BODY:
            self._body_failed(self._why_body_late(time.monotonic()), 408)
            return DISPATCH
        if self.phase == WRITE:  # (only the minimum rate sets this deadline)
            assert self.sink is not None
            if self.sink.too_slow(time.monotonic()):
                return CLOSE
            self.deadline = self.sink.drain_deadline()
            return WAIT
        if self.proxy is not None and self.proxy.held:  # begun, not finished
            self.runtime.error_log.debug("closing %s: PROXY header not received in time",
                                         self.peer_host)  # (counted as a timeout above)
        elif self.phase == HEAD:
            self.runtime.error_log.debug("closing %s: request head not received in time",
                                         self.peer_host)
        elif self.phase == HANDSHAKE:
            self.runtime.error_log.debug("closing %s: TLS handshake not finished in time",
                                         self.peer_host)
        return CLOSE

    def on_writable(self) -> Action:
        """Phase WRITE, on the poller: send what the socket takes; once the response is
        all sent, go on as a worker would have after it (next request, keep-alive, close)."""
        sink = self.sink
        assert sink is not None
        try:
            done = sink.flush()
        except OSError as exc:
            self.runtime.error_log.debug("client %s went away during a buffered response: %s",
                                         self.peer_host, exc)
            return CLOSE
        if not done:
            self.wants_write = not sink.backlog.wants_read
            self.deadline = sink.drain_deadline()
            return WAIT
        self.wants_write = False
        if self.closing:
            return self._shut()
        self.phase = IDLE
        self.deadline = time.monotonic() + self.runtime.keepalive_s
        pending, closed = self.engine.trailing_data
        action = self.next_request() if pending or closed else WAIT
        if action == WAIT and self.phase < LINGER:
            if self.host.stopping:
                return self._shut()
            if pending and self.phase == IDLE:  # part of the next head: header_timeout
                self.phase = HEAD
                self.deadline = time.monotonic() + self.runtime.header_timeout_s
        return action

    def park_writing(self) -> None:
        """Give the connection to the poller to drain its buffered response (a worker)."""
        assert self.sink is not None
        self.phase = WRITE
        self.wants_write = not self.sink.backlog.wants_read
        self.deadline = self.sink.drain_deadline()
        self.host.park(self)

    def reject(self, code: int, why: str) -> Action:
        """Answer a bad request once, stop reading requests, linger so the answer arrives."""
        runtime = self.runtime
        runtime.error_log.debug("bad request from %s: %s -> %d", self.peer_host, why, code)
        runtime.count_rejected(rejection_of(code))
        try:
            self.sock.send(error_response(code, runtime.http_date(), runtime.server_header))
        except OSError:
            return CLOSE
        return shut_and_linger(self, LINGER_S)

    # -- in a worker --------------------------------------------------------------------

    def serve(self) -> None:
        """Serve the dispatched request and any that follow at once; then park or close."""
        runtime = self.runtime
        host = self.host
        try:
            if self.phase == HANDSHAKE:
                self._handshake()
                return
            while True:
                request, self.request = self.request, None
                if runtime.h2c_upgrade and self.h2c_allowed() and upgrade(self, request):
                    return  # answered over HTTP/2 as stream 1
                if not self.run_request(request):
                    return
                if self.sink.backlog.segments:  # type: ignore[union-attr]  # (made by run_request)
                    self.park_writing()  # a slow reader: the poller sends the rest
                    return
                self.phase = IDLE
                pending, closed = self.engine.trailing_data  # cheaper than asking for events
                action = self.next_request() if pending or closed else WAIT
                busy = not host.idle_workers_likely()
                if action == WAIT and not busy and self.phase != LINGER:
                    action = self._read_more()
                if action == DISPATCH:
                    if busy:  # others are waiting: take a turn at the back of the queue
                        host.dispatch(self)
                        return
                    continue
                if action == WAIT:  # stopping, the poller keeps it for a short grace:
                    if self.phase == IDLE:  # its client saw no Connection: close, may send more
                        self.deadline = time.monotonic() + runtime.keepalive_s
                    host.park(self)
                else:
                    self.close()
                return
        except BaseException as exc:  # a worker thread must survive anything
            if is_client_gone(exc):
                runtime.error_log.debug("client %s went away: %s", self.peer_host, exc)
            else:
                runtime.error_log.error("unexpected error on a connection", exc_info=exc)
            self.abort()

    def run_request(self, request: Any) -> bool:
        """Serve one request through the WSGI bridge; True when the connection is ready
        for the next one."""
        runtime = self.runtime
        started_s = time.monotonic() if runtime.access_log is not None else 0.0
        base = self.environ_base
        if base is None:
            extra = self.tls_environ
            if self.proxy_environ:  # our own TLS has the last word on the scheme
                extra = {**self.proxy_environ, **(extra or {})}
            base = self.environ_base = runtime.environ_base(
                self.peer_host, self.peer_port, self.listener_name, self.listener_port, extra)
        environ = build_environ(base, request.method, request.target, request.http_version,
                                request.headers, runtime.root_path, self.trusted_proxy)
        sink = self.sink
        if sink is None:
            sink = self.sink = H1Sink(self, runtime, self.host)
        return Exchange(sink, runtime, environ, self).run(runtime.app, started_s)

    def begin(self, lead: bytes = b"") -> Action | None:
        """Once the PROXY header is read (or there is none): the first phase of what
        follows. Under TLS, the handshake (DISPATCH to a worker; CLOSE when bytes that
        were not a PROXY header were taken: no handshake can follow them); else None,
        reading on, with h2c's preface watch where allowed."""
        runtime = self.runtime
        if runtime.tls_context is not None:
            if lead:
                return CLOSE
            self.phase = HANDSHAKE
            self.deadline = time.monotonic() + runtime.handshake_timeout_s
            return DISPATCH
        self.h2c_watch = runtime.h2c_prior and self.h2c_allowed()
        return None

    def h2c_allowed(self) -> bool:
        """h2c for this peer (http2_cleartext_trusted_only: peers in forwarded_allow_ips)."""
        return self.trusted_proxy or not self.runtime.h2c_trusted_only

    def _handshake(self) -> None:
        """One TLS handshake step (server/negotiate.py); the request head comes later."""
        action = handshake(self)
        if action == WAIT:
            self.host.park(self)
        elif action == CLOSE:
            self.close_now()

    def _read_more(self) -> Action:
        """One non-blocking read before parking: the next request may already be here."""
        while True:
            try:
                data = recv_copy(self.sock, RECV_SIZE)
            except BlockingIOError:
                return WAIT
            if not data:
                return CLOSE
            self.engine.receive_data(data)
            if self.phase == IDLE:
                self.phase = HEAD
                self.deadline = time.monotonic() + self.runtime.header_timeout_s
            action = self.read_early_body() if self.phase == BODY else self.next_request()
            if action != WAIT or self.phase >= LINGER:
                return action

    # -- closing ------------------------------------------------------------------------

    def close(self) -> None:
        """Close after a complete response (a worker): once a buffered response is sent,
        and after lingering if unread bytes would cause a reset."""
        if self.closed:
            return
        if self.sink is not None and self.sink.backlog:
            self.closing = True
            self.park_writing()
        elif self._shut() == CLOSE:
            self.close_now()
        else:
            self.host.park(self)

    def _shut(self) -> Action:
        """CLOSE when closing now resets nothing; else shut our side and LINGER (WAIT)."""
        if lingering_ok(self.sock):
            return CLOSE
        return shut_and_linger(self, LINGER_S)

    def abort(self, reset: bool = False) -> None:
        """Drop the connection mid-response; `reset` sends RST so no close looks complete."""
        if self.closed:
            return
        if reset:
            try:
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
            except OSError:
                pass
        self.close_now()

    def close_now(self) -> None:
        """Close the socket at once and count the connection closed."""
        if self.closed:
            return
        self.closed = True
        try:
            if self.sink is not None:
                self.sink.release()
        finally:
            try:
                self.sock.close()
            finally:
                self.host.connection_closed(self)


def open_connection(runtime: Runtime, host: Host, sock: socket.socket, peer: Any,
                    local: tuple[str, int]) -> HTTP1Connection:
    """A connection the poller has just accepted, in its first phase: HEAD while a PROXY
    header may come (proxy_protocol), then HANDSHAKE under TLS (on_readable then
    dispatches it to a worker at once), else HEAD."""
    conn = HTTP1Connection(runtime, host, sock, peer, local)
    conn.deadline = time.monotonic() + runtime.header_timeout_s
    if runtime.proxy_protocol != "off":  # the header first, within header_timeout
        conn.proxy = new_reader(runtime.proxy_protocol)
    else:
        conn.begin()  # the handshake runs on a worker, never the poller
    return conn
