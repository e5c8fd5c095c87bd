"""HARDENING.md items 1-8 and 10: bad request lines, targets and header fields, over a socket.

Each bad request is sent as raw bytes with a valid request pipelined right behind it; the
server must answer once with the exact status and `Connection: close`, close the connection,
never parse the pipelined request, log no traceback, and keep serving other clients. The
"served" cases are controls: each sits just inside the rule its neighbours break, so a server
that rejects everything fails too.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.apps_hardening import (
    ServerProcess,
    assert_clean_log,
    assert_rejected,
    exchange,
    parse_responses,
)

H = b"Host: x\r\n"
BODY_OF_5 = b"Content-Length: 5\r\n\r\nhello"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    process = ServerProcess(Path(tmp_path_factory.mktemp("hardening-requests")) / "server.log")
    process.start()
    yield process
    process.stop_cleanly()


def get(*fields: bytes, line: bytes = b"GET / HTTP/1.1") -> bytes:
    return line + b"\r\n" + b"".join(fields) + b"\r\n"


BAD_REQUESTS = [
    # 1. Bare LF or bare CR as a line ending, anywhere in the head.
    pytest.param(b"GET / HTTP/1.1\nHost: x\r\n\r\n", 400, id="1-bare-lf-after-request-line"),
    pytest.param(b"GET / HTTP/1.1\r\nHost: x\n\r\n", 400, id="1-bare-lf-after-field"),
    pytest.param(b"GET / HTTP/1.1\r\nHost: x\r\n\n", 400, id="1-bare-lf-ending-head"),
    pytest.param(b"GET / HTTP/1.1\nHost: x\n\n", 400, id="1-bare-lf-everywhere"),
    pytest.param(b"GET / HTTP/1.1\rHost: x\r\n\r\n", 400, id="1-bare-cr-after-request-line"),
    pytest.param(b"GET / HTTP/1.1\r\nHost: x\rX: y\r\n\r\n", 400, id="1-bare-cr-after-field"),
    pytest.param(b"GET / HTTP/1.1\r\nHost: x\r\n\r\r\n", 400, id="1-bare-cr-ending-head"),
    # 2. The version must be exactly HTTP/D.D; other majors get 505.
    pytest.param(get(H, line=b"GET / HTTP/1.10"), 400, id="2-version-three-digits"),
    pytest.param(get(H, line=b"GET / HTTP/01.1"), 400, id="2-version-leading-zero"),
    pytest.param(get(H, line=b"GET / http/1.1"), 400, id="2-version-lower-case"),
    pytest.param(get(H, line=b"GET / HTTP/1"), 400, id="2-version-no-minor"),
    pytest.param(get(H, line=b"GET / HTTP/1.1 "), 400, id="2-trailing-space"),
    pytest.param(get(H, line=b"GET /"), 400, id="2-no-version"),
    pytest.param(get(H, line=b"GET / HTTP/2.0"), 505, id="2-version-2.0"),
    pytest.param(get(H, line=b"GET / HTTP/0.9"), 505, id="2-version-0.9"),
    pytest.param(get(H, line=b"GET  HTTP/1.1"), 400, id="2-empty-target"),
    pytest.param(get(H, line=b"GET example.com:80 HTTP/1.1"), 400, id="2-authority-form-get"),
    pytest.param(get(H, line=b"GET * HTTP/1.1"), 400, id="2-asterisk-form-get"),
    pytest.param(get(H, line=b"G(T / HTTP/1.1"), 400, id="2-method-not-token"),
    pytest.param(get(H, line=b"GET\x00 / HTTP/1.1"), 400, id="2-method-nul"),
    pytest.param(get(H, line=b"\xffGET / HTTP/1.1"), 400, id="2-method-high-byte"),
    pytest.param(get(H, line=b"GET /a b HTTP/1.1"), 400, id="2-space-in-target"),
    pytest.param(get(H, line=b"GET /\x01 HTTP/1.1"), 400, id="2-control-in-target"),
    # 3. Limits (defaults: line 4094, 100 fields, field 8190, head 65536).
    pytest.param(get(H, line=b"GET /" + b"a" * 5000 + b" HTTP/1.1"), 414, id="3-long-line"),
    pytest.param(get(H, *(b"X-%d: v\r\n" % i for i in range(100))), 431, id="3-101-fields"),
    pytest.param(get(H, b"X: " + b"a" * 9000 + b"\r\n"), 431, id="3-long-field"),
    pytest.param(get(H, *(b"X-%d: %s\r\n" % (i, b"a" * 4000) for i in range(20))), 431,
                 id="3-head-over-cap"),
    # 4. A bare LF before the request line is still a bare LF; the leading-line cap is small.
    pytest.param(b"\nGET / HTTP/1.1\r\nHost: x\r\n\r\n", 400, id="4-leading-bare-lf"),
    pytest.param(b"\r\n" * 5000 + get(H), 400, id="4-too-many-leading-lines"),
    # 5. Field names: no whitespace before the colon, not empty, tchar only.
    pytest.param(get(H, b"Content-Length : 0\r\n"), 400, id="5-space-before-colon"),
    pytest.param(get(H, b"X-A\t: 1\r\n"), 400, id="5-tab-before-colon"),
    pytest.param(get(H, b": empty name\r\n"), 400, id="5-empty-name"),
    pytest.param(get(H, b"X\xa0Y: 1\r\n"), 400, id="5-nbsp-in-name"),
    pytest.param(get(H, b"X\x85Y: 1\r\n"), 400, id="5-nel-in-name"),
    pytest.param(get(H, b"X Y: 1\r\n"), 400, id="5-space-in-name"),
    pytest.param(get(H, b"(X): 1\r\n"), 400, id="5-separator-in-name"),
    pytest.param(get(b" X: 1\r\n", H), 400, id="5-whitespace-before-first-field"),
    pytest.param(get(H, b"no colon here\r\n"), 400, id="5-no-colon"),
    # 6. Control bytes in values; only SP and HTAB count as whitespace.
    pytest.param(get(H, b"X: a\x00b\r\n"), 400, id="6-nul-in-value"),
    pytest.param(get(H, b"X: a\x01b\r\n"), 400, id="6-soh-in-value"),
    pytest.param(get(H, b"X: a\x1fb\r\n"), 400, id="6-us-in-value"),
    pytest.param(get(H, b"X: a\x7fb\r\n"), 400, id="6-del-in-value"),
    pytest.param(get(H, b"X: a\x0b\r\n"), 400, id="6-vt-ending-value"),
    pytest.param(b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: \x0bchunked\r\n\r\n"
                 b"5\r\nhello\r\n0\r\n\r\n", 400, id="6-vt-before-chunked"),
    pytest.param(b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\x0c\r\n\r\n"
                 b"5\r\nhello\r\n0\r\n\r\n", 400, id="6-ff-after-chunked"),
    pytest.param(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: \x0b5\r\n\r\nhello",
                 400, id="6-vt-before-content-length"),
    pytest.param(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\x1c\r\n\r\nhello",
                 400, id="6-fs-after-content-length"),
    pytest.param(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: \xa05\r\n\r\nhello",
                 400, id="6-nbsp-before-content-length"),
    pytest.param(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\x85\r\n\r\nhello",
                 400, id="6-nel-after-content-length"),
    # 7. Obsolete line folding.
    pytest.param(get(H, b"X: a\r\n b\r\n"), 400, id="7-fold-space"),
    pytest.param(get(H, b"X: a\r\n\tb\r\n"), 400, id="7-fold-tab"),
    # 8. Host: exactly one, not a list, required on HTTP/1.1.
    pytest.param(get(H, b"Host: y\r\n"), 400, id="8-duplicate-host"),
    pytest.param(get(H, b"Host: x\r\n"), 400, id="8-duplicate-equal-host"),
    pytest.param(get(b"Host: a, b\r\n"), 400, id="8-host-list"),
    pytest.param(get(), 400, id="8-no-host-http11"),
    # CONNECT: a WSGI application cannot tunnel; refused before any application sees it.
    pytest.param(b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", 501,
                 id="connect-not-tunnelled"),
]


@pytest.mark.parametrize(("request_bytes", "status"), BAD_REQUESTS)
def test_bad_request_is_rejected(server: ServerProcess, request_bytes: bytes,
                                 status: int) -> None:
    mark = server.mark()
    assert_rejected(server, request_bytes, status)
    assert_clean_log(server, mark)


SERVED = [
    pytest.param(b"\r\n\r\n" + get(H), id="4-leading-empty-lines"),
    pytest.param(get(H, b"X: caf\xe9 \tand\tmore\r\n"), id="6-obs-text-and-tab-in-value"),
    pytest.param(get(H, b"X:no-space\r\n"), id="5-no-space-after-colon"),
    pytest.param(get(H, line=b"GET /" + b"a" * 4000 + b" HTTP/1.1"), id="3-line-under-limit"),
    pytest.param(get(H, *(b"X-%d: v\r\n" % i for i in range(99))), id="3-100-fields"),
    pytest.param(get(H, b"X: " + b"a" * 8000 + b"\r\n"), id="3-field-under-limit"),
    pytest.param(get(H, *(b"X-%d: %s\r\n" % (i, b"a" * 4000) for i in range(15))),
                 id="3-head-under-cap"),
    pytest.param(b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: Chunked\r\n\r\n"
                 b"5\r\nhello\r\n0\r\n\r\n", id="13-chunked-any-case"),
    pytest.param(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length:  5 \r\n\r\nhello",
                 id="11-content-length-with-ows"),
]


@pytest.mark.parametrize("request_bytes", SERVED)
def test_valid_neighbour_is_served(server: ServerProcess, request_bytes: bytes) -> None:
    mark = server.mark()
    got = exchange(server.port, request_bytes + b"GET /second HTTP/1.1\r\nHost: x\r\n"
                   b"Connection: close\r\n\r\n")
    responses, rest = parse_responses(got.data)
    assert [r.status for r in responses] == [200, 200], got.data[:600]
    assert responses[1].body == b"ok /second" and rest == b""
    assert_clean_log(server, mark)


def test_http10_without_host_is_served(server: ServerProcess) -> None:
    """Item 8's control: Host is required of HTTP/1.1 only."""
    mark = server.mark()
    got = exchange(server.port, get(line=b"GET / HTTP/1.0"))
    responses, rest = parse_responses(got.data)
    assert [r.status for r in responses] == [200], got.data[:600]
    assert rest == b"" and got.closed
    assert_clean_log(server, mark)


