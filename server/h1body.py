"""The request body of an HTTP/1.1 connection: received by the poller before dispatch (up to
request_buffer_size), or streamed to wsgi.input as the application reads it.

A mixin of HTTP1Connection (server/http1.py), which owns the state it uses (engine, socket,
phase, deadline, the body's counters and rate clock). Before dispatch the poller calls
read_early_body on each readable round: the pieces are kept as they came (tiny ones joined),
body_timeout bounds each wait and min_request_rate the whole (a RateClock); a body that
breaks or stalls there still reaches the application, whose read then fails with the
RequestBodyError kept in `body_error`, exactly as when streaming. On a worker,
read_body_chunk serves wsgi.input: first what arrived early, then the socket, sending
`100 Continue` on the first read when the client waits for it, and counting only the time
spent waiting for the client towards the rate.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from .. import protocol
from .errors import BodyTimeout, ClientGone, RequestBodyError
from .parking import Action, Phase
from .rates import RateClock, why_body_late
from .sockio import recv_copy, recv_some, send_all

if TYPE_CHECKING:  # the attributes HTTP1Connection (server/http1.py) gives its mixin
    import socket

    from .runtime import Runtime

RECV_SIZE = 65536
EARLY_JOIN_BYTES = 4096  # pieces of a body received early that are joined (see _keep_early)

DISPATCH, WAIT = Action.DISPATCH, Action.WAIT
BODY = Phase.BODY
_Data = protocol.Data
_EndOfMessage = protocol.EndOfMessage
_NEED_DATA = protocol.NEED_DATA


class RequestBody:
    """Reading a request body, early (the poller) or streamed (a worker)."""

    # Declared here, set by HTTP1Connection.__init__: the body's state, and the Parkable's
    # phase and deadline, which both halves move on.
    __slots__ = ("phase", "deadline", "expecting_continue", "sent_continue", "body_consumed",
                 "body_error", "early_body", "early_done", "body_clock", "body_paused_s")
    phase: Phase
    deadline: float
    expecting_continue: bool
    sent_continue: bool
    body_consumed: int
    body_error: RequestBodyError | None
    early_body: list[bytes | bytearray]
    early_done: bool
    body_clock: RateClock | None
    body_paused_s: float

    if TYPE_CHECKING:  # HTTP1Connection's own
        runtime: Runtime
        sock: socket.socket
        engine: protocol.Connection
        request: Any
        peer_host: str | None

    def read_early_body(self) -> Action:
        """Receive a body up to request_buffer_size before dispatch: DISPATCH once whole
        (or broken: the application's read then fails, as it would have while streaming),
        or once past that size (the rest streams), WAIT for more."""
        engine = self.engine
        limit = self.runtime.request_buffer_bytes
        # Whether the body may be received here; the check waits until the engine has not
        # ended the message at once (most requests have no body).
        early = self.phase == BODY
        while True:
            try:
                event = engine.next_event()
            except protocol.RemoteProtocolError as exc:
                self._body_failed(str(exc), exc.error_status_hint)
                return DISPATCH
            kind = type(event)
            if kind is _EndOfMessage:
                self.early_done = True
                return DISPATCH
            if not early:
                early = _early_body(self.request.headers, limit)
            if kind is _Data:
                self._keep_early(event.data)  # type: ignore[union-attr]  # (Data)
                if not early or self.body_consumed > limit:  # the rest streams
                    self.body_paused_s = time.monotonic()  # the rate clock stops meanwhile
                    return DISPATCH
            elif not early:
                if event is not _NEED_DATA:
                    self._body_failed("the connection closed before the body ended", 400)
                return DISPATCH
            elif event is _NEED_DATA:
                self._wait_for_body()
                return WAIT
            else:
                self._body_failed("the connection closed before the body ended", 400)
                return DISPATCH

    def _keep_early(self, data: bytes) -> None:
        """Keep a piece of the body for wsgi.input, as it is (no copy); tiny pieces (a body
        trickled a few bytes at a time) are joined, so a megabyte never costs a million
        objects."""
        early = self.early_body
        if len(data) < EARLY_JOIN_BYTES and early and len(early[-1]) < EARLY_JOIN_BYTES:
            tail = early[-1]
            if type(tail) is not bytearray:
                tail = early[-1] = bytearray(tail)
            tail += data
        else:
            early.append(data)
        self.body_consumed += len(data)
        if self.body_clock is not None:
            self.body_clock.moved += len(data)

    def _wait_for_body(self) -> None:
        """Park for more of the body: body_timeout from now, or the minimum rate's
        deadline, whichever comes first."""
        now = time.monotonic()
        clock = self.body_clock
        if self.phase != BODY or clock is None:
            self.phase = BODY
            clock = self.body_clock = RateClock(self.runtime.min_request_rate, now)
            clock.moved = self.body_consumed
        self.deadline = min(now + self.runtime.body_timeout_s, clock.deadline())

    def read_body_chunk(self) -> bytes | None:
        """The next piece of the request body for wsgi.input; None at its end.

        Raises RequestBodyError when the body is cut short, malformed or too slow.
        """
        if self.early_body:
            piece = self.early_body.pop(0)
            return piece if type(piece) is bytes else bytes(piece)
        if self.early_done:
            return None
        if self.body_error is not None:  # a small body that broke before dispatch
            raise self.body_error
        engine = self.engine
        if self.expecting_continue and not self.sent_continue:
            self.sent_continue = True
            if engine.they_are_waiting_for_100_continue:
                continue_bytes = engine.send(protocol.InformationalResponse(
                    status_code=100, headers=[], reason=b"Continue"))
                send_all(self.sock, continue_bytes or b"", self.runtime.body_timeout_s)
        while True:
            try:
                event = engine.next_event()
            except protocol.RemoteProtocolError as exc:
                raise self._body_failed(str(exc), exc.error_status_hint) from None
            kind = type(event)
            if kind is protocol.Data:
                data = event.data  # type: ignore[union-attr]
                self.body_consumed += len(data)
                return bytes(data)
            if kind is protocol.EndOfMessage:
                return None
            if event is not _NEED_DATA:
                raise self._body_failed("the connection closed before the body ended", 400)
            engine.receive_data(self._recv_body())

    def _recv_body(self) -> bytes:
        """The next bytes of a streamed body: at once when they are here (no clock is read:
        most reads of a fast upload), else waited for (`_wait_for_body_bytes`)."""
        try:
            data = recv_copy(self.sock, RECV_SIZE)
        except BlockingIOError:
            return self._wait_for_body_bytes()
        except OSError as exc:
            raise self._body_failed(f"reading the request body: {exc}", 400) from None
        clock = self.body_clock
        if clock is not None:
            clock.moved += len(data)
        return data

    def _wait_for_body_bytes(self) -> bytes:
        """Wait at most body_timeout for more of the body, and no longer than
        min_request_rate allows: only time spent waiting counts (the clock is moved on by
        the application's own time since the last wait; bytes that were there at once count
        as moved)."""
        now = time.monotonic()
        clock = self.body_clock
        if clock is None:
            clock = self.body_clock = RateClock(self.runtime.min_request_rate, now)
            clock.moved = self.body_consumed
        else:
            clock.started_s += now - self.body_paused_s
        try:
            data = recv_some(self.sock, RECV_SIZE,
                             min(now + self.runtime.body_timeout_s, clock.deadline()))
        except BodyTimeout:
            raise self._body_failed(self._why_body_late(time.monotonic()), 408) from None
        except ClientGone as exc:
            raise self._body_failed(f"reading the request body: {exc}", 408) from None
        except OSError as exc:
            raise self._body_failed(f"reading the request body: {exc}", 400) from None
        finally:
            self.body_paused_s = time.monotonic()
        clock.moved += len(data)
        return data

    def _why_body_late(self, now_s: float) -> str:
        runtime = self.runtime
        return why_body_late(self.body_clock, now_s, runtime.count_rejected, runtime.error_log,
                             f"request body from {self.peer_host}")

    def _body_failed(self, why: str, status_hint: int) -> RequestBodyError:
        error = RequestBodyError(f"request body incomplete or malformed: {why}", status_hint)
        self.body_error = error
        return error


def _early_body(headers: Any, limit: int) -> bool:
    """Whether the poller receives the body before dispatch: one declared by Content-Length
    at most `limit` bytes long, or chunked (received until it ends or passes `limit`)."""
    if limit <= 0:
        return False
    for name, value in headers:
        if name == b"content-length":
            return int(value) <= limit
        if name == b"transfer-encoding":
            return True
    return True
