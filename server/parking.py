"""What the poller parks, in one place: the phases a parked connection can be in, the
actions it answers with, and the small Parkable interface the poller (server/poller.py) deals
in, so that the poller knows no protocol (server/http1.py implements it today).

Phases are ordered on purpose, and the code compares them:
- below LINGER (HANDSHAKE, IDLE, HEAD) a connection waits for a request to begin: a graceful
  stop closes it (HEAD and HANDSHAKE after a short grace), and at worker_connections an IDLE or
  HEAD one may be closed to admit a new connection;
- from LINGER up (LINGER, BODY) an answer is lingering or a request body is arriving: a
  graceful stop keeps it until done, and it is never evicted.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Protocol


class Phase(IntEnum):
    """Where a parked connection is, and so which timeout applies."""

    HANDSHAKE = -1  # TLS: waiting for the client's handshake: handshake_timeout
    IDLE = 0  # between requests: keepalive
    HEAD = 1  # a request head is arriving (or a new connection): header_timeout
    LINGER = 2  # answered with an error and shut for writing: the driver's linger time
    BODY = 3  # a small request body is arriving before dispatch: body_timeout, in total


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
    closed: bool
    peer_host: str | None
    peer_port: str

    def on_readable(self) -> Action:
        """Read what arrived, without blocking (on the poller thread)."""

    def on_deadline(self) -> Action:
        """Its deadline passed while parked: DISPATCH (a worker takes it) or CLOSE."""

    def close_now(self) -> None:
        """Close at once and count the connection closed."""

    def serve(self) -> None:
        """Run on a pool worker after DISPATCH."""
