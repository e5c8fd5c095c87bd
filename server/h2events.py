"""The HTTP/2 driver thread's handling of each stream: what the client sends, and what the
stream's worker produced (its news: output, what it read, resets).

A mixin of H2Driver (server/http2.py), kept apart for size: request headers judged by the
policy of protocol/http2.py (a malformed request resets only its stream), request bodies
counted against content-length and handed to the stream's wsgi.input (one up to
request_buffer_size received whole before the stream's worker starts, as on HTTP/1.1, so a
slow upload holds no worker: a body that stalls then gets 408 from here), resets, window
updates, GOAWAY, response heads and DATA as the flow-control windows allow (at most
OUTPUT_HIGH_BYTES waiting for the socket), and forgetting finished streams (giving back
what they left unread).
Everything here runs on the thread that serves the connection (server/h2threads.py).
"""

from __future__ import annotations

import socket
import threading
import time
from collections import deque
from typing import TYPE_CHECKING, Any

import h2.errors
import h2.events
import h2.exceptions

from ..protocol.http2 import (
    FloodError,
    FrameGate,
    MalformedRequest,
    RequestHead,
    RequestLimits,
    check_trailers,
    parse_request,
)
from .errors import ClientGone
from .h2stream import H2Stream, StreamRunner, error_body, error_head
from .rates import NEVER, RateClock, why_body_late
from .runtime import Host, Runtime
from .wakeup import Wakeup
from .wsgi import build_environ

if TYPE_CHECKING:
    from ..protocol.http2 import ServerConnection

_PROTOCOL_ERROR = h2.errors.ErrorCodes.PROTOCOL_ERROR
_REFUSED_STREAM = h2.errors.ErrorCodes.REFUSED_STREAM
_NO_ERROR = h2.errors.ErrorCodes.NO_ERROR
_CANCEL = h2.errors.ErrorCodes.CANCEL
_INTERNAL_ERROR = h2.errors.ErrorCodes.INTERNAL_ERROR
OUTPUT_HIGH_BYTES = 1 << 20  # stop reading (and framing) while this much waits for the socket
SMALL_BODY_BYTES = 16384  # at most one DATA frame (the smallest SETTINGS_MAX_FRAME_SIZE)


