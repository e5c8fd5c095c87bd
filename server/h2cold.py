"""Cold parked HTTP/2 connections: their h2 state packed into one bytes object, out of the
garbage collector's way (issue 12).

A parked HTTP/2 connection (server/http2.py) keeps its h2 connection (settings both ways,
the HPACK tables, the flow-control windows, the streams it still remembers), its frame
meters and its table of event handlers: 71 objects, which the cyclic garbage collector
visits at every full collection. The interpreter starts one each time its long-lived
objects have grown by a quarter, and every other thread waits while it runs: with 10,000
idle connections one full collection walked 711,000 objects (270 ms of CPU; seconds of
wall clock on a busy machine).

So a connection parked for COLD_AFTER_S has its state and meters pickled into one bytes
object (about 4 KiB, which the collector does not visit) and its handler table dropped;
the first touch after that (its client sends, its deadline comes, a stop, a close) makes
them again. Both happen on the poller's thread, which alone holds a parked connection. A
client that comes back sooner (an active one between two requests) never pays for either.
The bytes are our own, made in this process: loading them runs nothing a client chose.
"""

from __future__ import annotations

import pickle
import time
from typing import Any, Protocol

_NO_HANDLERS: dict[type, Any] = {}
COLD_AFTER_S = 2.0  # parked this long, a connection's h2 state is packed


class Coolable(Protocol):
    """What server/http2.py's H2Driver offers this module."""

    conn: Any  # its h2 connection, or None while packed
    gate: Any  # its frame meters (protocol/http2.py FrameGate), or None while packed
    packed: bytes | None  # both, pickled, while cold
    parked_until: float | None  # its real deadline, while `deadline` is the time to pack
    deadline: float
    runtime: Any
    peer_host: str | None
    _dispatch: dict[type, Any]  # h2 event -> its handler (bound methods), empty while packed

    def event_handlers(self) -> dict[type, Any]: ...


def plan_packing(driver: Coolable, now_s: float) -> None:
    """The connection parks: its deadline becomes the time to pack it, when sooner."""
    driver.parked_until = driver.deadline
    driver.deadline = min(driver.deadline, now_s + COLD_AFTER_S)


def pack_if_cold(driver: Coolable, stopping: bool) -> bool:
    """At a parked connection's deadline: True when it was only the time to pack it (then
    packed, its deadline its own again), False when its own deadline has come."""
    until, driver.parked_until = driver.parked_until, None
    if until is None or stopping or time.monotonic() >= until:
        return False
    driver.deadline = until
    if driver.packed is None:
        try:
            driver.packed = pickle.dumps((driver.conn, driver.gate),
                                         protocol=pickle.HIGHEST_PROTOCOL)
        except (pickle.PicklingError, TypeError, AttributeError) as exc:
            driver.runtime.error_log.debug("HTTP/2 connection from %s kept unpacked: %s",
                                           driver.peer_host, exc)
            return True
        _free_now(driver.conn)
        driver.conn = driver.gate = None
        driver._dispatch = _NO_HANDLERS  # 8 bound methods and their dict: made again
    return True


def _free_now(conn: Any) -> None:
    """Break h2's one reference cycle (its frame dispatch table holds bound methods of the
    connection), so that the unpacked state is freed at once: left for the collector, it
    would take one more full pass over everything to go."""
    table = getattr(conn, "_frame_dispatch_table", None)
    if isinstance(table, dict):
        table.clear()


def unpack(driver: Coolable) -> None:
    """Before anything touches a parked connection's h2 state."""
    driver.parked_until = None
    packed = driver.packed
    if packed is not None:
        driver.conn, driver.gate = pickle.loads(packed)  # noqa: S301 (ours, see above)
        driver._dispatch = driver.event_handlers()
        driver.packed = None
