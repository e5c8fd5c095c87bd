# The events an HTTP/1.1 conversation is made of, with h11's fields, constructors and
# checks. Events are frozen dataclasses; the ones the parser builds are made through the
# `parsed_*` functions, which skip the checks the parser has already done on the bytes.
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar

from .errors import LocalProtocolError
from .headers import TOKEN_FULLMATCH, Headers, HeaderTypes, bytesify, normalize_and_validate

__all__ = [
    "Event",
    "Request",
    "InformationalResponse",
    "Response",
    "Data",
    "EndOfMessage",
    "ConnectionClosed",
]

_TARGET_FULLMATCH = re.compile(rb"[\x21-\x7e]+").fullmatch
_set = object.__setattr__


class Event:
    """Base class of the events; do not subclass the events themselves."""

    __slots__ = ()


def _headers_of(headers: HeaderTypes) -> Headers:
    # type() first: Headers is a Sequence, and isinstance() on an ABC is slow.
    if type(headers) is Headers:
        return headers
    if type(headers) is not list and isinstance(headers, Headers):
        return headers
    return normalize_and_validate(headers)


@dataclass(init=False, frozen=True)
class Request(Event):
    """The start of a request: `method`, `target`, `headers`, `http_version` (bytes).

    An HTTP/1.1 request needs exactly one Host field, as in h11.
    """

    __slots__ = ("method", "headers", "target", "http_version")

    method: bytes
    headers: Headers
    target: bytes
    http_version: bytes

    def __init__(
        self,
        *,
        method: bytes | str,
        headers: HeaderTypes,
        target: bytes | str,
        http_version: bytes | str = b"1.1",
    ) -> None:
        _set_request_headers(self, _headers_of(headers))  # slot setters: see below
        _set_method(self, bytesify(method))
        _set_target(self, bytesify(target))
        _set_request_version(self, bytesify(http_version))
        host_count = 0
        for name, _ in self.headers:
            if name == b"host":
                host_count += 1
        if self.http_version == b"1.1" and host_count == 0:
            raise LocalProtocolError("Missing mandatory Host: header")
        if host_count > 1:
            raise LocalProtocolError("Found multiple Host: headers")
        if TOKEN_FULLMATCH(self.method) is None:
            raise LocalProtocolError("Illegal method characters")
        if _TARGET_FULLMATCH(self.target) is None:
            raise LocalProtocolError("Illegal target characters")

    __hash__ = None  # type: ignore[assignment]


@dataclass(init=False, frozen=True)
class _ResponseBase(Event):
    __slots__ = ("headers", "http_version", "reason", "status_code")

    headers: Headers
    http_version: bytes
    reason: bytes
    status_code: int

    def __init__(
        self,
        *,
        headers: HeaderTypes,
        status_code: int,
        http_version: bytes | str = b"1.1",
        reason: bytes | str = b"",
    ) -> None:
        # The slot setters are bound below the class (a little faster than _set).
        _set_response_headers(self, normalize_and_validate(headers) if type(headers) is list
                              else _headers_of(headers))
        _set_reason(self, reason if type(reason) is bytes else bytesify(reason))
        _set_response_version(
            self, http_version if type(http_version) is bytes else bytesify(http_version))
        if type(status_code) is not int:
            if not isinstance(status_code, int):
                raise LocalProtocolError("status code must be integer")
            # IntEnum members are ints but print differently: store a plain int.
            status_code = int(status_code)
        _set_status_code(self, status_code)
        low, high = self._status_range
        if not (low <= status_code < high):
            self.__post_init__()  # raises, with the class's own message

    _status_range: ClassVar[tuple[int, int]] = (0, 1 << 30)

    def __post_init__(self) -> None:
        pass

    __hash__ = None  # type: ignore[assignment]


_set_response_headers = _ResponseBase.__dict__["headers"].__set__
_set_reason = _ResponseBase.__dict__["reason"].__set__
_set_response_version = _ResponseBase.__dict__["http_version"].__set__
_set_status_code = _ResponseBase.__dict__["status_code"].__set__


