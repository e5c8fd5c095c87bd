"""The application of tests/e2e/test_slow_clients.py: responses whose every byte can be
checked (a repeating pattern), a file sent as wsgi.file_wrapper, and an upload that answers
its size and digest.

- `/pattern?n=BYTES&piece=BYTES`: n bytes of PATTERN, yielded in pieces, with Content-Length;
- `/file?path=P`: the file as wsgi.file_wrapper (sendfile on a plain socket);
- `/upload`: reads wsgi.input to its end and answers `size sha256`;
- anything else: `hello`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from urllib.parse import parse_qsl

PATTERN = bytes(range(256)) * 256 + b"slow"  # 65,540 bytes: pieces never line up with it


def pattern(size: int) -> bytes:
    repeats = size // len(PATTERN) + 1
    return (PATTERN * repeats)[:size]


def _pieces(body: bytes, piece: int) -> Iterator[bytes]:
    for start in range(0, len(body), piece):
        yield body[start:start + piece]


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    path = environ["PATH_INFO"]
    query = dict(parse_qsl(environ.get("QUERY_STRING", "")))
    if path == "/pattern":
        body = pattern(int(query["n"]))
        start_response("200 OK", [("Content-Type", "application/octet-stream"),
                                  ("Content-Length", str(len(body)))])
        return _pieces(body, int(query.get("piece", "100000")))
    if path == "/file":
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return environ["wsgi.file_wrapper"](open(query["path"], "rb"))  # noqa: SIM115
    if path == "/upload":
        digest = hashlib.sha256()
        size = 0
        while chunk := environ["wsgi.input"].read(65536):
            digest.update(chunk)
            size += len(chunk)
        body = f"{size} {digest.hexdigest()}".encode()
    else:
        body = b"hello"
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
