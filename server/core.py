"""The Server: an accepting poller thread, a bounded pool of workers, and a graceful stop.

One poller thread owns the selector: the listening sockets (the accept loop), every idle or
arriving connection, and a deadline-ordered expiry heap. It reads request heads itself, so a
slow client never holds a worker, and hands each connection with a complete head to the
worker pool through a queue. Workers run the exchange, serve already-buffered pipelined
requests at once, and hand connections back through a list plus a wake-up descriptor (one
write per poller wake-up however many come back: hand-offs are coalesced); they never touch
the selector. Out of descriptors (accept() fails, or an HTTP/2 connection gets no wake-up of
its own) the poller stops accepting for a moment: the process never fails for that.

No global state: everything lives on the Server, which a parent process can build in a child
with listeners it created (pre-forked workers). Shared counters sit behind one lock, so the
code stays correct on free-threaded CPython.
"""

from __future__ import annotations

import errno
import heapq
import itertools
import logging
import os
import queue
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from email.utils import formatdate
from typing import Any

from .exchange import run_exchange
from .http1 import (
    BODY,
    CLOSE,
    DISPATCH,
    HANDED_OFF,
    HANDSHAKE,
    HEAD,
    IDLE,
    LINGER,
    WAIT,
    HTTP1Connection,
)
from .http2 import H2Driver, H2Registry, limits_from
from .inflight import InFlight
from .listeners import Listener
from .logs import access_atoms, error_stream, format_access
from .readiness import make_readiness
from .tls import build_context
from .wakeup import Wakeup
from .wsgi import FileWrapper, TrustedProxies

ACCEPT_BATCH = 64  # accepts per readiness event, so arrivals cannot starve parked clients
ACCEPT_RETRY_S = 0.5  # pause after running out of file descriptors
# Complete requests the poller holds before waking workers, within one round of readiness
# events (see _Poller.dispatch_ready): enough to spare most wake-ups, few enough that the
# first request of a long round (up to 1,023 ready connections) is not kept waiting long.
# Batching exists because of the interpreter lock; without it (free-threaded CPython) the
# workers can run beside the poller, so each request goes at once.
DISPATCH_BATCH = 128 if getattr(sys, "_is_gil_enabled", lambda: True)() else 1
# The poller loops at least this often, so that `alive_as_of` stays fresh (worker heartbeats).
LIVENESS_TICK_S = 1.0
# At a graceful stop, how long a connection whose request has not arrived yet (a new one, a
# head arriving, a TLS handshake) is still given: a client that connected just before the
# stop is answered rather than dropped, and a silent one cannot hold the stop for long.
STOP_GRACE_S = 2.0
COMPACT_MIN_ENTRIES = 1024  # expiry heap size that triggers dropping closed connections
SERVER_SOFTWARE = "treadle"


