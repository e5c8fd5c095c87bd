"""The poller: the one thread that owns the selector, and with it every parked connection.

It watches the listening sockets (the accept loop), the Server's wake-up descriptor, and every
connection parked with it (anything Parkable, server/parking.py: a descriptor, a phase and its
deadline, what to do when readable or expired), in a deadline-ordered expiry heap. It reads
request heads itself (the connection's on_readable), so a slow client never holds a worker,
and hands each connection with a complete head to the pool; workers hand connections back
through the Server (park), never by touching the selector. A response the client reads
slowly is drained here too (phase WRITE: watched for writable), so no worker waits on it.
Out of descriptors it stops accepting for a moment; at worker_connections it closes the
connection that has waited longest for a request; at a graceful stop it takes the listen
backlog, then stops listening.
"""

from __future__ import annotations

import errno
import heapq
import itertools
import socket
import sys
import time
from typing import Any, Protocol

from .listeners import Listener
from .parking import Action, Parkable, Phase
from .readiness import make_readiness
from .runtime import Runtime
from .wakeup import Wakeup

ACCEPT_BATCH = 64  # accepts per readiness event, so arrivals cannot starve parked clients
ACCEPT_RETRY_S = 0.5  # pause after running out of file descriptors
# Complete requests the poller holds before waking workers, within one round of readiness
# events (see Poller.dispatch_ready): enough to spare most wake-ups, few enough that the
# first request of a long round (up to 1,023 ready connections) is not kept waiting long.
# Batching exists because of the interpreter lock; without it (free-threaded CPython) the
# workers can run beside the poller, so each request goes at once.
DISPATCH_BATCH = 128 if getattr(sys, "_is_gil_enabled", lambda: True)() else 1
# The poller loops at least this often, so that `alive_as_of` stays fresh (worker heartbeats).
LIVENESS_TICK_S = 1.0
# At a graceful stop, how long a connection whose request has not arrived yet (a new one, a
# head arriving, a TLS handshake, an idle keep-alive one) is still given: a client that
# connected or sent its next request just before the stop is answered rather than dropped,
# and a silent one cannot hold the stop for long.
STOP_GRACE_S = 2.0
COMPACT_MIN_ENTRIES = 1024  # expiry heap size that triggers dropping closed connections


# Module aliases of the one definition (server/parking.py); phases are ordered, see there.
DISPATCH, WAIT, CLOSE, HANDED_OFF = (Action.DISPATCH, Action.WAIT, Action.CLOSE,
                                     Action.HANDED_OFF)
HANDSHAKE, IDLE, HEAD, LINGER, WRITE = (Phase.HANDSHAKE, Phase.IDLE, Phase.HEAD, Phase.LINGER,
                                        Phase.WRITE)


class PollerHost(Protocol):
    """What the poller needs of the Server (server/core.py) that runs it."""

    runtime: Runtime
    listeners: list[Listener]
    wakeup: Wakeup
    exiting: bool
    stopping: bool
    accept_paused: bool
    short_of: str | None
    on_failure: Any

    @property
    def open_connections(self) -> int: ...
    @property
    def error_log(self) -> Any: ...

    def new_connection(self, sock: socket.socket, peer: Any,
                       local: tuple[str, int]) -> Parkable: ...
    def connection_opened(self) -> int: ...
    def take_shortage(self) -> str | None: ...
    def take_handbacks(self) -> list[Parkable]: ...
    def dispatch(self, job: Parkable) -> None: ...
    def backlog_taken(self) -> None: ...


