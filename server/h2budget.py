"""HTTP/2 clients over their frame budgets: not read for a while, then held unread before
the close.

The frame gate (protocol/http2.py's FrameGate) meters every frame type a client can make us
work or answer for with token buckets. A client over one is paused: what was read past the
frame that overdrew waits in `held`, the socket is not read until the pause ends (its next
bytes wait in the kernel's buffers, so TCP slows the client down), and the thread serving
the connection sleeps instead of feeding h2 a flood as fast as it comes. Its next excess
ends the connection (GOAWAY ENHANCE_YOUR_CALM); then, as after any connection error we sent
GOAWAY for, the connection is held unread for ERROR_HOLD_S before the close, so that a
client that floods and reconnects at once when cut off waits instead (each new connection
starts with a tenth of each budget: little work for the server). A mixin of H2Driver
(server/http2.py); everything here runs on the thread that serves the connection.
"""

from __future__ import annotations

import math
import select
import time
from typing import TYPE_CHECKING

from ..protocol.http2 import FLOOD_PAUSE_S, FrameGate
from .runtime import Host, Runtime

if TYPE_CHECKING:
    from .wakeup import Wakeup

ERROR_HOLD_S = 2.0  # after a connection error we sent GOAWAY for: kept, unread, this long
_POLLRDHUP = getattr(select, "POLLRDHUP", 0)  # Linux: the peer shut its side


class ReadBudget:
    """Pausing and holding of H2Driver; the attributes below are the driver's."""

    runtime: Runtime
    host: Host
    fd: int
    gate: FrameGate
    peer_host: str | None
    wakeup: Wakeup | None
    held: bytes  # read, not yet given to h2: the client is paused
    hold_until: float | None  # after a connection error: close then

    if TYPE_CHECKING:  # H2Driver's (server/http2.py)
        def _receive(self, data: bytes) -> None: ...

    def _paused(self) -> bool:
        """Over a budget, the client is not read until the gate's pause ends: its bytes
        wait in the socket (TCP slows it down) and this thread sleeps, instead of feeding
        h2 a flood as fast as it comes; its next strike ends the connection."""
        until = self.gate.paused_until
        return until > 0.0 and until > time.monotonic()

    def _pause_deadline(self) -> float:
        return self.gate.paused_until if self._paused() else math.inf

    def _note_pause(self, held: bytes) -> None:
        """What was read past the frame that overdrew waits for the pause's end."""
        self.held = held
        self.runtime.error_log.debug("HTTP/2 client %s over its budget of %s: not read for "
                                    "%g s", self.peer_host, self.gate.struck_for,
                                    FLOOD_PAUSE_S)

    def _resume(self) -> None:
        """The pause is over: what was read past the frame that overdrew goes to h2 first."""
        data, self.held = self.held, b""
        self._receive(data)

    def _hold(self) -> None:
        """After a connection error we sent GOAWAY for (a flood): keep the connection,
        unread, until hold_until before closing it. Its GOAWAY reaches the client
        meanwhile, and a client that keeps sending fills its socket buffers and waits
        (TCP back-pressure) instead of being closed at once and reconnecting to start
        again at once; this thread sleeps. A client that closes, or a stop, ends it."""
        assert self.hold_until is not None
        poller = select.poll()
        poller.register(self.fd, _POLLRDHUP)  # (POLLHUP and POLLERR are always reported)
        wakeup = self.wakeup
        if wakeup is not None:
            poller.register(wakeup.fileno(), select.POLLIN)
        host = self.host
        while not host.stopping:
            remaining_s = self.hold_until - time.monotonic()
            if remaining_s <= 0:
                return
            for ready_fd, _ in poller.poll(int(remaining_s * 1000) + 1):
                if ready_fd == self.fd:
                    return
                if wakeup is not None:
                    wakeup.drain()  # a wake(): look at host.stopping