@dataclass(init=False, frozen=True)
class InformationalResponse(_ResponseBase):
    """A 1xx response: `status_code` in [100, 200), `headers`, `http_version`, `reason`."""

    _status_range: ClassVar[tuple[int, int]] = (100, 200)

    def __post_init__(self) -> None:
        if not (100 <= self.status_code < 200):
            raise LocalProtocolError(
                "InformationalResponse status_code should be in range "
                f"[100, 200), not {self.status_code}"
            )

    __hash__ = None


@dataclass(init=False, frozen=True)
class Response(_ResponseBase):
    """The start of a final response: `status_code` in [200, 1000), `headers`, ..."""

    _status_range: ClassVar[tuple[int, int]] = (200, 1000)

    def __post_init__(self) -> None:
        if not (200 <= self.status_code < 1000):
            raise LocalProtocolError(
                f"Response status_code should be in range [200, 1000), not {self.status_code}"
            )

    __hash__ = None


@dataclass(init=False, frozen=True)
class Data(Event):
    """Part of a message body. `chunk_start`/`chunk_end` mark chunked-coding chunk edges on
    received data and are ignored by send()."""

    __slots__ = ("data", "chunk_start", "chunk_end")

    data: bytes
    chunk_start: bool
    chunk_end: bool

    def __init__(self, data: bytes, chunk_start: bool = False, chunk_end: bool = False) -> None:
        _set_data(self, data)  # the slot setters below the class: faster than _set
        _set_chunk_start(self, chunk_start)
        _set_chunk_end(self, chunk_end)

    __hash__ = None  # type: ignore[assignment]


@dataclass(init=False, frozen=True)
class EndOfMessage(Event):
    """The end of a message, with its trailer fields (only with chunked coding)."""

    __slots__ = ("headers",)

    headers: Headers

    def __init__(self, *, headers: HeaderTypes | None = None) -> None:
        # No trailers: one shared empty Headers (a Headers never changes).
        _set_end_headers(self, _NO_FIELDS if headers is None else _headers_of(headers))

    __hash__ = None  # type: ignore[assignment]


_set_end_headers = EndOfMessage.__dict__["headers"].__set__
_NO_FIELDS = Headers([])


@dataclass(frozen=True)
class ConnectionClosed(Event):
    """The peer closed its sending side (or we close ours, when passed to send())."""


# Constructors for events built from bytes the parser has already checked.

# Slot setters: they bypass the frozen __setattr__ like object.__setattr__, a little faster.
_set_method = Request.__dict__["method"].__set__
_set_request_headers = Request.__dict__["headers"].__set__
_set_target = Request.__dict__["target"].__set__
_set_request_version = Request.__dict__["http_version"].__set__
_new_request = Request.__new__


def parsed_request(method: bytes, target: bytes, headers: Headers, version: bytes) -> Request:
    event = _new_request(Request)
    _set_method(event, method)
    _set_request_headers(event, headers)
    _set_target(event, target)
    _set_request_version(event, version)
    return event


_set_data = Data.__dict__["data"].__set__
_set_chunk_start = Data.__dict__["chunk_start"].__set__
_set_chunk_end = Data.__dict__["chunk_end"].__set__
_new_data = Data.__new__


def parsed_data(data: bytes, chunk_start: bool, chunk_end: bool) -> Data:
    event = _new_data(Data)
    _set_data(event, data)
    _set_chunk_start(event, chunk_start)
    _set_chunk_end(event, chunk_end)
    return event


def parsed_response(
    status_code: int, reason: bytes, headers: Headers, version: bytes
) -> InformationalResponse | Response:
    event: InformationalResponse | Response
    if status_code < 200:
        event = InformationalResponse.__new__(InformationalResponse)
    else:
        event = Response.__new__(Response)
    _set(event, "headers", headers)
    _set(event, "http_version", version)
    _set(event, "reason", reason)
    _set(event, "status_code", status_code)
    return event


def parsed_end_of_message(headers: Headers) -> EndOfMessage:
    event = EndOfMessage.__new__(EndOfMessage)
    _set_end_headers(event, headers)
    return event

