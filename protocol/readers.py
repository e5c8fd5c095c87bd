# Readers turn the receive buffer into events, one reader per (role, state), and for bodies
# one per framing: Content-Length, chunked, or read-until-close (HTTP/1.0 style). A reader
# returns an event, or None when it needs more bytes, or raises RemoteProtocolError;
# read_eof() says what the end of the stream means in its state.
#
# Heads are found with one search that remembers how far it looked. Errors that a prefix
# of the bytes already shows (first byte, bare CR or LF, request line too long, head too
# large) are reported as soon as that prefix has arrived, and the earliest one wins, so a
# head gives the same answer whole, byte by byte or in any pieces.
from __future__ import annotations

import re

from .errors import RemoteProtocolError, bad_input
from .events import (
    ConnectionClosed,
    Data,
    Event,
    parsed_data,
    parsed_end_of_message,
    parsed_response,
)
from .head import (
    TCHAR_BYTES,
    check_controls,
    check_field_limits,
    head_facts,
    parse_fields,
    parse_request,
    parse_status_line,
    parse_trailers,
)
from .headers import PLAIN_FACTS, Headers, HeadFacts
from .limits import Limits
from .receivebuffer import ReceiveBuffer

MAX_LEADING_EMPTY_LINES = 8
# Every control byte but HTAB; see HeadScanner.take.
_CR_OR_LF = (b"\r", b"\n")
CONTROLS = bytes([*range(0x09), *range(0x0A, 0x20), 0x7F])

# chunk = chunk-size [ chunk-ext ] CRLF (RFC 9112 7.1.1); BWS around ";" and "=" only, so
# no whitespace before the CRLF (`a \r\n`, which h11 accepts); at most 16 hex digits.
_QUOTED = rb'"(?:[\t \x21\x23-\x5b\x5d-\x7e\x80-\xff]|\\[\t \x21-\x7e\x80-\xff])*"'
_TOKEN = rb"[-!#$%&'*+.^_`|~0-9A-Za-z]+"
CHUNK_LINE_FULLMATCH = re.compile(
    rb"([0-9A-Fa-f]{1,16})(?:[ \t]*;[ \t]*" + _TOKEN
    + rb"(?:[ \t]*=[ \t]*(?:" + _TOKEN + rb"|" + _QUOTED + rb"))?)*"
).fullmatch


NO_FIELDS = Headers([])  # shared by EndOfMessage events without trailers; never mutated
# Events are immutable, so one EndOfMessage without trailers serves every message that
# has none (h11 makes a new one each time; they compare equal).
END_OF_MESSAGE = parsed_end_of_message(NO_FIELDS)


class Reader:
    """Base: a reader that needs nothing; EOF is a ConnectionClosed."""

    __slots__ = ()

    def __call__(self, buf: ReceiveBuffer) -> Event | None:
        raise NotImplementedError

    def read_eof(self) -> Event:
        return ConnectionClosed()


def _first_bare_cr_or_lf(buf: ReceiveBuffer, start: int, end: int) -> int:
    """Index of the first byte in [start, end) showing a bare CR or LF, or -1. A CR at
    end-1 is not judged yet; a bare CR shows at the byte after it."""
    lf = buf.find(b"\n", start, end)
    while lf >= 0 and lf > 0 and buf.byte_at(lf - 1) == 0x0D:
        lf = buf.find(b"\n", lf + 1, end)
    cr = buf.find(b"\r", start - 1 if start > 0 else 0, end - 1)
    while cr >= 0 and buf.byte_at(cr + 1) == 0x0A:
        cr = buf.find(b"\r", cr + 1, end - 1)
    found = [at for at in (lf, cr + 1 if cr >= 0 else -1) if at >= 0]
    return min(found) if found else -1


