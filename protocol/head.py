# Parsing a complete head: the request line or status line, the field lines, and the
# framing facts picked out of them; also trailer sections. The receive buffer finds the
# blank line once; here the block is split once, checked as a whole (bare CR/LF by
# counting, control bytes by one regex search), and each field line is touched once.
#
# Where this is stricter than h11, the rule's function says so (see docs/engine.md).
from __future__ import annotations

import re
from typing import Union

from .caches import remember
from .errors import RemoteProtocolError, bad_input
from .events import Request, parsed_request
from .headers import (
    CONTENT_LENGTH_MAX_DIGITS,
    NAME_CACHE_GET,
    OWS,
    PLAIN_FACTS,
    SPECIAL_FIELDS,
    TOKEN_FULLMATCH,
    Headers,
    HeadFacts,
    RawItem,
    comma_elements,
    lower_name,
)
from .limits import Limits

# Control bytes in a head other than HTAB, CR and LF (CR/LF are checked by counting).
CTL_IN_HEAD = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]").search
HOST_LIST_OR_SPACE = re.compile(rb"[, \t]").search
TARGET_FULLMATCH = re.compile(rb"[\x21-\x7e]+").fullmatch
ABSOLUTE_FORM_MATCH = re.compile(rb"[A-Za-z][A-Za-z0-9+.\-]*://").match
AUTHORITY_FORM_FULLMATCH = re.compile(
    rb"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-._~%!$&'()*+,;=]+):[0-9]{1,5}"
).fullmatch
TCHAR_BYTES = frozenset(
    b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
)
KNOWN_METHODS = frozenset(
    (b"GET", b"HEAD", b"POST", b"PUT", b"DELETE", b"OPTIONS", b"PATCH", b"CONNECT", b"TRACE")
)
# Trailer fields that would change framing, routing or scheme if applied (HARDENING 18).
FORBIDDEN_TRAILERS = frozenset(
    (b"content-length", b"transfer-encoding", b"host", b"forwarded")
)


def parse_version(version: bytes, line: bytes, state: str) -> bytes:
    """`HTTP/D.D` exactly; major 1 only (505 otherwise); 1.2-1.9 are served as 1.1.

    Stricter than h11, which accepts any HTTP/D.D; h11 also reports 1.2-1.9 as received.
    """
    if version == b"HTTP/1.1":
        return b"1.1"
    if version == b"HTTP/1.0":
        return b"1.0"
    if (
        len(version) != 8
        or not version.startswith(b"HTTP/")
        or version[6] != 0x2E
        or not version[5:6].isdigit()
        or not version[7:8].isdigit()
    ):
        raise bad_input("malformed HTTP version", state, line)
    if version[5] != 0x31:
        raise bad_input("unsupported HTTP version", state, line, 505)
    return b"1.1"


def check_field_limits(lines: list[bytes], limits: Limits, state: str) -> None:
    """More fields than allowed, or one field line too long -> 431 (lines[0] is the
    start line, bounded separately)."""
    count = len(lines) - 1
    if count > limits.field_count:
        raise bad_input(
            f"too many fields ({count} > {limits.field_count})", state, lines[-1], 431
        )
    if count and max(map(len, lines)) > limits.field_size:
        for line in lines[1:]:
            if len(line) > limits.field_size:
                raise bad_input(
                    f"field line longer than {limits.field_size} bytes", state, line, 431
                )


def check_controls(head: bytes, state: str) -> None:
    """Control bytes (other than HTAB) anywhere in a head -> 400.

    Stricter than h11, which lets \\x01-\\x08, \\x0e-\\x1f and \\x7f through in values."""
    found = CTL_IN_HEAD(head)
    if found is not None:
        at = found.start()
        line_start = head.rfind(b"\n", 0, at) + 1
        line_end = head.find(b"\r", at)
        raise bad_input(
            f"control byte {head[at:at + 1]!r} in head", state,
            head[line_start : line_end if line_end >= 0 else len(head)],
        )


