"""The WSGI application the attack benchmark, the fuzzer and the soak serve.

Small routes, each what one tool needs: `/` (hello), `/big` (a 10 MiB response made in
64 KiB pieces, for slow readers), `/upload` (reads the whole body and answers its length),
`/error` (a 500 the application was asked for, marked `X-Asked: error`), `/stats` (what
the application saw, as JSON). Every other path reads the body and answers `hello`. It
counts the requests it was called for, and what should never reach an application from
the wire: a CR, LF, NUL or other control byte in any environ value taken from the request,
and a body whose length differs from its `Content-Length`. The fuzzer reads `/stats`.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

StartResponse = Callable[..., Any]
BIG_BYTES = 10 * 1024 * 1024
PIECE_BYTES = 64 * 1024
_PIECE = b"x" * PIECE_BYTES
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")

ASKED_HEADER = ("X-Asked", "error")  # marks the 500s the application was asked for
_lock = threading.Lock()
_seen = {"requests": 0, "control_bytes": 0, "length_mismatch": 0, "asked_errors": 0}


def _count(name: str) -> None:
    with _lock:
        _seen[name] += 1


def _reply(start_response: StartResponse, body: bytes, status: str = "200 OK",
           extra: tuple[tuple[str, str], ...] = ()) -> list[bytes]:
    start_response(status, [("Content-Type", "text/plain"), ("Content-Length", str(len(body))),
                            *extra])
    return [body]


def _read_body(environ: dict[str, Any]) -> int:
    stream = environ["wsgi.input"]
    total = 0
    while piece := stream.read(PIECE_BYTES):
        total += len(piece)
    return total


def _big(start_response: StartResponse) -> Iterator[bytes]:
    start_response("200 OK", [("Content-Type", "application/octet-stream"),
                              ("Content-Length", str(BIG_BYTES))])
    for _ in range(BIG_BYTES // PIECE_BYTES):
        yield _PIECE


def _judge(environ: dict[str, Any]) -> None:
    """Count what the server should have refused before calling us."""
    for key, value in environ.items():
        if (key.startswith("HTTP_") or key in ("PATH_INFO", "QUERY_STRING", "REQUEST_METHOD",
                                               "CONTENT_LENGTH", "CONTENT_TYPE")) \
                and isinstance(value, str) and _CONTROL.search(value):
            _count("control_bytes")
            return


def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    path = environ.get("PATH_INFO", "")
    if path == "/stats":
        with _lock:
            snapshot = dict(_seen)
        return _reply(start_response, json.dumps(snapshot).encode())
    _count("requests")
    _judge(environ)
    if path == "/big":
        return _big(start_response)
    received = _read_body(environ)
    declared = environ.get("CONTENT_LENGTH") or ""
    if declared.isdigit() and int(declared) != received:
        _count("length_mismatch")
    if path == "/error":
        _count("asked_errors")
        return _reply(start_response, b"asked for an error", "500 Internal Server Error",
                      (ASKED_HEADER,))
    if path == "/upload":
        return _reply(start_response, b"%d" % received)
    return _reply(start_response, b"hello")
