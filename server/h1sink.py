"""The HTTP/1.1 side of an exchange: a ResponseSink (server/exchange.py) that frames the
response with the connection's engine and writes it to the socket, and what happens after it.

A list or tuple body is sent with its head and end in as few system calls as possible; a
file goes by os.sendfile when the socket is plain. A worker never waits on the client's
socket: each send takes what the socket takes at once, and the rest goes to the connection's
Backlog (server/outbuf.py: memory, then a temporary file; file regions for sendfile), which
the poller drains once the application is done (server/http1.py, phase WRITE). A reader
slower than min_response_rate is dropped (treadle_rejected_total{reason="min_rate"}). After
the response, a body the application did not read is drained, up to DRAIN_LIMIT_BYTES (1
MiB), so that the connection can be kept alive; a longer one (or one the client is waiting
on `100 Continue` to send) closes the connection after the response, which then says
`Connection: close`. A failure before anything reached the socket gets the one short error
answer (error_response) with `Connection: close`; after, the connection is dropped (reset
when a clean close would end a close-delimited body).
"""

from __future__ import annotations

import os
import socket
import time
from http import HTTPStatus
from typing import Any, Protocol

from .. import protocol
from ..protocol.caches import remember
from .errors import ClientGone, RequestBodyError
from .exchange import Exchange, Headers, header_named
from .outbuf import Backlog
from .runtime import Host, Runtime

DRAIN_LIMIT_BYTES = 1 << 20
COALESCE_BYTES = 256 * 1024
SENDFILE_BLOCK = 1 << 24

_RESPONSES: dict[tuple[Any, ...], protocol.Response] = {}  # see H1Sink.send_head
_RESPONSES_MAX = 256
_Data = protocol.Data
_END = protocol.EndOfMessage()  # events are immutable: one serves every response
_DONE = protocol.DONE
_SEND_BODY = protocol.SEND_BODY


def error_response(code: int, date: bytes, server_header: bool, with_body: bool = True) -> bytes:
    """The one answer to a bad request or a failed application: short, `Connection: close`."""
    reason = HTTPStatus(code).phrase
    body = f"{code} {reason}\n".encode("ascii")
    head = (
        f"HTTP/1.1 {code} {reason}\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Connection: close\r\n"
    ).encode("ascii")
    head += b"Date: " + date + b"\r\n"
    if server_header:
        head += b"Server: treadle\r\n"
    return head + b"\r\n" + (body if with_body else b"")


class H1Transport(Protocol):
    """What the sink needs of the HTTP/1.1 connection (server/http1.py's HTTP1Connection)."""

    sock: socket.socket
    engine: protocol.Connection
    peer_host: str | None
    body_error: RequestBodyError | None
    expecting_continue: bool
    sent_continue: bool
    body_consumed: int

    def read_body_chunk(self) -> bytes | None: ...
    def close(self) -> None: ...
    def abort(self, reset: bool = False) -> None: ...


class _FileRange:
    """Stands in for file bytes in the engine's framing; the bytes go by os.sendfile."""

    __slots__ = ("length",)

    def __init__(self, length: int) -> None:
        self.length = length

    def __len__(self) -> int:
        return self.length