@dataclass(frozen=True)
class Limits:
    """What the engine may receive (constructor keywords of protocol.Connection)."""

    head_size: int
    request_line: int
    field_count: int
    field_size: int


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
        self.app = app
        self.on_failure = on_failure
        self.listeners = list(listeners)
        self.error_log = error_log
        self.access_log = access_log
        self.access_log_format: str = cfg.access_log_format
        self.thread_count: int = cfg.threads
        self.max_connections: int = cfg.worker_connections
        self.keepalive_s: float = cfg.keepalive
        self.header_timeout_s: float = cfg.header_timeout
        self.body_timeout_s: float = cfg.body_timeout
        self.root_path: str = cfg.root_path
        self.server_header: bool = cfg.server_header
        self.trusted_proxies = TrustedProxies(cfg.forwarded_allow_ips)
        head = cfg.limit_request_head_size
        self.limits = Limits(
            head_size=head,
            request_line=cfg.limit_request_line or head,
            field_count=cfg.limit_request_fields,
            field_size=cfg.limit_request_field_size or head,
        )
        self.tls_context = build_context(cfg)  # TLSConfigError when the files are unusable
        self.handshake_timeout_s: float = cfg.handshake_timeout
        self.h2_enabled = "h2" in cfg.http_protocols
        cleartext = cfg.http2_cleartext if self.h2_enabled and self.tls_context is None else "off"
        self.h2c_prior = cleartext in ("prior-knowledge", "both")
        self.h2c_upgrade = cleartext in ("upgrade", "both")
        self.h2_limits = limits_from(cfg)
        self.h2_connections = H2Registry()  # open HTTP/2 connections, each on its own thread
        self.sendfile_ok = hasattr(os, "sendfile") and self.tls_context is None
        self.run_exchange: Callable[[HTTP1Connection, Any], bool] = run_exchange
        self.stopping = False
        self._environ_common = _environ_common(cfg, error_log, multiprocess)
        self._lock = threading.Lock()
        self._handbacks: list[HTTP1Connection] = []
        self._wake_pending = False  # the wake-up was notified, unread by the poller
        self._wakeup = Wakeup()
        self._short_of: str | None = None  # why a connection was refused: pause accepting
        self._jobs: queue.SimpleQueue[HTTP1Connection | None] = queue.SimpleQueue()
        # The request each pool thread runs (since when, its environ): stuck ones are logged
        # and a worker whose every thread is stuck is replaced (see server/inflight.py).
        self.inflight = InFlight(self.thread_count)
        self.timeout_s: float = cfg.timeout
        self._open = 0
        self._backlog_taken = False  # (lock) at a stop: the poller took the listen backlog
        self._evicted = 0
        self._accept_paused = False
        self._exit = False
        self._all_closed = threading.Event()
        self._threads: list[threading.Thread] = []
        self._date: tuple[int, bytes] = (0, b"")
        self._poller = _Poller(self)

    # -- life cycle ------------------------------------------------------------------------

    def start(self) -> None:
        """Start the poller and the worker threads; returns at once."""
        poller = threading.Thread(target=self._poller.run, name="treadle-poller", daemon=True)
        self._threads.append(poller)
        for number in range(self.thread_count):
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
        _Poller.begin_stop), so the stop is complete only once it has, and all closed."""
        with self._lock:
            self.stopping = True
        poller_running = bool(self._threads) and self._threads[0].is_alive()
        if not poller_running:
            self.backlog_taken()
        self._wake()
        self.h2_connections.wake_all()  # each sends GOAWAY and finishes its streams

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
        """Stop at once: close every connection the poller holds and end the threads.

        Workers still inside the application are daemon threads and are left behind."""
        self.stopping = True
        self._exit = True
        self._wake()
        for _ in range(self.thread_count):
            self._jobs.put(None)
        deadline = time.monotonic() + join_timeout_s
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        if not self._threads:
            self._poller.readiness.close()  # the poller never ran to close it
        if not self._threads or not self._threads[0].is_alive():
            self._wakeup.close()

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
        return self.inflight.stuck(self.timeout_s, self.error_log.error)

    @property
    def open_connections(self) -> int:
        with self._lock:
            return self._open

    # -- shared with connections (any thread) ------------------------------------------------

    def park(self, conn: HTTP1Connection) -> None:
        """A worker gives a connection back to the poller (one wake-up write per poller
        wake-up, however many connections come back meanwhile)."""
        if conn.phase == IDLE:
            conn.deadline = time.monotonic() + self.keepalive_s
        with self._lock:
            self._handbacks.append(conn)
            if self._wake_pending:
                return
            self._wake_pending = True
        self._write_wake()

    def connection_closed(self, conn: HTTP1Connection) -> None:
        with self._lock:
            self._open -= 1
            remaining = self._open
            if self.stopping and self._backlog_taken and remaining == 0:
                self._all_closed.set()
        if self._accept_paused and remaining < self.max_connections:
            self._wake()

    def count_eviction(self) -> None:
        with self._lock:
            self._evicted += 1

    @property
    def evicted_connections(self) -> int:
        """Connections closed to admit new ones at worker_connections (a future metric)."""
        with self._lock:
            return self._evicted

    def out_of_resources(self, why: str) -> None:
        """A new connection was refused for want of descriptors (or threads), from any
        thread: the poller pauses accepting, as when accept() itself fails so."""
        with self._lock:
            self._short_of = why
        self._wake()

    def take_shortage(self) -> str | None:
        with self._lock:
            why, self._short_of = self._short_of, None
        return why

    def connection_opened(self) -> int:
        with self._lock:
            self._open += 1
            return self._open

    def _wake(self) -> None:
        with self._lock:
            wake = not self._wake_pending
            self._wake_pending = True
        if wake:
            self._write_wake()

    def _write_wake(self) -> None:
        self._wakeup.notify()

    def take_handbacks(self) -> list[HTTP1Connection]:
        self._wakeup.drain()
        with self._lock:
            items, self._handbacks = self._handbacks, []
            self._wake_pending = False
        return items

    def dispatch(self, conn: HTTP1Connection) -> None:
        self._jobs.put(conn)

    def idle_workers_likely(self) -> bool:
        """No connection is waiting for a worker (so this one may keep its worker)."""
        return self._jobs.empty()

    def http_date(self) -> bytes:
        """The Date header value, formatted at most once a second."""
        now = int(time.time())
        cached = self._date
        if cached[0] != now:
            cached = (now, formatdate(now, usegmt=True).encode("ascii"))
            self._date = cached
        return cached[1]

    def environ_base(self, conn: HTTP1Connection | H2Driver) -> dict[str, Any]:
        """The environ entries that stay the same for every request on `conn`."""
        base = self._environ_common.copy()
        base["REMOTE_ADDR"] = conn.peer_host or ""
        base["REMOTE_PORT"] = conn.peer_port
        base["SERVER_NAME"] = conn.listener_name
        base["SERVER_PORT"] = str(conn.listener_port)
        tls = conn.tls_environ
        if tls:
            base.update(tls)
        return base

    def log_access(self, environ: dict[str, Any], status: str,
                   headers: list[tuple[bytes, bytes]], sent: int, duration_s: float) -> None:
        if self.access_log is None:
            return
        try:
            atoms = access_atoms(environ, status, headers, sent, duration_s)
            self.access_log.info(format_access(self.access_log_format, atoms))
        except Exception:
            self.error_log.exception("writing the access log failed")

    def _work(self, number: int) -> None:
        get = self._jobs.get
        inflight = self.inflight
        inflight.bind(number)
        while True:
            conn = get()
            if conn is None:
                return
            try:
                conn.serve()
            except BaseException as exc:  # serve() reports its own; never lose a worker
                self.error_log.error("a worker caught an unexpected error", exc_info=exc)
            finally:
                inflight.end(number)


class _Poller:
    """The poller thread's state: readiness, the expiry heap. Only that thread touches them."""

    _WAKE = object()

    def __init__(self, server: Server) -> None:
        self.server = server
        self.readiness = make_readiness()
        self.expiry: list[tuple[float, int, HTTP1Connection]] = []
        self.ready: list[HTTP1Connection] = []  # to dispatch at the end of this round
        self.compact_at = COMPACT_MIN_ENTRIES
        self.sequence = itertools.count()
        self.accepting = False
        self.stop_begun = False
        self.resume_at = 0.0
        self.locals: dict[int, tuple[str, int]] = {}
        self.looped_at = time.monotonic()  # read by Server.alive_as_of from other threads
        for listener in server.listeners:
            self.locals[listener.sock.fileno()] = _local_address(listener.sock)

    def run(self) -> None:
        server = self.server
        self.readiness.watch(server._wakeup.fileno(), self._WAKE)
        self.set_accepting(True)
        poll = self.readiness.poll
        try:
            while not server._exit:
                self.looped_at = time.monotonic()
                for target in poll(self.next_timeout()):
                    if type(target) is HTTP1Connection:
                        target.registered = False  # reported: watched no more (one-shot)
                        if not target.closed:
                            self.route(target, target.on_readable())
                    elif target is self._WAKE:
                        self.on_wake()
                    elif target is not None and self.accepting:  # else closed this round
                        self.accept(target)
                if self.expiry and self.expiry[0][0] <= time.monotonic():
                    self.expire()
                if self.resume_at and self.resume_at <= time.monotonic():
                    self.resume_at = 0.0
                    if not server.stopping:
                        self.set_accepting(True)
                if self.ready:
                    self.dispatch_ready()
        except BaseException as exc:
            server.error_log.critical("the poller failed; no more connections are served",
                                      exc_info=exc)
            if server.on_failure is not None:
                server.on_failure()
        finally:
            self.close_all()

    def next_timeout(self) -> float:
        deadlines = [self.looped_at + LIVENESS_TICK_S]
        if self.expiry:
            deadlines.append(self.expiry[0][0])
        if self.resume_at:
            deadlines.append(self.resume_at)
        return max(0.0, min(deadlines) - time.monotonic())

    def dispatch_ready(self) -> None:
        """Hand this round's complete requests to the workers.

        Workers are woken only once the round's reading is done: woken earlier, each would
        fight the poller for the interpreter lock at its every system call (on one core that
        cost about a tenth of the throughput, and the p99 latency with it)."""
        ready, self.ready = self.ready, []
        dispatch = self.server.dispatch
        for conn in ready:
            dispatch(conn)

    def route(self, conn: HTTP1Connection, action: int) -> None:
        """Act on what a connection needs next; it is never watched when this is called."""
        if action == DISPATCH:
            self.ready.append(conn)
            if len(self.ready) >= DISPATCH_BATCH:  # a long round: let workers start
                self.dispatch_ready()
        elif action == CLOSE:
            self.close(conn)
        elif action == HANDED_OFF:  # it speaks HTTP/2: its driver owns the socket now
            conn.registered = False
            self.readiness.remove(conn.fd)
        else:
            conn.registered = True
            self.readiness.arm(conn.fd, conn)
            self.schedule(conn)

    def close(self, conn: HTTP1Connection) -> None:
        if conn.registered:
            conn.registered = False
        self.readiness.remove(conn.fd)
        conn._close_now()

    def schedule(self, conn: HTTP1Connection) -> None:
        """Keep one heap entry per connection, at or before its deadline."""
        queued = conn.heap_deadline
        if queued is None or conn.deadline < queued:
            conn.heap_deadline = conn.deadline
            heapq.heappush(self.expiry, (conn.deadline, next(self.sequence), conn))
            if len(self.expiry) > self.compact_at:
                self.compact()

    def compact(self) -> None:
        """Drop entries of closed connections (and superseded ones) from the heap.

        Without this, each short-lived connection would stay referenced until its deadline
        (header_timeout later): at thousands of connections a second that is a large heap
        and many live objects for the garbage collector to walk (long pauses)."""
        kept = [entry for entry in self.expiry
                if not entry[2].closed and entry[2].heap_deadline == entry[0]]
        for entry in self.expiry:
            if entry[2].closed:
                entry[2].heap_deadline = None
        heapq.heapify(kept)
        self.expiry = kept
        self.compact_at = max(COMPACT_MIN_ENTRIES, 2 * len(kept))

    def expire(self) -> None:
        now = time.monotonic()
        expiry = self.expiry
        while expiry and expiry[0][0] <= now:
            deadline, _, conn = heapq.heappop(expiry)
            if conn.heap_deadline != deadline:
                continue  # superseded by an earlier entry
            conn.heap_deadline = None
            if not conn.registered or conn.closed:
                continue
            if conn.deadline <= now:
                if conn.phase == BODY:
                    conn.registered = False
                    self.readiness.remove(conn.fd)  # a worker owns it now, unwatched
                    self.route(conn, conn.early_body_expired())
                    continue
                if conn.phase == HEAD:
                    self.server.error_log.debug("closing %s: request head not received in "
                                                "time", conn.peer_host)
                elif conn.phase == HANDSHAKE:
                    self.server.error_log.debug("closing %s: TLS handshake not finished in "
                                                "time", conn.peer_host)
                self.close(conn)
            else:
                self.schedule(conn)

    def on_wake(self) -> None:
        server = self.server
        short_of = server.take_shortage()
        if short_of is not None:
            self.pause_accepting(short_of)
        for conn in server.take_handbacks():
            if conn.closed:
                continue
            if server.stopping and not self.keep_while_stopping(conn):
                self.close(conn)
                continue
            self.route(conn, WAIT)
        if server.stopping:
            self.begin_stop()
        elif not self.accepting and not self.resume_at:
            if server.open_connections < server.max_connections:
                self.set_accepting(True)

    def begin_stop(self) -> None:
        """A graceful stop, once: take what waits in the listen backlog (the kernel accepted
        it before we stopped), stop listening (new connections are refused, not left
        waiting), close idle keep-alive connections, and keep those whose request has not
        arrived yet for a short grace: a client that connected just before the stop is
        answered (with Connection: close), not dropped."""
        if self.stop_begun:
            return
        self.stop_begun = True
        if self.accepting:
            for listener in self.server.listeners:
                while self.accept(listener):
                    pass
        self.set_accepting(False)
        for listener in self.server.listeners:
            listener.sock.close()  # ours only: a parent's or sibling's copy stays open
        for conn in self.readiness.watched():
            if type(conn) is not HTTP1Connection or conn.closed or not conn.registered:
                continue
            if conn.phase >= LINGER:  # lingering, or a request body in flight
                continue
            conn.registered = False
            action = conn.on_readable()
            if action == DISPATCH:
                self.route(conn, DISPATCH)  # a whole request is here: answer it
            elif action == WAIT and self.keep_while_stopping(conn):
                self.route(conn, WAIT)
            else:
                self.close(conn)
        self.server.backlog_taken()

    def keep_while_stopping(self, conn: HTTP1Connection) -> bool:
        """During a graceful stop: keep a connection whose request is still to come (a head
        arriving, a new connection, a TLS handshake) for at most STOP_GRACE_S more, and one
        lingering or receiving a body; an idle keep-alive connection is closed."""
        if conn.phase >= LINGER:
            return True
        if conn.phase not in (HEAD, HANDSHAKE):
            return False
        conn.deadline = min(conn.deadline, time.monotonic() + STOP_GRACE_S)
        return True

    def set_accepting(self, on: bool) -> None:
        if on == self.accepting:
            return
        self.accepting = on
        self.server._accept_paused = not on
        for listener in self.server.listeners:
            if on:
                self.readiness.watch(listener.sock.fileno(), listener)
            else:
                self.readiness.unwatch(listener.sock.fileno())

    def accept(self, listener: Listener) -> bool:
        """Accept up to ACCEPT_BATCH connections; True when more may be waiting."""
        server = self.server
        local = self.locals[listener.sock.fileno()]
        for _ in range(ACCEPT_BATCH):
            victim = None
            if server.open_connections >= server.max_connections:
                victim = self.longest_waiting()
                if victim is None:  # every slot is busy: wait until one closes
                    self.set_accepting(False)
                    return False
            if server._short_of is not None:  # a refusal: on_wake pauses accepting
                return False
            try:
                sock, peer = listener.sock.accept()
            except BlockingIOError:
                return False
            except OSError as exc:
                self.accept_failed(exc)
                return False
            if victim is not None:
                self.evict(victim)
            self.adopt(sock, peer, local)
        return True

    def longest_waiting(self) -> HTTP1Connection | None:
        """At worker_connections: the parked connection that has waited longest for a
        request (idle keep-alive, or a head still arriving), to close so that a new one is
        admitted (as nginx reuses idle connections). Silent clients holding every slot thus
        cannot lock fresh ones out. A scan of the heap, only when the cap is reached."""
        best: HTTP1Connection | None = None
        best_since = 0.0
        for deadline, _, conn in self.expiry:
            if conn.heap_deadline != deadline or not conn.registered or conn.closed:
                continue  # superseded entry, or not parked here
            since = self.waiting_since(conn)
            if since is not None and (best is None or since < best_since):
                best, best_since = conn, since
        return best

    def waiting_since(self, conn: HTTP1Connection) -> float | None:
        """When a parked connection began waiting for a request; None if it is not (a body
        arriving, or an error answer lingering: those are never evicted)."""
        if conn.phase == IDLE:
            return conn.deadline - self.server.keepalive_s
        if conn.phase == HEAD:
            return conn.deadline - self.server.header_timeout_s
        return None

    def evict(self, conn: HTTP1Connection) -> None:
        server = self.server
        server.count_eviction()
        waited_s = time.monotonic() - (self.waiting_since(conn) or 0.0)
        server.error_log.debug("closing %s:%s (waiting %.1f s for a request) to admit a new "
                               "connection: worker_connections (%d) reached", conn.peer_host,
                               conn.peer_port, waited_s, server.max_connections)
        self.close(conn)

    def adopt(self, sock: socket.socket, peer: Any, local: tuple[str, int]) -> None:
        server = self.server
        sock.setblocking(False)
        if sock.family != socket.AF_UNIX:
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass
        conn = HTTP1Connection(server, sock, peer, local)
        server.connection_opened()
        if server.tls_context is not None:  # the handshake runs on a worker, never here
            conn.phase = HANDSHAKE
            conn.deadline = time.monotonic() + server.handshake_timeout_s
            self.route(conn, DISPATCH)
            return
        conn.phase = HEAD
        conn.h2c_watch = server.h2c_prior
        conn.deadline = time.monotonic() + server.header_timeout_s
        action = conn.on_readable()
        if action == WAIT:
            conn.registered = True
            self.readiness.add(conn.fd, conn)
            self.schedule(conn)
        else:
            self.route(conn, action)

    def accept_failed(self, exc: OSError) -> None:
        if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
            self.pause_accepting(f"cannot accept connections: {exc.strerror}")
        elif exc.errno not in (errno.ECONNABORTED, errno.EPROTO, errno.EINTR):
            self.server.error_log.error("accept() failed: %s", exc)

    def pause_accepting(self, why: str) -> None:
        """Out of descriptors: stop accepting for ACCEPT_RETRY_S (the listen backlog holds
        new clients meanwhile), rather than fail or refuse each one."""
        if self.resume_at:
            return  # paused already, and said so
        self.server.error_log.error("%s; pausing accepting for %gs", why, ACCEPT_RETRY_S)
        self.set_accepting(False)
        self.resume_at = time.monotonic() + ACCEPT_RETRY_S

    def close_all(self) -> None:
        for conn in self.ready:  # read, never handed to a worker
            if not conn.closed:
                self.close(conn)
        self.ready = []
        for conn in self.readiness.watched():
            if type(conn) is HTTP1Connection and conn.registered and not conn.closed:
                self.close(conn)
        self.readiness.close()


def _environ_common(cfg: Any, error_log: logging.Logger, multiprocess: bool) -> dict[str, Any]:
    """The environ entries every request of this server shares."""
    return {
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.errors": error_stream(error_log),
        "wsgi.multithread": True,
        "wsgi.multiprocess": multiprocess,
        "wsgi.run_once": False,
        "wsgi.input_terminated": True,
        "wsgi.file_wrapper": FileWrapper,
        "SERVER_SOFTWARE": SERVER_SOFTWARE,
        "SCRIPT_NAME": cfg.root_path,
    }


def _local_address(sock: socket.socket) -> tuple[str, int]:
    address = sock.getsockname()
    if isinstance(address, tuple):
        return str(address[0]), int(address[1])
    return "localhost", 80
