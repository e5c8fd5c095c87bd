"""Differential tests: the same conversations through h11 and protocol give the same
events, states, flags, bytes sent and errors (valid traffic and misuse of the API)."""

from __future__ import annotations

from typing import Any

import pytest
from protocol_difftools import both, closed, data, eom, req, resp

GET = b"GET /index.html?q=1 HTTP/1.1\r\nHost: example.com\r\nUser-Agent: t/1\r\nAccept: */*\r\n\r\n"
GET10 = b"GET / HTTP/1.0\r\nUser-Agent: t/1\r\n\r\n"
POST_CL = b"POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\nhello world"
POST_CHUNKED = (
    b"POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"5\r\nhello\r\n6;name=value;q=\"a b\"\r\n world\r\nA\r\n0123456789\r\n"
    b"0\r\nX-Trailer: yes\r\nX-Other:  two words \r\n\r\n"
)
CL5 = [("Content-Length", "5")]

SERVER_CASES: dict[str, list[Any]] = {
    "keep-alive cycle": [
        ("recv", GET), ("drain",), ("send", resp(200, CL5, "OK")), ("send", data(b"hello")),
        ("send", eom()), ("cycle",), ("recv", GET), ("drain",),
    ],
    "chunked when no length": [
        ("recv", GET), ("drain",), ("send", resp(200, [("Content-Type", "text/plain")])),
        ("send", data(b"abc")), ("send", data(b"")), ("send", eom([("X-T", "1")])), ("cycle",),
    ],
    "HTTP/1.0 client gets close-delimited body": [
        ("recv", GET10), ("drain",), ("send", resp(200)), ("send", data(b"abc")),
        ("send", eom()), ("send", closed()),
    ],
    "HTTP/1.0 with keep-alive still closes": [
        ("recv", b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"), ("drain",),
        ("send", resp(200, [("Connection", "keep-alive")] + CL5)), ("send", data(b"12345")),
        ("send", eom()),
    ],
    "HTTP/1.0 gets trailers refused": [
        ("recv", GET10), ("drain",), ("send", resp(200)), ("send", eom([("X-T", "1")])),
    ],
    "client asks to close": [
        ("recv", b"GET / HTTP/1.1\r\nHost: a\r\nConnection: Close\r\n\r\n"), ("drain",),
        ("send", resp(200, [("Connection", "upgrade, keep-alive")] + CL5)),
        ("send", data(b"12345")), ("send", eom()), ("cycle",),
    ],
    "HEAD": [
        ("recv", b"HEAD / HTTP/1.1\r\nHost: a\r\n\r\n"), ("drain",), ("send", resp(200)),
        ("send", data(b"x")),
    ],
    "HEAD with length": [
        ("recv", b"HEAD / HTTP/1.1\r\nHost: a\r\n\r\n"), ("drain",),
        ("send", resp(200, CL5)), ("send", eom()), ("cycle",),
    ],
    "HEAD from HTTP/1.0": [
        ("recv", b"HEAD / HTTP/1.0\r\n\r\n"), ("drain",), ("send", resp(200)), ("send", eom()),
    ],
    "204 has no body": [
        ("recv", GET), ("drain",), ("send", resp(204)), ("send", data(b"x")),
    ],
    "304 has no body": [
        ("recv", GET), ("drain",), ("send", resp(304, CL5)), ("send", eom()), ("cycle",),
    ],
    "POST with Content-Length": [("recv", POST_CL), ("drain",), ("recv", b""), ("drain",)],
    "POST chunked with extensions and trailers": [("recv", POST_CHUNKED), ("drain",)],
    "POST in pieces": [
        ("recv", POST_CL[:30]), ("drain",), ("recv", POST_CL[30:60]), ("drain",),
        ("recv", POST_CL[60:]), ("drain",),
    ],
    "chunked in pieces": [
        ("recv", POST_CHUNKED[:70]), ("drain",), ("recv", POST_CHUNKED[70:80]), ("drain",),
        ("recv", POST_CHUNKED[80:]), ("drain",),
    ],
    "expect 100-continue": [
        ("recv", b"POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\n"
                 b"Content-Length: 3\r\n\r\n"),
        ("drain",), ("send", resp(100)), ("recv", b"abc"), ("drain",),
        ("send", resp(200, [("Content-Length", "0")])), ("send", eom()), ("cycle",),
    ],
    "expect 100-continue answered at once": [
        ("recv", b"PUT / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n"),
        ("next",), ("send", resp(413, [("Content-Length", "0")])), ("send", eom()),
    ],
    "expect on HTTP/1.0 is ignored": [
        ("recv", b"POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\nx"),
        ("drain",),
    ],
    "pipelining pauses": [
        ("recv", GET + POST_CL + GET), ("drain",), ("drain",), ("send", resp(200, CL5)),
        ("send", data(b"12345")), ("send", eom()), ("cycle",), ("drain",),
        ("send", resp(200, CL5)), ("send", data(b"12345")), ("send", eom()), ("cycle",),
        ("drain",),
    ],
    "upgrade accepted": [
        ("recv", b"GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
                 b"\x81\x05hello"),
        ("drain",), ("drain",), ("send", resp(101, [("Upgrade", "websocket")])), ("drain",),
    ],
    "upgrade declined": [
        ("recv", b"GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: h2c\r\n\r\n"), ("drain",),
        ("send", resp(200, CL5)), ("send", data(b"12345")), ("send", eom()), ("cycle",),
    ],
    "101 without a proposal": [("recv", GET), ("drain",), ("send", resp(101))],
    "CONNECT accepted": [
        ("recv", b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\nTLS"),
        ("drain",), ("send", resp(200)), ("drain",),
    ],
    "CONNECT declined": [
        ("recv", b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n"),
        ("drain",), ("send", resp(407, [("Content-Length", "0")])), ("send", eom()),
        ("cycle",),
    ],
    "client closes while idle": [("recv", b""), ("drain",), ("send", closed())],
    "client closes after request": [
        ("recv", GET), ("drain",), ("recv", b""), ("drain",), ("send", resp(200, CL5)),
        ("send", data(b"12345")), ("send", eom()), ("cycle",),
    ],
    "client closes mid-body": [("recv", POST_CL[:-3]), ("drain",), ("recv", b""), ("drain",)],
    "client closes mid-chunk": [("recv", POST_CHUNKED[:90]), ("recv", b""), ("drain",)],
    "client closes mid-head": [("recv", GET[:20]), ("recv", b""), ("drain",), ("drain",)],
    "data after close refused": [("recv", b""), ("recv", b"x")],
    "response before any request": [
        ("send", resp(408)), ("send", data(b"timeout")), ("send", eom()),
    ],
    "response before request with length": [
        ("send", resp(400, [("Content-Length", "0")])), ("send", eom()),
    ],
    "send_failed": [("recv", GET), ("drain",), ("send_failed",), ("send", resp(200))],
    "wrong events": [
        ("send", data(b"x")), ("recv", GET),
    ],
    "request sent by a server": [("send", req())],
    "EndOfMessage before response": [("recv", GET), ("drain",), ("send", eom())],
    "cycle too early": [("recv", GET), ("drain",), ("cycle",)],
    "garbage after close-bound request": [
        ("recv", b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\nGET"), ("drain",),
        ("send", resp(200, CL5)), ("send", data(b"12345")), ("send", eom()), ("drain",),
    ],
    "too much data": [
        ("recv", GET), ("drain",), ("send", resp(200, CL5)), ("send", data(b"123456")),
    ],
    "too little data": [
        ("recv", GET), ("drain",), ("send", resp(200, CL5)), ("send", data(b"1234")),
        ("send", eom()),
    ],
    "length with trailers": [
        ("recv", GET), ("drain",), ("send", resp(200, [("Content-Length", "0")])),
        ("send", eom([("X-A", "b")])),
    ],
    "user chunked plus length": [
        ("recv", GET), ("drain",),
        ("send", resp(200, [("transfer-encoding", "Chunked"), ("Content-Length", "10"),
                            ("X-A", "b")])),
        ("send", data(b"0123456789")), ("send", eom()),
    ],
    "user chunked to HTTP/1.0": [
        ("recv", GET10), ("drain",), ("send", resp(200, [("Transfer-Encoding", "chunked")])),
        ("send", data(b"abc")), ("send", eom()),
    ],
    "equal lengths merged": [
        ("recv", GET), ("drain",), ("send", resp(200, [("Content-Length", "3, 3")])),
        ("send", data(b"abc")), ("send", eom()),
    ],
    "host first when sending": [
        ("recv", GET), ("drain",), ("send", resp(200, [("A", "1"), ("Host", "x")] + CL5)),
    ],
    "server closes": [
        ("recv", GET), ("drain",), ("send", resp(200, CL5)), ("send", data(b"12345")),
        ("send", eom()), ("send", closed()), ("recv", b""), ("drain",),
    ],
    "error state stays": [("recv", b"\x16\x03\x01junk\r\n\r\n"), ("drain",), ("drain",)],
    "mixed case and odd names": [
        ("recv", b"GET / HTTP/1.1\r\nhOsT: a\r\nX-Weird_Name~: v\r\nEmpty:\r\n"
                 b"Tabs:\tin\tvalue\t\r\nObs-Text: caf\xc3\xa9\r\n\r\n"),
        ("drain",),
    ],
    "absolute-form target": [
        ("recv", b"GET http://example.com/x?y HTTP/1.1\r\nHost: example.com\r\n\r\n"),
        ("drain",),
    ],
    "OPTIONS *": [("recv", b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n"), ("drain",)],
    "zero length explicit": [
        ("recv", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n"), ("drain",),
    ],
    "leading zeros in length": [
        ("recv", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 003\r\n\r\nabc"), ("drain",),
    ],
    "close only as a whole token": [
        ("recv", b"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: ,\r\nConnection: closed, x-close\r\n"
                 b"Expect: 100-continued\r\n\r\n"),
        ("drain",), ("send", resp(200, CL5)), ("send", data(b"12345")), ("send", eom()),
        ("cycle",),
    ],
    "close among other tokens, with expect": [
        ("recv", b"POST / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, CLOSE\r\n"
                 b"Expect: foo, 100-continue\r\nContent-Length: 1\r\n\r\n"),
        ("next",), ("recv", b"x"), ("drain",), ("send", resp(200, CL5)),
    ],
    "host beside other framing fields": [
        ("recv", b"POST / HTTP/1.1\r\nContent-Length: 2\r\nHost: a\r\nUpgrade:\r\n\r\nab"),
        ("drain",),
    ],
    "chunk sizes in upper case with zeros": [
        ("recv", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: CHUNKED\r\n\r\n"
                 b"00A\r\n0123456789\r\n000\r\n\r\n"), ("drain",),
    ],
}

CLIENT_CASES: dict[str, list[Any]] = {
    "simple": [
        ("send", req()), ("send", eom()),
        ("recv", b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nServer: x\r\n\r\nhello"), ("drain",),
        ("cycle",),
    ],
    "POST with length": [
        ("send", req("POST", "/x", [("Host", "a"), ("Content-Length", "3")])),
        ("send", data(b"ab")), ("send", data(b"c")), ("send", eom()),
    ],
    "POST chunked": [
        ("send", req("POST", "/x", [("Host", "a"), ("Transfer-Encoding", "chunked")])),
        ("send", data(b"ab")), ("send", eom([("X-Sum", "1")])),
    ],
    "chunked response with trailers": [
        ("send", req()), ("send", eom()),
        ("recv", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n"
                 b"Expires: never\r\n\r\n"),
        ("drain",),
    ],
    "response until close": [
        ("send", req()), ("send", eom()),
        ("recv", b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nsome data"), ("drain",),
        ("recv", b"more"), ("drain",), ("recv", b""), ("drain",),
    ],
    "HTTP/1.0 response": [
        ("send", req()), ("send", eom()),
        ("recv", b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok"), ("drain",),
    ],
    "HEAD response has no body": [
        ("send", req("HEAD")), ("send", eom()),
        ("recv", b"HTTP/1.1 200 OK\r\nContent-Length: 500\r\n\r\n"), ("drain",), ("cycle",),
    ],
    "204 and 304": [
        ("send", req()), ("send", eom()),
        ("recv", b"HTTP/1.1 204 No Content\r\n\r\n"), ("drain",), ("cycle",),
        ("send", req()), ("send", eom()),
        ("recv", b"HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n"), ("drain",),
    ],
    "100 continue then response": [
        ("send", req("POST", "/", [("Host", "a"), ("Expect", "100-continue"),
                                   ("Content-Length", "2")])),
        ("recv", b"HTTP/1.1 100 Continue\r\n\r\n"), ("drain",), ("send", data(b"ok")),
        ("send", eom()), ("recv", b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
        ("drain",),
    ],
    "101 switch": [
        ("send", req("GET", "/", [("Host", "a"), ("Upgrade", "websocket"),
                                  ("Connection", "upgrade")])),
        ("send", eom()),
        ("recv", b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\nframes"),
        ("drain",), ("drain",),
    ],
    "CONNECT 200": [
        ("send", req("CONNECT", "example.com:443", [("Host", "example.com:443")])),
        ("send", eom()), ("recv", b"HTTP/1.1 200 Connection established\r\n\r\ndata"),
        ("drain",),
    ],
    "status line without reason": [
        ("send", req()), ("send", eom()),
        ("recv", b"HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n"), ("drain",),
    ],
    "reason with spaces": [
        ("send", req()), ("send", eom()),
        ("recv", b"HTTP/1.1 404 Not Found Here \r\nContent-Length: 0\r\n\r\n"), ("drain",),
    ],
    "response before request": [
        ("recv", b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"),
        ("drain",),
    ],
    "server closes early": [("send", req()), ("recv", b""), ("drain",)],
    "close requested": [
        ("send", req("GET", "/", [("Host", "a"), ("Connection", "close")])), ("send", eom()),
        ("recv", b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"), ("drain",),
        ("send", closed()),
    ],
    "pipelined responses": [
        ("send", req()), ("send", eom()),
        ("recv", b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nAHTTP/1.1 200 OK\r\n"),
        ("drain",), ("cycle",), ("drain",),
    ],
    "HTTP/1.0 request refused": [("send", req(version="1.0", headers=[]))],
    "too much data": [
        ("send", req("POST", "/", [("Host", "a"), ("Content-Length", "1")])),
        ("send", data(b"ab")),
    ],
}


@pytest.mark.parametrize("steps", SERVER_CASES.values(), ids=SERVER_CASES.keys())
def test_server_role_matches_h11(steps: list[Any]) -> None:
    theirs, ours = both("SERVER", steps)
    assert ours == theirs


@pytest.mark.parametrize("steps", CLIENT_CASES.values(), ids=CLIENT_CASES.keys())
def test_client_role_matches_h11(steps: list[Any]) -> None:
    theirs, ours = both("CLIENT", steps)
    assert ours == theirs
