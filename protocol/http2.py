# HTTP/2 on top of the h2 package, sans-IO: the connection object the server drives, the
# request header policy shared with HTTP/1.1 (HARDENING 5-11, 23), and a frame gate that
# bounds what a peer can make us buffer or answer before h2 sees the bytes (HARDENING 25).
# No sockets, threads or clocks: the server passes the time in.
#
# Why not h2's own inbound validation: h2 turns a malformed request (bad field, smuggled
# content-length, pseudo-header misuse) into a connection error, ending every other stream
# on the connection; RFC 9113 8.1.1 makes those stream errors. So h2 decodes and keeps
# state, and this module judges each request alone; the server resets just that stream.
from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.settings import SettingCodes, Settings
from h2.stream import H2Stream
from hyperframe.frame import GoAwayFrame

__all__ = [
    "CONNECTION_SPECIFIC",
    "CONNECT_REFUSAL",
    "FLOOD_PAUSE_S",
    "FLOOD_STRIKES",
    "MAX_BLOCK_FRAMES",
    "PREFACE",
    "STRIKE_MEMORY_S",
    "FloodError",
    "FrameGate",
    "H2Limits",
    "MalformedRequest",
    "RequestHead",
    "RequestLimits",
    "check_trailers",
    "goaway_frame",
    "new_server_connection",
    "parse_request",
]

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
CONNECTION_SPECIFIC: frozenset[bytes] = frozenset(
    {b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding", b"upgrade"}
)
MAX_CONNECTION_WINDOW = 16 * 1024 * 1024
_MAX_WINDOW = 2**31 - 1


@dataclass(frozen=True)
class H2Limits:
    """The HTTP/2 settings we announce (and enforce) for one connection."""

    max_concurrent_streams: int = 100
    initial_window_size: int = 65535
    max_frame_size: int = 16384
    max_header_list_size: int = 65536

    @property
    def connection_window(self) -> int:
        """Room for every stream's window, capped: one stalled stream cannot block the rest."""
        wanted = min(self.initial_window_size * self.max_concurrent_streams,
                     MAX_CONNECTION_WINDOW)
        return min(max(wanted, self.initial_window_size, 65535), _MAX_WINDOW)


class _StreamWithoutLengthCheck(H2Stream):
    """h2 ends the whole connection when DATA disagrees with content-length; the server
    checks the length per stream instead (RequestHead.content_length) and resets only it."""

    def _initialize_content_length(self, headers: Iterable[tuple[bytes, bytes]]) -> None:
        self._expected_content_length = None


class ServerConnection(H2Connection):
    """h2's connection with per-stream (not per-connection) content-length errors, and a
    short memory of closed streams: h2 keeps 65,536 of them per connection (about 10 MiB
    once a long-lived connection has used that many streams, so a few hundred busy clients
    could hold gigabytes). A late frame for a stream forgotten here still gets
    RST_STREAM(STREAM_CLOSED); only the finer answer for streams we reset ourselves
    (ignoring their late frames) is lost for streams that old."""

    MAX_CLOSED_STREAMS = 1024

    def _begin_new_stream(self, stream_id: int, allowed_ids: object) -> H2Stream:
        stream = super()._begin_new_stream(stream_id, allowed_ids)  # type: ignore[arg-type]
        stream.__class__ = _StreamWithoutLengthCheck
        return stream


def new_server_connection(limits: H2Limits) -> ServerConnection:
    """A server-side connection announcing `limits`; call initiate_connection() (or
    initiate_upgrade_connection()) next. Headers stay bytes; outbound headers come from the
    WSGI bridge, already validated, so h2 does not check them again."""
    config = H2Configuration(
        client_side=False,
        header_encoding=None,
        validate_inbound_headers=False,  # parse_request does it, per stream
        normalize_inbound_headers=True,  # joins cookie crumbs
        validate_outbound_headers=False,
        normalize_outbound_headers=False,
        split_outbound_cookies=False,
    )
    connection = ServerConnection(config=config)
    connection.local_settings = Settings(
        client=False,
        initial_values={
            SettingCodes.MAX_CONCURRENT_STREAMS: limits.max_concurrent_streams,
            SettingCodes.INITIAL_WINDOW_SIZE: limits.initial_window_size,
            SettingCodes.MAX_FRAME_SIZE: limits.max_frame_size,
            SettingCodes.MAX_HEADER_LIST_SIZE: limits.max_header_list_size,
            SettingCodes.ENABLE_PUSH: 0,
        },
    )
    connection.max_inbound_frame_size = limits.max_frame_size
    return connection


def goaway_frame(last_stream_id: int, error_code: int = 0) -> bytes:
    """A GOAWAY to send while streams up to `last_stream_id` are still served.

    h2's close_connection() would also close its state machine, after which the responses
    in flight could not be sent; a graceful stop needs the frame alone (RFC 9113 6.8)."""
    frame = GoAwayFrame(0, last_stream_id=last_stream_id, error_code=error_code)
    return bytes(frame.serialize())


# --- the request header policy ---------------------------------------------------------------


class MalformedRequest(Exception):
    """A request that must not reach the application.

    `status` None: reset the stream with PROTOCOL_ERROR (a malformed message, RFC 9113
    8.1.1). A number: answer with that status (a limit, like 431 on HTTP/1.1).
    """

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class RequestLimits:
    """The HTTP/1.1 limits that carry over: fields (431), one field (431), the path (414)."""

    field_count: int = 100
    field_size: int = 8190
    path_size: int = 8190


class RequestHead(NamedTuple):
    """A request that passed the policy. `headers` are the regular fields, lower-case, with
    `host` set from :authority when the client sent no Host. (A NamedTuple: immutable, and
    built several times faster than a frozen dataclass, once per request.)"""

    method: bytes
    scheme: bytes
    path: bytes
    authority: bytes
    headers: list[tuple[bytes, bytes]]
    content_length: int | None


_TCHAR_LOWER = re.compile(rb"[!#$%&'*+\-.^_`|~0-9a-z]+")
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_SCHEME = re.compile(rb"[A-Za-z][A-Za-z0-9+\-.]*")
_AUTHORITY = re.compile(rb"[A-Za-z0-9\-._~!$&'()*+,;=:\[\]%]+")  # host[:port], no userinfo
_PATH = re.compile(rb"/[\x21-\x7e\x80-\xff]*|\*")
# in values joined by NUL: a control byte, or SP/HTAB at the start or end of a value
_BAD_BLOCK = re.compile(rb"[\x01-\x08\x0a-\x1f\x7f]|\A[ \t]|[ \t]\Z|\x00[ \t]|[ \t]\x00")
_DIGITS = re.compile(rb"[0-9]{1,18}")
_PSEUDO = (b":method", b":scheme", b":authority", b":path")
_SPECIAL_FIELDS = CONNECTION_SPECIFIC | {b"te", b":method", b":scheme", b":authority", b":path",
                                         b":protocol", b":status"}


def _check_fields(headers: Sequence[tuple[bytes, bytes]], limits: RequestLimits | None) -> None:
    """Names are lower-case tokens, values have no control bytes and no surrounding
    whitespace (HARDENING 5, 6, 23). Whole-block checks (linear, a few C calls): names
    joined must be all tchar, values joined by NUL (after checking none holds one) match
    no control byte and no blank next to a separator or an end."""
    if not headers:
        return
    names = [name for name, _ in headers]
    values = [value for _, value in headers]
    if not all(names) or _TCHAR_LOWER.fullmatch(b"".join(names)) is None:
        bad = next(name for name in names if _TCHAR_LOWER.fullmatch(name) is None)
        raise MalformedRequest(f"bad field name {bad[:40]!r}")
    joined = b"\0".join(values)
    if joined.count(0) != len(values) - 1:
        raise MalformedRequest("NUL in a field value")
    if _BAD_BLOCK.search(joined):
        raise MalformedRequest("control character or surrounding whitespace in a value")
    size = limits.field_size if limits is not None else 0
    if size and len(joined) + len(names[0]) + 2 > size:  # else no single field can be over
        for name, value in headers:
            if len(name) + len(value) + 2 > size:
                raise MalformedRequest(f"field {name[:40]!r} over limit_request_field_size",
                                       431)


def _split(headers: Sequence[tuple[bytes, bytes]]) -> tuple[dict[bytes, bytes],
                                                          list[tuple[bytes, bytes]]]:
    """Pseudo-headers (known, once each, all first) apart from the regular fields."""
    found: dict[bytes, bytes] = {}
    at = 0
    for name, value in headers:
        if name[:1] != b":":
            break
        if name not in _PSEUDO or name in found:
            what = "duplicate" if name in found else "unknown pseudo-header"
            raise MalformedRequest(f"{what} {name[:40]!r}")
        found[name] = value
        at += 1
    regular = list(headers[at:]) if at else list(headers)
    for name, value in regular:
        if name in _SPECIAL_FIELDS:
            _special(name, value)
    return found, regular


def _special(name: bytes, value: bytes) -> None:
    if name[:1] == b":":
        raise MalformedRequest("pseudo-header after a regular field")
    if name in CONNECTION_SPECIFIC:
        raise MalformedRequest(f"connection-specific field {name.decode('latin-1')}")
    if name == b"te" and value.lower() != b"trailers":
        raise MalformedRequest("te other than trailers")


def _single(regular: list[tuple[bytes, bytes]], field: bytes) -> bytes | None:
    values = [value for name, value in regular if name == field]
    if len(values) > 1:
        raise MalformedRequest(f"duplicate {field.decode('latin-1')}")
    return values[0] if values else None


# A WSGI application cannot tunnel (it never gets the socket): CONNECT is answered 501 before
# any application sees it, over HTTP/1.1 and HTTP/2 alike.
CONNECT_REFUSAL = "CONNECT is not supported: a WSGI server cannot open a tunnel"


def parse_request(headers: Sequence[tuple[bytes, bytes]], limits: RequestLimits) -> RequestHead:
    """Judge a request's decoded header block; MalformedRequest says why it is refused."""
    found, regular = _split(headers)
    if len(regular) > limits.field_count:
        raise MalformedRequest("more fields than limit_request_fields", 431)
    _check_fields(regular, limits)
    method, scheme, path = found.get(b":method"), found.get(b":scheme"), found.get(b":path")
    if method == b"CONNECT":  # a well-formed CONNECT has no :scheme or :path (RFC 9113 8.5)
        raise MalformedRequest(CONNECT_REFUSAL, 501)
    if method is None or scheme is None or path is None:
        raise MalformedRequest("missing :method, :scheme or :path")
    if _TOKEN.fullmatch(method) is None:
        raise MalformedRequest(f"bad :method {method[:40]!r}")
    if _SCHEME.fullmatch(scheme) is None:
        raise MalformedRequest(f"bad :scheme {scheme[:40]!r}")
    if _PATH.fullmatch(path) is None or (path == b"*" and method != b"OPTIONS"):
        raise MalformedRequest(f"bad :path {path[:40]!r}")
    if len(path) > limits.path_size:
        raise MalformedRequest(":path over limit_request_line", 414)
    authority = _authority(found.get(b":authority"), _single(regular, b"host"), regular)
    return RequestHead(method, scheme, path, authority, regular,
                       _content_length(_single(regular, b"content-length")))


def _authority(authority: bytes | None, host: bytes | None,
               regular: list[tuple[bytes, bytes]]) -> bytes:
    if authority is not None and host is not None and authority.lower() != host.lower():
        raise MalformedRequest(":authority and host disagree")
    value = authority if authority is not None else host
    if value is None:
        raise MalformedRequest("no :authority and no host")
    if _AUTHORITY.fullmatch(value) is None or b"," in value:
        raise MalformedRequest(f"bad authority {value[:40]!r}")
    if host is None:
        regular.append((b"host", value))
    return value


def _content_length(value: bytes | None) -> int | None:
    if value is None:
        return None
    if _DIGITS.fullmatch(value) is None:
        raise MalformedRequest(f"bad content-length {value[:40]!r}")
    return int(value)


def check_trailers(headers: Sequence[tuple[bytes, bytes]]) -> None:
    """Request trailers are checked like fields, never applied (HARDENING 18, 23)."""
    for name, _ in headers:
        if name[:1] == b":":
            raise MalformedRequest("pseudo-header in trailers")
        if name in CONNECTION_SPECIFIC:
            raise MalformedRequest(f"connection-specific field {name.decode('latin-1')}")
    _check_fields(headers, None)


# --- the frame gate ----------------------------------------------------------------------------


class FloodError(Exception):
    """The peer asked for more than the connection allows; answer GOAWAY
    (ENHANCE_YOUR_CALM) and close."""


class _Budget:
    """A token bucket of `burst`, refilled at `per_second`. It starts a tenth full: a new
    connection earns its full burst over its first seconds, so that a client reconnecting
    at once after each GOAWAY gets little work out of each new connection."""

    __slots__ = ("burst", "per_second", "tokens", "at")

    def __init__(self, burst: float, per_second: float) -> None:
        self.burst = burst
        self.per_second = per_second
        self.tokens = burst / 10
        self.at: float | None = None  # the first spend starts the clock

    def spend(self, now: float) -> bool:
        """Take one token: False when there was none (the bucket is overdrawn)."""
        if self.at is None:
            self.at = now
        elif now > self.at:
            self.tokens = min(self.burst, self.tokens + (now - self.at) * self.per_second)
            self.at = now
        self.tokens -= 1.0
        return self.tokens >= 0


# A peer over a budget is not read for FLOOD_PAUSE_S (its bytes wait in the socket: TCP slows
# it down, and the thread serving it sleeps); the FLOOD_STRIKES-th time, each within
# STRIKE_MEMORY_S of the one before, the connection ends (GOAWAY ENHANCE_YOUR_CALM).
FLOOD_PAUSE_S = 1.0
FLOOD_STRIKES = 2
STRIKE_MEMORY_S = 30.0
MAX_BLOCK_FRAMES = 64  # frames of one header block, HEADERS included (h2 refuses more too)


_DATA, _HEADERS, _PRIORITY, _RST_STREAM, _SETTINGS, _PING = 0x0, 0x1, 0x2, 0x3, 0x4, 0x6
_WINDOW_UPDATE, _CONTINUATION = 0x8, 0x9
_KNOWN_TYPES = frozenset(range(0xA))  # RFC 9113's; any other type is an extension's
_END_HEADERS, _ACK, _END_STREAM = 0x4, 0x1, 0x1


class FrameGate:
    """Reads frame headers as bytes arrive, before h2 buffers them.

    It caps a header block (HEADERS plus CONTINUATION, before decoding) at the header list
    limit and at MAX_BLOCK_FRAMES frames, and meters what costs the server work or an
    answer: PING and SETTINGS (each needs an ACK; ACKs we never asked for are metered with
    them), stream resets by the peer (rapid reset) and resets it provokes (`note_reset`),
    and frames that are work for nothing: empty DATA, PRIORITY (deprecated, RFC 9113
    5.3.2), frames of unknown types, and WINDOW_UPDATE beyond what the DATA we sent can
    explain (a client acknowledges each DATA frame with at most two: `note_data_sent`
    credits them). The connection preface is skipped.

    A frame over its budget is a strike: `feed` admits the bytes up to the end of that
    frame's header only and the peer is not read until `paused_until` (the caller keeps
    the rest for then); at the FLOOD_STRIKES-th strike it raises FloodError. Empty DATA
    over its budget raises at once: never sent in bulk, it keeps a request body open.
    """

    def __init__(self, max_header_block: int, max_concurrent_streams: int) -> None:
        self.max_header_block = max_header_block
        self._skip = len(PREFACE)
        self._head = b""
        self._block = -1  # size of the header block being received; -1: none
        self._block_frames = 0  # its frames
        self.block_since: float | None = None  # when that header block began
        self.paused_until = 0.0  # (monotonic) the peer is over a budget: not read till then
        self.strikes = 0  # times over a budget, each within STRIKE_MEMORY_S of the last
        self.struck_for = ""  # what the last strike was for ("PING frames")
        self._struck_at = 0.0
        self.pings = _Budget(100, 10)
        self.settings = _Budget(50, 5)
        self.empty = _Budget(100, 10)  # DATA without data or end: CVE-2019-9518
        resets = max(200, 2 * max_concurrent_streams)
        # each stream opened and reset costs h2 about half a millisecond (CVE-2023-44487)
        self.resets = _Budget(resets, resets / 20)
        self.priorities = _Budget(resets, resets / 2)  # a PRIORITY per stream is plausible
        self.unknown = _Budget(100, 10)
        self.window_updates = _Budget(1000, 100)

    def skip_preface(self, done: bool) -> None:
        """For h2c upgrade: whether the preface still has to come (it does after the 101)."""
        self._skip = 0 if done else len(PREFACE)

    def feed(self, data: bytes, now: float) -> int:
        """Account for `data` (the next bytes from the peer): how many of them may go to h2
        now (all, unless a frame overdrew a budget); FloodError when the peer must go."""
        size = len(data)
        at = 0
        while at < size:
            if self._skip:
                step = min(self._skip, size - at)
                self._skip -= step
                at += step
                continue
            need = 9 - len(self._head)
            piece = data[at:at + need]
            at += len(piece)
            head = self._head + piece if self._head else piece
            if len(head) < 9:
                self._head = head
                return size
            self._head = b""
            self._skip = int.from_bytes(head[:3], "big")
            what = self._frame(head[3], head[4], self._skip, now)
            if what is not None:
                self._strike(now, what)
                return at
        return size

    def _frame(self, kind: int, flags: int, length: int, now: float) -> str | None:
        """Meter one frame: what it is when that overdrew its budget, else None."""
        if kind == _HEADERS or (kind == _CONTINUATION and self._block >= 0):
            if self._block < 0:
                self.block_since = now
                self._block_frames = 0
            self._block = max(self._block, 0) + length
            self._block_frames += 1
            if self._block > self.max_header_block:
                raise FloodError("a header block over the header list limit")
            if self._block_frames > MAX_BLOCK_FRAMES:  # tiny CONTINUATIONs: work for nothing
                raise FloodError("a header block in too many frames")
            if flags & _END_HEADERS:
                self._block = -1
                self.block_since = None
            return None
        if kind == _PING:
            return None if self.pings.spend(now) else "PING frames"
        if kind == _SETTINGS:
            return None if self.settings.spend(now) else "SETTINGS frames"
        if kind == _RST_STREAM:
            return None if self.resets.spend(now) else "stream resets"
        if kind == _DATA:
            if length or flags & _END_STREAM or self.empty.spend(now):
                return None
            raise FloodError("too many empty DATA frames")
        if kind == _WINDOW_UPDATE:
            return None if self.window_updates.spend(now) else "WINDOW_UPDATE frames"
        if kind == _PRIORITY:
            return None if self.priorities.spend(now) else "PRIORITY frames"
        if kind not in _KNOWN_TYPES:
            return None if self.unknown.spend(now) else "frames of unknown types"
        return None

    def _strike(self, now: float, what: str) -> None:
        """Over a budget: pause the peer, or end it at its FLOOD_STRIKES-th strike."""
        if now - self._struck_at > STRIKE_MEMORY_S:
            self.strikes = 0
        self.strikes += 1
        self.struck_for = what
        self._struck_at = now
        if self.strikes >= FLOOD_STRIKES:
            raise FloodError(f"too many {what}")
        self.paused_until = now + FLOOD_PAUSE_S

    def note_data_sent(self, frames: int) -> None:
        """We sent `frames` DATA frames: the peer may answer each with two WINDOW_UPDATEs
        (its stream's and the connection's), however fast it downloads."""
        budget = self.window_updates
        budget.tokens = min(budget.burst, budget.tokens + 2 * frames)

    def note_reset(self, now: float) -> None:
        """A stream the peer made us reset (a malformed request): same budget as its resets
        (the bytes already admitted are handled; the pause applies to the next ones)."""
        if not self.resets.spend(now):
            self._strike(now, "stream resets")
