"""Differential tests on mutated traffic: wherever protocol and h11 disagree, the
disagreement must be one of the deliberate differences listed in docs/engine.md."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import h11
import pytest
from hypothesis import given
from test_protocol_corpus import CASES, feed
from test_protocol_properties import PROFILE, describe, mutated_requests

from treadle import protocol

DOC = (Path(__file__).resolve().parents[3] / "docs" / "engine.md").read_text(encoding="utf-8")
STRICTER_SECTION = DOC.split("### Stricter")[1].split("### More lenient")[0]
DOCUMENTED_MESSAGES = re.findall(r"`([a-zA-Z][^`]*)`", STRICTER_SECTION)


def first_events(module: Any, raw: bytes) -> Any:
    """('events', described events of the first request) or ('error', message)."""
    conn = module.Connection(module.SERVER)
    conn.receive_data(raw)
    events: list[Any] = []
    try:
        while True:
            event = conn.next_event()
            if event is module.NEED_DATA or event is module.PAUSED:
                return ("events", events)
            described = describe(event)
            if described[0] == "Data" and events and events[-1][0] == "Data":
                events[-1] = ("Data", events[-1][1] + described[1])
            else:
                events.append(described)
            if described[0] in ("EndOfMessage", "ConnectionClosed"):
                return ("events", events)
    except module.RemoteProtocolError as exc:
        return ("error", str(exc))


def _normalized(h11_events: list[Any]) -> list[Any]:
    """h11's events as we give them where a documented difference in values applies:
    HTTP/1.2-1.9 are served as HTTP/1.1."""
    out = []
    for event in h11_events:
        if event[0] == "Request" and event[3] not in (b"1.0", b"1.1"):
            event = (*event[:3], b"1.1", *event[4:])
        out.append(event)
    return out


def _is_documented_stricter(message: str) -> bool:
    return any(message.startswith(doc) for doc in DOCUMENTED_MESSAGES)


def _is_documented_leniency(raw: bytes) -> bool:
    return raw.startswith(b"\r\n") or re.search(rb"\r\n[0-9a-fA-F]+[ \t]+;", raw) is not None


def check_disagreement(raw: bytes) -> None:
    ours = first_events(protocol, raw)
    theirs = first_events(h11, raw)
    if ours[0] == theirs[0] == "events":
        assert ours[1] == _normalized(theirs[1])
    elif ours[0] == "error" and theirs[0] == "events":
        assert _is_documented_stricter(ours[1]), ours[1]
    elif ours[0] == "events" and theirs[0] == "error":
        assert _is_documented_leniency(raw), (raw, theirs[1])


def test_documented_messages_were_found() -> None:
    assert "obsolete line folding" in DOCUMENTED_MESSAGES
    assert "control byte" in DOCUMENTED_MESSAGES
    assert len(DOCUMENTED_MESSAGES) > 25


@PROFILE
@given(mutated_requests())
def test_every_disagreement_with_h11_is_documented(raw: bytes) -> None:
    check_disagreement(raw)


SERVER_CASES = [c for c in CASES if c.get("role") != "client" and not c.get("limits")]


@pytest.mark.parametrize("case", SERVER_CASES, ids=[c["name"] for c in SERVER_CASES])
def test_corpus_disagreements_are_documented(case: dict[str, Any]) -> None:
    check_disagreement(case["raw"])
    assert feed(case, [case["raw"]])[1] == case.get("hint")