def test_minor_versions_above_1_are_served_or_refused(server: ServerProcess) -> None:
    """RFC 9110 2.5: HTTP/1.2 may be served as HTTP/1.1; refusing it (505) is allowed too."""
    mark = server.mark()
    got = exchange(server.port, get(H, b"Connection: close\r\n", line=b"GET / HTTP/1.2"))
    responses, rest = parse_responses(got.data)
    assert [r.status for r in responses] in ([200], [505]), got.data[:600]
    assert rest == b"" and got.closed
    assert_clean_log(server, mark)


LINEAR_TIME_HEADS = [
    pytest.param([b"X-%d: %s\r\n" % (i, b"a\t" * 3900) for i in range(7)], 200,
                 id="tab-runs"),
    pytest.param([b"X-%d: %s\r\n" % (i, b" " * 7800 + b"a") for i in range(7)], 200,
                 id="space-runs"),
    pytest.param([b"X-%d: %s\r\n" % (i, b"a " * 3900 + b"\x00") for i in range(7)], 400,
                 id="space-runs-then-nul"),
    pytest.param([b"Transfer-Encoding: " + b", " * 3900 + b"chunked\r\n"], 400,
                 id="empty-coding-list"),
]


@pytest.mark.parametrize(("fields", "status"), LINEAR_TIME_HEADS)
def test_value_checks_finish_on_hostile_heads(server: ServerProcess, fields: list[bytes],
                                              status: int) -> None:
    """Item 10: heads built to make a backtracking check explode are answered (5 s net)."""
    mark = server.mark()
    got = exchange(server.port, get(H, b"Connection: close\r\n", *fields))
    responses, _ = parse_responses(got.data)
    assert got.closed, "no answer within the safety net: a check is not linear"
    assert [r.status for r in responses] == [status], got.data[:600]
    assert_clean_log(server, mark)


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    log = Path(tmp_path_factory.mktemp("hardening-limited")) / "server.log"
    process = ServerProcess(log, flags=(
        "--limit-request-line", "100", "--limit-request-fields", "5",
        "--limit-request-field-size", "200", "--limit-request-head-size", "1024"))
    process.start()
    yield process
    process.stop_cleanly()


