"""The corpus in tests/corpus: every case fed whole, byte by byte and in random pieces
must give the expected events (valid) or RemoteProtocolError with the expected hint."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
import yaml

from treadle import protocol

CORPUS = Path(__file__).resolve().parents[2] / "corpus"


def load_cases() -> list[dict[str, Any]]:
    cases: list[dict[str, Any]] = []
    for path in sorted(CORPUS.glob("*.yaml")):
        for case in yaml.safe_load(path.read_text(encoding="utf-8")):
            case["raw"] = case["raw"].encode("latin-1")
            cases.append(case)
    return cases


CASES = load_cases()


def _text(data: bytes) -> str:
    return data.decode("latin-1")


def describe(event: Any) -> list[Any]:
    name = type(event).__name__
    if name == "Request":
        return [name, _text(event.method), _text(event.target), _text(event.http_version),
                [[_text(n), _text(v)] for n, v in event.headers.raw_items()]]
    if name in ("Response", "InformationalResponse"):
        return [name, event.status_code, _text(event.reason), _text(event.http_version),
                [[_text(n), _text(v)] for n, v in event.headers.raw_items()]]
    if name == "Data":
        return [name, _text(event.data)]
    if name == "EndOfMessage":
        return [name, [[_text(n), _text(v)] for n, v in event.headers.raw_items()]]
    return [name]


def _answer(conn: protocol.Connection) -> None:
    """Serve an empty 404 (not a 2xx: no CONNECT switch) so pipelined requests are read."""
    if conn.our_state is protocol.SEND_RESPONSE:
        conn.send(protocol.Response(status_code=404, headers=[("Content-Length", "0")]))
        conn.send(protocol.EndOfMessage())
    if conn.states == {protocol.CLIENT: protocol.DONE, protocol.SERVER: protocol.DONE}:
        conn.start_next_cycle()


def _drain(conn: protocol.Connection, events: list[list[Any]]) -> None:
    while True:
        event = conn.next_event()
        if event is protocol.NEED_DATA:
            return
        if event is protocol.PAUSED:
            _answer(conn)
            if conn.their_state is not protocol.IDLE:
                return
            continue
        described = describe(event)
        if described[0] == "Data" and events and events[-1][0] == "Data":
            events[-1][1] += described[1]
        else:
            events.append(described)
        if described[0] == "ConnectionClosed":
            return
        if described[0] == "EndOfMessage" and conn.our_role is protocol.SERVER:
            _answer(conn)


def feed(case: dict[str, Any], pieces: list[bytes]) -> tuple[list[list[Any]], Any]:
    """(events given out, error hint or None) for `case` arriving as `pieces`."""
    role = protocol.CLIENT if case.get("role") == "client" else protocol.SERVER
    conn = protocol.Connection(role, **case.get("limits", {}))
    if role is protocol.CLIENT:
        conn.send(protocol.Request(method=case.get("method", "GET"), target="/",
                                   headers=[("Host", "example.com")]))
        conn.send(protocol.EndOfMessage())
    events: list[list[Any]] = []
    try:
        for piece in pieces + ([b""] if case.get("eof") else []):
            conn.receive_data(piece)
            _drain(conn, events)
    except protocol.RemoteProtocolError as exc:
        assert conn.their_state is protocol.ERROR
        return events, exc.error_status_hint
    return events, None


def splittings(raw: bytes, name: str) -> dict[str, list[bytes]]:
    rng = random.Random(name)
    ways = {"whole": [raw], "bytewise": [raw[i : i + 1] for i in range(len(raw))]}
    for attempt in range(4):
        cuts = sorted(rng.sample(range(1, len(raw)), min(len(raw) - 1, rng.randint(1, 6))))
        bounds = [0, *cuts, len(raw)]
        ways[f"random{attempt}"] = [raw[bounds[i] : bounds[i + 1]] for i in range(len(cuts) + 1)]
    return ways


@pytest.mark.parametrize("case", CASES, ids=[case["name"] for case in CASES])
def test_corpus_case(case: dict[str, Any]) -> None:
    expected_events = case.get("events", [])
    expected_hint = case.get("hint")
    for how, pieces in splittings(case["raw"], case["name"]).items():
        events, hint = feed(case, pieces)
        assert (events, hint) == (expected_events, expected_hint), how


def test_corpus_names_are_unique() -> None:
    names = [case["name"] for case in CASES]
    assert len(names) == len(set(names))


def test_corpus_covers_every_status_hint() -> None:
    assert {case.get("hint") for case in CASES} >= {None, 400, 414, 431, 501, 505}
