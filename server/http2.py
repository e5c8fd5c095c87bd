"""The HTTP/2 driver: one connection, its socket and its h2 connection.

A connection with no stream in progress and no output pending waits in the poller like an
idle HTTP/1.1 connection (it is Parkable, server/parking.py) and holds no thread and no
descriptor but its socket. When its client sends something, the poller hands it to a driver
thread (server/h2threads.py), which owns the socket and the H2Connection (nobody else touches
either) while the connection has work: it reads frames, judges each request
(protocol/http2.py) and hands every stream's WSGI call to the worker pool
(server/h2stream.py), so a slow stream never delays a fast one. Workers hand output and "I
read this much" back through per-stream state plus a wake-up descriptor (server/wakeup.py)
that exists only while a thread serves the connection; the thread sends as the
flow-control windows allow and acknowledges request data as the application reads it (a
body up to request_buffer_size as it arrives: it is received before the worker starts).
Then it parks the connection again. Idle timeout, graceful stop (GOAWAY) and the final
linger of a parked connection are the poller's: no thread is woken to say goodbye.

The driver thread never waits for a pool thread: with every worker busy it still reads
frames, answers PINGs, acknowledges what was read and sends what was produced; queued
streams simply start later. It is not a pool thread either, so HTTP/2 connections can never
take the pool away from the applications (threads: `threads` workers, plus one per HTTP/2
connection with work in progress, plus a few spare).

Bounds: at most OUTPUT_HIGH_BYTES of frames wait for the socket (beyond it we stop reading,
so PING and SETTINGS floods cannot queue answers), per-stream send buffers (h2stream), the
request body by the windows, header blocks and PING/SETTINGS/reset rates by the FrameGate.

This module has parking, the loop, reading, the workers' news, writing and closing; each
stream's frames, both ways, are handled in server/h2events.py, and a client over its frame
budgets in server/h2budget.py (mixins of H2Driver).
"""

from __future__ import annotations

import math
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
from .h2budget import ERROR_HOLD_S, ReadBudget
from .h2cold import pack_if_cold, plan_packing, unpack
from .h2events import OUTPUT_HIGH_BYTES, StreamEvents
from .h2stream import H2Stream
from .parking import Action, Phase, lingered, shut_and_linger
from .runtime import Host, Runtime
from .wakeup import DESCRIPTORS as WAKEUP_DESCRIPTORS
from .wakeup import Wakeup

RECV_BYTES = 65536
SEND_BYTES = 256 * 1024  # at most this much per send() call
GATHER_WAIT_MS = 20  # an idle turn with a body in full flow waits this long for more, then parks
FLOWING_BYTES = 8192  # a read at least this large: the body is in full flow
LINGER_S = 1.0  # after our last frame, how long the client's late bytes are read (parked)
NEWS_POLL_MS = 10  # out of descriptors for a wake-up: how often a thread looks for news
_POLLIN = select.POLLIN | select.POLLPRI | select.POLLHUP | select.POLLERR
# What a client's conduct can raise (socket and TLS errors, a state h2 refuses): one debug
# line each, never a traceback, so no client can fill the error log.
_CLIENTS_DOING = (OSError, h2.exceptions.H2Error)
HANDED_OFF, WAIT, CLOSE = Action.HANDED_OFF, Action.WAIT, Action.CLOSE


def descriptors_per_connection(cfg: Any) -> int:
    """Descriptors one connection may hold: its socket, plus an HTTP/2 driver's wake-up
    while a thread serves it, when HTTP/2 can be spoken (over TLS, or h2c); a parked HTTP/2
    connection holds only its socket. The open-file limit is raised for the worst case."""
    h2 = "h2" in cfg.http_protocols and (cfg.certfile is not None
                                          or cfg.http2_cleartext != "off")
    return 1 + WAKEUP_DESCRIPTORS if h2 else 1


