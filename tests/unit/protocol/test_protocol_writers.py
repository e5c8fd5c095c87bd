"""writers.py: heads and body framing as bytes."""

from __future__ import annotations

import pytest
from treadle.protocol import LocalProtocolError, Request, Response
from treadle.protocol.headers import Headers, normalize_and_validate
from treadle.protocol.writers import (
    ChunkedWriter,
    ContentLengthWriter,
    Http10Writer,
    encode_head,
    write_request,
    write_response,
)


def test_host_goes_first_others_keep_their_order() -> None:
    fields = normalize_and_validate([("B", "1"), ("Host", "h"), ("A", "2"), ("host", "x")])
    assert encode_head(b"", fields._full_items) == (
        b"Host: h\r\nhost: x\r\nB: 1\r\nA: 2\r\n\r\n")


def test_request_and_response_heads() -> None:
    request = Request(method="GET", target="/a", headers=[("Host", "h")])
    assert write_request(request) == b"GET /a HTTP/1.1\r\nHost: h\r\n\r\n"
    response = Response(status_code=200, headers=[], reason="OK")
    assert write_response(response) == b"HTTP/1.1 200 OK\r\n\r\n"
    assert write_response(Response(status_code=404, headers=[])) == b"HTTP/1.1 404 \r\n\r\n"
    with pytest.raises(LocalProtocolError, match="I only send HTTP/1.1"):
        write_response(Response(status_code=200, headers=[], http_version="1.0"))


def test_chunked_framing() -> None:
    writer = ChunkedWriter()
    assert writer.data(b"x" * 26) == b"1a\r\n" + b"x" * 26 + b"\r\n"
    assert writer.data(b"") == b""
    data = bytearray(b"abc")
    parts = writer.data_parts(data)
    assert parts[1] is data and b"".join(parts) == b"3\r\nabc\r\n"
    assert writer.data_parts(b"") == []
    trailers = normalize_and_validate([("X-Sum", "1")])
    assert writer.end(trailers) == b"0\r\nX-Sum: 1\r\n\r\n"
    assert writer.end(Headers([])) == b"0\r\n\r\n"


def test_content_length_counts() -> None:
    writer = ContentLengthWriter(3)
    piece = b"ab"
    assert writer.data(piece) is piece
    assert writer.data_parts(memoryview(b"c"))[0] == b"c"
    assert writer.end(Headers([])) == b""
    with pytest.raises(LocalProtocolError, match="Too much data"):
        ContentLengthWriter(1).data(b"ab")
    with pytest.raises(LocalProtocolError, match="Too little data"):
        ContentLengthWriter(1).end(Headers([]))
    with pytest.raises(LocalProtocolError, match="trailers don't mix"):
        ContentLengthWriter(0).end(normalize_and_validate([("X", "1")]))


def test_close_delimited() -> None:
    writer = Http10Writer()
    assert writer.data(bytearray(b"ab")) == b"ab"
    assert writer.end(Headers([])) == b""
    with pytest.raises(LocalProtocolError, match="trailers to HTTP/1.0"):
        writer.end(normalize_and_validate([("X", "1")]))