class H1Sink:
    """The response side of one connection's current request; one per connection, reset by
    made ready for the next one by `complete` (so a keep-alive cycle allocates none)."""

    __slots__ = ("conn", "runtime", "host", "peer_host", "environ", "pending",
                 "response_headers", "on_wire", "close_planned", "sendfile_ok", "backlog")

    reraise_fatal = False

    def __init__(self, conn: H1Transport, runtime: Runtime, host: Host) -> None:
        self.conn = conn
        self.runtime = runtime
        self.host = host  # read for `stopping` when the head goes: a stop may begin meanwhile
        self.peer_host = conn.peer_host
        self.sendfile_ok: bool = runtime.sendfile_ok and hasattr(
            conn.engine, "send_with_data_passthrough")
        self.environ: dict[str, Any] = {}
        self.pending = b""
        self.response_headers: Headers = []
        self.on_wire = False
        self.close_planned = False
        self.backlog = Backlog(runtime.response_buffer_bytes)  # empty unless a reader lags

    # -- the response --------------------------------------------------------------------

    def send_head(self, exchange: Exchange, date: bytes | None, add_server: bool) -> None:
        self.environ = exchange.environ
        code = exchange.code
        headers = exchange.headers
        if code == 204:
            headers = [h for h in headers if h[0].lower() != b"content-length"]
        extra = []
        if date is not None:
            extra.append((b"Date", date))
        if add_server:
            extra.append((b"Server", b"treadle"))
        if exchange.close_asked or self._must_close():
            self.close_planned = True
            extra.append((b"Connection", b"close"))
        response_headers = self.response_headers = headers + extra if extra else headers
        # Response events are immutable and most responses repeat (the same headers, one
        # Date a second): build and validate each distinct one once.
        key = (code, exchange.reason, *response_headers)
        event = _RESPONSES.get(key)
        if event is None:
            event = protocol.Response(status_code=code, headers=response_headers,
                                      reason=exchange.reason)
            remember(_RESPONSES, key, event, _RESPONSES_MAX)
        self.pending = self.conn.engine.send(event) or b""

    def _must_close(self) -> bool:
        conn = self.conn
        if self.host.stopping or conn.body_error is not None:
            return True
        if conn.expecting_continue and not conn.sent_continue:
            return True
        declared = self.environ.get("CONTENT_LENGTH")
        if declared and conn.engine.their_state is _SEND_BODY:
            return int(declared) - conn.body_consumed > DRAIN_LIMIT_BYTES
        return False

    def send_body(self, chunk: bytes) -> None:
        out = self.pending
        if chunk:
            out += self.conn.engine.send(_Data(data=chunk)) or b""
        if out:
            self.pending = b""
            self._send(out)

    def send_rest(self, chunks: list[bytes] | tuple[bytes, ...]) -> None:
        send = self.conn.engine.send
        out = [self.pending]
        self.pending = b""
        size = 0
        for chunk in chunks:
            if not chunk:
                continue
            piece = send(_Data(data=chunk)) or b""
            out.append(piece)
            size += len(piece)
            if size >= COALESCE_BYTES:
                self._send(b"".join(out))
                out.clear()
                size = 0
        out.append(send(_END) or b"")
        self._send(b"".join(out))

    def send_end(self) -> None:
        out = self.pending + (self.conn.engine.send(_END) or b"")
        self.pending = b""
        self._send(out)

    def _send(self, data: bytes) -> None:
        """Send without waiting: what the socket does not take now joins the backlog."""
        self.on_wire = True
        backlog = self.backlog
        if not backlog.segments:  # the fast path: one send, no copy
            try:
                sent = self.conn.sock.send(data)
            except BlockingIOError:
                sent = 0
            except OSError as exc:
                raise ClientGone(f"sending the response: {exc}") from exc
            if sent == len(data):
                return
            backlog.start(self.runtime.min_response_rate, time.monotonic())
            backlog.append(memoryview(data)[sent:] if sent else data)
            return
        backlog.append(data)
        self._flush_while_producing()

    def send_file(self, file_fd: int, offset: int, count: int) -> None:
        passthrough = self.conn.engine.send_with_data_passthrough
        self.send_body(b"")
        while count > 0:
            block = min(count, SENDFILE_BLOCK)
            for part in passthrough(_Data(data=_FileRange(block))) or ():  # type: ignore[arg-type]
                if type(part) is _FileRange:
                    self._send_file_range(file_fd, offset, block)
                else:
                    self._send(part)
            offset += block
            count -= block
        self.send_end()

    def _send_file_range(self, file_fd: int, offset: int, count: int) -> None:
        """sendfile what the socket takes now; the rest of the range joins the backlog."""
        self.on_wire = True
        backlog = self.backlog
        if not backlog:
            out_fd = self.conn.sock.fileno()
            try:
                while count > 0:
                    sent = os.sendfile(out_fd, file_fd, offset, count)
                    if sent == 0:
                        raise ClientGone("the file ended before its declared length")
                    offset += sent
                    count -= sent
                return
            except BlockingIOError:
                backlog.start(self.runtime.min_response_rate, time.monotonic())
            except OSError as exc:
                raise ClientGone(f"sending a file: {exc}") from exc
        backlog.append_file(file_fd, offset, count)
        self._flush_while_producing()

    def _flush_while_producing(self) -> None:
        """The application still produces: send what the reader took meanwhile, and drop a
        reader slower than min_response_rate rather than buffer for it without end."""
        try:
            self.flush()
        except OSError as exc:
            raise ClientGone(f"sending the response: {exc}") from exc
        if self.backlog and self.too_slow(time.monotonic()):
            raise ClientGone("the client reads the response too slowly")

    def flush(self) -> bool:
        """Send what is buffered, without waiting; True when nothing is left."""
        return self.backlog.flush(self.conn.sock, self.sendfile_ok)

    def drain_deadline(self) -> float:
        """When the pending response's reader falls below min_response_rate."""
        clock = self.backlog.clock
        return clock.deadline() if clock is not None else time.monotonic()

    def too_slow(self, now_s: float) -> bool:
        """The reader of the pending response is below min_response_rate: counted and
        logged at debug here, once; the caller drops the connection."""
        clock = self.backlog.clock
        if clock is None or clock.deadline() > now_s:
            return False
        self.runtime.count_rejected("min_rate")
        self.runtime.error_log.debug("closing %s: reads the response too slowly (%s)",
                                     self.peer_host, clock.rate_text(now_s))
        return True

    def release(self) -> None:
        """The connection closes: drop the buffered response and what it holds."""
        self.backlog.release()

    # -- failure -------------------------------------------------------------------------

    def body_error(self, exc: BaseException) -> RequestBodyError | None:
        return self.conn.body_error  # even when the application caught it and raised another

    def drop(self, exc: ClientGone, path: str) -> None:
        self.runtime.error_log.debug("client %s went away during %s: %s", self.peer_host,
                                     path, exc)
        self.conn.abort()

    def abort(self) -> None:
        framed = (header_named(self.response_headers, b"content-length") is not None
                  or self.environ["SERVER_PROTOCOL"] == "HTTP/1.1")
        self.conn.abort(reset=not framed)  # a clean close would end a close-delimited body

    def send_error(self, code: int, head_request: bool) -> None:
        runtime = self.runtime
        conn = self.conn
        answer = error_response(code, runtime.http_date(), runtime.server_header,
                                with_body=not head_request)
        try:
            self._send(answer)
        except ClientGone:
            conn.abort()
            return
        conn.close()  # (after the answer drains, when the client reads slowly)

    def send_informational(self, code: int, headers: Headers) -> None:
        # Written here, not by the engine: a 1xx sent through it would end the client's
        # wait for `100 Continue`, which must still come when the application reads.
        lines = [b"HTTP/1.1 %d %s\r\n" % (code, HTTPStatus(code).phrase.encode("ascii"))]
        lines += [name + b": " + value + b"\r\n" for name, value in headers]
        lines.append(b"\r\n")
        on_wire = self.on_wire
        self._send(b"".join(lines))  # (a client reading slowly gets it from the backlog)
        self.on_wire = on_wire  # a 1xx is not the response: a failure after it is still a 500

    # -- after the response ----------------------------------------------------------------

    def complete(self) -> bool:
        """Drain an unread body if allowed, and start the next cycle; False when closed."""
        conn = self.conn
        engine = conn.engine
        their_state = engine.their_state
        if their_state is _SEND_BODY:
            if self.close_planned or not self._drain():
                conn.close()
                return False
            their_state = engine.their_state
        if their_state is _DONE and engine.our_state is _DONE:
            engine.start_next_cycle()
            self.on_wire = self.close_planned = False  # ready for the next request
            return True
        conn.close()
        return False

    def _drain(self) -> bool:
        budget = DRAIN_LIMIT_BYTES
        try:
            while True:
                chunk = self.conn.read_body_chunk()
                if chunk is None:
                    return True
                budget -= len(chunk)
                if budget < 0:
                    return False
        except RequestBodyError:
            return False

