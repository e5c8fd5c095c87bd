"""The threads that serve HTTP/2 connections while they have work, and the open connections.

An HTTP/2 connection with nothing to do waits in the poller like an idle HTTP/1.1 one and
holds no thread (server/http2.py). When its client sends something, the poller hands it to
one of these threads, which serves its frames until it has no stream in progress and no
output pending, then parks it again. They are not pool threads: a connection's thread waits
for its streams' output, which pool threads produce, so running connections on the pool
could let connections take every pool thread and wait for ever. Threads are kept for reuse:
at most SPARE_MAX wait for the next connection, each for at most SPARE_IDLE_S; the rest end.
Threads: one per connection with work in progress, plus at most SPARE_MAX.

`H2Connections` is the set of open HTTP/2 connections (parked or not), so that a graceful
stop can wake those that are running; the poller says goodbye to parked ones itself.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable

from .runtime import Wakeable

SPARE_MAX = 4  # idle threads kept for the next connection that has work
SPARE_IDLE_S = 10.0  # how long a spare thread waits for one before it ends


class DriverThreads:
    """Runs connection turns (callables) on threads of their own, reusing idle ones."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._turns: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._spare = 0  # (lock) threads waiting in _turns.get
        self._started = 0  # (lock) for thread names

    def run(self, turn: Callable[[], None]) -> None:
        """Run `turn` on a spare thread, or a new one (RuntimeError: none can be started)."""
        with self._lock:
            if self._spare:
                self._spare -= 1  # that thread's: it takes this turn
                self._turns.put(turn)
                return
            self._started += 1
            number = self._started
        threading.Thread(target=self._serve, args=(turn,), name=f"treadle-h2-{number}",
                         daemon=True).start()

    def _serve(self, turn: Callable[[], None]) -> None:
        while True:
            turn()  # a turn reports its own errors
            with self._lock:
                if self._spare >= SPARE_MAX:
                    return
                self._spare += 1
            try:
                turn = self._turns.get(timeout=SPARE_IDLE_S)
            except queue.Empty:
                with self._lock:  # a turn put for us as the wait ended is still ours
                    try:
                        turn = self._turns.get_nowait()
                    except queue.Empty:
                        self._spare -= 1
                        return


class H2Connections:
    """The open HTTP/2 connections of a Server, so that a graceful stop can wake them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._drivers: set[Wakeable] = set()

    def add(self, driver: Wakeable) -> None:
        with self._lock:
            self._drivers.add(driver)

    def discard(self, driver: Wakeable) -> None:
        with self._lock:
            self._drivers.discard(driver)

    def wake_all(self) -> None:
        with self._lock:
            drivers = list(self._drivers)
        for driver in drivers:
            driver.wake()

    def __len__(self) -> int:
        with self._lock:
            return len(self._drivers)
