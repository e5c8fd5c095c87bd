"""The WSGI applications the peer benchmark serves, identical for every server.

Each load gets its own callable so that no server pays for routing the others do not:
`hello` (the keep-alive and connection-per-request loads), `big` (a 64 KiB response) and
`upload` (reads the whole request body in 64 KiB pieces and answers with its length).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

StartResponse = Callable[..., Any]

HELLO_BODY = b"Hello, world!\n"
BIG_BODY = b"x" * (64 * 1024)
READ_CHUNK_BYTES = 64 * 1024


def hello(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    start_response(
        "200 OK",
        [("Content-Type", "text/plain"), ("Content-Length", str(len(HELLO_BODY)))],
    )
    return [HELLO_BODY]


def big(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    start_response(
        "200 OK",
        [("Content-Type", "application/octet-stream"), ("Content-Length", str(len(BIG_BODY)))],
    )
    return [BIG_BODY]


def upload(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    # Read by Content-Length in bounded pieces: the way a careful application reads, and
    # the same work on every server (some servers' read() without a size buffers it all).
    remaining = int(environ.get("CONTENT_LENGTH") or 0)
    stream = environ["wsgi.input"]
    received = 0
    while remaining > 0:
        piece = stream.read(min(READ_CHUNK_BYTES, remaining))
        if not piece:
            break
        received += len(piece)
        remaining -= len(piece)
    body = b"%d\n" % received
    start_response(
        "200 OK",
        [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))],
    )
    return [body]
