"""The Server: what changes while serving, around a poller thread and a pool of workers.

It holds the mutable side only: the open-connection count, the pool's job queue and its
heartbeat, the hand-back list and wake-up descriptor of the poller (server/poller.py, the sole
owner of the selector), the open HTTP/2 connections, and the graceful stop. Everything the
configuration fixes is one frozen Runtime (server/runtime.py) that the drivers receive; they
see the Server only through the small `Host` interface (park, dispatch, stopping, ...).

Workers run a connection's exchange, serve already-buffered pipelined requests at once, and
hand connections back through a list plus a wake-up descriptor (one write per poller wake-up
however many come back: hand-offs are coalesced); they never touch the selector. Out of
descriptors (accept() fails, or an HTTP/2 connection gets no wake-up of its own) the poller
stops accepting for a moment: the process never fails for that.

No global state: everything lives on the Server, which a parent process can build in a child
with listeners it created (pre-forked workers). Shared counters sit behind one lock, so the
code stays correct on free-threaded CPython.
"""

from __future__ import annotations

import logging
import queue
import socket
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from .h2threads import DriverThreads, H2Connections
from .http1 import open_connection
from .joining import join_threads
from .listeners import Listener
from .metrics import BUSY, CONNECTIONS, CONNECTIONS_OPEN, DURATION, THREADS, Snapshot
from .parking import Parkable
from .poller import LIVENESS_TICK_S, Poller
from .runtime import Job, Runtime, Wakeable, build_runtime
from .wakeup import Wakeup


