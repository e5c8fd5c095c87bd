"""The threads that serve HTTP/2 connections while they have work, and the open connections.

An HTTP/2 connection with nothing to do waits in the poller like an idle HTTP/1.1 one and
holds no thread (server/http2.py). When its client sends something, the poller hands it to
one of these threads, which serves its frames until it has no stream in progress and no
output pending, then parks it again. They are not pool threads: a connection's thread waits
for its streams' output, which pool threads produce, so running connections on the pool
could let connections take every pool thread and wait for ever. Threads are kept for reuse:
at most SPARE_MAX wait for the next connection, each for at most SPARE_IDLE_S; the rest end.
Threads: one per connection with work in progress, plus at most SPARE_MAX. When the server
exits, `close` ends them all and waits for them.

`H2Connections` is the set of open HTTP/2 connections (parked or not), so that a graceful
stop can wake those that are running; the poller says goodbye to parked ones itself.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable

from .joining import join_threads
from .runtime import Wakeable

SPARE_MAX = 4  # idle threads kept for the next connection that has work
SPARE_IDLE_S = 10.0  # how long a spare thread waits for one before it ends


class DriverThreads:
    """Runs connection turns (callables) on threads of their own, reusing idle ones."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._turns: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._spare = 0  # (lock) threads waiting in _turns.get
        self._started = 0  # (lock) for thread names
        self._alive: set[threading.Thread] = set()  # (lock) started and not yet ended
        self._closing = False  # (lock) no more turns: the server is exiting

    def run(self, turn: Callable[[], None]) -> None:
        """Run `turn` on a spare thread, or a new one (RuntimeError: none can be started,
        or the server is exiting)."""
        with self._lock:
            if self._closing:
                raise RuntimeError("the server is exiting")
            if self._spare:
                self._spare -= 1  # that thread's: it takes this turn
                self._turns.put(turn)
                return
            self._started += 1
            # in a box the thread empties: Thread keeps its args while it runs
            thread = threading.Thread(target=self._serve, args=([turn],),
                                      name=f"treadle-h2-{self._started}", daemon=True)
            self._alive.add(thread)
        try:
            thread.start()
        except RuntimeError:
            with self._lock:
                self._alive.discard(thread)
            raise

    def close(self, deadline: float) -> bool:
        """End every thread: spare ones at once, running ones when their turn ends (a turn
        ends once the server is exiting); wait for them until `deadline` (monotonic).
        True when all have ended (server/joining.py says why that matters)."""
        with self._lock:
            self._closing = True
            spare, self._spare = self._spare, 0
            threads = list(self._alive)
        for _ in range(spare):
            self._turns.put(None)
        return join_threads(threads, deadline)

    def _serve(self, box: list[Callable[[], None]]) -> None:
        turn: Callable[[], None] | None = box.pop()
        try:
            while turn is not None:
                turn()  # a turn reports its own errors
                turn = None  # the connection is not kept alive while this thread waits
                turn = self._next_turn()
        finally:
            with self._lock:
                self._alive.discard(threading.current_thread())

    def _next_turn(self) -> Callable[[], None] | None:
        """Wait as a spare thread for the next turn: None when this thread should end."""
        with self._lock:
            if self._spare >= SPARE_MAX or self._closing:
                return None
            self._spare += 1
        try:
            return self._turns.get(timeout=SPARE_IDLE_S)
        except queue.Empty:
            with self._lock:  # a turn put for us as the wait ended is still ours
                try:
                    return self._turns.get_nowait()
                except queue.Empty:
                    if not self._closing:  # (closing: close() zeroed the count)
                        self._spare -= 1
                    return None


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