class Poller:
    """The poller thread's state: readiness, the expiry heap. Only that thread touches them."""

    _WAKE = object()

    def __init__(self, server: PollerHost) -> None:
        self.server = server
        self.readiness = make_readiness()
        self.expiry: list[tuple[float, int, Parkable]] = []
        self.ready: list[Parkable] = []  # to dispatch at the end of this round
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
        self.readiness.watch(server.wakeup.fileno(), self._WAKE)
        self.set_accepting(True)
        poll = self.readiness.poll
        try:
            while not server.exiting:
                self.looped_at = time.monotonic()
                for target in poll(self.next_timeout()):
                    if target is self._WAKE:
                        self.on_wake()
                    elif type(target) is Listener:
                        if self.accepting:  # else it stopped listening this round
                            self.accept(target)
                    elif target is not None:  # a parked connection
                        target.registered = False  # reported: watched no more (one-shot)
                        if not target.closed:
                            self.route(target, target.on_writable() if target.phase == WRITE
                                       else target.on_readable())
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

    def route(self, conn: Parkable, action: Action) -> None:
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
            if conn.phase == WRITE and conn.wants_write:
                self.readiness.arm_write(conn.fd, conn)
            else:
                self.readiness.arm(conn.fd, conn)
            self.schedule(conn)

    def close(self, conn: Parkable) -> None:
        if conn.registered:
            conn.registered = False
        self.readiness.remove(conn.fd)
        conn.close_now()

    def schedule(self, conn: Parkable) -> None:
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
                action = conn.on_deadline()
                if action == CLOSE:
                    self.close(conn)
                    continue
                conn.registered = False
                self.readiness.remove(conn.fd)  # a worker owns it now, unwatched
                self.route(conn, action)
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
            if server.open_connections < server.runtime.max_connections:
                self.set_accepting(True)

    def begin_stop(self) -> None:
        """A graceful stop, once: take what waits in the listen backlog (the kernel accepted
        it before we stopped), stop listening (new connections are refused, not left
        waiting), and keep the connections whose request has not arrived yet (idle keep-alive
        ones too) for a short grace: a client that connected, or sent its next request, just
        before the stop is answered (with Connection: close), not dropped."""
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
            if conn is self._WAKE or type(conn) is Listener:
                continue
            if conn.closed or not conn.registered:
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

    def keep_while_stopping(self, conn: Parkable) -> bool:
        """During a graceful stop: keep a connection whose request is still to come (a head
        arriving, a new connection, a TLS handshake, an idle keep-alive connection) for at
        most STOP_GRACE_S more, and one lingering or receiving a body. An idle connection
        closed at once would lose the request its client may be sending just then (it saw
        no `Connection: close`); kept, that request is answered with one."""
        if conn.phase >= LINGER:
            return True
        if conn.phase not in (HEAD, HANDSHAKE, IDLE):
            return False
        conn.deadline = min(conn.deadline, time.monotonic() + STOP_GRACE_S)
        return True

    def set_accepting(self, on: bool) -> None:
        if on == self.accepting:
            return
        self.accepting = on
        self.server.accept_paused = not on
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
            if server.open_connections >= server.runtime.max_connections:
                victim = self.longest_waiting()
                if victim is None:  # every slot is busy: wait until one closes
                    self.set_accepting(False)
                    return False
            if server.short_of is not None:  # a refusal: on_wake pauses accepting
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

    def longest_waiting(self) -> Parkable | None:
        """At worker_connections: a parked connection waiting for a request, to close so
        that a new one is admitted (as nginx reuses idle connections): the one whose head
        has been arriving longest (a client that connected and says nothing, or a slowloris
        head) before any idle keep-alive one, which has at least been served and whose next
        request may come any moment; among those, the longest idle. Silent clients holding
        every slot thus cannot lock fresh ones out, nor push out the clients being served
        as they reconnect. A scan of the heap, only when the cap is reached."""
        best: Parkable | None = None
        best_key = (0, 0.0)
        for deadline, _, conn in self.expiry:
            if conn.heap_deadline != deadline or not conn.registered or conn.closed:
                continue  # superseded entry, or not parked here
            since = self.waiting_since(conn)
            if since is None:
                continue
            key = (0 if conn.phase == HEAD else 1, since)
            if best is None or key < best_key:
                best, best_key = conn, key
        return best

    def waiting_since(self, conn: Parkable) -> float | None:
        """When a parked connection began waiting for a request; None if it is not (a body
        arriving, or an error answer lingering: those are never evicted)."""
        if conn.phase == IDLE:
            return conn.deadline - self.server.runtime.keepalive_s
        if conn.phase == HEAD:
            return conn.deadline - self.server.runtime.header_timeout_s
        return None

    def evict(self, conn: Parkable) -> None:
        server = self.server
        waited_s = time.monotonic() - (self.waiting_since(conn) or 0.0)
        server.error_log.debug("closing %s:%s (waiting %.1f s for a request) to admit a new "
                               "connection: worker_connections (%d) reached", conn.peer_host,
                               conn.peer_port, waited_s, server.runtime.max_connections)
        server.runtime.count_rejected("evicted")
        self.close(conn)

    def adopt(self, sock: socket.socket, peer: Any, local: tuple[str, int]) -> None:
        server = self.server
        sock.setblocking(False)
        if sock.family != socket.AF_UNIX:
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass
        conn = server.new_connection(sock, peer, local)  # in its first phase, with a deadline
        server.connection_opened()
        action = conn.on_readable()  # (a TLS handshake: DISPATCH at once, to a worker)
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
            if conn is self._WAKE or type(conn) is Listener:
                continue
            if conn.registered and not conn.closed:
                self.close(conn)
        self.readiness.close()


def _local_address(sock: socket.socket) -> tuple[str, int]:
    address = sock.getsockname()
    if isinstance(address, tuple):
        return str(address[0]), int(address[1])
    return "localhost", 80