def _bad_name(line: bytes, state: str) -> RemoteProtocolError:
    """Why a field line has no valid name. obs-fold and whitespace before the colon are
    named (h11 unfolds obs-fold; both are 400 here, RFC 9112 5.1, 5.2)."""
    if line[:1] in (b" ", b"\t"):
        return bad_input("obsolete line folding", state, line)
    name, colon, _ = line.partition(b":")
    if not colon:
        return bad_input("field line without a colon", state, line)
    if not name:
        return bad_input("empty field name", state, line)
    if name[-1:] in (b" ", b"\t"):
        return bad_input("whitespace between field name and colon", state, line)
    return bad_input("illegal field name", state, line)


# Field lines already parsed -> their RawItem, and their (name, value) pair if it goes
# into the special list (see parse_fields). Clients send the same lines request after
# request (Host, User-Agent, Accept...), so one dict lookup replaces the split, the name
# lookup, the strip and the special-field tests. What a line parses to depends on its
# bytes only (the reader has checked the whole head for bare CR, LF and control bytes
# before), and only lines that parsed enter. Bounded like the constructor's field cache
# (headers.py): short lines only, a full dict is emptied, so unique lines from a hostile
# peer cannot grow it.
_LINE_CACHE_MAX = 1024
_LINE_MAX_SIZE = 256
ParsedField = tuple[RawItem, Union[tuple[bytes, bytes], None]]  # noqa: UP007
_LINES: dict[bytes, ParsedField] = {}
_LINES_GET = _LINES.get


def parse_fields(
    lines: list[bytes], first: int, state: str
) -> tuple[Headers, list[tuple[bytes, bytes]] | None]:
    """Headers from lines[first:], and the (name, value) pairs of SPECIAL_FIELDS, less
    Connection fields that cannot hold `close` (most say keep-alive)."""
    items: list[RawItem] = []
    append = items.append
    special: list[tuple[bytes, bytes]] | None = None
    for line in lines[first:] if first else lines:
        parsed = _LINES_GET(line)
        if parsed is None:
            parsed = _parse_field(line, state)
        item, pick = parsed
        if pick is not None:
            if special is None:
                special = [pick]
            else:
                special.append(pick)
        append(item)
    return Headers(items), special


def _parse_field(line: bytes, state: str) -> ParsedField:
    name, colon, value = line.partition(b":")
    lname = NAME_CACHE_GET(name)
    if lname is None or not colon:
        lname = lower_name(name)
        if lname is None or not colon:
            raise _bad_name(line, state)
    value = value.strip(OWS)
    if lname == b"transfer-encoding":
        value = value.lower()  # as h11 stores it
    pick = None
    if lname in SPECIAL_FIELDS and (lname != b"connection" or b"close" in value.lower()):
        pick = (lname, value)
    parsed = ((name, lname, value), pick)
    if len(line) <= _LINE_MAX_SIZE:
        remember(_LINES, line, parsed, _LINE_CACHE_MAX)
    return parsed


def parse_content_length(value: bytes, state: str) -> int:
    """1*DIGIT, at most 18 digits. Stricter than h11: no lists (`10, 10`), no 19-20 digit
    values (HARDENING 11)."""
    if not value.isdigit() or len(value) > CONTENT_LENGTH_MAX_DIGITS:
        raise bad_input("malformed Content-Length", state, value)
    return int(value)


def parse_transfer_encoding(value: bytes, state: str) -> None:
    """Only `chunked`, once and last. Empty elements, repeated or non-final chunked, or
    anything that is not a token -> 400; another coding before chunked -> 501 (we do not
    implement it). h11 answers 501 to everything but `chunked`."""
    elements = [element.strip(OWS).lower() for element in value.split(b",")]
    for element in elements:
        if not element or TOKEN_FULLMATCH(element) is None:
            raise bad_input("malformed Transfer-Encoding", state, value)
    if elements[-1] != b"chunked" or elements.count(b"chunked") != 1:
        raise bad_input("Transfer-Encoding must end with a single chunked", state, value)
    if len(elements) != 1:
        raise bad_input("unsupported transfer coding", state, value, 501)


