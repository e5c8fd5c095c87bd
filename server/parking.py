"""What the poller parks, in one place: the phases a parked connection can be in, the
actions it answers with, and the small Parkable interface the poller (server/poller.py) deals
in, so that the poller knows no protocol (server/http1.py and server/http2.py implement it),
and the lingering close both use. A parked connection waits to read, except in phase WRITE,
where it waits to write (`wants_write`).

Phases are ordered on purpose, and the code compares them:
- below LINGER (HANDSHAKE, IDLE, HEAD) a connection waits for a request to begin: a graceful
  stop closes it (HEAD and HANDSHAKE after a short grace), and at worker_connections an IDLE or
  HEAD one may be closed to admit a new connection;
- from LINGER up (LINGER, BODY, WRITE) an answer is lingering, a request body is arriving or
  a response is draining to a slow reader: a graceful stop keeps it until done (or until
  graceful_timeout), and it is never evicted.
"""

from __future__ import annotations

import socket
import time
from enum import IntEnum
from typing import Protocol

LINGER_MAX_BYTES = 1 << 20  # what a lingering connection reads, at most, before the close


class Phase(IntEnum):
    """Where a parked connection is, and so which timeout applies."""

    HANDSHAKE = -1  # TLS: waiting for the client's handshake: handshake_timeout
    IDLE = 0  # between requests: keepalive
    HEAD = 1  # a request head is arriving (or a new connection): header_timeout
    LINGER = 2  # answered with an error and shut for writing: the driver's linger time
    BODY = 3  # a request body (up to request_buffer_size) is arriving before dispatch:
    #           body_timeout for each wait, and min_request_rate
    WRITE = 4  # a response the client reads slowly drains from its buffer: min_response_rate


class Action(IntEnum):
    """What the poller (or a worker) should do with a connection next."""

    DISPATCH = 1  # a whole request head is here (or a worker's step is due): to the pool
    WAIT = 2  # keep it (or put it) in the poller
    CLOSE = 3  # close it now
    HANDED_OFF = 4  # another driver owns its socket now (HTTP/2): forget it


class Parkable(Protocol):
    """A connection the poller can hold: a descriptor to watch, a deadline, and what to do
    when it is readable or its deadline passes. It is also a pool job (serve())."""

    fd: int
    phase: Phase
    deadline: float  # monotonic; what it means depends on `phase`
    heap_deadline: float | None  # the poller's: its entry in the expiry heap
    registered: bool  # the poller's: armed in its readiness set
    wants_write: bool  # wait for writable (phase WRITE), not readable
    closed: bool
    peer_host: str | None
    peer_port: str

    def on_readable(self) -> Action:
        """Read what arrived, without blocking (on the poller thread)."""

    def on_writable(self) -> Action:
        """In phase WRITE: send what the socket takes now, without blocking (on the poller
        thread); then what comes next, as after a response (WAIT for the next request...)."""

    def on_deadline(self) -> Action:
        """Its deadline passed while parked: DISPATCH (a worker takes it) or CLOSE."""

    def close_now(self) -> None:
        """Close at once and count the connection closed."""

    def serve(self) -> None:
        """Run on a pool worker after DISPATCH."""


class Lingering(Protocol):
    """A connection that can linger: its socket, phase, deadline and what it has read."""

    sock: socket.socket
    phase: Phase
    deadline: float
    lingered_bytes: int


def shut_and_linger(conn: Lingering, linger_s: float) -> Action:
    """Shut our side and read (and drop) what the client still sends for `linger_s`,
    parked in phase LINGER: closing with unread bytes would reset the connection, and the
    reset could destroy our last bytes on their way. CLOSE when the socket is gone."""
    try:
        conn.sock.shutdown(socket.SHUT_WR)
    except OSError:
        return Action.CLOSE
    conn.phase = Phase.LINGER
    conn.deadline = time.monotonic() + linger_s
    return Action.WAIT


def lingered(conn: Lingering, data: bytes) -> Action:
    """What a lingering connection read: WAIT for more; CLOSE at the client's end, or once
    LINGER_MAX_BYTES have come (a client that keeps sending is not read for ever)."""
    conn.lingered_bytes += len(data)
    return Action.WAIT if data and conn.lingered_bytes < LINGER_MAX_BYTES else Action.CLOSE
