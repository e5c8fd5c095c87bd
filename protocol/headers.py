# Header fields: the Headers sequence every event carries, byte-level validation of names
# and values (shared by the parser and the event constructors), and the comma-list helpers
# the connection uses on headers given to send().
#
# Names are validated and lower-cased through a small cache: real traffic repeats the same
# few dozen spellings, so one dict lookup replaces a regex match and a .lower() per field.
# The cache is a plain dict because protocol/ may not import threading: dict get/set are
# atomic in CPython (also free-threaded), and a race can only add a few extra entries.
from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from typing import Union, overload

from .errors import LocalProtocolError

# RFC 9110 5.6.2 token; used for field names, methods and transfer codings.
TOKEN_FULLMATCH = re.compile(rb"[-!#$%&'*+.^_`|~0-9A-Za-z]+").fullmatch
# Control bytes other than HTAB (and DEL). Stricter than h11, which lets \x01-\x08 and
# \x0e-\x1f through in field values (HARDENING item 6).
CTL_IN_VALUE = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]").search
OWS = b" \t"
CONTENT_LENGTH_MAX_DIGITS = 18  # below 10**18: no int() surprises, no absurd bodies

_NAME_CACHE: dict[bytes, bytes] = {}
_NAME_CACHE_MAX = 1024
_COMMON_NAMES = (
    b"Host", b"User-Agent", b"Accept", b"Accept-Encoding", b"Accept-Language",
    b"Connection", b"Content-Length", b"Content-Type", b"Transfer-Encoding", b"Cookie",
    b"Referer", b"Origin", b"Cache-Control", b"Pragma", b"Upgrade", b"Expect", b"Date",
    b"Server", b"Authorization", b"If-None-Match", b"If-Modified-Since", b"Range",
    b"X-Forwarded-For", b"X-Forwarded-Proto", b"X-Forwarded-Host", b"X-Request-Id",
    b"Keep-Alive", b"TE", b"Trailer", b"Location", b"Set-Cookie", b"ETag",
    b"Last-Modified", b"Vary", b"Content-Encoding", b"Upgrade-Insecure-Requests",
    b"Sec-Fetch-Site", b"Sec-Fetch-Mode", b"Sec-Fetch-Dest", b"DNT", b"Forwarded",
)
for _name in _COMMON_NAMES:
    for _spelling in (_name, _name.lower(), _name.title()):
        _NAME_CACHE[_spelling] = _name.lower()
NAME_CACHE_GET = _NAME_CACHE.get


def lower_name(raw: bytes) -> bytes | None:
    """The lower-cased name if `raw` is a valid field name (a token), else None."""
    lower = _NAME_CACHE.get(raw)
    if lower is None:
        if TOKEN_FULLMATCH(raw) is None:
            return None
        lower = raw.lower()
        if len(_NAME_CACHE) < _NAME_CACHE_MAX:
            _NAME_CACHE[raw] = lower
    return lower


RawItem = tuple[bytes, bytes, bytes]  # (name as received or given, lower-case name, value)


class Headers(Sequence[tuple[bytes, bytes]]):
    """The fields of an event: a sequence of (lower-case name, value) byte pairs.

    `raw_items()` gives the names with their original case. Compares equal to any
    iterable of the same pairs, as h11's Headers does.
    """

    __slots__ = ("_full_items",)

    def __init__(self, full_items: list[RawItem]) -> None:
        self._full_items = full_items

    def __bool__(self) -> bool:
        return bool(self._full_items)

    def __eq__(self, other: object) -> bool:
        return bool(list(self) == list(other))  # type: ignore[call-overload]

    __hash__ = None  # type: ignore[assignment]

    def __len__(self) -> int:
        return len(self._full_items)

    def __repr__(self) -> str:
        return f"<Headers({list(self)!r})>"

    @overload
    def __getitem__(self, idx: int) -> tuple[bytes, bytes]: ...

    @overload
    def __getitem__(self, idx: slice) -> Sequence[tuple[bytes, bytes]]: ...

    def __getitem__(
        self, idx: int | slice
    ) -> tuple[bytes, bytes] | Sequence[tuple[bytes, bytes]]:
        if isinstance(idx, slice):
            return [(name, value) for _, name, value in self._full_items[idx]]
        _, name, value = self._full_items[idx]
        return (name, value)

    def __iter__(self) -> Iterator[tuple[bytes, bytes]]:
        for _, name, value in self._full_items:
            yield (name, value)

    def raw_items(self) -> list[tuple[bytes, bytes]]:
        """The (name as given or received, value) pairs."""
        return [(raw, value) for raw, _, value in self._full_items]


HeaderTypes = Union[  # noqa: UP007 (a runtime alias; `|` needs 3.10 types only)
    Headers,
    Sequence[tuple[bytes, bytes]],
    Sequence[tuple[bytes, str]],
    Sequence[tuple[str, bytes]],
    Sequence[tuple[str, str]],
    Iterable[tuple[bytes | str, bytes | str]],
]


