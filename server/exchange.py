"""One request/response exchange, for every protocol: the PEP 3333 bridge.

Everything an application sees of a request lives here once: wsgi.input, start_response (with
exc_info), write(), the iteration of its result, `close()` on it, wsgi.file_wrapper, the Date
and Server header defaults, the error answer, and the access-log record. The wire is someone
else's: the bridge writes through a ResponseSink, implemented once for HTTP/1.1
(server/h1sink.py) and once for an HTTP/2 stream (server/h2stream.py).

PEP 3333 semantics: start_response only records; the response head goes out with the first
non-empty body chunk (or at the end); a list or tuple result goes to the sink whole (so that
HTTP/1.1 sends it in as few system calls as possible), any other iterable chunk by chunk as
it is produced; `close()` is always called. Failures: before anything reached the client ->
a 500 (or the status a broken request body deserves); after -> the response is aborted so the
client sees it truncated or reset, never a well-formed wrong one.

`Exchange.run` is the one place where a request starts (the application is called) and ends
(the access log is written, the sink says whether the connection carries on).
"""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Callable
from http import HTTPStatus
from typing import Any, Protocol

from .. import protocol
from .errors import ClientGone, RequestBodyError
from .metrics import CLIENT_GONE_CODE
from .runtime import Runtime
from .wsgi import (
    BodySource,
    FileWrapper,
    InputStream,
    check_start_response,
    encode_headers,
    parse_status,
)

Headers = list[tuple[bytes, bytes]]


class ResponseSink(Protocol):
    """How one protocol puts a response on the wire. Only the exchange's thread calls it.

    The send_* calls carry the head prepared by the last send_head, if it has not gone yet,
    so that a head and the body's first bytes can leave together."""

    peer_host: str | None
    on_wire: bool  # something reached the client: a failure now aborts the response
    sendfile_ok: bool  # send_file may be used (a plain socket and a framing that allows it)
    reraise_fatal: bool  # re-raise what is not an Exception (KeyboardInterrupt) after failing
    response_headers: Headers  # the head as sent, for the access log

    def send_head(self, exchange: Exchange, date: bytes | None, add_server: bool) -> None:
        """Prepare the head of `exchange` (its code, reason, headers, body_allowed,
        close_asked, environ); `date` is the Date value to add (None: the application set
        one), `add_server` whether to add `Server: treadle`."""

    def send_body(self, chunk: bytes) -> None:
        """One body chunk (b"": only the head, if it is pending)."""

    def send_rest(self, chunks: list[bytes] | tuple[bytes, ...]) -> None:
        """The rest of the body (already checked to be bytes) and its end."""

    def send_end(self) -> None: ...

    def send_file(self, file_fd: int, offset: int, count: int) -> None:
        """`count` bytes of a regular file from `offset` (os.sendfile), then the end."""

    def body_error(self, exc: BaseException) -> RequestBodyError | None:
        """Why reading the request body failed, if it did (the answer's status)."""

    def drop(self, exc: ClientGone, path: str) -> None:
        """The client went away: log it at debug and give the connection (stream) up."""

    def abort(self) -> None:
        """The response failed after it started: make sure the client cannot take it as whole."""

    def send_error(self, code: int, head_request: bool) -> None:
        """The short error answer, nothing having been sent yet."""

    def send_informational(self, code: int, headers: Headers) -> None:
        """A 1xx response (103 Early Hints) before the head; not `on_wire`: a final
        response, an error answer included, may still follow."""

    def complete(self) -> bool:
        """After a whole response: True when the connection carries on (HTTP/1.1)."""


