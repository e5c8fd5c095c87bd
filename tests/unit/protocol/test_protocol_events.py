"""Events: h11's constructors, checks, messages, repr and equality."""

from __future__ import annotations

import dataclasses
from enum import IntEnum
from typing import Any

import h11
import pytest

from treadle import protocol


def build(module: Any, name: str, kwargs: dict[str, Any]) -> Any:
    return getattr(module, name)(**kwargs)


VALID = [
    ("Request", {"method": "GET", "target": "/", "headers": [("Host", "a")]}),
    ("Request", {"method": b"POST", "target": b"/x?y", "headers": [(b"host", b"a")],
                 "http_version": "1.0"}),
    ("Request", {"method": "GET", "target": "/", "headers": [], "http_version": b"1.0"}),
    ("InformationalResponse", {"status_code": 100, "headers": []}),
    ("Response", {"status_code": 404, "headers": [("X", "1")], "reason": "Not Found"}),
    ("Response", {"status_code": 999, "headers": [], "http_version": "1.0"}),
    ("Data", {"data": b"abc"}),
    ("Data", {"data": b"abc", "chunk_start": True, "chunk_end": True}),
    ("EndOfMessage", {}),
    ("EndOfMessage", {"headers": [("Trailer", "x")]}),
    ("ConnectionClosed", {}),
]
INVALID = [
    ("Request", {"method": "GET", "target": "/", "headers": []}),
    ("Request", {"method": "GET", "target": "/", "headers": [("Host", "a"), ("Host", "b")]}),
    ("Request", {"method": "G T", "target": "/", "headers": [("Host", "a")]}),
    ("Request", {"method": "GET", "target": "/ x", "headers": [("Host", "a")]}),
    ("Request", {"method": "GET", "target": "", "headers": [("Host", "a")]}),
    ("InformationalResponse", {"status_code": 200, "headers": []}),
    ("Response", {"status_code": 199, "headers": []}),
    ("Response", {"status_code": 1000, "headers": []}),
    ("Response", {"status_code": "200", "headers": []}),
    ("Response", {"status_code": 200, "headers": [("X y", "1")]}),
]


@pytest.mark.parametrize(("name", "kwargs"), VALID)
def test_valid_events_equal_h11s(name: str, kwargs: dict[str, Any]) -> None:
    ours = build(protocol, name, kwargs)
    theirs = build(h11, name, kwargs)
    assert repr(ours) == repr(theirs)
    assert ours == build(protocol, name, kwargs)
    assert dataclasses.fields(ours) == dataclasses.fields(ours)
    assert [f.name for f in dataclasses.fields(ours)] == [
        f.name for f in dataclasses.fields(theirs)]
    assert isinstance(ours, protocol.Event)


@pytest.mark.parametrize(("name", "kwargs"), INVALID)
def test_invalid_events_fail_as_in_h11(name: str, kwargs: dict[str, Any]) -> None:
    with pytest.raises(h11.LocalProtocolError) as theirs:
        build(h11, name, kwargs)
    with pytest.raises(protocol.LocalProtocolError) as ours:
        build(protocol, name, kwargs)
    assert str(ours.value) == str(theirs.value)


def test_events_are_frozen_and_unhashable() -> None:
    event = protocol.Data(data=b"x")
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.data = b"y"  # type: ignore[misc]
    with pytest.raises(TypeError):
        hash(event)
    assert hash(protocol.ConnectionClosed()) == hash(protocol.ConnectionClosed())


def test_int_enum_status_is_stored_as_int() -> None:
    class Status(IntEnum):
        OK = 200

    response = protocol.Response(status_code=Status.OK, headers=[])
    assert type(response.status_code) is int and repr(response.status_code) == "200"


def test_replace_works_like_h11() -> None:
    request = protocol.Request(method="GET", target="/", headers=[("Host", "a")])
    assert dataclasses.replace(request, target=b"/b").target == b"/b"


def test_different_event_types_are_not_equal() -> None:
    assert protocol.EndOfMessage() != protocol.Data(data=b"")
    assert protocol.EndOfMessage() == protocol.EndOfMessage(headers=[])
