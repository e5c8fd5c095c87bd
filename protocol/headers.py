# Header fields: the Headers sequence every event carries, byte-level validation of names
# and values (shared by the parser and the event constructors), and the comma-list helpers
# the connection uses on headers given to send().
#
# Names are validated and lower-cased through a small cache: real traffic repeats the same
# few dozen spellings, so one dict lookup replaces a regex match and a .lower() per field.
# The cache is a plain dict because protocol/ may not import threading: dict get/set are
# atomic in CPython (also free-threaded), and a race can only add a few extra entries.
# Whole fields given to constructors are cached the same way (below), and a Headers made
# by a constructor carries its send-side facts and written lines, so send() neither
# rescans nor reformats it.
from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from typing import Union, overload

from .caches import remember
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

# Fields whose values decide framing, keep-alive, 100-continue, switching or routing.
SPECIAL_FIELDS = frozenset(
    (b"host", b"content-length", b"transfer-encoding", b"connection", b"expect", b"upgrade")
)


class HeadFacts:
    """What a head says about its body and connection, found while splitting it.
    Shared between events and connections once made: never changed after that."""

    __slots__ = ("content_length", "chunked", "close", "expect_continue", "upgrade")

    def __init__(self) -> None:
        self.content_length: int | None = None
        self.chunked = False
        self.close = False
        self.expect_continue = False
        self.upgrade = False


PLAIN_FACTS = HeadFacts()  # shared by heads without special fields; never mutated


class Headers(Sequence[tuple[bytes, bytes]]):
    """The fields of an event: a sequence of (lower-case name, value) byte pairs.

    `raw_items()` gives the names with their original case. Compares equal to any
    iterable of the same pairs, as h11's Headers does.
    """

    # _facts: what send() needs to know about framing (facts_of_headers), remembered
    # here because a Headers never changes; None until someone asks. _lines: the field
    # lines as written (b"Name: value", no CRLF, in order), when the constructor that
    # checked the fields had them at hand and none is Host (which is written first).
    __slots__ = ("_full_items", "_facts", "_lines")

    def __init__(self, full_items: list[RawItem]) -> None:
        self._full_items = full_items
        self._facts: HeadFacts | None = None
        self._lines: list[bytes] | None = None

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


# Validated (name, value) pairs given to event constructors -> their RawItem and field
# line. Responses repeat the same fields (Content-Type, Server, this second's Date), so
# one dict lookup replaces the checks. Keys are exact bytes pairs or exact str pairs, kept
# in two dicts: "a" and b"a" hash alike, and a bytes key must never be compared with a
# str key. Only pairs that passed the checks enter, only short ones, and a full dict is
# emptied (old Dates go, new ones come in): what an application echoes from requests
# cannot grow it. A race can only add or drop entries; every entry is the checks' result.
_ITEM_CACHE_MAX = 512
_ITEM_MAX_SIZE = 128  # len(name) + len(value); long cookies and tokens are checked anew
# (the item, b"Name: value" as written, the lower-case name if in SPECIAL_FIELDS)
CheckedField = tuple[RawItem, bytes, Union[bytes, None]]  # noqa: UP007
_BYTES_ITEMS: dict[tuple[bytes, bytes], CheckedField] = {}
_STR_ITEMS: dict[tuple[str, str], CheckedField] = {}
_BYTES_ITEMS_GET = _BYTES_ITEMS.get
_STR_ITEMS_GET = _STR_ITEMS.get


def _checked_field(
    name: bytes | bytearray | memoryview | str | int,
    value: bytes | bytearray | memoryview | str | int,
) -> CheckedField:
    """The RawItem, line and special name of one field given to a constructor;
    LocalProtocolError if it is invalid."""
    raw, lname = _name_pair(name)
    # A printable ASCII str has no control byte: skip the regex for it.
    if type(value) is str and value.isascii() and value.isprintable():
        checked_value = value.encode("ascii")
        checked = True
    else:
        checked_value = bytesify(value)
        checked = False
    if lname is None:
        raise LocalProtocolError(f"Illegal header name {raw!r}")
    if checked_value and (
        checked_value[0] in OWS or checked_value[-1] in OWS
        or (not checked and CTL_IN_VALUE(checked_value))
    ):
        raise LocalProtocolError(f"Illegal header value {checked_value!r}")
    field = (
        (raw, lname, checked_value), raw + b": " + checked_value,
        lname if lname in SPECIAL_FIELDS else None,
    )
    if len(raw) + len(checked_value) <= _ITEM_MAX_SIZE:
        if type(name) is bytes and type(value) is bytes:
            remember(_BYTES_ITEMS, (name, value), field, _ITEM_CACHE_MAX)
        elif type(name) is str and type(value) is str:
            remember(_STR_ITEMS, (name, value), field, _ITEM_CACHE_MAX)
    return field


