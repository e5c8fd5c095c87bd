"""headers.py: the Headers sequence and validation of what applications give events,
compared with h11 where the rules are the same."""

from __future__ import annotations

from typing import Any

import h11
import pytest
from h11._headers import normalize_and_validate as h11_normalize
from treadle.protocol import LocalProtocolError
from treadle.protocol import headers as ph


def test_headers_sequence_behaviour() -> None:
    headers = ph.normalize_and_validate([("Host", "a"), (b"X-Y", b"1")])
    assert headers == [(b"host", b"a"), (b"x-y", b"1")]
    assert headers.raw_items() == [(b"Host", b"a"), (b"X-Y", b"1")]
    assert headers[1] == (b"x-y", b"1")
    assert headers[-1:] == [(b"x-y", b"1")]
    assert len(headers) == 2 and headers
    assert not ph.Headers([])
    assert repr(headers) == "<Headers([(b'host', b'a'), (b'x-y', b'1')])>"
    assert list(reversed(headers)) == [(b"x-y", b"1"), (b"host", b"a")]
    assert (b"host", b"a") in headers


GOOD = [
    [("Content-Length", "10")],
    [("Content-Length", "10, 10"), ("content-length", "10")],
    [("Transfer-Encoding", "CHUNKED")],
    [("A", "b c\td"), ("Set-Cookie", "x=1"), ("Set-Cookie", "y=2")],
    [("X", "")],
    [("X", "caf\xe9".encode("latin-1"))],
]
BAD = [
    [("Content-Length", "10, 11")],
    [("Content-Length", "1"), ("Content-Length", "2")],
    [("Content-Length", "-1")],
    [("Content-Length", "1" * 21)],
    [("Transfer-Encoding", "gzip")],
    [("Transfer-Encoding", "chunked"), ("Transfer-Encoding", "chunked")],
    [("Bad Name", "x")],
    [("", "x")],
    [("X", " leading")],
    [("X", "trailing ")],
    [("X", "a\r\nb")],
    [("X", "a\x00b")],
]


@pytest.mark.parametrize("items", GOOD)
def test_valid_headers_normalize_as_in_h11(items: list[Any]) -> None:
    ours = ph.normalize_and_validate(items)
    theirs = h11_normalize(items)
    assert ours.raw_items() == theirs.raw_items()
    assert list(ours) == list(theirs)


@pytest.mark.parametrize("items", BAD)
def test_invalid_headers_fail_as_in_h11(items: list[Any]) -> None:
    with pytest.raises(h11.LocalProtocolError) as theirs:
        h11_normalize(items)
    with pytest.raises(LocalProtocolError) as ours:
        ph.normalize_and_validate(items)
    assert str(ours.value) == str(theirs.value)
    assert ours.value.error_status_hint == theirs.value.error_status_hint


@pytest.mark.parametrize("value", [b"a\x01b", b"a\x1fb", b"a\x7fb", b"a\x0bb"])
def test_control_bytes_in_values_are_refused(value: bytes) -> None:
    """Stricter than h11 (docs/engine.md: control byte)."""
    with pytest.raises(LocalProtocolError, match="Illegal header value"):
        ph.normalize_and_validate([("X", value)])


def test_name_cache_is_bounded() -> None:
    for i in range(3000):
        assert ph.lower_name(f"X-Random-{i}".encode()) == f"x-random-{i}".encode()
    assert len(ph._NAME_CACHE) <= ph._NAME_CACHE_MAX
    assert ph.lower_name(b"Bad Name") is None
    assert ph.lower_name(b"") is None


def test_bytesify() -> None:
    assert ph.bytesify("abc") == b"abc"
    assert ph.bytesify(bytearray(b"x")) == b"x"
    with pytest.raises(TypeError):
        ph.bytesify(10)
    with pytest.raises(UnicodeEncodeError):
        ph.bytesify("caf\xe9")


def test_comma_helpers() -> None:
    headers = ph.normalize_and_validate(
        [("Connection", "Keep-Alive, , Upgrade"), ("X", "1"), ("connection", "close")]
    )
    assert ph.get_comma_header(headers, b"connection") == [b"keep-alive", b"upgrade", b"close"]
    replaced = ph.set_comma_header(headers, b"connection", [b"close"])
    assert replaced.raw_items() == [(b"X", b"1"), (b"Connection", b"close")]
