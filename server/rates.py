"""Minimum data rates for slow clients, as ASP.NET Kestrel has them (MinRequestBodyDataRate,
MinResponseDataRate): a client must move at least `rate_bps` bytes a second while we wait on
it, after a grace period. A per-wait timeout alone lets a client keep a connection for ever by
sending (or reading) one byte just before each timeout; a rate does not.

`RateClock` measures one direction of one connection; a connection closed for being too
slow is one debug line and one count in treadle_rejected_total{reason="min_rate"}.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

NEVER = float("inf")


@dataclass(frozen=True)
class MinRate:
    """A minimum data rate: `rate_bps` bytes per second after `grace_s` (rate 0: none)."""

    rate_bps: float
    grace_s: float


class RateClock:
    """Bytes moved over the time spent waiting on the client, since `start`.

    The deadline is when the average rate would fall below the minimum if nothing more
    moves: `started + max(grace, moved / rate)`; each byte moved pushes it later."""

    __slots__ = ("rate_bps", "grace_s", "started_s", "moved")

    def __init__(self, rate: MinRate, now_s: float) -> None:
        self.rate_bps = rate.rate_bps
        self.grace_s = rate.grace_s
        self.started_s = now_s
        self.moved = 0

    def deadline(self) -> float:
        if self.rate_bps <= 0:
            return NEVER
        return self.started_s + max(self.grace_s, self.moved / self.rate_bps)

    def rate_text(self, now_s: float) -> str:
        """The average so far, for the debug line of a close."""
        elapsed_s = max(now_s - self.started_s, 1e-9)
        return f"{self.moved} bytes in {elapsed_s:.1f} s (minimum {self.rate_bps:g} B/s)"


def why_body_late(clock: RateClock | None, now_s: float, count_rejected: Callable[[str], None],
                  error_log: logging.Logger, whose: str) -> str:
    """Why a wait for a request body ended (HTTP/1.1 and HTTP/2 alike): the minimum rate
    (logged at debug, naming `whose` body) or body_timeout; counted in
    treadle_rejected_total either way."""
    if clock is None or clock.deadline() > now_s:
        count_rejected("timeout")
        return "timed out waiting for the client"
    count_rejected("min_rate")
    why = f"the body arrives too slowly ({clock.rate_text(now_s)})"
    error_log.debug("%s: %s", whose, why)
    return why