def head_facts(
    special: list[tuple[bytes, bytes]], version: bytes, state: str, is_request: bool
) -> tuple[HeadFacts, int]:
    """Framing and connection facts from the special fields; also the Host count.

    Stricter than h11: Content-Length with Transfer-Encoding, two Content-Length fields
    (even equal) or two Transfer-Encoding fields -> 400; Transfer-Encoding on HTTP/1.0 ->
    400 (RFC 9112 6.1, 6.3; HARDENING 11-14). In a request, a second Host, or a Host
    holding a list or whitespace -> 400 (HARDENING 8; h11 refuses a second Host too)."""
    facts = PLAIN_FACTS
    hosts = 0
    te_value = None
    for name, value in special:
        if name == b"host":
            hosts += 1
            if is_request:
                if hosts > 1:
                    raise bad_input("more than one Host field", state, value)
                if HOST_LIST_OR_SPACE(value) is not None:
                    raise bad_input("malformed Host field", state, value)
            continue
        # Cheap screens first: most Connection, Expect and Upgrade values change nothing.
        if name == b"connection":
            if b"close" not in value.lower() or b"close" not in comma_elements(value):
                continue
        elif name == b"expect":
            if b"100-continue" not in comma_elements(value):
                continue
        elif name == b"upgrade" and not value.strip(b" \t,"):
            continue
        if facts is PLAIN_FACTS:
            facts = HeadFacts()
        if name == b"content-length":
            if facts.content_length is not None:
                raise bad_input("more than one Content-Length field", state, value)
            facts.content_length = parse_content_length(value, state)
        elif name == b"transfer-encoding":
            if te_value is not None:
                raise bad_input("more than one Transfer-Encoding field", state, value)
            te_value = value
            parse_transfer_encoding(value, state)
            facts.chunked = True
        elif name == b"connection":
            facts.close = True
        elif name == b"expect":
            facts.expect_continue = True
        else:
            facts.upgrade = True
    if te_value is not None:
        if facts.content_length is not None:
            raise bad_input("both Transfer-Encoding and Content-Length", state, te_value)
        if version == b"1.0":
            raise bad_input("Transfer-Encoding in an HTTP/1.0 message", state, te_value)
    return facts, hosts


def check_target(method: bytes, target: bytes, line: bytes, state: str) -> None:
    """The request-target's form must fit the method (RFC 9112 3.2): origin-form or
    absolute-form (`scheme://...`), `*` only for OPTIONS, authority-form (`host:port`) only
    and always for CONNECT. h11 accepts any visible bytes here."""
    if TARGET_FULLMATCH(target) is None:
        raise bad_input("illegal request target", state, line)
    if method == b"CONNECT":
        if AUTHORITY_FORM_FULLMATCH(target) is None:
            raise bad_input("CONNECT needs an authority-form target", state, line)
    elif target[0] != 0x2F:  # "/"
        if target == b"*":
            if method != b"OPTIONS":
                raise bad_input("asterisk-form target outside OPTIONS", state, line)
        elif ABSOLUTE_FORM_MATCH(target) is None:
            raise bad_input("illegal request target form", state, line)


# Request lines already parsed -> (method, target, version): the same few lines come
# again and again. Bounded like the field-line cache above.
_REQUEST_LINES: dict[bytes, tuple[bytes, bytes, bytes]] = {}
_REQUEST_LINES_GET = _REQUEST_LINES.get
# Short Host values that passed the list-or-whitespace test; bounded like the caches above.
_GOOD_HOSTS: dict[bytes, bool] = {}


