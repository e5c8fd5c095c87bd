"""One request/response exchange: the WSGI bridge between the engine and an application.

PEP 3333 semantics: start_response (with exc_info) only records; the response head goes out
with the first non-empty body chunk (or at the end); a list or tuple result is sent in as few
system calls as possible, any other iterable chunk by chunk as it is produced;
`app_iter.close()` is always called. Failures: before anything reached the socket -> a 500 (or
the status a broken request body deserves) with `Connection: close`; after -> the connection
is dropped so the client sees a truncated response, never a well-formed wrong one.

A body the application did not read is drained, up to DRAIN_LIMIT_BYTES (1 MiB), so that the
connection can be kept alive; a longer one (or one the client is waiting on `100 Continue` to
send) closes the connection after the response, which then says `Connection: close`.
"""

from __future__ import annotations

import os
import stat
import time
from typing import TYPE_CHECKING, Any

from .. import protocol
from ..protocol.caches import remember
from .errors import ClientGone, RequestBodyError
from .http1 import error_response
from .sockio import send_all, send_file
from .wsgi import (
    FileWrapper,
    InputStream,
    build_environ,
    check_start_response,
    encode_headers,
    parse_status,
)

if TYPE_CHECKING:
    from .http1 import HTTP1Connection

DRAIN_LIMIT_BYTES = 1 << 20
COALESCE_BYTES = 256 * 1024
SENDFILE_BLOCK = 1 << 24

_RESPONSES: dict[tuple[Any, ...], protocol.Response] = {}  # see Exchange._head
_RESPONSES_MAX = 256
_Data = protocol.Data
_EndOfMessage = protocol.EndOfMessage
_END = protocol.EndOfMessage()  # events are immutable: one serves every response
_DONE = protocol.DONE
_SEND_BODY = protocol.SEND_BODY


class _FileRange:
    """Stands in for file bytes in the engine's framing; the bytes go by os.sendfile."""

    __slots__ = ("length",)

    def __init__(self, length: int) -> None:
        self.length = length

    def __len__(self) -> int:
        return self.length


def run_exchange(conn: HTTP1Connection, request: Any) -> bool:
    """Serve one request; True when the connection is ready for the next one."""
    server = conn.server
    started = time.monotonic() if server.access_log is not None else 0.0
    exchange = Exchange(conn, request)
    server.inflight.begin(exchange.environ)  # (one line; the registry lives in inflight.py)
    try:
        result = server.app(exchange.environ, exchange.start_response)
        try:
            exchange.finish(result)
        finally:
            # A list or tuple has no close(); looking for it would raise and catch inside.
            if type(result) is not list and type(result) is not tuple:
                close = getattr(result, "close", None)
                if close is not None:
                    close()
    except BaseException as exc:  # the application may raise anything (SystemExit too)
        exchange.fail(exc)
        return False
    if server.access_log is not None:
        server.log_access(exchange.environ, exchange.status or "", exchange.response_headers,
                          exchange.body_bytes, time.monotonic() - started)
    return exchange.complete()