class StreamEvents:
    """Event handlers of H2Driver; the attributes below are the driver's."""

    runtime: Runtime
    host: Host
    sock: socket.socket
    conn: ServerConnection
    gate: FrameGate
    lock: threading.Lock
    request_limits: RequestLimits
    environ_base: dict[str, Any]
    trusted_proxy: bool
    peer_host: str | None
    streams: dict[int, H2Stream]
    sending: dict[int, H2Stream]
    out: bytearray
    waiting_streams: deque[H2Stream]
    runners: int
    busy_runners: int
    spill_files: int
    stalled: dict[int, H2Stream]  # streams with output waiting for the client's window
    gathering: dict[int, H2Stream]  # streams whose body arrives before their worker starts
    gathered_bytes: int  # what those have received so far
    goaway_at: int | None
    served_any: bool
    ready: list[H2Stream]  # (lock) streams with news from their workers
    wake_pending: bool  # (lock)
    wakeup: Wakeup | None  # (lock)
    idle_since: float

    if TYPE_CHECKING:  # H2Driver's (server/http2.py)
        def _fail_connection(self, code: h2.errors.ErrorCodes | None, why: str) -> None: ...
        def mark_ready(self, stream: H2Stream) -> None: ...
        def _take_output(self) -> None: ...

    # -- events --------------------------------------------------------------------------

    def _on_request(self, event: h2.events.RequestReceived) -> None:
        stream_id = event.stream_id
        if self.goaway_at is not None and stream_id > self.goaway_at:
            self._reset(stream_id, _REFUSED_STREAM)
            return
        try:
            head = parse_request(event.headers or [], self.request_limits)
            ended = event.stream_ended is not None
            if ended and head.content_length not in (None, 0):
                raise MalformedRequest("content-length without a body")
        except MalformedRequest as exc:
            self._refuse(stream_id, exc)
            return
        stream = H2Stream(self, stream_id, self._environ(head), head.content_length)
        self._open_stream(stream, ended)

    def _environ(self, head: RequestHead) -> dict[str, Any]:
        return build_environ(self.environ_base, head.method, head.path, b"2", head.headers,
                             self.runtime.root_path, self.trusted_proxy)

    def _open_stream(self, stream: H2Stream, ended: bool) -> None:
        stream.in_ended = ended
        self.served_any = True
        self.streams[stream.stream_id] = stream
        if not ended and self._may_gather(stream):
            self._gather(stream)
        else:
            self._queue(stream)

    def _queue(self, stream: H2Stream) -> None:
        """The stream's turn for a worker: a runner of this connection's share takes it."""
        with self.lock:
            self.waiting_streams.append(stream)
            more = (len(self.waiting_streams) > self.runners - self.busy_runners
                    and self.runners < self.runtime.h2_workers_per_connection)
            if more:
                self.runners += 1
        if more:
            self.host.dispatch(StreamRunner(self))

    def _refuse(self, stream_id: int, exc: MalformedRequest) -> None:
        self.runtime.error_log.debug("HTTP/2 request refused from %s: %s", self.peer_host, exc)
        if exc.status is None:
            self._reset(stream_id, _PROTOCOL_ERROR)
            try:
                self.gate.note_reset(time.monotonic())
            except FloodError as flood:
                self._fail_connection(h2.errors.ErrorCodes.ENHANCE_YOUR_CALM, str(flood))
            return
        self._answer_error(stream_id, exc.status)

    def _answer_error(self, stream_id: int, status: int) -> None:
        """An error response from here (the application is not called), and RST_STREAM
        NO_ERROR when the client is still sending: its body is not wanted."""
        conn = self.conn
        try:
            conn.send_headers(stream_id, error_head(status, self.runtime))
            conn.send_data(stream_id, error_body(status), end_stream=True)
            if conn.streams.get(stream_id) is not None and not conn.streams[stream_id].closed:
                conn.reset_stream(stream_id, _NO_ERROR)  # no need for the body
        except h2.exceptions.H2Error:
            pass

    def _reset(self, stream_id: int, code: int) -> None:
        try:
            self.conn.reset_stream(stream_id, code)
        except h2.exceptions.H2Error:
            pass  # already closed

    def _on_data(self, event: h2.events.DataReceived) -> None:
        stream = self.streams.get(event.stream_id)
        flow = event.flow_controlled_length or 0
        data = event.data or b""
        if stream is None or not data:  # nobody will read it, or nothing to read
            self._acknowledge(event.stream_id, flow)
            return
        stream.received += len(data)
        gathering = stream.stream_id in self.gathering
        if gathering:
            self.gathered_bytes += len(data)
        if stream.content_length is not None and stream.received > stream.content_length:
            self._acknowledge(event.stream_id, flow)
            self._stream_error(stream, "more DATA than content-length")
            return
        with self.lock:
            alive = stream.dead is None
            if alive:
                stream.inbox.append(data)
                stream.inbox_flow.append(0 if gathering else flow)  # 0: acknowledged here
                stream.notify()
        if not alive or gathering:
            self._acknowledge(event.stream_id, flow)
        if alive and gathering:
            self._gathered(stream, len(data))

    def _on_stream_ended(self, event: h2.events.StreamEnded) -> None:
        stream = self.streams.get(event.stream_id)
        if stream is None or stream.in_ended:  # ended with its HEADERS: checked already
            return
        if stream.content_length is not None and stream.received != stream.content_length:
            self._stream_error(stream, "less DATA than content-length")
            return
        with self.lock:
            stream.in_ended = True
            stream.notify()
        if stream.stream_id in self.gathering:
            self._release(stream)  # the whole body is here
        self._maybe_forget(stream)

    def _on_trailers(self, event: h2.events.TrailersReceived) -> None:
        stream = self.streams.get(event.stream_id)
        try:
            check_trailers(event.headers or [])
        except MalformedRequest as exc:
            if stream is not None:
                self._stream_error(stream, str(exc))
            else:
                self._reset(event.stream_id, _PROTOCOL_ERROR)

    def _stream_error(self, stream: H2Stream, why: str) -> None:
        """A malformed request body: reset the stream; its worker sees the body fail."""
        self.runtime.error_log.debug("HTTP/2 stream %d from %s reset: %s", stream.stream_id,
                                    self.peer_host, why)
        self._reset(stream.stream_id, _PROTOCOL_ERROR)
        self._kill(stream, why)
        try:
            self.gate.note_reset(time.monotonic())
        except FloodError as flood:
            self._fail_connection(h2.errors.ErrorCodes.ENHANCE_YOUR_CALM, str(flood))

    def _on_stream_reset(self, event: h2.events.StreamReset) -> None:
        stream = self.streams.get(event.stream_id)
        if stream is not None:
            self._kill(stream, "reset by the client")

    def _on_window(self, event: Any) -> None:
        stream_id = getattr(event, "stream_id", 0)
        if stream_id:
            stream = self.streams.get(stream_id)
            if stream is not None and stream.outbox:
                self.sending[stream_id] = stream
                self.stalled.pop(stream_id, None)
        else:
            for stream in self.streams.values():
                if stream.outbox or (stream.out_ended and not stream.end_sent):
                    self.sending[stream.stream_id] = stream
            self.stalled.clear()

    def _on_goaway(self, event: h2.events.ConnectionTerminated) -> None:
        # The client is leaving: finish what is in flight (reading on, for its window
        # updates), accept nothing new, then close.
        if self.goaway_at is None:
            self.goaway_at = self.conn.highest_inbound_stream_id

    def _acknowledge(self, stream_id: int, size: int) -> None:
        if size <= 0:
            return
        try:
            self.conn.acknowledge_received_data(size, stream_id)
        except h2.exceptions.H2Error:
            pass

    # -- the workers' news -----------------------------------------------------------------

    def _on_wake(self, drain: bool) -> None:
        if drain and self.wakeup is not None:  # (only this thread changes it)
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

    # -- responses -----------------------------------------------------------------------

    def _send_continue(self, stream_id: int) -> None:
        self._send_informational(stream_id, [(b":status", b"100")])

    def _send_informational(self, stream_id: int, head: list[tuple[bytes, bytes]]) -> None:
        try:
            self.conn.send_headers(stream_id, head)
        except h2.exceptions.H2Error:
            pass

    def _send_head(self, stream: H2Stream, head: list[tuple[bytes, bytes]]) -> None:
        body = None
        try:
            with self.lock:
                end = stream.out_ended and not stream.outbox
                if (stream.out_ended and 0 < stream.out_bytes <= SMALL_BODY_BYTES
                        and len(self.out) < OUTPUT_HIGH_BYTES):  # (the bound, as _pump's)
                    body = self._whole_body(stream)
            self.conn.send_headers(stream.stream_id, head, end_stream=end)
            if body is not None:
                self.conn.send_data(stream.stream_id, body, end_stream=True)
                self._take_output()  # keep `out` honest for the bound
        except h2.exceptions.H2Error as exc:  # (h2 knows the stream no more)
            self._kill(stream, f"cannot send the response head: {exc}")
            return
        stream.head_sent = True
        if body is not None:
            self.gate.note_data_sent(1)  # the client may acknowledge it
            end = True
        if end:
            stream.end_sent = True
            self._maybe_forget(stream)

    def _whole_body(self, stream: H2Stream) -> bytes | None:
        """(lock held) A complete small response body, taken from the outbox to go out
        right behind its head (most responses) when it is one piece that fits one DATA
        frame and the windows; None when it must go through `_pump` (several pieces, a
        spill file, a window too small)."""
        conn = self.conn
        limit = min(conn.local_flow_control_window(stream.stream_id),
                    conn.max_outbound_frame_size)
        body = stream.outbox.take_whole(limit)
        if body is not None:
            stream.out_bytes = 0
        return body

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
        frames = 0
        sent = 0
        failed: str | None = None
        with self.lock:
            try:
                while stream.outbox and budget > 0:
                    window = conn.local_flow_control_window(stream_id)
                    if window <= 0:
                        break
                    data = stream.outbox.take(min(window, conn.max_outbound_frame_size,
                                                  budget))
                    stream.out_bytes -= len(data)
                    budget -= len(data)
                    sent += len(data)
                    end = stream.out_ended and not stream.outbox
                    conn.send_data(stream_id, data, end_stream=end)
                    frames += 1  # at most one frame's worth
                    if end:
                        stream.end_sent = True
            except (OSError, ClientGone) as exc:  # the spill file cannot be read back
                failed = f"its buffered response cannot be read back: {exc}"
            if sent:
                stream.notify()  # its worker may wait for room in memory (a spill file)
            stream.spill_released()
            if stream.out_ended and not stream.outbox and not stream.end_sent:
                conn.end_stream(stream_id)
                stream.end_sent = True
            if stream.outbox and budget <= 0 and failed is None:
                self.sending[stream_id] = stream  # more when the socket has taken this
        self.gate.note_data_sent(frames)  # the client may acknowledge each
        if failed is not None:
            self.runtime.error_log.warning("HTTP/2 stream %d of %s reset: %s", stream_id,
                                           self.peer_host, failed)
            self._reset(stream_id, _INTERNAL_ERROR)
            self._kill(stream, failed)
            return
        self._clock_stall(stream, sent, budget > 0 and bool(stream.outbox))
        if stream.end_sent:
            self._maybe_forget(stream)

    # -- streams waiting for the client's window (min_response_rate) ----------------------

    def _clock_stall(self, stream: H2Stream, sent: int, waiting: bool) -> None:
        """A stream whose output waits for the client's window is timed: it must move
        min_response_rate bytes a second after min_rate_grace (counted only while it
        waits), and some bytes every body_timeout; `_reset_stalled` resets it otherwise."""
        now = time.monotonic()
        clock = stream.send_clock
        if clock is not None:
            clock.moved += sent
            if sent:
                stream.send_progress_s = now
        if not waiting:
            if clock is not None and not stream.outbox:
                stream.send_clock = None  # all sent: the next wait starts afresh
            self.stalled.pop(stream.stream_id, None)
            return
        if clock is None:
            stream.send_clock = RateClock(self.runtime.min_response_rate, now)
            stream.send_progress_s = now
        self.stalled[stream.stream_id] = stream

    def _stall_deadline(self, stream: H2Stream) -> float:
        clock = stream.send_clock
        if clock is None:
            return NEVER
        return min(clock.deadline(), stream.send_progress_s + self.runtime.body_timeout_s)

    def _next_stall_deadline(self) -> float:
        return min((self._stall_deadline(s) for s in self.stalled.values()), default=NEVER)

    def _reset_stalled(self, now: float) -> None:
        """Reset (CANCEL) the streams whose client has not opened their window in time;
        counted as min_rate rejections, a debug line each."""
        for stream in list(self.stalled.values()):
            if self._stall_deadline(stream) > now:
                continue
            clock = stream.send_clock
            assert clock is not None
            self.runtime.count_rejected("min_rate")
            self.runtime.error_log.debug(
                "HTTP/2 stream %d of %s reset: its window stayed closed (%s)",
                stream.stream_id, self.peer_host, clock.rate_text(now))
            self._reset(stream.stream_id, _CANCEL)
            self._kill(stream, "the client stopped reading")

    # -- request bodies received before the worker starts (issue 14 item 5) ---------------

    def _may_gather(self, stream: H2Stream) -> bool:
        """Whether the stream's body is received before its worker starts, as HTTP/1.1
        receives one (server/h1body.py): a body of at most request_buffer_size, while this
        connection has gathered less than that in all; not when the client waits for
        100 Continue (sent when the application first reads)."""
        limit = self.runtime.request_buffer_bytes
        length = stream.content_length
        return (not stream.expect_continue and self.gathered_bytes < limit
                and (length is None or length <= limit))

    def _gather(self, stream: H2Stream) -> None:
        now = time.monotonic()
        stream.body_clock = RateClock(self.runtime.min_request_rate, now)
        stream.gather_progress_s = now
        self.gathering[stream.stream_id] = stream

    def _gathered(self, stream: H2Stream, size: int) -> None:
        """DATA for a gathering stream, acknowledged already (so the client may send the
        whole body at once); past the bound (the stream's, or the connection's in all) the
        stream goes to a worker and the rest streams as the application reads it."""
        stream.gather_progress_s = time.monotonic()
        clock = stream.body_clock
        if clock is not None:
            clock.moved += size
        limit = self.runtime.request_buffer_bytes
        if stream.received > limit or self.gathered_bytes > limit:
            self._release(stream)

    def _release(self, stream: H2Stream) -> None:
        """The stream's body is here (or past the bound): its worker may start. The body's
        rate clock goes on in the worker's reads (server/h2stream.py), paused till then."""
        if self.gathering.pop(stream.stream_id, None) is None:
            return
        self.gathered_bytes -= stream.received
        stream.body_paused_s = time.monotonic()
        self._queue(stream)

    def _gather_deadline(self, stream: H2Stream) -> float:
        clock = stream.body_clock
        late = NEVER if clock is None else clock.deadline()
        return min(late, stream.gather_progress_s + self.runtime.body_timeout_s)

    def _next_gather_deadline(self) -> float:
        return min((self._gather_deadline(s) for s in self.gathering.values()), default=NEVER)

    def _expire_gathering(self, now: float) -> None:
        """A body that stopped for body_timeout, or arrives slower than min_request_rate,
        before its worker started: 408 from here (what the application's read would have
        led to), counted and logged as on HTTP/1.1; the application is not called."""
        runtime = self.runtime
        for stream in list(self.gathering.values()):
            if self._gather_deadline(stream) > now:
                continue
            why = why_body_late(stream.body_clock, now, runtime.count_rejected,
                                runtime.error_log, f"HTTP/2 request body from {self.peer_host}")
            self._answer_error(stream.stream_id, 408)
            self._kill(stream, why)

    # -- forgetting streams ----------------------------------------------------------------

    def _maybe_forget(self, stream: H2Stream) -> None:
        """A stream is done when its response is sent; an unread request body is then
        refused (RST_STREAM NO_ERROR) and its window given back."""
        if not stream.end_sent or stream.finished:
            return
        with self.lock:
            in_ended = stream.in_ended
        if not in_ended:
            self._reset(stream.stream_id, _NO_ERROR)
        self._kill(stream, "the response is complete")

    def _kill(self, stream: H2Stream, why: str) -> None:
        with self.lock:
            if stream.dead is None:
                stream.dead = why
            stream.notify()
            unread = sum(stream.inbox_flow) + stream.consumed
            stream.inbox.clear()
            stream.inbox_flow.clear()
            stream.consumed = 0
            stream.outbox.release()
            stream.out_bytes = 0
            stream.spill_released()
        self._acknowledge(stream.stream_id, unread)
        stream.finished = True
        if self.gathering.pop(stream.stream_id, None) is not None:
            self.gathered_bytes -= stream.received
        self.streams.pop(stream.stream_id, None)
        self.sending.pop(stream.stream_id, None)
        self.stalled.pop(stream.stream_id, None)
        if not self.streams:
            self.idle_since = time.monotonic()

    def _forget_all(self, why: str) -> None:
        for stream in list(self.streams.values()):
            self._kill(stream, why)