class H2Driver(StreamEvents, ReadBudget):
    """One HTTP/2 connection: parked in the poller while it has nothing to do, served by a
    driver thread while it has work; `start()` begins it."""

    def __init__(self, runtime: Runtime, host: Host, sock: socket.socket,
                 peer_host: str | None, peer_port: str, local: tuple[str, int],
                 environ_extra: dict[str, Any]) -> None:
        self.runtime = runtime
        self.host = host
        self.sock = sock
        self.fd = sock.fileno()
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
        self.spill_files = 0  # (lock) streams whose buffered response spilled to a file
        self.wake_pending = False  # (lock)
        self.sleeping = False  # (lock) in poll(): news must come through the wake-up
        self.wakeup: Wakeup | None = None  # (lock) only while a driver thread serves it
        self.active = False  # a driver thread serves it (else parked, or not yet begun)
        # Parkable (the poller's): where it waits, until when, whether it is armed
        self.phase = Phase.HEAD  # before the first request: header_timeout
        self.deadline = time.monotonic() + runtime.header_timeout_s
        self.heap_deadline: float | None = None
        self.registered = False
        self.wants_write = False  # parked only to read: its output is flushed before parking
        self.packed: bytes | None = None  # parked long: the h2 connection (server/h2cold.py)
        self.parked_until: float | None = None
        self.lingered_bytes = 0
        self.first_turn: tuple[bytes, tuple[bytes, H2Stream | None] | None] | None = None
        self.streams: dict[int, H2Stream] = {}
        self.sending: dict[int, H2Stream] = {}  # streams with output not yet in frames
        self.stalled: dict[int, H2Stream] = {}  # streams with output waiting for a window
        self.gathering: dict[int, H2Stream] = {}  # bodies arriving before their worker starts
        self.gathered_bytes = 0
        self.last_read_bytes = 0  # the size of the last read (a body in full flow?)
        self.out = bytearray()
        self.last_progress = time.monotonic()
        self.idle_since = time.monotonic()
        self.served_any = False  # before the first request, header_timeout applies
        self.goaway_at: int | None = None  # streams above it are refused
        self.read_closed = False
        self.held = b""  # read, not yet given to h2: the client is paused (over a budget)
        self.hold_until: float | None = None  # after a connection error: close then
        self.broken = False
        self.closed = False
        self._dispatch = self.event_handlers()

    def event_handlers(self) -> dict[type, Callable[[Any], None]]:
        """What each h2 event calls (dropped while the connection is packed: server/h2cold.py)."""
        return {
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
        """Begin the connection (our SETTINGS) and serve it on a driver thread. `initial`:
        bytes already read from the client; `upgrade`: (HTTP2-Settings, stream 1) after a
        101. Without a thread or a descriptor for it, the connection is refused (closed)
        and the poller pauses accepting, as for HTTP/1.1."""
        self.sock.setblocking(False)
        conn = self.conn
        if upgrade is None:
            conn.initiate_connection()
        else:
            conn.initiate_upgrade_connection(upgrade[0])
        extra = self.runtime.h2_limits.connection_window - 65535
        if extra > 0:
            conn.increment_flow_control_window(extra)
        self.first_turn = (initial, upgrade)
        self.host.h2_opened(self)
        if self._activate() == CLOSE:
            self.close_now()

    # -- parked in the poller (the poller thread; no other thread holds the connection) ---

    def on_readable(self) -> Action:
        """The client sent something: a driver thread serves the connection (HANDED_OFF).
        At a graceful stop, GOAWAY from here instead; lingering, read and discard."""
        unpack(self)
        if self.phase == Phase.LINGER:
            return self._linger_read()
        if self.host.stopping and not self.streams:
            return self._goodbye()
        return self._activate()

    def on_deadline(self) -> Action:
        """Idle for keepalive (header_timeout before the first request): GOAWAY, linger.
        (Parked a while only: its h2 state is packed, and it waits on.)"""
        if pack_if_cold(self, self.host.stopping):
            return WAIT
        unpack(self)
        if self.phase == Phase.LINGER:
            return CLOSE
        if self.phase == Phase.BODY:  # a body stalled before dispatch: the thread answers
            return self._activate()
        if time.monotonic() >= self._block_deadline():
            self._fail_connection(h2.errors.ErrorCodes.ENHANCE_YOUR_CALM,
                                  "a header block not complete within header_timeout")
            return self._send_and_linger()
        self.runtime.error_log.debug("HTTP/2 connection from %s idle; closing", self.peer_host)
        return self._goodbye()

    def on_writable(self) -> Action:
        """Never asked: a parked HTTP/2 connection waits only to read (wants_write False)."""
        return self.on_readable()

    def serve(self) -> None:
        """As a pool job (the poller never dispatches one): hand it to a driver thread."""
        unpack(self)
        if self._activate() == CLOSE:
            self.close_now()

    def _activate(self) -> Action:
        """Give the connection a driver thread and a wake-up descriptor: HANDED_OFF, or
        CLOSE when no thread can be had (the poller pauses accepting). Out of descriptors,
        it is served all the same, its thread looking for news every NEWS_POLL_MS: an open
        connection is never dropped for that (new ones wait: accept() fails)."""
        try:
            wakeup: Wakeup | None = Wakeup()
        except OSError:
            wakeup = None
        with self.lock:
            self.wakeup = wakeup
            self.wake_pending = False
        self.active = True
        try:
            self.host.h2_serve(self._turn)
        except RuntimeError as exc:  # out of threads
            self.active = False
            self._drop_wakeup()
            self.host.out_of_resources(f"cannot serve an HTTP/2 connection: {exc}")
            return CLOSE
        return HANDED_OFF

    def _goodbye(self) -> Action:
        """GOAWAY to a parked connection (it has no stream and no output), then linger."""
        self._graceful_goaway()
        return self._send_and_linger()

    def _send_and_linger(self) -> Action:
        sent = self._send_some()
        if sent is None or sent < len(self.out):  # (broken: 0) no room for 17 bytes: done
            return CLOSE
        self.out.clear()
        return self._begin_linger()

    def _begin_linger(self) -> Action:
        return shut_and_linger(self, LINGER_S)

    def _linger_read(self) -> Action:
        try:
            data = socket.socket.recv(self.sock, RECV_BYTES)  # raw: TLS is shut
        except BlockingIOError:
            return WAIT
        except OSError:
            return CLOSE
        return lingered(self, data)

    # -- a driver thread's turn ---------------------------------------------------------------

    def _turn(self) -> None:
        """Serve the connection while it has work, then park it (or close it)."""
        parked = False
        try:
            if self.first_turn is not None:
                initial, upgrade = self.first_turn
                self.first_turn = None
                if upgrade is not None and upgrade[1] is not None:
                    self._open_stream(upgrade[1], ended=True)
                if initial:
                    self._receive(initial)
            parked = self._loop()
        except BaseException as exc:
            if isinstance(exc, _CLIENTS_DOING):
                self.runtime.error_log.debug("HTTP/2 connection from %s: %s", self.peer_host, exc)
            else:
                self.runtime.error_log.exception("HTTP/2 connection failed")
            if not isinstance(exc, Exception):
                raise
        finally:
            if not parked:
                self.close_now()

    # -- worker side (under self.lock) ------------------------------------------------------

    def mark_ready(self, stream: H2Stream) -> None:
        """A stream has news (output, an acknowledgement, a reset); called with lock held."""
        if not stream.queued:
            stream.queued = True
            self.ready.append(stream)
        # Parked (no wake-up), the connection has no stream in progress: nothing to tell.
        if self.sleeping and not self.wake_pending and self.wakeup is not None:
            self.wake_pending = True  # else it looks before sleeping
            self.wakeup.notify()

    def wake(self) -> None:
        """From any thread: look at the server's state (a graceful stop began). A parked
        connection has no thread to wake: the poller says goodbye to it."""
        with self.lock:
            if not self.wake_pending and self.wakeup is not None:
                self.wake_pending = True
                self.wakeup.notify()

    def _drop_wakeup(self) -> None:
        """The driver thread lets go: no worker can notify the descriptor once it is gone
        (mark_ready looks under the lock), so closing it cannot hit a reused number."""
        with self.lock:
            wakeup, self.wakeup = self.wakeup, None
            self.sleeping = False
        if wakeup is not None:
            wakeup.close()

    # -- the loop ------------------------------------------------------------------------

    def _loop(self) -> bool:
        """Serve until there is nothing to do: True when parked (the connection is the
        poller's from then on: not one more touch), False when it must close."""
        poller = select.poll()
        wake_fd = -1 if self.wakeup is None else self.wakeup.fileno()
        if wake_fd >= 0:
            poller.register(wake_fd, select.POLLIN)
        fd = self.sock.fileno()
        mask = -1
        host = self.host
        while True:
            if self.held and not self._paused():
                self._resume()
            if self.stalled:  # here, not on a timeout only: frames may keep coming
                self._reset_stalled(time.monotonic())
            if self.sending:
                self._pump()
            self._flush()
            if self.broken or self._done():
                return self._finish()
            if host.exiting:  # the stop's time is up: no goodbye
                return False
            if host.stopping and self.goaway_at is None:
                self._graceful_goaway()
                continue
            reading = (not self.read_closed and len(self.out) < OUTPUT_HIGH_BYTES
                       and not self._paused())
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
            # idle: nothing to do but wait for the client (bodies arriving are the poller's)
            idle = len(self.gathering) == len(self.streams) and not self.out and reading
            if reading and self._tls_pending():
                ready: list[tuple[int, int]] = [(fd, select.POLLIN)]
            else:
                timeout_ms = self._idle_wait_ms() if idle else self._timeout_ms()
                if wake_fd < 0 and not 0 <= timeout_ms <= NEWS_POLL_MS:
                    timeout_ms = NEWS_POLL_MS  # no wake-up descriptor: look for news
                ready = poller.poll(timeout_ms)
            self.sleeping = False  # unlocked: at worst a worker writes one needless wake-up
            if not ready:
                if idle and self._timeout_ms() > 0 and self._park():
                    return True
                self._on_timeout()
                continue
            for ready_fd, flags in ready:
                if ready_fd == wake_fd:
                    self._on_wake(True)
                elif flags & _POLLIN and reading:
                    self._on_readable()

    def _idle_wait_ms(self) -> int:
        """How long an idle turn waits before parking: not at all, or a moment while a
        body arrives in full flow before dispatch (it keeps its thread; a trickle parks)."""
        if not self.gathering or self.last_read_bytes < FLOWING_BYTES:
            return 0
        timeout_ms = self._timeout_ms()
        return GATHER_WAIT_MS if timeout_ms < 0 else min(timeout_ms, GATHER_WAIT_MS)

    def _park(self) -> bool:
        """Nothing to do: give the connection to the poller, unless news came meanwhile."""
        with self.lock:
            if self.ready:
                return False
            wakeup, self.wakeup = self.wakeup, None
            self.sleeping = False
        if wakeup is not None:
            wakeup.close()
        self.active = False
        if self.streams:  # bodies arriving before dispatch (server/h2events.py)
            self.phase = Phase.BODY
            self.deadline = min(self._next_gather_deadline(), self._block_deadline())
            self.host.park(self)
            return True
        self.phase = Phase.IDLE if self.served_any else Phase.HEAD
        self.deadline = self.idle_since + self._idle_limit_s()
        if self.gate.block_since is not None:  # a header block arriving: header_timeout
            self.phase = Phase.HEAD
            self.deadline = min(self.deadline, self._block_deadline())
        plan_packing(self, time.monotonic())
        self.host.park(self)
        return True

    def _finish(self) -> bool:
        """The connection is over: linger parked (our last frames must not be destroyed by
        a reset), or close at once when broken or the client has closed already."""
        self._forget_all("the connection closed")
        if self.hold_until is not None and not self.broken:
            self._hold()
        if self.broken or self.read_closed or self._begin_linger() == CLOSE:
            return False
        self._drop_wakeup()
        self.active = False
        self.host.park(self)
        return True

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
            # streams in flight: their workers keep their own time; those waiting for the
            # client's window are timed here (min_response_rate, body_timeout), and the
            # bodies arriving before dispatch (min_request_rate, body_timeout)
            deadline = min(self._next_stall_deadline(), self._next_gather_deadline())
        deadline = min(deadline, self._block_deadline(), self._pause_deadline())
        if deadline == math.inf:
            return -1
        return max(0, int((deadline - now) * 1000) + 1)

    def _block_deadline(self) -> float:
        """A header block (HEADERS + CONTINUATION) must be whole within header_timeout, as
        an HTTP/1.1 head: no other frame may come between, so a stalled one stalls all."""
        since = self.gate.block_since
        return math.inf if since is None else since + self.runtime.header_timeout_s

    def _on_timeout(self) -> None:
        now = time.monotonic()
        if self.gathering:
            self._expire_gathering(now)
        if now >= self._block_deadline():
            self._fail_connection(h2.errors.ErrorCodes.ENHANCE_YOUR_CALM,
                                  "a header block not complete within header_timeout")
        elif self.out and now - self.last_progress >= self.runtime.body_timeout_s:
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
            self.last_read_bytes = len(data)
            self._receive(data)
            if self.broken or self.read_closed or self._paused() or \
                    len(self.out) >= OUTPUT_HIGH_BYTES:
                return

    def _receive(self, data: bytes) -> None:
        gate = self.gate
        try:
            paused_until = gate.paused_until
            admitted = gate.feed(data, time.monotonic())
            if gate.paused_until != paused_until:
                self._note_pause(data[admitted:])
                data = data[:admitted]
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
            self.hold_until = time.monotonic() + ERROR_HOLD_S
        self.held = b""
        self._take_output()
        self.read_closed = True
        self.goaway_at = 0
        self._forget_all(why)

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

    def close_now(self) -> None:
        """Give back everything the connection holds: the socket, the wake-up descriptor,
        its slot among worker_connections, even when a step before raises. From the driver
        thread, or from the poller while parked; at once (a parked connection evicted at
        worker_connections or dropped by a stop is told GOAWAY if its socket takes it)."""
        if self.closed:
            return
        self.closed = True
        try:
            unpack(self)
            self._forget_all("the connection closed")
            if self.goaway_at is None and not self.broken and not self.active:
                self._graceful_goaway()
                self._send_some()
        finally:
            self.host.h2_closed(self)
            try:
                self.sock.close()
            except OSError:
                pass
            self._drop_wakeup()
            self.host.connection_closed(self)
