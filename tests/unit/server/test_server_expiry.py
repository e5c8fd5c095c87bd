"""The poller's expiry heap keeps one entry per live connection and drops closed ones."""

from __future__ import annotations

import logging
import types

from treadle.config import Config
from treadle.server.core import Server
from treadle.server.poller import COMPACT_MIN_ENTRIES


def entry(deadline: float) -> types.SimpleNamespace:
    """What the heap looks at on a connection: its deadline, its queued one, closed."""
    return types.SimpleNamespace(deadline=deadline, heap_deadline=None, closed=False)


def test_heap_drops_closed_connections_and_keeps_live_ones():
    server = Server(lambda environ, start_response: [], Config(), [], logging.getLogger("t"))
    poller = server._poller
    live = [entry(1000.0 + n) for n in range(10)]
    for conn in live:
        poller.schedule(conn)  # type: ignore[arg-type]
    for conn in live:  # an earlier deadline adds an entry; a later one does not
        conn.deadline -= 500
        poller.schedule(conn)  # type: ignore[arg-type]
        conn.deadline += 900
        poller.schedule(conn)  # type: ignore[arg-type]
    for number in range(COMPACT_MIN_ENTRIES * 3):
        short = entry(2000.0 + number)
        poller.schedule(short)  # type: ignore[arg-type]
        short.closed = True  # served and closed long before its deadline
    assert len(poller.expiry) <= COMPACT_MIN_ENTRIES + len(live)
    kept = {id(item[2]) for item in poller.expiry}
    assert all(id(conn) in kept for conn in live)
    assert sorted(item[0] for item in poller.expiry)[0] == poller.expiry[0][0]  # a heap
    server.close()  # never started: closes its wake-up pipe