def bytesify(s: bytes | bytearray | memoryview | str | int) -> bytes:
    """bytes from bytes-likes and ASCII str, as h11 accepts them; int is refused."""
    if type(s) is bytes:
        return s
    if isinstance(s, str):
        return s.encode("ascii")
    if isinstance(s, int):
        raise TypeError("expected bytes-like object, not int")
    return bytes(s)


def _name_pair(name: bytes | bytearray | memoryview | str | int) -> tuple[bytes, bytes | None]:
    """(name as bytes, its lower-case form or None if it is not a valid field name)."""
    if type(name) is str:
        pair = _STR_NAME_CACHE.get(name)
        if pair is not None:
            return pair
        raw = name.encode("ascii")
        lower = lower_name(raw)
        if lower is not None and len(_STR_NAME_CACHE) < _NAME_CACHE_MAX:
            _STR_NAME_CACHE[name] = (raw, lower)
        return raw, lower
    raw = bytesify(name)
    return raw, NAME_CACHE_GET(raw) or lower_name(raw)


_STR_NAME_CACHE: dict[str, tuple[bytes, bytes]] = {}


def normalize_and_validate(headers: HeaderTypes) -> Headers:
    """Headers from what an application gave an event constructor (h11's rules).

    Names must be tokens, values valid field-values without surrounding whitespace; no
    control byte but HTAB in a value (stricter than h11, which lets \\x01-\\x08 and
    \\x0e-\\x1f through: we never send what we would refuse). A Content-Length list of
    equal values is reduced to one value, repeats of the same length are dropped,
    conflicting ones are an error; Transfer-Encoding must be exactly `chunked` (stored
    lower-case), once.
    """
    new_items: list[RawItem] = []
    append = new_items.append
    seen_length: bytes | None = None
    saw_transfer_encoding = False
    unusual_framing = False
    for name, value in headers:
        pair = _STR_NAME_CACHE.get(name) if type(name) is str else None
        raw, lname = _name_pair(name) if pair is None else pair
        # A printable ASCII str has no control byte: skip the regex for it.
        if type(value) is str and value.isascii() and value.isprintable():
            value = value.encode("ascii")
            checked = True
        else:
            value = bytesify(value)
            checked = False
        if lname is None:
            raise LocalProtocolError(f"Illegal header name {raw!r}")
        if value and (
            value[0] in OWS or value[-1] in OWS or (not checked and CTL_IN_VALUE(value))
        ):
            raise LocalProtocolError(f"Illegal header value {value!r}")
        if lname == b"content-length":
            if seen_length is None and value.isdigit() and len(value) <= 20:
                seen_length = value
            else:
                unusual_framing = True
        elif lname == b"transfer-encoding":
            if saw_transfer_encoding or value != b"chunked":
                unusual_framing = True
            saw_transfer_encoding = True
        append((raw, lname, value))
    if unusual_framing:
        return Headers(_normalize_framing(new_items))
    return Headers(new_items)


def _normalize_framing(items: list[RawItem]) -> list[RawItem]:
    """h11's treatment of Content-Length and Transfer-Encoding given to a constructor."""
    seen_length: bytes | None = None
    saw_transfer_encoding = False
    out: list[RawItem] = []
    for item in items:
        raw, lname, value = item
        if lname == b"content-length":
            if not value.isdigit():
                lengths = {length.strip(OWS) for length in value.split(b",")}
                if len(lengths) != 1:
                    raise LocalProtocolError("conflicting Content-Length headers")
                value = lengths.pop()
                if not value.isdigit():
                    raise LocalProtocolError("bad Content-Length")
            if len(value) > 20:
                raise LocalProtocolError("bad Content-Length")
            if seen_length is None:
                seen_length = value
                out.append((raw, lname, value))
            elif seen_length != value:
                raise LocalProtocolError("conflicting Content-Length headers")
        elif lname == b"transfer-encoding":
            if saw_transfer_encoding:
                raise LocalProtocolError(
                    "multiple Transfer-Encoding headers", error_status_hint=501
                )
            value = value.lower()
            if value != b"chunked":
                raise LocalProtocolError(
                    "Only Transfer-Encoding: chunked is supported", error_status_hint=501
                )
            saw_transfer_encoding = True
            out.append((raw, lname, value))
        else:
            out.append(item)
    return out


def get_comma_header(headers: Headers, name: bytes) -> list[bytes]:
    """Lower-cased, OWS-trimmed, non-empty elements of every field called `name`."""
    out: list[bytes] = []
    for _, found_name, value in headers._full_items:
        if found_name == name:
            for element in value.lower().split(b","):
                element = element.strip(OWS)
                if element:
                    out.append(element)
    return out


def set_comma_header(headers: Headers, name: bytes, new_values: list[bytes]) -> Headers:
    """`headers` without fields called `name`, then one `Name: value` field per value.

    The replacement fields go last with a title-cased name, as h11 does, so that what we
    send is byte-for-byte what h11 sends.
    """
    kept = [item for item in headers._full_items if item[1] != name]
    title = name.title()
    kept.extend((title, name, value) for value in new_values)
    return Headers(kept)