def fields_of(count: int, size: int) -> list[bytes]:
    """`count` field lines of `size` bytes each, CRLF excluded."""
    return [b"X-%d: " % i + b"a" * (size - len(b"X-%d: " % i)) + b"\r\n" for i in range(count)]


def limited_head(field_size: int) -> bytes:
    """A 99-byte request line and 5 fields (Host included) of `field_size` bytes: within
    every limit but the head's once `field_size` is 195 (1088 bytes)."""
    host = b"Host: " + b"h" * (field_size - 6) + b"\r\n"
    return get(host, *fields_of(4, field_size), line=b"GET /" + b"a" * 85 + b" HTTP/1.1")


LIMITED = [
    pytest.param(get(H, line=b"GET /" + b"a" * 120 + b" HTTP/1.1"), 414, id="line-over-100"),
    pytest.param(get(H, *fields_of(5, 20)), 431, id="6-fields-over-5"),
    pytest.param(get(H, *fields_of(1, 300)), 431, id="field-over-200"),
    pytest.param(limited_head(195), 431, id="head-over-1024"),
]


@pytest.mark.parametrize(("request_bytes", "status"), LIMITED)
def test_limit_settings_take_effect(limited: ServerProcess, request_bytes: bytes,
                                    status: int) -> None:
    """Item 3 with the limits set on the command line, far below the defaults."""
    mark = limited.mark()
    assert_rejected(limited, request_bytes, status)
    assert_clean_log(limited, mark)


