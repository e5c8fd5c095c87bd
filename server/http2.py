"""The HTTP/2 driver: one connection, its socket and its h2 connection, on its own thread.

The thread that owns the socket owns the H2Connection; nobody else touches either. It reads
frames, judges each request (protocol/http2.py) and hands every stream's WSGI call to the
worker pool (server/h2stream.py), so a slow stream never delays a fast one. Workers hand
output and "I read this much" back through per-stream state plus one wake-up descriptor
(server/wakeup.py); this thread sends as the flow-control windows allow and acknowledges
request data only as the application reads it. A connection thus holds 1 + wakeup.DESCRIPTORS
descriptors, which the open-file limit is raised for; where none is left, a new HTTP/2
connection is refused (closed) and accepting pauses, as for HTTP/1.1.

The connection thread never waits for a pool thread: with every worker busy it still reads
frames, answers PINGs, acknowledges what was read and sends what was produced; queued
streams simply start later. It is not a pool thread either, so HTTP/2 connections can never
take the pool away from the applications (threads: `threads` workers plus one per open
HTTP/2 connection, at most worker_connections).

Bounds: at most OUTPUT_HIGH_BYTES of frames wait for the socket (beyond it we stop reading,
so PING and SETTINGS floods cannot queue answers), per-stream send buffers (h2stream), the
request body by the windows, header blocks and PING/SETTINGS/reset rates by the FrameGate.

This module has the loop, reading, the workers' news, writing and closing; what the client
sends is handled stream by stream in server/h2events.py (a mixin of H2Driver).
"""

from __future__ import annotations

import select
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import h2.connection
import h2.errors
import h2.events
import h2.exceptions

from ..protocol.http2 import (
    FloodError,
    FrameGate,
    goaway_frame,
    new_server_connection,
)
from .h2events import StreamEvents
from .h2stream import SEND_BUFFER_BYTES, H2Stream
from .runtime import Host, Runtime
from .sockio import wait_ready
from .wakeup import DESCRIPTORS as WAKEUP_DESCRIPTORS
from .wakeup import Wakeup

RECV_BYTES = 65536
SEND_BYTES = 256 * 1024  # at most this much per send() call
OUTPUT_HIGH_BYTES = 1 << 20  # stop reading while this much waits for the socket
LINGER_S = 1.0  # after our last frame, how long the client's late bytes are read
LINGER_MAX_BYTES = 1 << 20
_POLLIN = select.POLLIN | select.POLLPRI | select.POLLHUP | select.POLLERR
# What a client's conduct can raise (socket and TLS errors, a state h2 refuses): one debug
# line each, never a traceback, so no client can fill the error log.
_CLIENTS_DOING = (OSError, h2.exceptions.H2Error)


def descriptors_per_connection(cfg: Any) -> int:
    """Descriptors one connection may hold: its socket, plus an HTTP/2 driver's wake-up
    when HTTP/2 can be spoken (over TLS, or h2c). The open-file limit is raised for this."""
    h2 = "h2" in cfg.http_protocols and (cfg.certfile is not None
                                          or cfg.http2_cleartext != "off")
    return 1 + WAKEUP_DESCRIPTORS if h2 else 1


