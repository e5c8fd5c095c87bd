"""The application of tests/e2e/test_http2_fairness.py (issue 14 item 6): streams that block
until a client opens their gate, with a count of how many wait at once, and responses whose
every byte can be checked.

- `/gate?key=K`: waits (at most GATE_TIMEOUT_S) until `/open?key=K`; answers `opened` or
  `timed out`, so a test tells a released stream from one that gave up;
- `/open?key=K`: opens gate K; `/peek?key=K`: `WAITING PEAK` for gate K (now, and the most
  that ever waited at once);
- `/pattern?n=BYTES`: n bytes of the slow-clients pattern, with Content-Length
  (tests/e2e/apps_slowio.py's);
- `/upload`: reads wsgi.input to its end and answers its size;
- anything else: `hello`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qsl

from tests.e2e import apps_slowio

GATE_TIMEOUT_S = 15.0
_lock = threading.Lock()
_gates: dict[str, threading.Event] = {}
_waiting: dict[str, list[int]] = {}  # key: [waiting now, most at once]


def _gate(key: str) -> threading.Event:
    with _lock:
        _waiting.setdefault(key, [0, 0])
        return _gates.setdefault(key, threading.Event())


def _wait_at_gate(key: str) -> bytes:
    gate = _gate(key)
    counts = _waiting[key]
    with _lock:
        counts[0] += 1
        counts[1] = max(counts[1], counts[0])
    try:
        return b"opened" if gate.wait(GATE_TIMEOUT_S) else b"timed out"
    finally:
        with _lock:
            counts[0] -= 1


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    path = environ["PATH_INFO"]
    query = dict(parse_qsl(environ.get("QUERY_STRING", "")))
    if path == "/pattern":
        return apps_slowio.app(environ, start_response)
    if path == "/upload":
        answer = str(len(environ["wsgi.input"].read())).encode()
    elif path == "/gate":
        answer = _wait_at_gate(query["key"])
    elif path == "/open":
        _gate(query["key"]).set()
        answer = b"ok"
    elif path == "/peek":
        _gate(query["key"])
        with _lock:
            answer = "{} {}".format(*_waiting[query["key"]]).encode()
    else:
        answer = b"hello"
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(answer)))])
    return [answer]
