"""The poller parks anything Parkable (server/parking.py), not HTTP/1.1 connections only: a
line-echo connection over a real socket pair is read by the poller, served by a pool worker,
parked again, and closed when its deadline passes."""

from __future__ import annotations

import logging
import socket
import time

from treadle.config import Config
from treadle.server.core import Server
from treadle.server.parking import Action, Phase


class LineEcho:
    """A Parkable that speaks no HTTP: the poller reads a line, a worker echoes it."""

    def __init__(self, server: Server, sock: socket.socket) -> None:
        self.server = server
        self.sock = sock
        self.fd = sock.fileno()
        self.phase = Phase.HEAD
        self.deadline = time.monotonic() + 60.0
        self.heap_deadline: float | None = None
        self.registered = False
        self.closed = False
        self.peer_host: str | None = None
        self.peer_port = ""
        self.line = b""
        self.expired = False

    def on_readable(self) -> Action:
        data = self.sock.recv(100)
        if not data:
            return Action.CLOSE
        self.line += data
        return Action.DISPATCH if self.line.endswith(b"\n") else Action.WAIT

    def on_deadline(self) -> Action:
        self.expired = True
        return Action.CLOSE

    def close_now(self) -> None:
        self.closed = True
        self.server.connection_closed(self)  # before the close the client sees as EOF
        self.sock.close()

    def serve(self) -> None:
        if self.line == b"bye\n":
            self.deadline = time.monotonic()  # due now: the poller's expiry closes it
        else:
            self.sock.sendall(b"echo " + self.line)
        self.line = b""
        self.server.park(self)


def test_the_poller_parks_a_connection_that_is_not_http() -> None:
    server = Server(lambda environ, start_response: [], Config(), [], logging.getLogger("t"))
    server.start()
    ours, theirs = socket.socketpair()
    theirs.settimeout(10.0)
    try:
        ours.setblocking(False)
        conn = LineEcho(server, ours)
        server.connection_opened()
        server.park(conn)
        for line in (b"one\n", b"two\n"):  # parked again after each
            theirs.sendall(line[:2])
            theirs.sendall(line[2:])
            assert theirs.recv(100) == b"echo " + line
        theirs.sendall(b"bye\n")
        assert theirs.recv(100) == b""
        assert conn.expired and conn.closed
        assert server.open_connections == 0
    finally:
        theirs.close()
        server.close()