class Exchange:
    """The response side of one request, and start_response/write for the application."""

    __slots__ = (
        "conn",
        "method",
        "environ",
        "status",
        "code",
        "reason",
        "headers",
        "response_headers",
        "head_sent",
        "on_wire",
        "body_allowed",
        "body_bytes",
        "close_planned",
        "close_asked",
    )

    def __init__(self, conn: HTTP1Connection, request: Any) -> None:
        self.conn = conn
        server = conn.server
        base = conn.environ_base
        if base is None:
            base = conn.environ_base = server.environ_base(conn)
        self.method = request.method
        environ = build_environ(base, request.method, request.target, request.http_version,
                                request.headers, server.root_path, conn.trusted_proxy)
        environ["wsgi.input"] = InputStream(conn)
        self.environ = environ
        self.status: str | None = None
        self.code = 0
        self.reason = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.response_headers: list[tuple[bytes, bytes]] = []
        self.head_sent = False
        self.on_wire = False
        self.body_allowed = request.method != b"HEAD"
        self.body_bytes = 0
        self.close_planned = False
        self.close_asked = False  # the application sent `Connection: close`

    # -- what the application calls ------------------------------------------------------

    def start_response(self, status: str, headers: list[tuple[str, str]],
                       exc_info: Any = None) -> Any:
        try:
            check_start_response(exc_info, self.head_sent, self.status is not None)
        finally:
            exc_info = None  # no traceback -> frame -> traceback cycle when it re-raises
        code, reason = parse_status(status)
        self.headers, self.close_asked = encode_headers(headers, self.conn.server.error_log)
        self.status, self.code, self.reason = status, code, reason
        return self.write

    def write(self, data: bytes) -> None:
        if self.status is None:
            raise AssertionError("write() called before start_response()")
        if type(data) is not bytes and not isinstance(data, (bytes, bytearray)):
            raise TypeError(f"write() needs bytes, got {type(data).__name__}")
        if data:
            self._send(self._body(data))

    # -- producing the response ------------------------------------------------------------

    def finish(self, result: Any) -> None:
        """Send the response body from the application's result, then its end."""
        if not self.body_allowed and self.method == b"HEAD":
            if self.status is None:  # a generator may call start_response on first next()
                for _chunk in result:
                    if self.status is not None:
                        break
        elif type(result) is FileWrapper and self._send_file(result):
            return
        elif type(result) is list or type(result) is tuple:
            self._send_all_of(result)
            return
        else:
            for chunk in result:
                if type(chunk) is not bytes:
                    _check_chunk(chunk)
                if chunk:
                    self._send(self._body(chunk))
        self._send(self._end())

    def _send_all_of(self, items: list[bytes] | tuple[bytes, ...]) -> None:
        """A body already whole: head, chunks and end in as few sends as possible."""
        send = self.conn.engine.send
        out = []
        size = 0
        for chunk in items:
            if type(chunk) is not bytes:
                _check_chunk(chunk)
            if not chunk:
                continue
            if not self.head_sent:
                out.append(self._head())
            if self.body_allowed:
                self.body_bytes += len(chunk)
                piece = send(_Data(data=chunk))
                out.append(piece)
                size += len(piece)
                if size >= COALESCE_BYTES:
                    self._send(b"".join(out))
                    out.clear()
                    size = 0
        if not self.head_sent:
            out.append(self._head())
        out.append(send(_END))
        self._send(b"".join(out))

    def _body(self, chunk: bytes) -> bytes:
        """Engine bytes for one body chunk, preceded by the head if it has not gone yet."""
        out = b"" if self.head_sent else self._head()
        if self.body_allowed:
            self.body_bytes += len(chunk)
            out += self.conn.engine.send(_Data(data=chunk))
        return out

    def _end(self) -> bytes:
        out = b"" if self.head_sent else self._head()
        return out + self.conn.engine.send(_END)

    def _head(self) -> bytes:
        if self.status is None:
            raise AssertionError("the application returned without calling start_response()")
        conn = self.conn
        server = conn.server
        code = self.code
        headers = self.headers
        if code == 204 or code == 304:
            self.body_allowed = False
            if code == 204:
                headers = [h for h in headers if h[0].lower() != b"content-length"]
        has_date = has_server = False
        for name, _value in headers:
            if len(name) == 4 or len(name) == 6:  # only these can be Date or Server
                lowered = name.lower()
                if lowered == b"date":
                    has_date = True
                elif lowered == b"server":
                    has_server = True
        extra = []
        if not has_date:
            extra.append((b"Date", server.http_date()))
        if not has_server and server.server_header:
            extra.append((b"Server", b"treadle"))
        if self._must_close():
            self.close_planned = True
            extra.append((b"Connection", b"close"))
        response_headers = self.response_headers = headers + extra if extra else headers
        # Response events are immutable and most responses repeat (the same headers, one
        # Date a second): build and validate each distinct one once.
        key = (code, self.reason, *response_headers)
        event = _RESPONSES.get(key)
        if event is None:
            event = protocol.Response(status_code=code, headers=response_headers,
                                      reason=self.reason)
            remember(_RESPONSES, key, event, _RESPONSES_MAX)
        self.head_sent = True
        return conn.engine.send(event) or b""

    def _must_close(self) -> bool:
        conn = self.conn
        if conn.server.stopping or conn.body_error is not None or self.close_asked:
            return True
        if conn.expecting_continue and not conn.sent_continue:
            return True
        declared = self.environ.get("CONTENT_LENGTH")
        if declared and conn.engine.their_state is _SEND_BODY:
            return int(declared) - conn.body_consumed > DRAIN_LIMIT_BYTES
        return False

    def _send(self, data: bytes) -> None:
        self.on_wire = True
        try:
            send_all(self.conn.sock, data, self.conn.server.body_timeout_s)
        except OSError as exc:
            raise ClientGone(f"sending the response: {exc}") from exc

    def _send_file(self, wrapper: FileWrapper) -> bool:
        """Send a regular file with os.sendfile; False (nothing sent) when that cannot be."""
        conn = self.conn
        engine = conn.engine
        passthrough = getattr(engine, "send_with_data_passthrough", None)
        if passthrough is None or not conn.server.sendfile_ok or self.status is None:
            return False
        try:
            file_fd = wrapper.filelike.fileno()
            info = os.fstat(file_fd)
            offset = wrapper.filelike.tell()
        except (AttributeError, OSError, ValueError):
            return False
        if not stat.S_ISREG(info.st_mode):
            return False
        remaining = max(0, info.st_size - offset)
        declared = _header(self.headers, b"content-length")
        if declared is None:  # (never Transfer-Encoding: encode_headers drops it)
            self.headers.append((b"content-length", str(remaining).encode("ascii")))
        elif declared.isdigit():
            remaining = min(remaining, int(declared))
        self._send(self._head())
        while self.body_allowed and remaining > 0:
            count = min(remaining, SENDFILE_BLOCK)
            for part in passthrough(_Data(data=_FileRange(count))):  # type: ignore[arg-type]
                if type(part) is _FileRange:
                    self.on_wire = True
                    try:
                        sent = send_file(conn.sock, file_fd, offset, count,
                                         conn.server.body_timeout_s)
                    except OSError as exc:
                        raise ClientGone(f"sending a file: {exc}") from exc
                    if sent < count:
                        raise ClientGone("the file ended before its declared length")
                else:
                    self._send(part)
            offset += count
            remaining -= count
            self.body_bytes += count
        self._send(engine.send(_EndOfMessage()) or b"")
        return True

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

    def fail(self, exc: BaseException) -> None:
        """Report a failed exchange and answer or drop the connection; never keeps it."""
        conn = self.conn
        log = conn.server.error_log
        path = self.environ.get("PATH_INFO", "")
        code = 500
        if isinstance(exc, ClientGone):
            log.debug("client %s went away during %s: %s", conn.peer_host, path, exc)
            conn.abort()
            return
        if conn.body_error is not None:
            code = conn.body_error.status_hint
            log.info("request body from %s failed: %s", conn.peer_host, conn.body_error)
        elif isinstance(exc, protocol.LocalProtocolError):
            log.error("bad response to %s %s: %s", self.method.decode("latin-1"), path, exc)
        else:
            log.error("error handling %s %s", self.method.decode("latin-1"), path,
                      exc_info=exc)
        if self.on_wire:
            framed = (_header(self.response_headers, b"content-length") is not None
                      or self.environ["SERVER_PROTOCOL"] == "HTTP/1.1")
            conn.abort(reset=not framed)  # a clean close would end a close-delimited body
            return
        answer = error_response(code, conn.server.http_date(), conn.server.server_header,
                                with_body=self.method != b"HEAD")
        try:
            send_all(conn.sock, answer, conn.server.body_timeout_s)
        except OSError:
            conn.abort()
            return
        conn.close()


def _check_chunk(chunk: object) -> None:
    if not isinstance(chunk, (bytes, bytearray)):
        raise TypeError(f"the application yielded {type(chunk).__name__}, not bytes")


def _header(headers: list[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    for key, value in headers:
        if key.lower() == name:
            return value
    return None
