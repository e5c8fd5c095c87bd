"""head.py: the rules for one complete head, one function at a time."""

from __future__ import annotations

import pytest
from treadle.protocol import RemoteProtocolError
from treadle.protocol.head import (
    check_target,
    parse_content_length,
    parse_fields,
    parse_status_line,
    parse_transfer_encoding,
    parse_version,
)


@pytest.mark.parametrize(("raw", "version"), [
    (b"HTTP/1.1", b"1.1"), (b"HTTP/1.0", b"1.0"), (b"HTTP/1.2", b"1.1"), (b"HTTP/1.9", b"1.1"),
])
def test_versions_accepted(raw: bytes, version: bytes) -> None:
    assert parse_version(raw, raw, "IDLE") == version


@pytest.mark.parametrize(("raw", "hint"), [
    (b"HTTP/2.0", 505), (b"HTTP/0.9", 505), (b"HTTP/9.9", 505), (b"HTTP/1.10", 400),
    (b"HTTP/1", 400), (b"http/1.1", 400), (b"HTTP/1,1", 400), (b"HTTP/\xd9\xa1.1", 400),
    (b"HTTPS/1.1", 400), (b"", 400),
])
def test_versions_refused(raw: bytes, hint: int) -> None:
    with pytest.raises(RemoteProtocolError) as info:
        parse_version(raw, b"GET / " + raw, "IDLE")
    assert info.value.error_status_hint == hint
    assert "(in state IDLE)" in str(info.value)


@pytest.mark.parametrize(("raw", "value"), [(b"0", 0), (b"007", 7), (b"9" * 18, 10**18 - 1)])
def test_content_length_accepted(raw: bytes, value: int) -> None:
    assert parse_content_length(raw, "IDLE") == value


@pytest.mark.parametrize("raw", [
    b"", b"+1", b"-1", b"1_0", b"0x1", b" 1", b"1 ", b"1,1", b"1" * 19, "\u0661".encode(),
    b"\xb2",
])
def test_content_length_refused(raw: bytes) -> None:
    with pytest.raises(RemoteProtocolError):
        parse_content_length(raw, "IDLE")


@pytest.mark.parametrize(("raw", "hint"), [
    (b"chunked", None), (b"CHUNKED", None), (b" chunked ", None),
    (b"gzip, chunked", 501), (b"x-custom , chunked", 501), (b"gzip", 400),
    (b"chunked, gzip", 400), (b"chunked,chunked", 400), (b",chunked", 400),
    (b"chunked,", 400), (b"", 400), (b"chunked;a=1", 400), (b"chu nked", 400),
])
def test_transfer_encoding(raw: bytes, hint: int | None) -> None:
    if hint is None:
        parse_transfer_encoding(raw.lower(), "IDLE")
        return
    with pytest.raises(RemoteProtocolError) as info:
        parse_transfer_encoding(raw.lower(), "IDLE")
    assert info.value.error_status_hint == hint


@pytest.mark.parametrize(("method", "target", "ok"), [
    (b"GET", b"/", True), (b"GET", b"/a?b#c", True), (b"GET", b"http://a/b", True),
    (b"GET", b"h2c+x.y-z://a", True), (b"OPTIONS", b"*", True), (b"GET", b"*", False),
    (b"CONNECT", b"a.example:443", True), (b"CONNECT", b"[::1]:80", True),
    (b"CONNECT", b"a.example", False), (b"CONNECT", b"/", False), (b"CONNECT", b"*", False),
    (b"GET", b"a.example:80", False), (b"GET", b"a", False), (b"GET", b"/\x80", False),
    (b"GET", b"", False), (b"GET", b"/a\tb", False),
])
def test_target_forms(method: bytes, target: bytes, ok: bool) -> None:
    if ok:
        check_target(method, target, b"", "IDLE")
    else:
        with pytest.raises(RemoteProtocolError):
            check_target(method, target, b"", "IDLE")


def test_status_lines() -> None:
    assert parse_status_line(b"HTTP/1.1 200 OK", "S") == (b"1.1", 200, b"OK")
    assert parse_status_line(b"HTTP/1.0 404", "S") == (b"1.0", 404, b"")
    assert parse_status_line(b"HTTP/1.1 500  two  spaces ", "S") == (
        b"1.1", 500, b" two  spaces ")
    for bad in (b"HTTP/1.1 20", b"HTTP/1.1 2000 x", b"HTTP/1.1 +20 x", b"HTTP/1.1  200",
                b"HTTP/1.1 099 x", b"HTTP/1.1"):
        with pytest.raises(RemoteProtocolError):
            parse_status_line(bad, "S")


def test_fields_are_split_once_and_special_ones_picked_out() -> None:
    lines = [b"GET / HTTP/1.1", b"Host: a", b"X-A:b", b"Transfer-Encoding: Chunked",
             b"Connection: close"]
    headers, special = parse_fields(lines, 1, "IDLE")
    assert headers.raw_items() == [(b"Host", b"a"), (b"X-A", b"b"),
                                   (b"Transfer-Encoding", b"chunked"),
                                   (b"Connection", b"close")]
    assert special == [(b"host", b"a"), (b"transfer-encoding", b"chunked"),
                       (b"connection", b"close")]
    assert parse_fields([b"GET / HTTP/1.1", b"X: 1"], 1, "IDLE")[1] is None