def normalize_and_validate(headers: HeaderTypes) -> Headers:
    """Headers from what an application gave an event constructor (h11's rules).

    Names must be tokens, values valid field-values without surrounding whitespace; no
    control byte but HTAB in a value (stricter than h11, which lets \\x01-\\x08 and
    \\x0e-\\x1f through: we never send what we would refuse). A Content-Length list of
    equal values is reduced to one value, repeats of the same length are dropped,
    conflicting ones are an error; Transfer-Encoding must be exactly `chunked` (stored
    lower-case), once.

    The usual result (no special field but one Content-Length) carries its facts and
    field lines, so send() need not scan or format it again.
    """
    new_items: list[RawItem] = []
    append = new_items.append
    lines: list[bytes] = []
    append_line = lines.append
    seen_length: bytes | None = None
    saw_transfer_encoding = False
    unusual_framing = False
    special = False  # a special field other than Host and a first Content-Length
    host = False
    for name, value in headers:
        if type(name) is bytes:
            field = _BYTES_ITEMS_GET((name, value)) if type(value) is bytes else None
        elif type(name) is str and type(value) is str:
            field = _STR_ITEMS_GET((name, value))
        else:
            field = None
        if field is None:
            field = _checked_field(name, value)
        item, line, lname = field
        if lname is not None:
            if lname == b"content-length":
                length = item[2]
                if seen_length is None and length.isdigit() and len(length) <= 20:
                    seen_length = length
                else:
                    unusual_framing = True
            elif lname == b"host":
                host = True
            else:
                special = True
                if lname == b"transfer-encoding":
                    if saw_transfer_encoding or item[2] != b"chunked":
                        unusual_framing = True
                    saw_transfer_encoding = True
        append(item)
        append_line(line)
    if unusual_framing:
        return Headers(_normalize_framing(new_items))
    result = Headers(new_items)
    if not host:
        result._lines = lines
    if not special:
        if seen_length is None:
            result._facts = PLAIN_FACTS
        else:
            result._facts = _LENGTH_FACTS_GET(seen_length) or _length_facts(seen_length)
    return result


# Content-Length values (at most 20 digits) -> their facts; emptied when full.
_LENGTH_FACTS: dict[bytes, HeadFacts] = {}
_LENGTH_FACTS_MAX = 256
_LENGTH_FACTS_GET = _LENGTH_FACTS.get


def _length_facts(length: bytes) -> HeadFacts:
    facts = HeadFacts()
    facts.content_length = int(length)
    remember(_LENGTH_FACTS, length, facts, _LENGTH_FACTS_MAX)
    return facts


def comma_elements(value: bytes) -> list[bytes]:
    return [e for e in (e.strip(OWS) for e in value.lower().split(b",")) if e]


def facts_of_headers(headers: Headers) -> HeadFacts:
    """The framing facts of headers given to send() (already normalized by the event);
    worked out once per Headers."""
    facts = headers._facts
    if facts is None:
        facts = headers._facts = _scan_facts(headers._full_items)
    return facts


def _scan_facts(items: list[RawItem]) -> HeadFacts:
    facts = PLAIN_FACTS
    for _, name, value in items:
        if name in SPECIAL_FIELDS and name != b"host":
            if facts is PLAIN_FACTS:
                facts = HeadFacts()
            if name == b"content-length":
                facts.content_length = int(value)
            elif name == b"transfer-encoding":
                facts.chunked = True
            elif name == b"connection":
                facts.close = facts.close or b"close" in comma_elements(value)
            elif name == b"expect":
                if b"100-continue" in comma_elements(value):
                    facts.expect_continue = True
            elif comma_elements(value):
                facts.upgrade = True
    return facts


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
