"""WSGI applications and wire helpers for the hardening tests (tests/e2e/test_hardening_*.py).

The applications are served by the real server in a subprocess, so they report what they saw
on stderr (the server's log), which the tests read: `HARDENING-SERVED <path>` for each request
an application handled, `HARDENING-READ <id> <outcome>` for what a body read returned. Well-
behaved applications are wrapped in `wsgiref.validate`; the misbehaving ones (bad
`start_response` arguments, exceptions, wrong Content-Length) cannot be, by design.

The wire helpers speak raw bytes: the point of these tests is the exact bytes in and out.
`ServerProcess` keeps one server per test module (conftest's `serve` fixture is per test) and
adds log marks, so each test checks only what it caused.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs
from wsgiref.validate import validator

APP = "tests.e2e.apps_hardening:app"
StartResponse = Callable[..., Any]
Environ = dict[str, Any]


class AppFailure(Exception):
    """Raised on purpose by the applications: the only traceback a test may expect."""


def _log(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _reply(start_response: StartResponse, body: bytes, status: str = "200 OK") -> list[bytes]:
    start_response(status, [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


def _read_body(environ: Environ, piece_bytes: int = 8192) -> bytes:
    """Read the whole body in pieces: to Content-Length, else to the end of a chunked body."""
    stream = environ["wsgi.input"]
    length = environ.get("CONTENT_LENGTH")
    chunks: list[bytes] = []
    if length:
        remaining = int(length)
        while remaining > 0:
            piece = stream.read(min(piece_bytes, remaining))
            if not piece:
                raise ValueError(f"short body: {remaining} bytes never came")
            chunks.append(piece)
            remaining -= len(piece)
    else:
        while piece := stream.read(piece_bytes):
            chunks.append(piece)
    return b"".join(chunks)


def _echo(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    # Exceptions from wsgi.input propagate: the server must turn a framing error into 400.
    body = _read_body(environ)
    return _reply(start_response, b"len=%d\n" % len(body))


def _environ(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    _read_body(environ)  # trailers, if any, have arrived once the body is read
    shown = {key: value for key, value in environ.items() if isinstance(value, str)}
    return _reply(start_response, json.dumps(shown, sort_keys=True).encode())


def _read_outcome(environ: Environ) -> str:
    """What reading the body looked like to the application: error, short or complete."""
    stream = environ["wsgi.input"]
    how = parse_qs(environ.get("QUERY_STRING", "")).get("how", ["pieces"])[0]
    declared = int(environ.get("CONTENT_LENGTH") or -1)
    received = 0
    try:
        if how == "all":
            received = len(stream.read())
        elif how == "lines":
            received = sum(len(line) for line in stream)
        else:
            while piece := stream.read(4096):
                received += len(piece)
    except Exception as error:  # what the application sees is the point
        return f"error:{type(error).__name__}"
    if declared >= 0 and received < declared:
        return f"short:{received}"
    return f"complete:{received}"


def _read(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    test_id = parse_qs(environ.get("QUERY_STRING", "")).get("id", ["-"])[0]
    outcome = _read_outcome(environ)
    _log(f"HARDENING-READ {test_id} {outcome}")
    return _reply(start_response, outcome.encode())


def _hello(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    return _reply(start_response, b"ok " + environ.get("PATH_INFO", "").encode("latin-1"))


GOOD_ROUTES = {"/echo": _echo, "/environ": _environ, "/read": _read}


def _good(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    return GOOD_ROUTES.get(environ.get("PATH_INFO", ""), _hello)(environ, start_response)


_validated_good = validator(_good)

# start_response arguments that PEP 3333 (and HARDENING.md item 30) forbid.
BAD_START: dict[str, tuple[Any, Any]] = {
    "status-bytes": (b"200 OK", [("Content-Type", "text/plain")]),
    "status-no-reason": ("200", [("Content-Type", "text/plain")]),
    "status-four-digits": ("2000 OK", [("Content-Type", "text/plain")]),
    "status-letters": ("abc OK", [("Content-Type", "text/plain")]),
    "status-crlf": ("200 OK\r\nX-Injected: 1", [("Content-Type", "text/plain")]),
    "headers-dict": ("200 OK", {"Content-Type": "text/plain"}),
    "name-bytes": ("200 OK", [(b"Content-Type", "text/plain")]),
    "value-int": ("200 OK", [("Content-Type", "text/plain"), ("X-Number", 5)]),
    "value-crlf": ("200 OK", [("Content-Type", "text/plain"), ("X-A", "a\r\nX-Injected: 1")]),
    "value-lf": ("200 OK", [("Content-Type", "text/plain"), ("X-A", "a\nX-Injected: 1")]),
    "value-nul": ("200 OK", [("Content-Type", "text/plain"), ("X-A", "a\x00b")]),
    "name-crlf": ("200 OK", [("Content-Type", "text/plain"), ("X-A\r\nX-Injected", "1")]),
    "name-colon": ("200 OK", [("Content-Type", "text/plain"), ("X-A: b", "1")]),
    "name-space": ("200 OK", [("Content-Type", "text/plain"), ("X A", "1")]),
    "name-latin1": ("200 OK", [("Content-Type", "text/plain"), ("X-\xe9", "1")]),
}
# Hop-by-hop headers from the application: harmless, so served without them (a warning once
# per name; `Connection: close` closes the connection), as gunicorn does. Not an item 30 500.
HOP_BY_HOP_START: dict[str, tuple[str, str]] = {
    "connection": ("Connection", "close"),
    "keep-alive": ("Keep-Alive", "timeout=5"),
    "transfer-encoding": ("Transfer-Encoding", "chunked"),
    "upgrade": ("Upgrade", "h2c"),
    "proxy-connection": ("Proxy-Connection", "keep-alive"),
    "trailer": ("Trailer", "X-Checksum"),
}


def _bad_start(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    status, headers = BAD_START[environ["PATH_INFO"].rpartition("/")[2]]
    start_response(status, headers)
    return [b"should never be sent"]


def _hop_start(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    name, value = HOP_BY_HOP_START[environ["PATH_INFO"].rpartition("/")[2]]
    start_response("200 OK", [("Content-Type", "text/plain"), (name, value)])
    return [b"served without it"]


def _start_twice(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    start_response("201 Created", [("Content-Type", "text/plain")])  # no exc_info: an error
    return [b"should never be sent"]


def _str_body(environ: Environ, start_response: StartResponse) -> Iterable[Any]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return ["a str, not bytes"]


def _raise_before(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    raise AppFailure("raised before start_response")


def _raise_after(environ: Environ, start_response: StartResponse) -> Iterator[bytes]:
    headers = [("Content-Type", "text/plain")]
    if environ["PATH_INFO"].endswith("-cl"):
        headers.append(("Content-Length", "100"))
    start_response("200 OK", headers)
    yield b"first part;"
    raise AppFailure("raised after the response started")


def _through_write(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    """The PEP 3333 write() path: /raise-after-write raises after writing; /cl-long-write
    writes ten bytes under a declared Content-Length of 5."""
    declared = "5" if environ["PATH_INFO"] == "/cl-long-write" else "100"
    write = start_response("200 OK", [("Content-Type", "text/plain"),
                                      ("Content-Length", declared)])
    if declared == "5":
        write(b"0123456789")
        return []
    write(b"first part;")
    raise AppFailure("raised after the response started")


def _length_mismatch(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    path = environ["PATH_INFO"]
    declared = 5 if path.startswith("/cl-long") else 100
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(declared))])
    if path.endswith("-stream"):  # the server cannot know the total before sending
        return iter([b"01234", b"56789"])
    return [b"0123456789"]


RAW_ROUTES = {
    "/start-twice": _start_twice,
    "/str-body": _str_body,
    "/raise-before": _raise_before,
    "/raise-after-cl": _raise_after,
    "/raise-after-chunked": _raise_after,
    "/cl-long": _length_mismatch,
    "/cl-short": _length_mismatch,
    "/cl-long-stream": _length_mismatch,
    "/cl-long-write": _through_write,
    "/raise-after-write": _through_write,
    "/cl-short-stream": _length_mismatch,
}


def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    """The one application of every hardening server: routes by path."""
    path = environ.get("PATH_INFO", "")
    _log(f"HARDENING-SERVED {path}")
    if path.startswith("/bad-start/"):
        return _bad_start(environ, start_response)
    if path.startswith("/hop-start/"):
        return _hop_start(environ, start_response)
    if path in RAW_ROUTES:
        return RAW_ROUTES[path](environ, start_response)
    if path == "/read" and "how=all" in environ.get("QUERY_STRING", ""):
        return _read(environ, start_response)  # validate forbids read() without a size
    return _validated_good(environ, start_response)


# ---------------------------------------------------------------- the server process


@dataclass
class ServerProcess:
    """`python -m server APP --bind 127.0.0.1:0 FLAGS...` started once per test module
    through tests/e2e/conftest.py's `start_server` (its `serve` fixture is per test), with
    what these tests need on top: log marks and waiting for a line in the log."""

    log_path: Path
    flags: tuple[str, ...] = ()
    running: Any = None  # tests.e2e.conftest.RunningServer, once started

    def start(self) -> ServerProcess:
        from tests.e2e.conftest import start_server  # not at import: the server imports us

        self.running = start_server(APP, *self.flags, log_path=self.log_path)
        return self

    @property
    def port(self) -> int:
        port: int = self.running.port
        return port

    @property
    def process(self) -> subprocess.Popen[bytes]:
        process: subprocess.Popen[bytes] = self.running.process
        return process

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def mark(self) -> int:
        return len(self.log())

    def log_since(self, mark: int) -> str:
        return self.log()[mark:]

    def wait_for_log(self, pattern: str, timeout_s: float = 5.0,
                     since: int = 0) -> re.Match[str] | None:
        """The first match of `pattern` in the log after offset `since`, waiting for it."""
        deadline = time.monotonic() + timeout_s
        while True:
            found = re.search(pattern, self.log_since(since))
            if found or time.monotonic() > deadline:
                return found
            time.sleep(0.05)

    def alive(self) -> bool:
        return self.running is not None and self.process.poll() is None

    def stop_cleanly(self) -> None:
        """SIGTERM; after everything the module threw at it, the server must exit 0."""
        status = self.running.stop()
        assert status == 0, f"exit status {status} after SIGTERM:\n{self.log()[-3000:]}"


# ---------------------------------------------------------------- raw HTTP/1.1 on a socket


@dataclass
class Exchange:
    data: bytes  # everything received
    closed: bool  # the server closed (EOF or reset) before the read timeout


@dataclass
class Response:
    status: int
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)  # names lower-cased
    body: bytes = b""
    complete: bool = True  # the body framing was satisfied

    def header(self, name: bytes) -> bytes | None:
        values = [value for key, value in self.headers if key == name]
        return b", ".join(values) if values else None


def connect(port: int, timeout_s: float = 5.0) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=timeout_s)


def read_until_closed(sock: socket.socket, timeout_s: float = 5.0) -> Exchange:
    sock.settimeout(timeout_s)
    received = bytearray()
    while True:
        try:
            data = sock.recv(65536)
        except (ConnectionResetError, BrokenPipeError):
            return Exchange(bytes(received), closed=True)
        except TimeoutError:
            return Exchange(bytes(received), closed=False)
        if not data:
            return Exchange(bytes(received), closed=True)
        received += data


def exchange(port: int, request: bytes, *, shut_wr: bool = False,
             timeout_s: float = 5.0) -> Exchange:
    """Send `request` on a new connection, then read until the server closes or time runs out."""
    with connect(port) as sock:
        try:
            sock.sendall(request)
            if shut_wr:
                sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the server may answer and close before taking all of it: read what it said
        return read_until_closed(sock, timeout_s)


def _parse_head(block: bytes) -> Response:
    lines = block.split(b"\r\n")
    parts = lines[0].split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
        raise AssertionError(f"not an HTTP/1.x status line: {lines[0]!r}")
    response = Response(int(parts[1]))
    for line in lines[1:]:
        name, colon, value = line.partition(b":")
        assert colon, f"bad response field line {line!r}"
        response.headers.append((name.lower(), value.strip(b" \t")))
    return response


def _read_chunked(data: bytes, at: int) -> tuple[bytes, int, bool]:
    body = bytearray()
    while True:
        line_end = data.find(b"\r\n", at)
        if line_end < 0:
            return bytes(body), len(data), False
        size = int(data[at:line_end].split(b";")[0], 16)
        if size == 0:
            trailer_end = data.find(b"\r\n\r\n", line_end)
            if data[line_end:line_end + 4] == b"\r\n\r\n":
                return bytes(body), line_end + 4, True
            if trailer_end < 0:
                return bytes(body), len(data), False
            return bytes(body), trailer_end + 4, True
        start = line_end + 2
        if len(data) < start + size + 2:
            body += data[start:]
            return bytes(body), len(data), False
        body += data[start:start + size]
        at = start + size + 2


def parse_responses(data: bytes, head_request: bool = False) -> tuple[list[Response], bytes]:
    """Split received bytes into responses (1xx skipped) and whatever does not parse as one."""
    responses: list[Response] = []
    at = 0
    while at < len(data):
        head_end = data.find(b"\r\n\r\n", at)
        if head_end < 0:
            break
        response = _parse_head(data[at:head_end])
        at = head_end + 4
        if 100 <= response.status < 200:
            continue
        length = response.header(b"content-length")
        if head_request or response.status in (204, 304):
            pass
        elif b"chunked" in (response.header(b"transfer-encoding") or b"").lower():
            response.body, at, response.complete = _read_chunked(data, at)
        elif length is not None:
            response.body = data[at:at + int(length)]
            response.complete = len(response.body) == int(length)
            at += len(response.body)
        else:
            response.body, at = data[at:], len(data)  # close-delimited
        responses.append(response)
    return responses, data[at:]


# ---------------------------------------------------------------- the checks every item shares

_probe_counter = iter(range(1, 1 << 30))


def probe_request() -> tuple[bytes, str]:
    """A valid request to pipeline after a bad one, and the path the application would log."""
    path = f"/pipelined-{os.getpid()}-{next(_probe_counter)}"
    return b"GET %s HTTP/1.1\r\nHost: probe\r\n\r\n" % path.encode(), path


def assert_serves(server: ServerProcess) -> None:
    """Another client, on a new connection, still gets a well-formed 200."""
    got = exchange(server.port, b"GET /alive HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    responses, rest = parse_responses(got.data)
    assert [r.status for r in responses] == [200], got.data[:300]
    assert responses[0].body == b"ok /alive" and not rest


def assert_rejected(server: ServerProcess, request: bytes, status: int,
                    *, probe: bool = True, leading: int = 0) -> Response:
    """`request` gets exactly one `status` answer with Connection: close, then the server
    closes; a valid request pipelined behind it is never parsed; others are still served.
    `leading`: how many valid requests `request` starts with (each must get a 200 first)."""
    probe_bytes, probe_path = probe_request() if probe else (b"", "")
    got = exchange(server.port, request + probe_bytes)
    responses, rest = parse_responses(got.data)
    assert len(responses) == leading + 1, f"expected {leading + 1} answers: {got.data[:900]!r}"
    assert [r.status for r in responses[:leading]] == [200] * leading, got.data[:900]
    response = responses[leading]
    assert response.status == status, f"expected {status}, got {got.data[:600]!r}"
    assert b"close" in (response.header(b"connection") or b"").lower(), got.data[:600]
    assert response.complete and rest == b"", f"bytes after the answer: {got.data[:600]!r}"
    assert got.closed, "the connection stayed open after the error"
    if probe:
        assert f"HARDENING-SERVED {probe_path}\n" not in server.log(), \
            "the request pipelined after the bad one was parsed and served"
    assert_serves(server)
    return response


def assert_clean_log(server: ServerProcess, mark: int) -> None:
    """Nothing logged as a crash since `mark`: bad input is not a server error."""
    text = server.log_since(mark)
    assert "Traceback" not in text, text[-3000:]
    assert "Exception ignored" not in text, text[-3000:]
    assert not re.search(r"\[(ERROR|CRITICAL)\]", text), text[-3000:]
    assert server.alive(), "the server process died"
