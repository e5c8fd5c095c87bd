"""reuse_port's sockets per worker slot (server/shards.py): while a released slot's worker is
leaving, the kernel sends every new connection to slot 0's socket, so none lands in the
socket about to close (where the close would reset it); once that worker has exited, the
kernel balances again. Real sockets of one reuseport group, real connections."""

from __future__ import annotations

import logging
import socket
import sys

import pytest
from treadle.server.listeners import open_listener
from treadle.server.shards import PortShards

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="reuseport steering is Linux's")


def accepted(sock: socket.socket) -> int:
    """How many connections wait in `sock`'s queue (accepted and closed here)."""
    sock.setblocking(False)
    count = 0
    while True:
        try:
            conn, _ = sock.accept()
        except BlockingIOError:
            return count
        conn.close()
        count += 1


def connect(port: int, count: int) -> None:
    for _ in range(count):
        # a new source port each time: the kernel's hash spreads them over the group
        socket.create_connection(("127.0.0.1", port), timeout=5).close()


def test_a_leaving_slot_gets_no_new_connection_until_its_worker_exited() -> None:
    base = open_listener("127.0.0.1:0", 512, reuse_port=True)
    shards = PortShards([base], True, 512, logging.getLogger("test.shards"))
    try:
        shards.prepare(3)
        port = base.sock.getsockname()[1]
        first, second = shards.listeners_for(1)[0].sock, shards.listeners_for(2)[0].sock
        second_copy = second.dup()  # the leaving worker's copy: the socket stays open
        shards.release(2, steer=True)
        connect(port, 60)
        assert (accepted(base.sock), accepted(first), accepted(second_copy)) == (60, 0, 0)
        second_copy.close()  # the worker closed its socket and exited
        shards.exited(2)
        connect(port, 60)
        on_base, on_first = accepted(base.sock), accepted(first)
        assert on_base + on_first == 60 and on_first > 0  # balanced again
    finally:
        shards.release_all()
