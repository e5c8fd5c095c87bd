"""server/readiness.py: one-shot watching, with epoll and with the portable fallback."""

from __future__ import annotations

import select
import socket

import pytest
from treadle.server.readiness import EpollReadiness, SelectorReadiness

KINDS = [SelectorReadiness] + ([EpollReadiness] if hasattr(select, "epoll") else [])


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.__name__)
def test_connections_are_reported_once_until_armed_again(kind):
    readiness = kind()
    ours, theirs = socket.socketpair()
    listener_r, listener_w = socket.socketpair()
    try:
        conn, listener = object(), object()
        readiness.add(ours.fileno(), conn)
        readiness.watch(listener_r.fileno(), listener)
        assert readiness.poll(0) == []
        theirs.send(b"x")
        listener_w.send(b"y")
        assert sorted(map(id, readiness.poll(1))) == sorted([id(conn), id(listener)])
        assert readiness.poll(0) == [listener]  # level-triggered; the connection is not
        readiness.arm(ours.fileno(), conn)
        assert set(map(id, readiness.poll(1))) == {id(conn), id(listener)}
        readiness.unwatch(listener_r.fileno())
        readiness.arm(ours.fileno(), conn)
        readiness.remove(ours.fileno())
        assert readiness.poll(0) == []
    finally:
        readiness.close()
        for sock in (ours, theirs, listener_r, listener_w):
            sock.close()