class Server:
    """Serves a WSGI application on already-bound listeners; start(), stop(), close()."""

    def __init__(
        self,
        app: Callable[..., Any],
        cfg: Any,
        listeners: Iterable[Listener],
        error_log: logging.Logger,
        access_log: logging.Logger | None = None,
        multiprocess: bool = False,
        on_failure: Callable[[], None] | None = None,
    ) -> None:
        """`on_failure` is called (from the poller thread) if the poller dies: the process
        should then stop, since no connection can be accepted or served any more."""
        # Fixed by the configuration (TLSConfigError when its files are unusable):
        self.runtime: Runtime = build_runtime(app, cfg, error_log, access_log, multiprocess)
        self.on_failure = on_failure
        self.listeners = list(listeners)
        self.error_log = error_log
        self.h2_connections = H2Connections()  # open HTTP/2 connections, parked or not
        self.h2_threads = DriverThreads()  # serve HTTP/2 connections while they have work
        self.stopping = False
        self._lock = threading.Lock()
        self._handbacks: list[Parkable] = []
        self._wake_pending = False  # the wake-up was notified, unread by the poller
        self.wakeup = Wakeup()
        self.short_of: str | None = None  # why a connection was refused: pause accepting
        self._jobs: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        # The request each pool thread runs (since when, its environ): stuck ones are logged
        # and a worker whose every thread is stuck is replaced (see server/inflight.py).
        self.inflight = self.runtime.inflight
        self._open = 0
        self._opened_total = 0  # (lock) connections accepted, for metrics
        self._backlog_taken = False  # (lock) at a stop: the poller took the listen backlog
        self.accept_paused = False
        self.exiting = False
        self._all_closed = threading.Event()
        self._threads: list[threading.Thread] = []
        self._poller = Poller(self)

    # -- life cycle ------------------------------------------------------------------------

    def start(self) -> None:
        """Start the poller and the worker threads; returns at once."""
        poller = threading.Thread(target=self._poller.run, name="treadle-poller", daemon=True)
        self._threads.append(poller)
        for number in range(self.runtime.thread_count):
            worker = threading.Thread(target=self._work, args=(number,),
                                      name=f"treadle-worker-{number}", daemon=True)
            self._threads.append(worker)
        for thread in self._threads:
            thread.start()

    def stop(self, timeout_s: float) -> bool:
        """Graceful stop: stop accepting, close idle connections, let requests in flight
        finish. True when every connection closed within `timeout_s`."""
        self.begin_stop()
        return self._all_closed.wait(timeout_s)

    def begin_stop(self) -> None:
        """Start a graceful stop; the poller takes the listen backlog first (see
        Poller.begin_stop), so the stop is complete only once it has, and all closed."""
        with self._lock:
            self.stopping = True
        poller_running = bool(self._threads) and self._threads[0].is_alive()
        if not poller_running:
            self.backlog_taken()
        self._wake()
        self.h2_connections.wake_all()  # running ones send GOAWAY, finish their streams

    def backlog_taken(self) -> None:
        """The poller has accepted what waited and stopped listening: from now on the last
        connection to close completes the stop."""
        with self._lock:
            self._backlog_taken = True
            if self._open == 0:
                self._all_closed.set()

    def wait_stopped(self, timeout_s: float) -> bool:
        return self._all_closed.wait(timeout_s)

    def close(self, join_timeout_s: float = 1.0) -> None:
        """Stop at once: close every connection the poller holds and end the threads,
        HTTP/2 drivers included (within `join_timeout_s` in all). Workers still inside the
        application are daemon threads and are left behind."""
        self.stopping = True
        self.exiting = True
        self._wake()
        self.h2_connections.wake_all()  # those running close at once
        for _ in range(self.runtime.thread_count):
            self._jobs.put(None)
        deadline = time.monotonic() + join_timeout_s
        self.h2_threads.close(deadline)
        join_threads(self._threads, deadline)
        if not self._threads:
            self._poller.readiness.close()  # the poller never ran to close it
        if not self._threads or not self._threads[0].is_alive():
            self.wakeup.close()

    def count_requests(self, on_request: Callable[[], None]) -> None:
        """Call `on_request` (from the serving thread) after each request, HTTP/1.1 or an
        HTTP/2 stream: a worker process counts them to recycle itself after max_requests."""
        self.inflight.on_request = on_request

    def alive_as_of(self) -> float:
        """Until when the poller is known to be alive: it loops at least every
        LIVENESS_TICK_S, so a poller asleep in poll() is alive until that tick is due, and
        this value ages only once it is overdue. A supervisor aborts the process when it is
        older than its timeout; threads stuck in the application are watched request by
        request instead (check_stuck)."""
        return min(time.monotonic(), self._poller.looped_at + LIVENESS_TICK_S)

    def check_stuck(self) -> bool:
        """Log each request running longer than `timeout` once, with its thread's stack;
        True when every pool thread runs one. Called about once a second by the serving loop."""
        return self.inflight.stuck(self.runtime.timeout_s, self.error_log.error)

    def ready(self) -> bool:
        """Serving: the poller runs and no stop has begun (the metrics listener's /readyz)."""
        return not self.stopping and bool(self._threads) and self._threads[0].is_alive()

    def metrics_snapshot(self) -> Snapshot:
        """This process's metrics (server/metrics.py): the requests' registry, then the
        connections and the pool as they are now."""
        metrics = self.runtime.metrics
        snapshot = metrics.snapshot() if metrics is not None else {}
        h2_open = len(self.h2_connections)
        with self._lock:
            open_now, opened = self._open, self._opened_total
        snapshot[(CONNECTIONS_OPEN, ("http1",))] = float(max(0, open_now - h2_open))
        snapshot[(CONNECTIONS_OPEN, ("h2",))] = float(h2_open)
        snapshot[(CONNECTIONS, ())] = float(opened)
        # The pool from the in-flight slots each thread keeps anyway (no clock per job: one
        # cost 15% of hello world's requests/s); busy seconds are the requests' own.
        busy = sum(1 for slot in self.inflight.slots if slot is not None)
        snapshot[(THREADS, ("busy",))] = float(busy)
        snapshot[(THREADS, ("idle",))] = float(len(self.inflight.slots) - busy)
        snapshot[(BUSY, ())] = snapshot.get((DURATION + "_sum", ()), 0.0)
        return snapshot

    @property
    def tls_context(self) -> Any:
        """The TLS context connections are served with (None: plain TCP)."""
        return self.runtime.tls_context

    @property
    def open_connections(self) -> int:
        with self._lock:
            return self._open

    # -- shared with connections (any thread) ------------------------------------------------

    def park(self, conn: Parkable) -> None:
        """A worker gives a connection back to the poller (one wake-up write per poller
        wake-up, however many connections come back meanwhile). Each has set its deadline."""
        with self._lock:
            self._handbacks.append(conn)
            if self._wake_pending:
                return
            self._wake_pending = True
        self._write_wake()

    def connection_closed(self, conn: object) -> None:
        with self._lock:
            self._open -= 1
            remaining = self._open
            if self.stopping and self._backlog_taken and remaining == 0:
                self._all_closed.set()
        if self.accept_paused and remaining < self.runtime.max_connections:
            self._wake()

    def out_of_resources(self, why: str) -> None:
        """A new connection was refused for want of descriptors (or threads), from any
        thread: the poller pauses accepting, as when accept() itself fails so."""
        with self._lock:
            self.short_of = why
        self._wake()

    def take_shortage(self) -> str | None:
        with self._lock:
            why, self.short_of = self.short_of, None
        return why

    def connection_opened(self) -> int:
        with self._lock:
            self._open += 1
            self._opened_total += 1
            return self._open

    def _wake(self) -> None:
        with self._lock:
            wake = not self._wake_pending
            self._wake_pending = True
        if wake:
            self._write_wake()

    def _write_wake(self) -> None:
        self.wakeup.notify()

    def take_handbacks(self) -> list[Parkable]:
        self.wakeup.drain()
        with self._lock:
            items, self._handbacks = self._handbacks, []
            self._wake_pending = False
        return items

    def dispatch(self, job: Job) -> None:
        self._jobs.put(job)

    def idle_workers_likely(self) -> bool:
        """No connection is waiting for a worker (so this one may keep its worker)."""
        return self._jobs.empty()

    def new_connection(self, sock: socket.socket, peer: Any,
                       local: tuple[str, int]) -> Parkable:
        """A connection accepted by the poller: every one starts as HTTP/1.1 (negotiation
        may hand it to HTTP/2 later)."""
        return open_connection(self.runtime, self, sock, peer, local)

    def h2_opened(self, conn: Wakeable) -> None:
        self.h2_connections.add(conn)

    def h2_closed(self, conn: Wakeable) -> None:
        self.h2_connections.discard(conn)

    def h2_serve(self, turn: Callable[[], None]) -> None:
        self.h2_threads.run(turn)

    def _work(self, number: int) -> None:
        get = self._jobs.get
        inflight = self.inflight
        inflight.bind(number)
        while True:
            job = get()
            if job is None:
                return
            try:
                job.serve()
            except BaseException as exc:  # serve() reports its own; never lose a worker
                self.error_log.error("a worker caught an unexpected error", exc_info=exc)
            finally:
                inflight.end(number)
