"""One HTTP/2 stream: the state its WSGI call (on the worker pool) shares with the thread
that owns the connection (server/http2.py), and the WSGI exchange itself.

Only the connection's thread touches the socket and the h2 connection. A stream's worker
talks to it through this object, under the connection's lock, with one Condition per
stream so that waking one stream never wakes another (the Condition is made only when a worker
first has to wait, which most never do):

- request body: the connection thread appends DATA to `inbox`; the worker's wsgi.input
  takes from it and records what it consumed in `consumed`, which the connection thread
  acknowledges (WINDOW_UPDATE). A body up to request_buffer_size is received, and
  acknowledged, before the worker starts (server/h2events.py); beyond that nothing is
  acknowledged before the application reads it, so the client can never have more than
  one window of unread body in flight: that is the back-pressure, and the bound on `inbox`.
- response: the worker appends to `outbox`, a Backlog (server/outbuf.py): memory up to
  SEND_BUFFER_BYTES (or response_buffer_size if smaller; a larger chunk with nothing
  pending is kept as it is), then a temporary file, so the
  worker goes back to the pool when the application's iterator is done, even when the
  client opens no window (issue 14 item 6); the connection thread sends as the
  flow-control windows allow, and resets a stream whose client reads it slower than
  min_response_rate (server/h2events.py). At most `h2_workers_per_connection` streams of a
  connection hold a spill file at once (descriptors are bounded per connection): the
  worker of another stream whose memory is full waits for one, at most body_timeout.
- the request body is waited for at most body_timeout at a time and, over the whole, no
  slower than min_request_rate (as on HTTP/1.1, server/h1body.py): then the read raises
  RequestBodyError (408) and the worker is free.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Any, Protocol

from .errors import ClientGone, RequestBodyError
from .exchange import Exchange
from .outbuf import Backlog
from .rates import RateClock, why_body_late
from .runtime import Host, Runtime


class StreamOwner(Protocol):
    """What a stream and its runners need of their connection (server/http2.py's H2Driver);
    the fields are guarded by `lock`."""

    lock: threading.Lock
    waiting_streams: deque[H2Stream]  # for a runner to take
    runners: int  # StreamRunner jobs queued or running
    busy_runners: int  # those inside an application call
    spill_files: int  # streams whose outbox holds a temporary file
    streams: dict[int, H2Stream]  # (connection thread; read under lock to wake waiters)

    @property
    def runtime(self) -> Runtime: ...
    @property
    def host(self) -> Host: ...
    @property
    def peer_host(self) -> str | None: ...

    def mark_ready(self, stream: H2Stream) -> None: ...

SEND_BUFFER_BYTES = 256 * 1024  # per stream: response bytes waiting for the window
ACK_BATCH_BYTES = 16384  # wake the connection thread to acknowledge at least this much
RUNNER_TURN = 8  # streams a runner may serve in a row while other work waits for the pool


class H2Stream:
    """Shared state of one stream; fields marked (lock) are guarded by driver.lock."""

    __slots__ = ("driver", "stream_id", "cond", "environ", "method", "content_length",
                 "received", "inbox", "inbox_flow", "in_ended", "consumed", "outbox",
                 "out_bytes", "head", "out_ended", "reset_code", "dead", "queued",
                 "head_sent", "end_sent", "finished", "started", "expect_continue",
                 "continue_wanted", "informational", "spilled", "body_clock",
                 "body_paused_s", "send_clock", "send_progress_s", "gather_progress_s")

    def __init__(self, driver: StreamOwner, stream_id: int, environ: dict[str, Any],
                 content_length: int | None) -> None:
        self.driver = driver
        self.stream_id = stream_id
        self.cond: threading.Condition | None = None  # made by the first worker that waits
        self.environ = environ
        self.method = environ["REQUEST_METHOD"]
        self.content_length = content_length  # connection thread only
        self.received = 0  # connection thread only
        self.inbox: deque[bytes] = deque()  # (lock)
        self.inbox_flow: deque[int] = deque()  # flow-controlled size of each inbox item
        self.in_ended = False  # (lock) the whole body is in inbox
        self.consumed = 0  # (lock) flow-controlled bytes read but not yet acknowledged
        runtime = driver.runtime
        self.outbox = Backlog(min(SEND_BUFFER_BYTES, runtime.response_buffer_bytes))  # (lock)
        self.out_bytes = 0  # (lock)
        self.spilled = False  # (lock) counted in driver.spill_files
        self.head: list[tuple[bytes, bytes]] | None = None  # (lock) response head to send
        self.out_ended = False  # (lock) the worker produced everything
        self.reset_code: int | None = None  # (lock) the worker asks for RST_STREAM
        self.dead: str | None = None  # (lock) why the stream can no longer be used
        self.queued = False  # (lock) in driver.ready
        self.head_sent = False  # connection thread only
        self.end_sent = False  # connection thread only
        self.finished = False  # connection thread only: forgotten by the driver
        self.started = time.monotonic()
        self.expect_continue = environ.get("HTTP_EXPECT", "").lower() == "100-continue"
        self.continue_wanted = False  # (lock) the first read waits: send 100 Continue
        self.informational: list[list[tuple[bytes, bytes]]] = []  # (lock) 103s to send
        self.body_clock: RateClock | None = None  # min_request_rate (the connection thread's
        #                                           before dispatch, then the worker's)
        self.body_paused_s = 0.0  # worker: when the last wait for the body ended
        self.send_clock: RateClock | None = None  # connection thread: min_response_rate
        self.send_progress_s = 0.0  # connection thread: when DATA last went or a wait began
        self.gather_progress_s = 0.0  # connection thread: the last DATA before dispatch

    # -- worker side: wsgi.input -------------------------------------------------------------

    def read_body_chunk(self) -> bytes | None:
        """The next piece of the request body; None at its end (BodySource for InputStream)."""
        driver = self.driver
        deadline = self._body_deadline()
        with driver.lock:
            while not self.inbox:
                if self.expect_continue:  # the client waits for it before sending the body
                    self.expect_continue = False
                    self.continue_wanted = True
                    driver.mark_ready(self)
                if self.dead is not None:
                    raise RequestBodyError(f"request body incomplete: {self.dead}", 400)
                if self.in_ended:
                    return None
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise RequestBodyError(f"request body: {self._why_body_late()}", 408)
                self.wait(remaining)
            self.body_paused_s = time.monotonic()
            chunk = self.inbox.popleft()
            if self.body_clock is not None:
                self.body_clock.moved += len(chunk)
            self.consumed += self.inbox_flow.popleft()
            if self.consumed >= ACK_BATCH_BYTES or not self.inbox:
                driver.mark_ready(self)
        return chunk

    def _body_deadline(self) -> float:
        """When this wait for the body ends: body_timeout from now, or sooner by
        min_request_rate, whose clock counts only time spent waiting (the application's
        own time between reads moves its start on), as on HTTP/1.1."""
        runtime = self.driver.runtime
        now = time.monotonic()
        clock = self.body_clock
        if clock is None:
            clock = self.body_clock = RateClock(runtime.min_request_rate, now)
        else:
            clock.started_s += now - self.body_paused_s
        self.body_paused_s = now
        return min(now + runtime.body_timeout_s, clock.deadline())

    def _why_body_late(self) -> str:
        runtime = self.driver.runtime
        return why_body_late(self.body_clock, time.monotonic(), runtime.count_rejected,
                             runtime.error_log, f"HTTP/2 request body from {self.driver.peer_host}")

    # -- worker side: the response ---------------------------------------------------------

    def post(self, head: list[tuple[bytes, bytes]] | None, chunks: list[bytes],
             end: bool) -> None:
        """Queue a response head and/or body chunks. Waits only while this stream would
        need a spill file and its connection has its share of them already."""
        driver = self.driver
        with driver.lock:
            if self.dead is not None:
                raise ClientGone(f"stream {self.stream_id}: {self.dead}")
            if head is not None:
                self.head = head
            for chunk in chunks:
                self._wait_for_a_spill_file(len(chunk))
                try:  # nothing pending: the chunk is kept as it is (a fast reader's case)
                    self.outbox.append(chunk, memory_ok=not self.outbox)
                except ClientGone as exc:  # no temporary file: the response is dropped
                    self.dead = str(exc)
                if self.dead is not None:
                    if self.reset_code is None:
                        self.reset_code = 0x8  # CANCEL (a stream forgotten already: ignored)
                    driver.mark_ready(self)
                    raise ClientGone(f"stream {self.stream_id}: {self.dead}")
                if self.outbox.spill is not None and not self.spilled:
                    self.spilled = True
                    driver.spill_files += 1
                self.out_bytes += len(chunk)
            if end:
                self.out_ended = True
            driver.mark_ready(self)

    def _wait_for_a_spill_file(self, size: int) -> None:
        """(lock held) Before `size` more bytes that would open a spill file: wait, at most
        body_timeout, while the connection has its share of them; then the stream is dead."""
        driver = self.driver
        outbox = self.outbox
        share = driver.runtime.h2_workers_per_connection
        deadline = time.monotonic() + driver.runtime.body_timeout_s
        while (outbox and outbox.spill is None
               and outbox.memory_bytes + size > outbox.memory_max
               and driver.spill_files >= share and self.dead is None):
            driver.mark_ready(self)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.dead = "the client stopped reading"
                return
            self.wait(remaining)

    def spill_released(self) -> None:
        """(lock held, connection thread) The outbox gave its spill file back, or was
        dropped: count it, and wake the streams that may wait for one."""
        if self.spilled and self.outbox.spill is None:
            self.spilled = False
            driver = self.driver
            driver.spill_files -= 1
            for stream in driver.streams.values():
                stream.notify()

    def post_informational(self, head: list[tuple[bytes, bytes]]) -> None:
        """Queue a 1xx head (103 Early Hints) to go before the response head."""
        driver = self.driver
        with driver.lock:
            if self.dead is not None:
                raise ClientGone(f"stream {self.stream_id}: {self.dead}")
            self.informational.append(head)
            driver.mark_ready(self)

    def wait(self, timeout_s: float) -> None:
        """Wait (lock held) for the connection thread's news about this stream."""
        if self.cond is None:
            self.cond = threading.Condition(self.driver.lock)
        self.cond.wait(timeout_s)

    def notify(self) -> None:
        """Wake this stream's worker if it waits (lock held, connection thread)."""
        if self.cond is not None:
            self.cond.notify_all()

    def abort(self, error_code: int) -> None:
        """Reset the stream (the response failed after it started)."""
        with self.driver.lock:
            if self.dead is None:
                self.dead = "reset by the server"
            self.reset_code = error_code
            self.driver.mark_ready(self)


class StreamRunner:
    """A pool job that runs a connection's waiting streams, one after another, until none
    is left (or, after RUNNER_TURN of them, other work waits for the pool: then it takes a
    turn at the back of the queue, as HTTP/1.1 connections do).

    The connection thread queues a new runner only when no runner is free to take the new
    stream (each runner is in an application call), so a slow stream never holds up the
    next one, while a burst of 100 streams costs a handful of pool hand-offs, not 100.
    Runners per connection are capped at its fair share of the pool
    (http2_max_workers_per_connection): streams beyond it wait in the connection's own
    `waiting_streams`, not in the pool's queue, and the connection's runners take them as
    their streams finish, so one connection cannot take every worker (issue 14 item 6).
    """

    __slots__ = ("driver",)

    def __init__(self, driver: StreamOwner) -> None:
        self.driver = driver

    def serve(self) -> None:
        driver = self.driver
        host = driver.host
        lock = driver.lock
        turn = 0
        while True:
            with lock:
                if not driver.waiting_streams:
                    driver.runners -= 1
                    return
                stream = driver.waiting_streams.popleft()
                driver.busy_runners += 1
            try:
                run_stream(stream)
            except BaseException:  # only what the exchange re-raises (KeyboardInterrupt)
                with lock:
                    driver.busy_runners -= 1
                    driver.runners -= 1  # gone: the next stream gets a new runner
                raise
            with lock:
                driver.busy_runners -= 1
            turn += 1
            if turn >= RUNNER_TURN and not host.idle_workers_likely():  # others wait
                with lock:
                    if not driver.waiting_streams:
                        driver.runners -= 1
                        return
                host.dispatch(self)
                return


def run_stream(stream: H2Stream) -> None:
    """The WSGI call for one stream, on a pool worker, through the one bridge."""
    if stream.dead is not None:
        return  # reset before a worker got to it: the application never sees it
    runtime = stream.driver.runtime
    Exchange(H2Sink(stream, runtime), runtime, stream.environ, stream).run(runtime.app,
                                                                          stream.started)


class H2Sink:
    """A stream's side of an exchange (a ResponseSink, server/exchange.py): the head and the
    body go to the connection thread through the stream's buffers (H2Stream.post)."""

    __slots__ = ("stream", "runtime", "peer_host", "head", "declared", "sent", "on_wire",
                 "response_headers")

    sendfile_ok = False  # the connection thread frames every byte
    reraise_fatal = True  # a KeyboardInterrupt goes on up through StreamRunner

    def __init__(self, stream: H2Stream, runtime: Runtime) -> None:
        self.stream = stream
        self.runtime = runtime
        self.peer_host = stream.driver.peer_host
        self.head: list[tuple[bytes, bytes]] | None = None  # prepared, not yet posted
        self.declared: int | None = None  # the response's content-length
        self.sent = 0
        self.on_wire = False  # the head was handed to the connection thread
        self.response_headers: list[tuple[bytes, bytes]] = []

    def send_head(self, exchange: Exchange, date: bytes | None, add_server: bool) -> None:
        # encode_headers dropped connection-specific fields (RFC 9113 8.2.2); `Connection:
        # close` means nothing to a multiplexed connection, so close_asked is not used.
        body_allowed = exchange.body_allowed
        head = [(b":status", str(exchange.code).encode("ascii"))]
        for name, value in exchange.headers:
            name = name.lower()  # HTTP/2 field names are lower-case (RFC 9113 8.2.1)
            head.append((name, value))
            if name == b"content-length" and value.isdigit() and body_allowed:
                self.declared = int(value)
        if date is not None:
            head.append((b"date", date))
        if add_server:
            head.append((b"server", b"treadle"))
        self.response_headers = self.head = head

    def send_body(self, chunk: bytes) -> None:
        if chunk:
            self._post([bytes(chunk)], end=False)
        elif self.head is not None:
            self._post([], end=False)

    def send_rest(self, chunks: list[bytes] | tuple[bytes, ...]) -> None:
        self._post([bytes(chunk) for chunk in chunks if chunk], end=True)

    def send_end(self) -> None:
        self._post([], end=True)

    def send_file(self, file_fd: int, offset: int, count: int) -> None:
        raise AssertionError("sendfile_ok is False: the bridge iterates the file instead")

    def _post(self, chunks: list[bytes], end: bool) -> None:
        self.sent += sum(len(chunk) for chunk in chunks)
        if self.declared is not None and (self.sent > self.declared
                                          or (end and self.sent != self.declared)):
            raise ValueError(f"the response body ({self.sent} bytes so far) does not match "
                             f"its content-length ({self.declared})")
        head, self.head = self.head, None
        self.stream.post(head, chunks, end)
        self.on_wire = True

    def send_informational(self, code: int, headers: list[tuple[bytes, bytes]]) -> None:
        head = [(b":status", str(code).encode("ascii"))]
        head += [(name.lower(), value) for name, value in headers]  # RFC 9113 8.2.1
        self.stream.post_informational(head)

    def body_error(self, exc: BaseException) -> RequestBodyError | None:
        return exc if isinstance(exc, RequestBodyError) else None

    def drop(self, exc: ClientGone, path: str) -> None:
        stream = self.stream
        self.runtime.error_log.debug("HTTP/2 stream %d of %s gone during %s: %s",
                                     stream.stream_id, self.peer_host, path, exc)
        stream.abort(0x8)  # CANCEL

    def abort(self) -> None:
        self.stream.abort(0x2)  # INTERNAL_ERROR: the client must not take it as complete

    def send_error(self, code: int, head_request: bool) -> None:
        try:
            self.stream.post(error_head(code, self.runtime), [error_body(code)], end=True)
        except ClientGone:
            pass

    def complete(self) -> bool:
        return True


def error_body(code: int) -> bytes:
    from http import HTTPStatus

    return f"{code} {HTTPStatus(code).phrase}\n".encode("ascii")


def error_head(code: int, runtime: Runtime) -> list[tuple[bytes, bytes]]:
    """The head of the short answer to a failed request (the body is error_body)."""
    head = [(b":status", str(code).encode("ascii")),
            (b"content-type", b"text/plain; charset=utf-8"),
            (b"content-length", str(len(error_body(code))).encode("ascii")),
            (b"date", runtime.http_date())]
    if runtime.server_header:
        head.append((b"server", b"treadle"))
    return head

