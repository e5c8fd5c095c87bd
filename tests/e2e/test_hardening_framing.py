"""HARDENING.md items 11-20: request body framing (smuggling), chunked syntax, trailers and
bodies cut short, over a raw socket against the real server.

Bad framing goes to `/echo`, whose application reads the whole body and lets any read error
propagate: the answer must be the engine's status with `Connection: close`, and the request
pipelined behind it never parsed (a smuggled request would show up as a second answer, or as a
`HARDENING-SERVED /pipelined-...` line in the log). Bodies cut short go to `/read`, whose
application logs what its reads returned: it must see an error, never a short body that
looks complete.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.apps_hardening import (
    ServerProcess,
    assert_clean_log,
    assert_rejected,
    connect,
    exchange,
    parse_responses,
    probe_request,
    read_until_closed,
)

POST = b"POST /echo HTTP/1.1\r\nHost: x\r\n"
CHUNKED = POST + b"Transfer-Encoding: chunked\r\n\r\n"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    process = ServerProcess(Path(tmp_path_factory.mktemp("hardening-framing")) / "server.log")
    process.start()
    yield process
    process.stop_cleanly()


def with_length(value: bytes, body: bytes = b"hello") -> bytes:
    return POST + b"Content-Length: " + value + b"\r\n\r\n" + body


def with_te(*values: bytes, version: bytes = b"HTTP/1.1") -> bytes:
    fields = b"".join(b"Transfer-Encoding: " + value + b"\r\n" for value in values)
    line = b"POST /echo " + version + b"\r\nHost: x\r\n"
    return line + fields + b"\r\n5\r\nhello\r\n0\r\n\r\n"


def chunked(*pieces: bytes) -> bytes:
    return CHUNKED + b"".join(pieces)


BAD_FRAMING = [
    # 11. Content-Length is 1*DIGIT, once.
    pytest.param(with_length(b"+5"), 400, id="11-plus-sign"),
    pytest.param(with_length(b"-1"), 400, id="11-negative"),
    pytest.param(with_length(b"0x05"), 400, id="11-hex"),
    pytest.param(with_length(b"1_0", b"helloworld"), 400, id="11-underscore"),
    pytest.param(with_length(b"1 0", b"helloworld"), 400, id="11-inner-space"),
    pytest.param(with_length(b"5, 5"), 400, id="11-list-equal"),
    pytest.param(with_length(b"5, 6"), 400, id="11-list-different"),
    pytest.param(with_length(b""), 400, id="11-empty"),
    pytest.param(with_length(b"\xd9\xa5"), 400, id="11-arabic-indic-digit"),
    pytest.param(POST + b"Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello", 400,
                 id="11-two-fields-equal"),
    pytest.param(POST + b"Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", 400,
                 id="11-two-fields-different"),
    pytest.param(with_length(b"9" * 30), 400, id="11-absurdly-large"),
    # 12. Transfer-Encoding and Content-Length together.
    pytest.param(POST + b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
                 b"0\r\n\r\n", 400, id="12-cl-then-te"),
    pytest.param(POST + b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n"
                 b"0\r\n\r\n", 400, id="12-te-then-cl"),
    pytest.param(POST + b"Transfer-Encoding: chunked\r\nContent-Length: 0\r\n\r\n"
                 b"0\r\n\r\n", 400, id="12-te-with-cl-zero"),
    # 13. The last coding must be chunked, once; unknown codings are 501.
    pytest.param(with_te(b"chunked, gzip"), 400, id="13-chunked-not-last"),
    pytest.param(with_te(b"gzip"), 400, id="13-gzip-alone"),
    pytest.param(with_te(b"identity"), 400, id="13-identity"),
    pytest.param(with_te(b",chunked"), 400, id="13-empty-element-first"),
    pytest.param(with_te(b"chunked,"), 400, id="13-empty-element-last"),
    pytest.param(with_te(b"chunked, chunked"), 400, id="13-chunked-twice-in-list"),
    pytest.param(with_te(b"chunked", b"chunked"), 400, id="13-chunked-twice-in-fields"),
    pytest.param(with_te(b"chunked", b"identity"), 400, id="13-conflicting-fields"),
    pytest.param(with_te(b"chunked\x00"), 400, id="13-nul-after-chunked"),
    pytest.param(with_te(b"gzip, chunked"), 501, id="13-gzip-then-chunked"),
    pytest.param(with_te(b"x-custom, chunked"), 501, id="13-unknown-then-chunked"),
    # 14. No Transfer-Encoding on HTTP/1.0.
    pytest.param(with_te(b"chunked", version=b"HTTP/1.0"), 400, id="14-te-on-http10"),
    # 15 and 20. Chunk sizes are 1*HEXDIG, bounded; never int()'s leniency.
    pytest.param(chunked(b"0x5\r\nhello\r\n0\r\n\r\n"), 400, id="15-0x-prefix"),
    pytest.param(chunked(b"+5\r\nhello\r\n0\r\n\r\n"), 400, id="15-plus-sign"),
    pytest.param(chunked(b"-5\r\nhello\r\n0\r\n\r\n"), 400, id="15-minus-sign"),
    pytest.param(chunked(b" 5\r\nhello\r\n0\r\n\r\n"), 400, id="15-leading-space"),
    pytest.param(chunked(b"\x0b5\r\nhello\r\n0\r\n\r\n"), 400, id="15-leading-vt"),
    pytest.param(chunked(b"a \r\n0123456789\r\n0\r\n\r\n"), 400, id="15-trailing-space"),
    pytest.param(chunked(b"5\t\r\nhello\r\n0\r\n\r\n"), 400, id="15-trailing-tab"),
    pytest.param(chunked(b"5_0\r\n" + b"a" * 80 + b"\r\n0\r\n\r\n"), 400, id="15-underscore"),
    pytest.param(chunked(b"\r\nhello\r\n0\r\n\r\n"), 400, id="15-empty-size"),
    pytest.param(chunked(b"g\r\nhello\r\n0\r\n\r\n"), 400, id="15-not-hex"),
    pytest.param(chunked(b"f" * 40 + b"\r\nhello\r\n0\r\n\r\n"), 400, id="15-overflow"),
    # 16. Chunk extensions follow their grammar; no bare CR or LF in them.
    pytest.param(chunked(b"5;a\rb\r\nhello\r\n0\r\n\r\n"), 400, id="16-bare-cr-in-ext"),
    pytest.param(chunked(b"5;a\nb\r\nhello\r\n0\r\n\r\n"), 400, id="16-bare-lf-in-ext"),
    pytest.param(chunked(b"5;\x00\r\nhello\r\n0\r\n\r\n"), 400, id="16-nul-ext"),
    pytest.param(chunked(b"5;a=\x01\r\nhello\r\n0\r\n\r\n"), 400, id="16-control-in-ext-value"),
    pytest.param(chunked(b"5;a b\r\nhello\r\n0\r\n\r\n"), 400, id="16-space-in-ext-name"),
    # 17. Chunk data ends with exactly CRLF.
    pytest.param(chunked(b"5\r\nhelloXX\r\n0\r\n\r\n"), 400, id="17-extra-data"),
    pytest.param(chunked(b"5\r\nhello0\r\n\r\n"), 400, id="17-no-crlf"),
    pytest.param(chunked(b"5\r\nhello\n0\r\n\r\n"), 400, id="17-bare-lf"),
    pytest.param(chunked(b"5\r\nhello\r0\r\n\r\n"), 400, id="17-bare-cr"),
    # 1 again: bare line endings in chunk lines and trailers.
    pytest.param(chunked(b"5\nhello\r\n0\r\n\r\n"), 400, id="1-bare-lf-size-line"),
    pytest.param(chunked(b"5\r\nhello\r\n0\n\r\n"), 400, id="1-bare-lf-last-chunk"),
    pytest.param(chunked(b"5\r\nhello\r\n0\r\nX: y\n\r\n"), 400, id="1-bare-lf-trailer"),
    pytest.param(chunked(b"5\r\nhello\r\n0\r\n\n"), 400, id="1-bare-lf-ending-trailers"),
    pytest.param(chunked(b"5\r\nhello\r\n0\r\nX: a\x00b\r\n\r\n"), 400, id="6-nul-in-trailer"),
    pytest.param(chunked(b"5\r\nhello\r\n0\r\nX: a\r\n b\r\n\r\n"), 400, id="7-fold-in-trailer"),
]


@pytest.mark.parametrize(("request_bytes", "status"), BAD_FRAMING)
def test_bad_framing_is_rejected(server: ServerProcess, request_bytes: bytes,
                                 status: int) -> None:
    mark = server.mark()
    assert_rejected(server, request_bytes, status)
    assert_clean_log(server, mark)


GOOD_FRAMING = [
    pytest.param(chunked(b"5;name=value\r\nhello\r\n0\r\n\r\n"), b"len=5\n", id="16-ext"),
    pytest.param(chunked(b"5 ; name = \"quoted ; value\"\r\nhello\r\n0\r\n\r\n"), b"len=5\n",
                 id="16-quoted-ext-with-bws"),
    pytest.param(chunked(b"00005\r\nhello\r\n000\r\n\r\n"), b"len=5\n", id="15-leading-zeros"),
    pytest.param(chunked(b"A\r\n0123456789\r\n0\r\nX-Trailer: ok\r\n\r\n"), b"len=10\n",
                 id="18-harmless-trailer"),
    pytest.param(with_length(b"0000000005"), b"len=5\n", id="11-leading-zeros"),
]


@pytest.mark.parametrize(("request_bytes", "body"), GOOD_FRAMING)
def test_valid_framing_is_served(server: ServerProcess, request_bytes: bytes,
                                 body: bytes) -> None:
    """Controls beside the rules above; the pipelined request after each is served."""
    mark = server.mark()
    got = exchange(server.port, request_bytes + b"GET /second HTTP/1.1\r\nHost: x\r\n"
                   b"Connection: close\r\n\r\n")
    responses, rest = parse_responses(got.data)
    assert [(r.status, r.body) for r in responses] == [(200, body), (200, b"ok /second")], \
        got.data[:600]
    assert rest == b""
    assert_clean_log(server, mark)


FRAMING_TRAILERS = [
    b"Content-Length: 5", b"Transfer-Encoding: gzip", b"Host: evil.example",
    b"Forwarded: for=203.0.113.9;proto=https", b"X-Forwarded-For: 203.0.113.9",
    b"X-Forwarded-Proto: https", b"X-Forwarded-Host: evil.example",
]


@pytest.mark.parametrize("trailer", FRAMING_TRAILERS, ids=lambda t: t.split(b":")[0].decode())
def test_framing_trailers_are_never_applied(server: ServerProcess, trailer: bytes) -> None:
    """Item 18: rejected (400 and close) or dropped; the environ and the next request on the
    connection are exactly as without the trailer."""
    mark = server.mark()
    request = (b"POST /environ HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"5\r\nhello\r\n0\r\n" + trailer + b"\r\n\r\n")
    got = exchange(server.port, request + b"GET /second HTTP/1.1\r\nHost: x\r\n"
                   b"Connection: close\r\n\r\n")
    responses, rest = parse_responses(got.data)
    assert responses and rest == b"", got.data[:600]
    if responses[0].status == 400:
        assert len(responses) == 1 and got.closed
        assert b"close" in (responses[0].header(b"connection") or b"").lower()
    else:
        assert [(r.status, r.body) for r in responses[1:]] == [(200, b"ok /second")]
        environ = json.loads(responses[0].body)
        assert environ["HTTP_HOST"] == "x" and environ["SERVER_NAME"] != "evil.example"
        assert environ["wsgi.url_scheme"] == "http"
        assert environ.get("CONTENT_LENGTH", "") == ""
        assert "gzip" not in environ.get("HTTP_TRANSFER_ENCODING", "")
        for key in ("HTTP_FORWARDED", "HTTP_X_FORWARDED_FOR", "HTTP_X_FORWARDED_PROTO",
                    "HTTP_X_FORWARDED_HOST", "HTTP_CONTENT_LENGTH"):
            assert key not in environ, key
    assert_clean_log(server, mark)


def read_outcome(server: ServerProcess, test_id: str) -> str:
    found = server.wait_for_log(rf"HARDENING-READ {test_id} (\S+)")
    assert found, f"the application never reported its read for {test_id}"
    return found.group(1)


CUT_SHORT = [
    pytest.param(b"Content-Length: 100\r\n\r\n" + b"a" * 50, "pieces", id="length-pieces"),
    pytest.param(b"Content-Length: 100\r\n\r\n" + b"a" * 50, "all", id="length-read-all"),
    pytest.param(b"Content-Length: 100\r\n\r\n" + b"line\n" * 10, "lines", id="length-lines"),
    pytest.param(b"Content-Length: 100\r\n\r\n", "pieces", id="length-nothing-sent"),
    pytest.param(b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n", "pieces",
                 id="chunked-no-last-chunk"),
    pytest.param(b"Transfer-Encoding: chunked\r\n\r\na\r\nhello", "pieces",
                 id="chunked-cut-mid-chunk"),
    pytest.param(b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n", "pieces",
                 id="chunked-cut-in-trailers"),
    pytest.param(b"Transfer-Encoding: chunked\r\n\r\na\r\nhello", "all", id="chunked-read-all"),
]


@pytest.mark.parametrize(("framing", "how"), CUT_SHORT)
def test_body_cut_short_is_an_error_to_the_app(server: ServerProcess, framing: bytes,
                                               how: str, request: pytest.FixtureRequest) -> None:
    """Item 19: the client sends part of the body, then EOF (shutdown(SHUT_WR))."""
    mark = server.mark()
    test_id = f"cut-{request.node.callspec.id}"
    head = b"POST /read?id=%s&how=%s HTTP/1.1\r\nHost: x\r\n" % (test_id.encode(), how.encode())
    got = exchange(server.port, head + framing, shut_wr=True)
    assert read_outcome(server, test_id).startswith("error:"), server.log_since(mark)[-2000:]
    assert got.closed, "the server kept the half-closed connection open"
    assert_clean_log(server, mark)


@pytest.mark.parametrize("bad_chunk", [b"zz\r\nxx\r\n", b"2\r\nxxYY\r\n", b"2\nxx\r\n"],
                         ids=["size-not-hex", "data-overrun", "bare-lf"])
def test_malformed_chunk_mid_body_is_an_error_to_the_app(server: ServerProcess,
                                                         bad_chunk: bytes) -> None:
    """Item 19: a good first chunk, then a bad one; the app's read fails, the connection
    closes and the request pipelined behind is never parsed."""
    mark = server.mark()
    test_id = f"mid-{bad_chunk[:2].hex()}"
    probe, probe_path = probe_request()
    request = (b"POST /read?id=%s HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"5\r\nhello\r\n" % test_id.encode() + bad_chunk + b"0\r\n\r\n" + probe)
    got = exchange(server.port, request)
    assert read_outcome(server, test_id).startswith("error:"), server.log_since(mark)[-2000:]
    assert got.closed
    assert f"HARDENING-SERVED {probe_path}\n" not in server.log()
    assert_clean_log(server, mark)


def test_body_longer_than_content_length_is_the_next_request(server: ServerProcess) -> None:
    """Bytes past Content-Length are the next request, read as one: here a bad one (400)."""
    mark = server.mark()
    with connect(server.port) as sock:
        sock.sendall(with_length(b"5", b"helloGARBAGE\r\n\r\n"))
        sock.shutdown(socket.SHUT_WR)
        got = read_until_closed(sock)
    responses, rest = parse_responses(got.data)
    assert [(r.status, r.body) for r in responses][:1] == [(200, b"len=5\n")], got.data[:600]
    assert [r.status for r in responses[1:]] == [400] and rest == b""
    assert got.closed
    assert_clean_log(server, mark)


@pytest.mark.parametrize("bad_chunk", [b"zz\r\n", b"5\r\nhelloXX\r\n", b"5\nhello\r\n"],
                         ids=["size-not-hex", "data-overrun", "bare-lf"])
def test_unread_bad_body_is_not_resynchronised(server: ServerProcess, bad_chunk: bytes) -> None:
    """The application answers without reading the body; the server then drains it, finds
    the bad chunk, and must close rather than parse what follows as a request."""
    mark = server.mark()
    probe, probe_path = probe_request()
    request = (b"POST /unread HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"5\r\nhello\r\n" + bad_chunk + b"0\r\n\r\n" + probe)
    got = exchange(server.port, request)
    responses, rest = parse_responses(got.data)
    assert [r.status for r in responses] in ([200], [400]), got.data[:600]
    assert rest == b"" and got.closed
    assert f"HARDENING-SERVED {probe_path}\n" not in server.log()
    assert_clean_log(server, mark)


def test_unread_body_is_never_parsed_as_requests(server: ServerProcess) -> None:
    """A request hidden in an unread Content-Length body stays body: drained (or the
    connection closed), never served."""
    mark = server.mark()
    hidden, hidden_path = probe_request()
    body = hidden.ljust(200, b"x")
    request = (b"POST /unread HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body)
               + body + b"GET /after HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    got = exchange(server.port, request)
    responses, rest = parse_responses(got.data)
    assert [(r.status, r.body) for r in responses] in (
        [(200, b"ok /unread"), (200, b"ok /after")], [(200, b"ok /unread")]), got.data[:600]
    assert rest == b"" and got.closed
    assert f"HARDENING-SERVED {hidden_path}\n" not in server.log()
    assert_clean_log(server, mark)


@pytest.mark.parametrize("piece", [
    b"5;" + b"e" * 100_000 + b"\r\nhello\r\n0\r\n\r\n",
    b"5\r\nhello\r\n0\r\n" + b"".join(b"X-T-%d: %s\r\n" % (i, b"v" * 1000) for i in range(200))
    + b"\r\n",
], ids=["huge-chunk-extension", "huge-trailer-section"])
def test_unbounded_chunk_metadata_is_refused(server: ServerProcess, piece: bytes) -> None:
    """Chunk lines and trailers are bounded like a head: a 4xx and a close, not buffering."""
    mark = server.mark()
    probe, probe_path = probe_request()
    got = exchange(server.port, CHUNKED + piece + probe)
    responses, rest = parse_responses(got.data)
    assert len(responses) == 1 and 400 <= responses[0].status < 500, got.data[:600]
    assert b"close" in (responses[0].header(b"connection") or b"").lower()
    assert rest == b"" and got.closed
    assert f"HARDENING-SERVED {probe_path}\n" not in server.log()
    assert_clean_log(server, mark)


@pytest.mark.parametrize(("framing", "how", "outcome"), [
    pytest.param(b"Content-Length: 5\r\n\r\nhello", "pieces", "complete:5", id="length"),
    pytest.param(b"Content-Length: 12\r\n\r\nline\nline\nxy", "lines", "complete:12",
                 id="length-lines"),
    pytest.param(b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", "pieces",
                 "complete:5", id="chunked"),
    pytest.param(b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", "all",
                 "complete:5", id="chunked-read-all"),
])
def test_reading_to_the_end_of_a_body_stops_there(server: ServerProcess, framing: bytes,
                                                  how: str, outcome: str,
                                                  request: pytest.FixtureRequest) -> None:
    """Reads past the end of a body return b"" at once: they neither block nor eat the next
    pipelined request as body."""
    mark = server.mark()
    test_id = f"end-{request.node.callspec.id}"
    head = b"POST /read?id=%s&how=%s HTTP/1.1\r\nHost: x\r\n" % (test_id.encode(), how.encode())
    got = exchange(server.port, head + framing + b"GET /second HTTP/1.1\r\nHost: x\r\n"
                   b"Connection: close\r\n\r\n")
    responses, rest = parse_responses(got.data)
    assert [(r.status, r.body) for r in responses] == [
        (200, outcome.encode()), (200, b"ok /second")], got.data[:600]
    assert rest == b"" and read_outcome(server, test_id) == outcome
    assert_clean_log(server, mark)
