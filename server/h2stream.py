"""One HTTP/2 stream: the state its WSGI call (on the worker pool) shares with the thread
that owns the connection (server/http2.py), and the WSGI exchange itself.

Only the connection's thread touches the socket and the h2 connection. A stream's worker
talks to it through this object, under the connection's lock, with one Condition per
stream so that waking one stream never wakes another (the Condition is made only when a worker
first has to wait, which most never do):

- request body: the connection thread appends DATA to `inbox`; the worker's wsgi.input
  takes from it and records what it consumed in `consumed`, which the connection thread
  acknowledges (WINDOW_UPDATE). Nothing is acknowledged before the application reads it,
  so the client can never have more than one window of unread body in flight: that is the
  back-pressure, and the bound on `inbox`.
- response: the worker appends to `outbox` and waits while more than SEND_BUFFER_BYTES are
  buffered; the connection thread sends as the flow-control windows allow. A client that
  stops reading stalls only this worker, for at most body_timeout, and never grows memory.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import TYPE_CHECKING, Any

from .errors import ClientGone, RequestBodyError
from .wsgi import (
    FileWrapper,
    InputStream,
    check_start_response,
    encode_headers,
    parse_status,
)

if TYPE_CHECKING:
    from .http2 import H2Driver

SEND_BUFFER_BYTES = 256 * 1024  # per stream: response bytes waiting for the window
ACK_BATCH_BYTES = 16384  # wake the connection thread to acknowledge at least this much
RUNNER_TURN = 8  # streams a runner may serve in a row while other work waits for the pool
_NO_BODY_STATUSES = (204, 304)


class H2Stream:
    """Shared state of one stream; fields marked (lock) are guarded by driver.lock."""

    __slots__ = ("driver", "stream_id", "cond", "environ", "method", "content_length",
                 "received", "inbox", "inbox_flow", "in_ended", "consumed", "outbox",
                 "out_bytes", "head", "out_ended", "reset_code", "dead", "queued",
                 "head_sent", "end_sent", "finished", "started", "expect_continue",
                 "continue_wanted")

    def __init__(self, driver: H2Driver, stream_id: int, environ: dict[str, Any],
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
        self.outbox: deque[memoryview] = deque()  # (lock)
        self.out_bytes = 0  # (lock)
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

    # -- worker side: wsgi.input -------------------------------------------------------------

    def read_body_chunk(self) -> bytes | None:
        """The next piece of the request body; None at its end (BodySource for InputStream)."""
        driver = self.driver
        deadline = time.monotonic() + driver.server.body_timeout_s
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
                    raise RequestBodyError("request body: timed out waiting for the client",
                                           408)
                self.wait(remaining)
            chunk = self.inbox.popleft()
            self.consumed += self.inbox_flow.popleft()
            if self.consumed >= ACK_BATCH_BYTES or not self.inbox:
                driver.mark_ready(self)
        return chunk

    # -- worker side: the response ---------------------------------------------------------

    def post(self, head: list[tuple[bytes, bytes]] | None, chunks: list[bytes],
             end: bool) -> None:
        """Queue a response head and/or body chunks; waits while the send buffer is full."""
        driver = self.driver
        timeout_s = driver.server.body_timeout_s
        with driver.lock:
            if self.dead is not None:
                raise ClientGone(f"stream {self.stream_id}: {self.dead}")
            if head is not None:
                self.head = head
            for chunk in chunks:
                deadline = time.monotonic() + timeout_s
                while self.out_bytes >= SEND_BUFFER_BYTES and self.dead is None:
                    driver.mark_ready(self)
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        self.dead = "the client stopped reading"
                        self.reset_code = 0x8  # CANCEL
                        break
                    self.wait(remaining)
                if self.dead is not None:
                    driver.mark_ready(self)
                    raise ClientGone(f"stream {self.stream_id}: {self.dead}")
                self.outbox.append(memoryview(chunk))
                self.out_bytes += len(chunk)
            if end:
                self.out_ended = True
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
    Runners per connection are capped at the pool size: more could not run at once.
    """

    __slots__ = ("driver",)

    def __init__(self, driver: H2Driver) -> None:
        self.driver = driver

    def serve(self) -> None:
        driver = self.driver
        server = driver.server
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
                H2Exchange(stream).serve()
            except BaseException:  # only what the exchange re-raises (KeyboardInterrupt)
                with lock:
                    driver.busy_runners -= 1
                    driver.runners -= 1  # gone: the next stream gets a new runner
                raise
            with lock:
                driver.busy_runners -= 1
            turn += 1
            if turn >= RUNNER_TURN and not server.idle_workers_likely():  # others wait
                with lock:
                    if not driver.waiting_streams:
                        driver.runners -= 1
                        return
                server.dispatch(self)  # type: ignore[arg-type]
                return