def parse_request_line(line: bytes, state: str) -> tuple[bytes, bytes, bytes]:
    """(method, target, version) from a request line the reader has checked for control
    bytes and length."""
    parts = line.split(b" ")
    if len(parts) != 3:
        raise bad_input("illegal request line", state, line)
    method, target, version = parts
    if method not in KNOWN_METHODS and TOKEN_FULLMATCH(method) is None:
        raise bad_input("illegal method", state, line)
    # The common origin-form target needs no regex: the head has no CTL but HTAB.
    if not (
        target[:1] == b"/" and method != b"CONNECT" and target.isascii()
        and b"\t" not in target
    ):
        check_target(method, target, line, state)
    if version == b"HTTP/1.1":
        http_version = b"1.1"
    else:
        http_version = parse_version(version, line, state)
    parsed = (method, target, http_version)
    if len(line) <= _LINE_MAX_SIZE:
        remember(_REQUEST_LINES, line, parsed, _LINE_CACHE_MAX)
    return parsed


def parse_request(
    head: bytes, lines: list[bytes], limits: Limits, state: str
) -> tuple[Request, HeadFacts]:
    """The Request in a complete head whose size, line endings, control bytes and
    request-line length the reader has already checked."""
    if len(lines) > limits.field_count + 1 or len(head) > limits.field_size:
        check_field_limits(lines, limits, state)
    line = lines[0]
    request_line = _REQUEST_LINES_GET(line)
    if request_line is None:
        request_line = parse_request_line(line, state)
    method, target, http_version = request_line
    # parse_fields' loop, less the list of special fields while Host is the only one
    # (the usual head): `host` holds its value until another special field comes.
    items: list[RawItem] = []
    append = items.append
    special: list[tuple[bytes, bytes]] | None = None
    host: bytes | None = None
    for line in lines[1:]:
        parsed = _LINES_GET(line)
        if parsed is None:
            parsed = _parse_field(line, state)
        item, pick = parsed
        if pick is not None:
            if pick[0] == b"host" and host is None and special is None:
                host = pick[1]
            elif special is None:
                special = [pick] if host is None else [(b"host", host), pick]
            else:
                special.append(pick)
        append(item)
    if special is None:
        facts = PLAIN_FACTS
        if host is None:
            if http_version == b"1.1":
                raise bad_input("missing Host field", state, lines[0])
        elif host not in _GOOD_HOSTS:
            if HOST_LIST_OR_SPACE(host) is not None:
                raise bad_input("malformed Host field", state, host)
            if len(host) <= _LINE_MAX_SIZE:
                remember(_GOOD_HOSTS, host, True, _LINE_CACHE_MAX)
    else:
        facts, hosts = head_facts(special, http_version, state, True)
        if hosts == 0 and http_version == b"1.1":
            raise bad_input("missing Host field", state, lines[0])
    return parsed_request(method, target, Headers(items), http_version), facts


def parse_status_line(line: bytes, state: str) -> tuple[bytes, int, bytes]:
    """`HTTP/D.D SP 3DIGIT [SP reason]` -> (version, status, reason); the reason may be
    missing, as h11 allows."""
    version = parse_version(line[:8], line, state)
    code = line[9:12]
    if line[8:9] != b" " or len(code) != 3 or not code.isdigit():
        raise bad_input("illegal status line", state, line)
    rest = line[12:]
    if rest and rest[:1] != b" ":
        raise bad_input("illegal status line", state, line)
    status = int(code)
    if status < 100:
        raise bad_input("status code below 100", state, line)
    return version, status, rest[1:]


def parse_trailers(head: bytes, lines: list[bytes], limits: Limits, state: str) -> Headers:
    """Trailer fields. Fields that would change framing, routing or scheme if applied
    (Content-Length, Transfer-Encoding, Host, Forwarded, X-Forwarded-*) are rejected with
    400, never passed on (HARDENING 18; h11 passes them on)."""
    check_field_limits([b""] + lines, limits, state)
    headers, _ = parse_fields(lines, 0, state)
    for raw, name, _value in headers._full_items:
        if name in FORBIDDEN_TRAILERS or name.startswith(b"x-forwarded-"):
            raise bad_input("field not allowed in a trailer section", state, raw)
    return headers
