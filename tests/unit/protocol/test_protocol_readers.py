"""readers.py: chunk flags, prefix errors in position order, empty lines, EOF."""

from __future__ import annotations

import pytest
from treadle.protocol import Data, EndOfMessage, RemoteProtocolError
from treadle.protocol.limits import Limits
from treadle.protocol.readers import (
    ChunkedReader,
    ContentLengthReader,
    Http10Reader,
    RequestHeadReader,
    _first_bare_cr_or_lf,
)
from treadle.protocol.receivebuffer import ReceiveBuffer

LIMITS = Limits(8190, 100, 8190, 16384)


def events(reader: object, pieces: list[bytes]) -> list[object]:
    buf = ReceiveBuffer()
    out = []
    for piece in pieces:
        buf.feed(piece)
        while True:
            event = reader(buf)  # type: ignore[operator]
            if event is None:
                break
            out.append(event)
            if type(event) is EndOfMessage:
                return out
    return out


def test_chunk_start_survives_a_size_line_arriving_alone() -> None:
    """Documented difference: h11 loses chunk_start in this case."""
    got = events(ChunkedReader(LIMITS), [b"3\r\n", b"ab", b"c", b"\r\n0\r\n\r\n"])
    assert got == [Data(b"ab", True, False), Data(b"c", False, True), EndOfMessage()]


def test_whole_chunks_are_one_event_each() -> None:
    got = events(ChunkedReader(LIMITS), [b"3\r\nabc\r\n2;x=y\r\nde\r\n0\r\nT: 1\r\n\r\n"])
    assert got == [Data(b"abc", True, True), Data(b"de", True, True),
                   EndOfMessage(headers=[("T", "1")])]


def test_chunk_crlf_is_checked_byte_by_byte() -> None:
    reader = ChunkedReader(LIMITS)
    buf = ReceiveBuffer()
    buf.feed(b"1\r\nx\r")
    assert reader(buf) == Data(b"x", True, True)
    assert reader(buf) is None
    buf.feed(b"X")
    with pytest.raises(RemoteProtocolError, match="not followed by CRLF"):
        reader(buf)


@pytest.mark.parametrize(("data", "start", "found"), [
    (b"abc", 0, -1), (b"a\r\nb", 0, -1), (b"a\nb", 0, 1), (b"\n", 0, 0),
    (b"a\rb", 0, 2), (b"ab\r", 0, -1), (b"a\r\nb\n", 2, 4), (b"\r\n\n", 1, 2),
    (b"x\r\rn", 0, 2),
])
def test_first_bare_cr_or_lf(data: bytes, start: int, found: int) -> None:
    buf = ReceiveBuffer()
    buf.feed(data)
    assert _first_bare_cr_or_lf(buf, start, len(data)) == found


@pytest.mark.parametrize(("raw", "hint"), [
    (b"GET /\n" + b"a" * 40 + b"\r\n\r\n", 400),  # bare LF shows first
    (b"GET /" + b"a" * 40 + b"\n\r\n\r\n", 414),  # line limit shows first
    (b"\x16" + b"a" * 40, 400),  # first byte shows first
])
def test_earliest_prefix_error_wins_however_bytes_arrive(raw: bytes, hint: int) -> None:
    limits = Limits(20, 100, 8190, 16384)
    for pieces in ([raw], [raw[i : i + 1] for i in range(len(raw))], [raw[:7], raw[7:]]):
        with pytest.raises(RemoteProtocolError) as info:
            events(RequestHeadReader(limits), pieces)
        assert info.value.error_status_hint == hint


def test_empty_lines_before_request_line() -> None:
    reader = RequestHeadReader(LIMITS)
    assert len(events(reader, [b"\r", b"\n\r\n", b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"])) == 1
    with pytest.raises(RemoteProtocolError, match="too many empty lines"):
        events(RequestHeadReader(LIMITS), [b"\r\n" * 9 + b"GET / HTTP/1.1\r\n\r\n"])


def test_body_readers_at_eof() -> None:
    reader = ContentLengthReader(5)
    assert events(reader, [b"abc"]) == [Data(b"abc")]
    with pytest.raises(RemoteProtocolError, match=r"received 3 bytes, expected 5"):
        reader.read_eof()
    assert Http10Reader().read_eof() == EndOfMessage()
    with pytest.raises(RemoteProtocolError, match="incomplete chunked read"):
        ChunkedReader(LIMITS).read_eof()