class H2Exchange:
    """The WSGI call for one stream, run on the worker pool (PEP 3333, like exchange.py)."""

    __slots__ = ("stream", "status", "code", "headers", "head_posted", "body_allowed",
                 "declared", "sent", "response_headers")

    def __init__(self, stream: H2Stream) -> None:
        self.stream = stream
        self.status: str | None = None
        self.code = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.head_posted = False
        self.body_allowed = stream.method != "HEAD"
        self.declared: int | None = None
        self.sent = 0
        self.response_headers: list[tuple[bytes, bytes]] = []

    def serve(self) -> None:
        """Entry point on a pool worker."""
        stream = self.stream
        server = stream.driver.server
        if stream.dead is not None:
            return  # reset before a worker got to it: the application never sees it
        environ = stream.environ
        environ["wsgi.input"] = InputStream(stream)
        server.inflight.begin(environ)  # (one line; the registry lives in inflight.py)
        try:
            result = server.app(environ, self.start_response)
            try:
                self.finish(result)
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()
        except BaseException as exc:  # the application may raise anything; it is reported
            self.fail(exc)
            if not isinstance(exc, Exception) and not isinstance(exc, SystemExit):
                raise
            return
        if server.access_log is not None:
            server.log_access(environ, self.status or "", self.response_headers, self.sent,
                              time.monotonic() - stream.started)

    def start_response(self, status: str, headers: list[tuple[str, str]],
                       exc_info: Any = None) -> Any:
        try:
            check_start_response(exc_info, self.head_posted, self.status is not None)
        finally:
            exc_info = None  # no traceback -> frame -> traceback cycle when it re-raises
        code, _reason = parse_status(status)
        # Connection-specific fields are dropped there (RFC 9113 8.2.2); `Connection: close`
        # means nothing to a multiplexed connection, so its flag is not used.
        self.headers, _close = encode_headers(headers, self.stream.driver.server.error_log)
        self.status, self.code = status, code
        return self.write

    def write(self, data: bytes) -> None:
        if self.status is None:
            raise AssertionError("write() called before start_response()")
        if not isinstance(data, (bytes, bytearray)):
            raise TypeError(f"write() needs bytes, got {type(data).__name__}")
        if data:
            self._post([bytes(data)], end=False)

    def finish(self, result: Any) -> None:
        if type(result) is list or type(result) is tuple:
            for chunk in result:
                _check_chunk(chunk)
            self._post([chunk for chunk in result if chunk], end=True)
            return
        if not self.body_allowed and self.status is not None:
            self._post([], end=True)
            return
        if type(result) is FileWrapper:
            result = iter(result)
        for chunk in result:
            _check_chunk(chunk)
            if chunk:
                self._post([bytes(chunk)], end=False)
        self._post([], end=True)

    def _post(self, chunks: list[bytes], end: bool) -> None:
        head = None if self.head_posted else self._head()
        if not self.body_allowed:
            chunks = []
        size = sum(len(chunk) for chunk in chunks)
        self.sent += size
        if self.declared is not None and (self.sent > self.declared
                                          or (end and self.sent != self.declared)):
            raise ValueError(f"the response body ({self.sent} bytes so far) does not match "
                             f"its content-length ({self.declared})")
        self.stream.post(head, chunks, end)
        self.head_posted = True

    def _head(self) -> list[tuple[bytes, bytes]]:
        if self.status is None:
            raise AssertionError("the application returned without calling start_response()")
        server = self.stream.driver.server
        code = self.code
        headers = self.headers
        if code in _NO_BODY_STATUSES or code < 200:
            self.body_allowed = False
        has_date = has_server = False
        head = [(b":status", str(code).encode("ascii"))]
        for name, value in headers:
            name = name.lower()  # HTTP/2 field names are lower-case (RFC 9113 8.2.1)
            head.append((name, value))
            if name == b"date":
                has_date = True
            elif name == b"server":
                has_server = True
            elif name == b"content-length" and value.isdigit() and self.body_allowed:
                self.declared = int(value)
        if not has_date:
            head.append((b"date", server.http_date()))
        if not has_server and server.server_header:
            head.append((b"server", b"treadle"))
        self.response_headers = head
        return head

    def fail(self, exc: BaseException) -> None:
        stream = self.stream
        server = stream.driver.server
        log = server.error_log
        path = stream.environ.get("PATH_INFO", "")
        if isinstance(exc, ClientGone):
            log.debug("HTTP/2 stream %d of %s gone during %s: %s", stream.stream_id,
                      stream.driver.peer_host, path, exc)
            stream.abort(0x8)  # CANCEL
            return
        code = 500
        if isinstance(exc, RequestBodyError):
            code = exc.status_hint
            log.info("request body from %s failed: %s", stream.driver.peer_host, exc)
        else:
            log.error("error handling %s %s", stream.method, path, exc_info=exc)
        if self.head_posted:
            stream.abort(0x2)  # INTERNAL_ERROR: the client must not take it as complete
            return
        try:
            stream.post(error_head(code, server), [error_body(code)], end=True)
        except ClientGone:
            pass


def error_body(code: int) -> bytes:
    from http import HTTPStatus

    return f"{code} {HTTPStatus(code).phrase}\n".encode("ascii")


def error_head(code: int, server: Any) -> list[tuple[bytes, bytes]]:
    """The head of the short answer to a failed request (the body is error_body)."""
    head = [(b":status", str(code).encode("ascii")),
            (b"content-type", b"text/plain; charset=utf-8"),
            (b"content-length", str(len(error_body(code))).encode("ascii")),
            (b"date", server.http_date())]
    if server.server_header:
        head.append((b"server", b"treadle"))
    return head


def _check_chunk(chunk: object) -> None:
    if type(chunk) is not bytes and not isinstance(chunk, (bytes, bytearray)):
        raise TypeError(f"the application yielded {type(chunk).__name__}, not bytes")