class HeadScanner:
    """Finds a complete head (or trailer section) in the buffer and reports the prefix
    errors in order of where they show.

    Stricter than h11: lines end with CRLF only (a bare CR or LF anywhere -> 400; h11
    accepts bare LF); no control byte but HTAB (-> 400); a head must start with a token
    byte (h11 refuses only bytes below "!"); the head cap holds however the head arrives
    (h11 checks it only while waiting for more bytes)."""

    __slots__ = ("limits", "state", "what", "line_limit", "check_first_byte", "_line_seen",
                 "_line_limit", "_first_alarm", "_alarm")

    def __init__(
        self, limits: Limits, state: str, what: str, line_limit: int | None,
        check_first_byte: bool,
    ) -> None:
        self.limits = limits
        self.state = state
        self.what = what
        self.line_limit = line_limit
        self.check_first_byte = check_first_byte
        self._line_seen = False
        self._line_limit = limits.head if line_limit is None else line_limit
        # Buffer sizes at which a partial head needs a closer look (line limit, head cap).
        self._first_alarm = min(limits.head, self._line_limit + 2)
        self._alarm = self._first_alarm

    def take(self, buf: ReceiveBuffer) -> tuple[bytes, list[bytes]] | None:
        """(head, lines) once the blank line has arrived; None while more is needed.

        A complete head is checked as a whole: deleting every control byte but HTAB must
        remove exactly the CRLF pairs the split found (so no bare CR or LF and no other
        control byte), and the sizes and first byte must be in bounds; otherwise the slow
        path names the error."""
        # A head that arrived whole is found and taken in one call; a partial one is
        # searched by find_head_end, which remembers how far it looked.
        head = buf.take_whole_head() if buf._scanned == 0 else None
        if head is None:
            end = buf.find_head_end(self._alarm)
            if end < 0:
                if end == -2:
                    self._check_prefix(buf, buf.new_bytes_start(), len(buf), False)
                return None
            head = buf.take_head(end, 4)
        self._line_seen = False
        self._alarm = self._first_alarm
        lines = head.split(b"\r\n")
        if (
            len(head) + 4 > self.limits.head
            or len(head) - len(head.translate(None, CONTROLS)) != 2 * len(lines) - 2
            or len(lines[0]) > self._line_limit
            or (self.check_first_byte and head[0] not in TCHAR_BYTES)
        ):
            self._refuse_complete(head)
        return head, lines

    def _refuse_complete(self, head: bytes) -> None:
        """Raise the error of a complete head that failed the whole-block checks: the
        earliest prefix error, else the control byte."""
        whole = ReceiveBuffer()
        whole.feed(head + b"\r\n\r\n")
        self._check_prefix(whole, 0, len(whole), True)
        self._line_seen = False
        check_controls(head, self.state)
        raise bad_input(f"malformed {self.what}", self.state, head)  # pragma: no cover

    def _check_prefix(
        self, buf: ReceiveBuffer, new_start: int, size: int, complete: bool
    ) -> None:
        errors: list[tuple[int, RemoteProtocolError]] = []
        state = self.state
        if self.check_first_byte and new_start == 0 and size and (
            buf.byte_at(0) not in TCHAR_BYTES
        ):
            errors.append((0, bad_input(f"illegal {self.what}", state, buf.peek(48))))
        bare = _first_bare_cr_or_lf(buf, new_start, size)
        if bare >= 0:
            errors.append((bare, bad_input(f"bare CR or LF in {self.what}", state,
                                           buf.peek(bare + 1)[-48:])))
        limit = self.line_limit
        if limit is not None and not self._line_seen:
            # From 0, not new_start: another reader may have searched part of this head.
            if buf.find(b"\r\n", 0, min(size, limit + 2)) >= 0:
                self._line_seen = True
                self._alarm = self.limits.head
            elif size >= limit + 2:
                errors.append((limit + 1, bad_input(
                    f"start line longer than {limit} bytes", state, buf.peek(48), 414)))
        if size > self.limits.head or (size == self.limits.head and not complete):
            errors.append((self.limits.head - 1, bad_input(
                f"{self.what} larger than {self.limits.head} bytes", state, buf.peek(48), 431)))
        if errors:
            raise min(errors, key=lambda pair: pair[0])[1]


class RequestHeadReader(Reader):
    """Reads a Request in the client's IDLE state. Up to 8 empty lines (CRLF) before the
    request line are skipped (RFC 9112 2.2); h11 rejects them."""

    __slots__ = ("limits", "scanner", "facts", "_empty_lines")

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.scanner = HeadScanner(limits, "IDLE", "request head", limits.line, True)
        self.facts: HeadFacts = PLAIN_FACTS
        self._empty_lines = 0

    def __call__(self, buf: ReceiveBuffer) -> Event | None:
        # Empty lines can only come before the head's first byte has been looked at.
        if (
            buf._scanned == 0
            and buf._data.startswith(_CR_OR_LF, buf._pos)
            and not self._skip_empty_lines(buf)
        ):
            return None
        found = self.scanner.take(buf)
        if found is None:
            return None
        self._empty_lines = 0
        head, lines = found
        event, self.facts = parse_request(head, lines, self.limits, "IDLE")
        return event

    def _skip_empty_lines(self, buf: ReceiveBuffer) -> bool:
        while buf.startswith(b"\r\n"):
            self._empty_lines += 1
            if self._empty_lines > MAX_LEADING_EMPTY_LINES:
                raise bad_input("too many empty lines before the request line", "IDLE",
                                buf.peek(48))
            buf.skip(2)
        if buf.startswith(b"\n") or (len(buf) > 1 and buf.startswith(b"\r")):
            raise bad_input("bare CR or LF before the request line", "IDLE", buf.peek(48))
        return len(buf) > 0 and not buf.startswith(b"\r")