class Exchange:
    """One request: its environ, and start_response/write for the application."""

    __slots__ = ("sink", "runtime", "environ", "method", "head_request", "status", "code",
                 "reason", "headers", "head_sent", "body_allowed", "body_bytes", "close_asked",
                 "request_id", "input")

    def __init__(self, sink: ResponseSink, runtime: Runtime, environ: dict[str, Any],
                 body: BodySource) -> None:
        self.sink = sink
        self.runtime = runtime
        self.input = environ["wsgi.input"] = InputStream(body)
        environ["wsgi.early_hints"] = self.early_hints
        self.environ = environ
        self.method: str = environ["REQUEST_METHOD"]
        self.head_request = self.method == "HEAD"
        self.status: str | None = None
        self.code = 0
        self.reason = b""
        self.headers: Headers = []
        self.head_sent = False
        self.body_allowed = not self.head_request
        self.body_bytes = 0
        self.close_asked = False  # the application sent `Connection: close`
        self.request_id: str | None = None

    def run(self, app: Callable[..., Any], started_s: float) -> bool:
        """Call the application and send its response; True when the connection carries
        on. `started_s`: when the request arrived (monotonic), for the access log.
        Counted in the metrics (server/metrics.py) when they are on."""
        metrics = self.runtime.metrics
        if metrics is None:
            return self._run(app, started_s)
        shard = metrics.begin()
        began_s = time.perf_counter()
        try:
            return self._run(app, started_s)
        finally:
            metrics.end(shard, self.method, self.code,
                        self.environ.get("SERVER_PROTOCOL", ""),
                        time.perf_counter() - began_s, self.input.received, self.body_bytes)

    def _run(self, app: Callable[..., Any], started_s: float) -> bool:
        self.runtime.inflight.begin(self.environ)  # the request starts here (inflight.py)
        if self.runtime.request_ids is not None:  # made only when something uses them
            self.request_id = self.runtime.request_ids.assign(self.environ, self.sink.peer_host)
        try:
            result = app(self.environ, self.start_response)
            try:
                self.finish(result)
            finally:
                # A list or tuple has no close(); looking for it would raise and catch inside.
                if type(result) is not list and type(result) is not tuple:
                    close = getattr(result, "close", None)
                    if close is not None:
                        close()
        except BaseException as exc:  # the application may raise anything (SystemExit too)
            self.fail(exc)
            # Logged too, as gunicorn does, with what the client got: the error answer's
            # status, the head already sent, or 499 when the client left first (nginx's).
            self._log_access(started_s)
            if self.sink.reraise_fatal and not isinstance(exc, (Exception, SystemExit)):
                raise
            return False
        if self.runtime.access_log is not None:  # (no call on the hot path without one)
            self._log_access(started_s)
        return self.sink.complete()

    def _log_access(self, started_s: float) -> None:
        runtime = self.runtime
        if runtime.access_log is None:
            return
        status = self.status or ""
        if self.code and (not self.status or not status.startswith(str(self.code))):
            status = _status_line(self.code)  # the error answer's, not the application's
        runtime.log_access(self.environ, status, self.sink.response_headers,
                           self.body_bytes, time.monotonic() - started_s)

    # -- what the application calls ------------------------------------------------------

    def start_response(self, status: str, headers: list[tuple[str, str]],
                       exc_info: Any = None) -> Any:
        try:
            check_start_response(exc_info, self.head_sent, self.status is not None)
        finally:
            exc_info = None  # no traceback -> frame -> traceback cycle when it re-raises
        code, reason = parse_status(status)
        # The one header policy for every protocol; an HTTP/2 sink ignores close_asked.
        self.headers, self.close_asked = encode_headers(headers, self.runtime.error_log)
        self.status, self.code, self.reason = status, code, reason
        return self.write

    def early_hints(self, headers: list[tuple[str, str]]) -> None:
        """environ["wsgi.early_hints"], as gunicorn 25 offers it: send a 103 Early Hints
        with `headers` (typically Link preloads), checked by the one header policy (a bad
        name or a CR/LF in a value raises). Ignored once the response head has gone and for
        HTTP/1.0 clients, which know no 1xx; may be called more than once."""
        if self.head_sent or self.environ["SERVER_PROTOCOL"] == "HTTP/1.0":
            return
        if type(headers) is list or isinstance(headers, (list, tuple)):
            headers = [_as_text(item) for item in headers]  # gunicorn takes bytes too
        encoded, _close = encode_headers(headers, self.runtime.error_log)
        self.sink.send_informational(103, encoded)

    def write(self, data: bytes) -> None:
        if self.status is None:
            raise AssertionError("write() called before start_response()")
        if type(data) is not bytes and not isinstance(data, (bytes, bytearray)):
            raise TypeError(f"write() needs bytes, got {type(data).__name__}")
        if data:
            self._send_chunk(data)

    # -- producing the response ------------------------------------------------------------

    def finish(self, result: Any) -> None:
        """Send the response body from the application's result, then its end."""
        if self.head_request:
            if self.status is None:  # a generator may call start_response on first next()
                for _chunk in result:
                    if self.status is not None:
                        break
        elif type(result) is list or type(result) is tuple:
            self._send_whole(result)
            return
        elif type(result) is FileWrapper and self.sink.sendfile_ok and self._send_file(result):
            return
        else:
            for chunk in result:
                if type(chunk) is not bytes:
                    _check_chunk(chunk)
                if chunk:
                    self._send_chunk(chunk)
        if not self.head_sent:
            self._head()
        self.sink.send_end()

    def _send_chunk(self, chunk: bytes) -> None:
        if not self.head_sent:
            self._head()
        if self.body_allowed:
            self.body_bytes += len(chunk)
            self.sink.send_body(chunk)
        else:
            self.sink.send_body(b"")

    def _send_whole(self, items: list[bytes] | tuple[bytes, ...]) -> None:
        """A body already whole: checked, then handed to the sink in one call."""
        size = 0
        for chunk in items:
            if type(chunk) is not bytes:
                _check_chunk(chunk)
            size += len(chunk)
        if not self.head_sent:
            self._head()
        if self.body_allowed:
            self.body_bytes += size
            self.sink.send_rest(items)
        else:
            self.sink.send_rest(())

    def _send_file(self, wrapper: FileWrapper) -> bool:
        """Send a regular file with os.sendfile; False (nothing sent) when that cannot be."""
        if self.status is None or self.head_sent:
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
        declared = header_named(self.headers, b"content-length")
        if declared is None:  # (never Transfer-Encoding: encode_headers drops it)
            self.headers.append((b"content-length", str(remaining).encode("ascii")))
        elif declared.isdigit():
            remaining = min(remaining, int(declared))
        self._head()
        if not self.body_allowed:
            remaining = 0
        self.sink.send_file(file_fd, offset, remaining)
        self.body_bytes += remaining
        return True

    def _head(self) -> None:
        """Hand the head to the sink, with the Date and Server defaults decided here once."""
        if self.status is None:
            raise AssertionError("the application returned without calling start_response()")
        code = self.code
        if code == 204 or code == 304:
            self.body_allowed = False
        has_date = has_server = False
        for name, _value in self.headers:
            if len(name) == 4 or len(name) == 6:  # only these can be Date or Server
                lowered = name.lower()
                if lowered == b"date":
                    has_date = True
                elif lowered == b"server":
                    has_server = True
        runtime = self.runtime
        if self.request_id is not None:
            self._echo_request_id(self.request_id)
        self.sink.send_head(self, None if has_date else runtime.http_date(),
                            not has_server and runtime.server_header)
        self.head_sent = True

    def _echo_request_id(self, request_id: str) -> None:
        """request_id_header: the id in the response, unless the application set it."""
        ids = self.runtime.request_ids
        if ids is None or ids.echo_lower is None or ids.echo_name is None:
            return
        if header_named(self.headers, ids.echo_lower) is None:
            self.headers.append((ids.echo_name, request_id.encode("ascii")))

    # -- failure ---------------------------------------------------------------------------

    def fail(self, exc: BaseException) -> None:
        """Report a failed exchange; answer with an error if nothing was sent, else abort."""
        sink = self.sink
        path = self.environ.get("PATH_INFO", "")
        if isinstance(exc, ClientGone):
            if not self.head_sent:
                self.code = CLIENT_GONE_CODE  # for the metrics: no status reached the client
            sink.drop(exc, path)
            return
        log = self.runtime.error_log
        code = 500
        body_error = sink.body_error(exc)
        if body_error is not None:
            code = body_error.status_hint
            log.info("request body from %s failed: %s", sink.peer_host, body_error)
        elif isinstance(exc, protocol.LocalProtocolError):
            log.error("bad response to %s %s: %s", self.method, path, exc)
        else:
            log.error("error handling %s %s", self.method, path, exc_info=exc)
        if sink.on_wire:
            sink.abort()
            return
        self.code = code  # what the client got, for the metrics
        sink.send_error(code, self.head_request)


def _status_line(code: int) -> str:
    try:
        return f"{code} {HTTPStatus(code).phrase}"
    except ValueError:  # 499, or an application's own code
        return str(code)


def _as_text(item: Any) -> Any:
    """A (name, value) pair with bytes decoded as latin-1; anything else as it is (for
    encode_headers to refuse)."""
    if type(item) is tuple and len(item) == 2:
        return tuple(part.decode("latin-1") if isinstance(part, bytes) else part
                     for part in item)
    return item


def _check_chunk(chunk: object) -> None:
    if not isinstance(chunk, (bytes, bytearray)):
        raise TypeError(f"the application yielded {type(chunk).__name__}, not bytes")


def header_named(headers: Headers, name: bytes) -> bytes | None:
    """The value of the first field called `name` (lower-case), in any case."""
    for key, value in headers:
        if key.lower() == name:
            return value
    return None