@pytest.mark.parametrize("request_bytes", [
    get(H, *fields_of(3, 190), line=b"GET /" + b"a" * 70 + b" HTTP/1.1"),
    limited_head(150),
], ids=["line-fields-within", "head-within"])
def test_requests_within_the_set_limits_are_served(limited: ServerProcess,
                                                   request_bytes: bytes) -> None:
    mark = limited.mark()
    got = exchange(limited.port, request_bytes + b"GET /second HTTP/1.1\r\nHost: x\r\n"
                   b"Connection: close\r\n\r\n")
    responses, rest = parse_responses(got.data)
    assert [r.status for r in responses] == [200, 200] and rest == b"", got.data[:600]
    assert_clean_log(limited, mark)


@pytest.mark.parametrize(("request_bytes", "status"), [
    pytest.param(get(H, line=b"GET / HTTP/1.10"), 400, id="bad-version"),
    pytest.param(get(H, b"Host: y\r\n"), 400, id="duplicate-host"),
    pytest.param(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                 b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400, id="cl-and-te"),
])
def test_bad_request_after_good_ones_on_one_connection(server: ServerProcess,
                                                       request_bytes: bytes,
                                                       status: int) -> None:
    """The rules hold mid-connection: two answers, then one error and the close."""
    mark = server.mark()
    good = b"GET /first HTTP/1.1\r\nHost: x\r\n\r\n"
    response = assert_rejected(server, good + good + request_bytes, status, leading=2)
    assert response.status == status
    assert_clean_log(server, mark)