class ResponseHeadReader(Reader):
    """Reads an InformationalResponse or Response (client side)."""

    __slots__ = ("limits", "scanner", "facts", "state")

    def __init__(self, limits: Limits, state: str) -> None:
        self.limits = limits
        self.state = state
        self.scanner = HeadScanner(limits, state, "response head", limits.line, True)
        self.facts: HeadFacts = PLAIN_FACTS

    def __call__(self, buf: ReceiveBuffer) -> Event | None:
        if buf.startswith(b"\r") or buf.startswith(b"\n"):
            raise bad_input("no response line received", self.state, buf.peek(48))
        found = self.scanner.take(buf)
        if found is None:
            return None
        head, lines = found
        state = self.state
        check_field_limits(lines, self.limits, state)
        version, status, reason = parse_status_line(lines[0], state)
        headers, special = parse_fields(lines, 1, state)
        if special is None:
            self.facts = PLAIN_FACTS
        else:
            self.facts = head_facts(special, version, state, False)[0]
        return parsed_response(status, reason, headers, version)


class ExpectNothing(Reader):
    """DONE, MUST_CLOSE, CLOSED: bytes here are an error (PAUSED covers pipelining)."""

    __slots__ = ("state",)

    def __init__(self, state: str) -> None:
        self.state = state

    def __call__(self, buf: ReceiveBuffer) -> Event | None:
        if buf:
            raise bad_input("Got data when expecting EOF", self.state, buf.peek(48))
        return None


class NoBodyReader(Reader):
    """A body of length 0: the EndOfMessage at once. Stateless, so one serves all."""

    __slots__ = ()

    def __call__(self, buf: ReceiveBuffer) -> Event | None:
        return END_OF_MESSAGE


NO_BODY = NoBodyReader()


class ContentLengthReader(Reader):
    __slots__ = ("_length", "_remaining")

    def __init__(self, length: int) -> None:
        self._length = length
        self._remaining = length

    def __call__(self, buf: ReceiveBuffer) -> Event | None:
        remaining = self._remaining
        if remaining == 0:
            return END_OF_MESSAGE
        data = buf.take(remaining)
        if data is None:
            return None
        self._remaining = remaining - len(data)
        return parsed_data(data, False, False)

    def read_eof(self) -> Event:
        raise RemoteProtocolError(
            "peer closed connection without sending complete message body "
            f"(received {self._length - self._remaining} bytes, expected {self._length})"
        )