class H2Driver(StreamEvents):
    """One HTTP/2 connection; `start()` runs it on a new thread until it closes."""

    def __init__(self, runtime: Runtime, host: Host, sock: socket.socket,
                 peer_host: str | None, peer_port: str, local: tuple[str, int],
                 environ_extra: dict[str, Any]) -> None:
        self.runtime = runtime
        self.host = host
        self.sock = sock
        self.peer_host = peer_host
        self.peer_port = peer_port
        self.listener_name, self.listener_port = local
        limits = runtime.h2_limits
        self.conn = new_server_connection(limits)
        self.gate = FrameGate(limits.max_header_list_size, limits.max_concurrent_streams)
        self.request_limits = runtime.h2_request_limits
        self.environ_base = runtime.environ_base(peer_host, peer_port, self.listener_name,
                                                 self.listener_port, environ_extra)
        self.trusted_proxy = runtime.trusted_proxies.trusts(peer_host)
        self.lock = threading.Lock()
        self.ready: list[H2Stream] = []  # (lock) streams with news for this thread
        self.waiting_streams: deque[H2Stream] = deque()  # (lock) for a worker to run
        self.runners = 0  # (lock) StreamRunner jobs queued or running
        self.busy_runners = 0  # (lock) those inside an application call
        self.wake_pending = False  # (lock)
        self.sleeping = False  # (lock) in poll(): news must come through the wake-up
        self.wakeup = Wakeup()  # last: OSError (EMFILE) here leaves nothing to release
        self.streams: dict[int, H2Stream] = {}
        self.sending: dict[int, H2Stream] = {}  # streams with output not yet in frames
        self.out = bytearray()
        self.last_progress = time.monotonic()
        self.idle_since = time.monotonic()
        self.served_any = False  # before the first request, header_timeout applies
        self.goaway_at: int | None = None  # streams above it are refused
        self.read_closed = False
        self.broken = False
        self.closed = False
        self._dispatch: dict[type, Callable[[Any], None]] = {
            h2.events.RequestReceived: self._on_request,
            h2.events.DataReceived: self._on_data,
            h2.events.StreamEnded: self._on_stream_ended,
            h2.events.StreamReset: self._on_stream_reset,
            h2.events.TrailersReceived: self._on_trailers,
            h2.events.WindowUpdated: self._on_window,
            h2.events.RemoteSettingsChanged: self._on_window,
            h2.events.ConnectionTerminated: self._on_goaway,
        }

    # -- start ---------------------------------------------------------------------------

    def start(self, initial: bytes = b"", upgrade: tuple[bytes, H2Stream | None] | None = None,
              ) -> None:
        """Begin the connection (our SETTINGS) and run it on a new thread. `initial`: bytes
        already read from the client; `upgrade`: (HTTP2-Settings, stream 1) after a 101."""
        self.sock.setblocking(False)
        conn = self.conn
        if upgrade is None:
            conn.initiate_connection()
        else:
            conn.initiate_upgrade_connection(upgrade[0])
        extra = self.runtime.h2_limits.connection_window - 65535
        if extra > 0:
            conn.increment_flow_control_window(extra)
        thread = threading.Thread(target=self._run, args=(initial, upgrade),
                                  name=f"treadle-h2-{self.sock.fileno()}", daemon=True)
        self.host.h2_opened(self)
        try:
            thread.start()
        except RuntimeError:  # out of threads: refused like a connection out of descriptors
            self.broken = True  # no linger: this may be the poller's thread
            self._close()
            raise

    def _run(self, initial: bytes, upgrade: tuple[bytes, H2Stream | None] | None) -> None:
        try:
            if upgrade is not None and upgrade[1] is not None:
                self._open_stream(upgrade[1], ended=True)
            if initial:
                self._receive(initial)
            self._loop()
        except BaseException as exc:
            if isinstance(exc, _CLIENTS_DOING):
                self.runtime.error_log.debug("HTTP/2 connection from %s: %s", self.peer_host, exc)
            else:
                self.runtime.error_log.exception("HTTP/2 connection failed")
            if not isinstance(exc, Exception):
                raise
        finally:
            self._close()

    # -- worker side (under self.lock) ------------------------------------------------------

    def mark_ready(self, stream: H2Stream) -> None:
        """A stream has news (output, an acknowledgement, a reset); called with lock held."""
        if not stream.queued:
            stream.queued = True
            self.ready.append(stream)
        if self.sleeping and not self.wake_pending:  # else it looks before sleeping
            self.wake_pending = True
            self.wakeup.notify()

    def wake(self) -> None:
        """From any thread: look at the server's state (a graceful stop began)."""
        with self.lock:
            if not self.wake_pending:
                self.wake_pending = True
                self.wakeup.notify()

    # -- the loop ------------------------------------------------------------------------

    def _loop(self) -> None:
        poller = select.poll()
        wake_fd = self.wakeup.fileno()
        poller.register(wake_fd, select.POLLIN)
        fd = self.sock.fileno()
        mask = -1
        host = self.host
        while True:
            if self.sending:
                self._pump()
            self._flush()
            if self.broken or self._done():
                return
            if host.stopping and self.goaway_at is None:
                self._graceful_goaway()
                continue
            reading = not self.read_closed and len(self.out) < OUTPUT_HIGH_BYTES
            wanted = (_POLLIN if reading else 0) | (select.POLLOUT if self.out else 0)
            if wanted != mask:
                if wanted:
                    poller.register(fd, wanted)
                elif mask > 0:
                    poller.unregister(fd)
                mask = wanted
            with self.lock:
                news = bool(self.ready)
                self.sleeping = not news
            if news:
                self._on_wake(False)
                continue
            if reading and self._tls_pending():
                ready: list[tuple[int, int]] = [(fd, select.POLLIN)]
            else:
                ready = poller.poll(self._timeout_ms())
            self.sleeping = False  # unlocked: at worst a worker writes one needless wake-up
            if not ready:
                self._on_timeout()
                continue
            for ready_fd, flags in ready:
                if ready_fd == wake_fd:
                    self._on_wake(True)
                elif flags & _POLLIN and reading:
                    self._on_readable()

    def _tls_pending(self) -> bool:
        pending = getattr(self.sock, "pending", None)
        return pending is not None and pending() > 0

    def _done(self) -> bool:
        if self.out or self.streams:
            return False
        return self.read_closed or self.goaway_at is not None

    def _timeout_ms(self) -> int:
        now = time.monotonic()
        if self.out:
            deadline = self.last_progress + self.runtime.body_timeout_s
        elif not self.streams:
            deadline = self.idle_since + self._idle_limit_s()
        else:
            return -1  # streams in flight: their workers keep their own time
        return max(0, int((deadline - now) * 1000) + 1)

    def _on_timeout(self) -> None:
        now = time.monotonic()
        if self.out and now - self.last_progress >= self.runtime.body_timeout_s:
            self.runtime.error_log.debug("HTTP/2 client %s stopped reading; closing",
                                        self.peer_host)
            self.broken = True
        elif not self.streams and not self.out and \
                now - self.idle_since >= self._idle_limit_s():
            self._graceful_goaway()

    def _idle_limit_s(self) -> float:
        """keepalive between requests, as on HTTP/1.1; header_timeout before the first."""
        runtime = self.runtime
        return runtime.keepalive_s if self.served_any else runtime.header_timeout_s

    def _graceful_goaway(self) -> None:
        """GOAWAY naming the last stream we will serve; those in flight still finish.

        What the workers have posted already goes out first: python-h2 as a client (httpx)
        treats a GOAWAY as the end of the connection and fails on any later frame, so a
        response finished before the stop (a worker recycling after max_requests) must
        not come after it."""
        with self.lock:
            news = bool(self.ready)
        if news:
            self._on_wake(False)
        self._take_output()
        self.goaway_at = self.conn.highest_inbound_stream_id
        self.out += goaway_frame(self.goaway_at)

    # -- reading -------------------------------------------------------------------------

    def _on_readable(self) -> None:
        for _ in range(16):  # then let the loop send and look at the workers' news
            try:
                data = self.sock.recv(RECV_BYTES)
            except BlockingIOError:
                return
            except OSError as exc:
                self.runtime.error_log.debug("HTTP/2 read from %s: %s", self.peer_host, exc)
                self.broken = True
                return
            if not data:
                self.read_closed = True
                self._forget_all("the client closed the connection")
                return
            self._receive(data)
            if self.broken or self.read_closed or len(self.out) >= OUTPUT_HIGH_BYTES:
                return

    def _receive(self, data: bytes) -> None:
        try:
            self.gate.feed(data, time.monotonic())
            events = self.conn.receive_data(data)
        except FloodError as exc:
            self._fail_connection(h2.errors.ErrorCodes.ENHANCE_YOUR_CALM, str(exc))
            return
        except h2.exceptions.ProtocolError as exc:
            # h2 queued its GOAWAY already, except after a bad preface (RFC 9113 3.4)
            closed = self.conn.state_machine.state is h2.connection.ConnectionState.CLOSED
            self._fail_connection(None if closed else exc.error_code, str(exc))
            return
        dispatch = self._dispatch
        for event in events:
            handler = dispatch.get(type(event))
            if handler is not None:
                handler(event)
        self._take_output()

    def _fail_connection(self, code: h2.errors.ErrorCodes | None, why: str) -> None:
        self.runtime.error_log.debug("HTTP/2 connection error from %s: %s", self.peer_host, why)
        if code is not None:
            self.conn.close_connection(code)
        self._take_output()
        self.read_closed = True
        self.goaway_at = 0
        self._forget_all(why)

    # -- the workers' news -----------------------------------------------------------------

    def _on_wake(self, drain: bool) -> None:
        if drain:
            self.wakeup.drain()
        with self.lock:
            ready, self.ready = self.ready, []
            self.wake_pending = False
            news = []
            for stream in ready:
                stream.queued = False
                consumed, stream.consumed = stream.consumed, 0
                head, stream.head = stream.head, None
                wants_continue, stream.continue_wanted = stream.continue_wanted, False
                hints, stream.informational = stream.informational, []
                news.append((stream, consumed, head, stream.reset_code, wants_continue, hints))
        for stream, consumed, head, reset_code, wants_continue, hints in news:
            if consumed:
                self._acknowledge(stream.stream_id, consumed)
            if stream.finished:
                continue
            for hint in hints:  # 103 Early Hints, before the head (queued before it)
                if not stream.head_sent:
                    self._send_informational(stream.stream_id, hint)
            if wants_continue and head is None and not stream.head_sent:
                self._send_continue(stream.stream_id)
            if reset_code is not None:
                self._reset(stream.stream_id, reset_code)
                self._kill(stream, "reset by the server")
                continue
            if head is not None:
                self._send_head(stream, head)
            self.sending[stream.stream_id] = stream
        self._pump()

    def _send_continue(self, stream_id: int) -> None:
        self._send_informational(stream_id, [(b":status", b"100")])

    def _send_informational(self, stream_id: int, head: list[tuple[bytes, bytes]]) -> None:
        try:
            self.conn.send_headers(stream_id, head)
        except h2.exceptions.H2Error:
            pass

    def _send_head(self, stream: H2Stream, head: list[tuple[bytes, bytes]]) -> None:
        with self.lock:
            end = stream.out_ended and not stream.outbox
        try:
            self.conn.send_headers(stream.stream_id, head, end_stream=end)
        except h2.exceptions.H2Error as exc:
            self._kill(stream, f"cannot send the response head: {exc}")
            return
        stream.head_sent = True
        if end:
            stream.end_sent = True
            self._maybe_forget(stream)

    def _pump(self) -> None:
        """Move buffered output into DATA frames as far as the windows (and our output
        bound) allow; streams that must wait for a window stay out of `sending`."""
        conn = self.conn
        for stream_id, stream in list(self.sending.items()):
            if len(self.out) >= OUTPUT_HIGH_BYTES:
                break  # the rest waits for the socket
            del self.sending[stream_id]
            if stream.finished or not stream.head_sent:
                continue
            self._pump_stream(conn, stream)
            if stream.out_bytes or len(self.sending) > 64:
                self._take_output()  # keep `out` honest for the bound above
        self._take_output()

    def _pump_stream(self, conn: Any, stream: H2Stream) -> None:
        stream_id = stream.stream_id
        budget = OUTPUT_HIGH_BYTES
        with self.lock:
            while stream.outbox and budget > 0:
                window = conn.local_flow_control_window(stream_id)
                if window <= 0:
                    break
                chunk = stream.outbox[0]
                size = min(len(chunk), window, conn.max_outbound_frame_size, budget)
                if size == len(chunk):
                    stream.outbox.popleft()
                else:
                    stream.outbox[0] = chunk[size:]
                before = stream.out_bytes
                stream.out_bytes -= size
                budget -= size
                end = stream.out_ended and not stream.outbox
                conn.send_data(stream_id, chunk[:size].tobytes() if size < len(chunk)
                               else chunk.tobytes(), end_stream=end)
                if end:
                    stream.end_sent = True
                if before >= SEND_BUFFER_BYTES > stream.out_bytes:
                    stream.notify()
            if stream.out_ended and not stream.outbox and not stream.end_sent:
                conn.end_stream(stream_id)
                stream.end_sent = True
            if stream.outbox and budget <= 0:
                self.sending[stream_id] = stream  # more when the socket has taken this
        if stream.end_sent:
            self._maybe_forget(stream)

    # -- writing -------------------------------------------------------------------------

    def _take_output(self) -> None:
        data = self.conn.data_to_send()
        if data:
            self.out += data

    def _flush(self) -> None:
        self._take_output()
        out = self.out
        while out:
            sent = self._send_some()
            if sent is None:
                return
            if self.broken:
                out.clear()
                return
            del out[:sent]
            self.last_progress = time.monotonic()
            if not out and self.sending:
                self._pump()
                self._take_output()

    def _send_some(self) -> int | None:
        """One send() from the front of `out`: how much went, None when the socket is full.
        The views are released before the caller resizes `out`, even when send() raised
        (the exception's traceback holds TLSSocket.send's frame, and with it the view)."""
        with memoryview(self.out) as whole, whole[:SEND_BYTES] as chunk:
            try:
                return self.sock.send(chunk)
            except BlockingIOError:
                return None
            except OSError as exc:
                self.runtime.error_log.debug("HTTP/2 write to %s: %s", self.peer_host, exc)
                self.broken = True
                return 0

    # -- closing -------------------------------------------------------------------------

    def _linger(self) -> None:
        """Half-close and read what the client still sends for a moment: closing with
        unread bytes would reset the connection and could destroy our last frames."""
        try:
            self.sock.shutdown(socket.SHUT_WR)
        except OSError:
            return
        deadline = time.monotonic() + LINGER_S
        read = 0
        while read < LINGER_MAX_BYTES:
            try:
                wait_ready(self.sock, False, deadline)  # BodyTimeout (an OSError) at the end
                data = socket.socket.recv(self.sock, RECV_BYTES)  # raw: TLS is shut
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                return
            if not data:
                return
            read += len(data)

    def _close(self) -> None:
        """Give back everything the connection holds: the socket, the wake-up descriptors,
        its slot among worker_connections, even when a step before raises."""
        if self.closed:
            return
        self.closed = True
        with self.lock:
            self.wake_pending = True  # nobody notifies once the wake-up is closed
        try:
            self._forget_all("the connection closed")
            if not self.broken:
                self._linger()
        finally:
            self.host.h2_closed(self)
            try:
                self.sock.close()
            except OSError:
                pass
            self.wakeup.close()
            self.host.connection_closed(self)
