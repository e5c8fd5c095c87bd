# Writers turn events we send into bytes: heads are built in one join, body framing
# bytes (chunk sizes, CRLFs) are written around the data directly. Output is byte for
# byte what h11 writes for the same events.
from __future__ import annotations

from typing import Any

from .errors import LocalProtocolError
from .events import InformationalResponse, Request, Response
from .headers import Headers, RawItem


def encode_head(start_line: bytes, items: list[RawItem]) -> bytes:
    """A start line, the field lines and the blank line, in one join. Host goes first
    (RFC 9110 7.2: a user agent SHOULD), the rest in order, as h11 writes them."""
    out = [start_line]
    hosts = 1
    for raw, name, value in items:
        if name == b"host":
            out.insert(hosts, b"%s: %s\r\n" % (raw, value))
            hosts += 1
        else:
            out.append(b"%s: %s\r\n" % (raw, value))
    out.append(b"\r\n")
    return b"".join(out)


def write_request(request: Request) -> bytes:
    if request.http_version != b"1.1":
        raise LocalProtocolError("I only send HTTP/1.1")
    return encode_head(
        b"%s %s HTTP/1.1\r\n" % (request.method, request.target), request.headers._full_items
    )


def write_response(response: InformationalResponse | Response) -> bytes:
    if response.http_version != b"1.1":
        raise LocalProtocolError("I only send HTTP/1.1")
    headers = response.headers
    # Lines joined with CRLF, the last piece an empty line's CRLF. The constructor that
    # checked the fields usually made their lines too (Headers._lines).
    out = [b"HTTP/1.1 %d %s" % (response.status_code, response.reason)]
    lines = headers._lines
    if lines is None:
        items = headers._full_items
        for raw, name, value in items:
            if name == b"host":  # rare in a response: let encode_head put it first
                return encode_head(out[0] + b"\r\n", items)
            out.append(raw + b": " + value)
    else:
        out += lines
    out.append(b"\r\n")
    return b"\r\n".join(out)


class BodyWriter:
    """Frames body data; `data_parts` keeps the caller's data object as one piece."""

    __slots__ = ()

    def data(self, data: Any) -> bytes:
        return b"".join(self.data_parts(data))

    def data_parts(self, data: Any) -> list[Any]:
        raise NotImplementedError

    def end(self, headers: Headers) -> bytes:
        raise NotImplementedError


class ContentLengthWriter(BodyWriter):
    __slots__ = ("_left",)

    def __init__(self, length: int) -> None:
        self._left = length

    def data(self, data: Any) -> bytes:
        left = self._left - len(data)
        if left < 0:
            self._left = left
            raise LocalProtocolError("Too much data for declared Content-Length")
        self._left = left
        return data if type(data) is bytes else b"".join((data,))

    def data_parts(self, data: Any) -> list[Any]:
        self._count(data)
        return [data]

    def _count(self, data: Any) -> None:
        self._left -= len(data)
        if self._left < 0:
            raise LocalProtocolError("Too much data for declared Content-Length")

    def end(self, headers: Headers) -> bytes:
        if self._left != 0:
            raise LocalProtocolError("Too little data for declared Content-Length")
        if headers._full_items:
            raise LocalProtocolError("Content-Length and trailers don't mix")
        return b""


class ChunkedWriter(BodyWriter):
    __slots__ = ()

    def data(self, data: Any) -> bytes:
        if not data:
            return b""
        return b"%x\r\n%s\r\n" % (len(data), data)

    def data_parts(self, data: Any) -> list[Any]:
        # An empty chunk would read as the end of the body: write nothing.
        if not data:
            return []
        return [b"%x\r\n" % len(data), data, b"\r\n"]

    def end(self, headers: Headers) -> bytes:
        return encode_head(b"0\r\n", headers._full_items)


class Http10Writer(BodyWriter):
    """Body delimited by closing the connection (HTTP/1.0 peers, unknown length)."""

    __slots__ = ()

    def data(self, data: Any) -> bytes:
        return data if type(data) is bytes else b"".join((data,))

    def data_parts(self, data: Any) -> list[Any]:
        return [data]

    def end(self, headers: Headers) -> bytes:
        if headers._full_items:
            raise LocalProtocolError("can't send trailers to HTTP/1.0 client")
        return b""