class ChunkedReader(Reader):
    """Chunked coding, strictly: chunk-size 1*HEXDIG (at most 16), chunk-ext by the RFC
    9112 7.1.1 grammar, exactly CRLF after chunk data (h11 accepts any chunk-ext bytes,
    whitespace before the CRLF and up to 20 hex digits, but refuses the grammar's BWS
    before ";", which we accept).
    chunk_start is set on the first Data of every chunk, also when its size line and its
    data arrive apart (h11 then drops the flag)."""

    __slots__ = ("limits", "_remaining", "_crlf_left", "_fresh", "_trailer", "_line_searched")

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self._remaining = 0  # bytes of chunk data still to come
        self._crlf_left = b""  # what is left of the CRLF after chunk data
        self._fresh = False  # no Data of the current chunk given out yet
        self._trailer: HeadScanner | None = None
        self._line_searched = 0

    def __call__(self, buf: ReceiveBuffer) -> Event | None:
        """The next Data or EndOfMessage. The common case (CRLF, a complete size line and
        some chunk data in the buffer) is read in one pass over the held bytes; anything
        else takes the step-by-step path below."""
        if self._trailer is None:
            data, pos, end = buf.view()
            if self._crlf_left:
                if (
                    end - pos >= 2 and data[pos] == 0x0D and data[pos + 1] == 0x0A
                    and self._crlf_left == b"\r\n"
                ):
                    pos += 2
                    self._crlf_left = b""
            if not self._crlf_left:
                remaining = self._remaining
                if remaining == 0 and self._line_searched == 0:
                    lf = data.find(b"\n", pos, pos + self.limits.field_size + 2)
                    if lf > pos and data[lf - 1] == 0x0D:
                        match = CHUNK_LINE_FULLMATCH(data, pos, lf - 1)
                        if match is not None:
                            remaining = int(match.group(1), 16)
                            if remaining:
                                pos = lf + 1
                                self._fresh = True
                if remaining and end > pos:
                    stop = pos + remaining if end - pos > remaining else end
                    if pos == 0 and stop == end and type(data) is bytes:
                        piece = data
                    else:
                        piece = bytes(data[pos:stop]) if type(data) is not bytes else data[pos:stop]
                    buf.advance(stop)
                    remaining -= stop - pos
                    self._remaining = remaining
                    start = self._fresh
                    self._fresh = False
                    if remaining == 0:
                        self._crlf_left = b"\r\n"
                        return parsed_data(piece, start, True)
                    return parsed_data(piece, start, False)
                self._remaining = remaining
            buf.advance(pos)
        return self._read_stepwise(buf)

    def _read_stepwise(self, buf: ReceiveBuffer) -> Event | None:
        if self._trailer is not None:
            return self._read_trailer(buf)
        if self._crlf_left:
            if not self._take_crlf(buf):
                return None
        if self._remaining == 0:
            size = self._read_size_line(buf)
            if size is None:
                return None
            if size == 0:
                self._trailer = HeadScanner(
                    self.limits, "SEND_BODY", "trailer section", None, False
                )
                return self._read_trailer(buf)
            self._remaining = size
            self._fresh = True
        data = buf.take(self._remaining)
        if data is None:
            return None
        self._remaining -= len(data)
        start = self._fresh
        self._fresh = False
        if self._remaining == 0:
            self._crlf_left = b"\r\n"
            return Data(data, start, True)
        return Data(data, start, False)

    def _take_crlf(self, buf: ReceiveBuffer) -> bool:
        expected = self._crlf_left
        got = buf.peek(len(expected))
        if got != expected[: len(got)]:
            raise bad_input("chunk data not followed by CRLF", "SEND_BODY", buf.peek(48))
        if not got:
            return False
        buf.skip(len(got))
        self._crlf_left = expected[len(got) :]
        return not self._crlf_left

    def _read_size_line(self, buf: ReceiveBuffer) -> int | None:
        limit = self.limits.field_size
        searched = self._line_searched
        lf = buf.find(b"\n", searched, limit + 2)
        if lf < 0:
            size = len(buf)
            cr = buf.find(b"\r", max(searched - 1, 0), size - 1)
            if cr >= 0:
                raise bad_input("bare CR in chunk size line", "SEND_BODY", buf.peek(48))
            if size >= limit + 2:
                raise bad_input("chunk size line too long", "SEND_BODY", buf.peek(48))
            self._line_searched = size
            return None
        self._line_searched = 0
        if lf == 0 or buf.byte_at(lf - 1) != 0x0D:
            raise bad_input("bare LF in chunk size line", "SEND_BODY", buf.peek(lf + 1))
        line = buf.take_head(lf - 1, 2)
        match = CHUNK_LINE_FULLMATCH(line)
        if match is None:
            raise bad_input("illegal chunk size line", "SEND_BODY", line)
        return int(match.group(1), 16)

    def _read_trailer(self, buf: ReceiveBuffer) -> Event | None:
        scanner = self._trailer
        assert scanner is not None
        if buf.startswith(b"\r\n"):
            buf.skip(2)
            return END_OF_MESSAGE
        if not buf or buf.startswith(b"\r"):
            if len(buf) > 1:
                raise bad_input("bare CR in trailer section", "SEND_BODY", buf.peek(48))
            return None
        found = scanner.take(buf)
        if found is None:
            return None
        head, lines = found
        headers: Headers = parse_trailers(head, lines, self.limits, "SEND_BODY")
        return parsed_end_of_message(headers)

    def read_eof(self) -> Event:
        raise RemoteProtocolError(
            "peer closed connection without sending complete message body "
            "(incomplete chunked read)"
        )


class Http10Reader(Reader):
    """A body delimited by the end of the stream (responses without length)."""

    __slots__ = ()

    def __call__(self, buf: ReceiveBuffer) -> Event | None:
        data = buf.take(len(buf))
        if data is None:
            return None
        return parsed_data(data, False, False)

    def read_eof(self) -> Event:
        return END_OF_MESSAGE
