"""Many mostly idle keep-alive clients, for the 500-connection load of the peer benchmark.

wrk cannot tell which of its connections were never served, so this client holds the idle
connections itself: each sends `GET /`, reads the answer, waits about `interval_s` (jittered)
and asks again, on one keep-alive connection for the whole run. It counts what was sent and
answered, how many connections were served at all, errors and requests left waiting longer
than `timeout_s`. One thread and one selector: the load it adds is a few hundred requests
per second, small next to wrk on the same core.
"""

from __future__ import annotations

import errno
import heapq
import random
import selectors
import socket
import threading
import time
from dataclasses import dataclass, field

READ_BYTES = 65536


@dataclass
class IdleStats:
    connections: int = 0
    served_connections: int = 0
    sent: int = 0
    answered: int = 0
    errors: int = 0
    timeouts: int = 0
    closed_by_server: int = 0


@dataclass(eq=False)
class _Client:
    index: int
    sock: socket.socket | None = None
    connected: bool = False
    buffer: bytearray = field(default_factory=bytearray)
    sent_at: float | None = None
    timed_out: bool = False
    served: bool = False
    schedule: int = 0  # generation of the one pending wake-up; older heap entries are stale


class IdleClients:
    """Hold `count` keep-alive connections to 127.0.0.1:`port`, each asking now and then."""

    def __init__(self, port: int, count: int, interval_s: float = 1.0, timeout_s: float = 2.0):
        self._address = ("127.0.0.1", port)
        self._request = b"GET / HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n" % port
        self._interval_s = interval_s
        self._timeout_s = timeout_s
        self._clients = [_Client(i) for i in range(count)]
        self._selector = selectors.DefaultSelector()
        self._due: list[tuple[float, int, int]] = []  # (when, client index, generation)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._stats = IdleStats(connections=count)
        self._next_timeout_check = 0.0
        self._thread = threading.Thread(target=self._run, name="idle-clients", daemon=True)

    def start(self) -> None:
        for client in self._clients:
            # Spread the connects over a tenth of a second, as real clients would arrive.
            self._schedule(client, random.random() * 0.1)
        self._thread.start()

    def _schedule(self, client: _Client, delay_s: float) -> None:
        client.schedule += 1
        heapq.heappush(self._due, (time.monotonic() + delay_s, client.index, client.schedule))

    def served_count(self) -> int:
        with self._lock:
            return self._stats.served_connections

    def stop(self) -> IdleStats:
        self._stop.set()
        self._thread.join(timeout=10)
        now = time.monotonic()
        with self._lock:
            for client in self._clients:
                if client.sent_at is not None and not client.timed_out:
                    if now - client.sent_at > self._timeout_s:
                        self._stats.timeouts += 1
                if client.sock is not None:
                    client.sock.close()
            self._selector.close()
            return IdleStats(**vars(self._stats))

    def _run(self) -> None:
        while not self._stop.is_set():
            now = time.monotonic()
            while self._due and self._due[0][0] <= now:
                _, index, generation = heapq.heappop(self._due)
                client = self._clients[index]
                if generation == client.schedule:
                    self._send(client)
            wait_s = 0.05 if not self._due else min(0.05, max(0.0, self._due[0][0] - now))
            for key, _ in self._selector.select(wait_s):
                self._on_ready(key.data)
            self._check_timeouts(time.monotonic())

    def _send(self, client: _Client) -> None:
        if client.sock is None:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setblocking(False)
            code = sock.connect_ex(self._address)
            if code not in (0, errno.EINPROGRESS):
                sock.close()
                self._fail(client)
                return
            client.sock, client.connected = sock, False
            self._selector.register(sock, selectors.EVENT_WRITE, client)
            return
        try:
            client.sock.send(self._request)  # tiny: always fits the empty send buffer
        except OSError:
            self._fail(client)
            return
        client.sent_at, client.timed_out = time.monotonic(), False
        with self._lock:
            self._stats.sent += 1

    def _on_ready(self, client: _Client) -> None:
        assert client.sock is not None
        if not client.connected:
            if client.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) != 0:
                self._fail(client)
                return
            client.connected = True
            self._selector.modify(client.sock, selectors.EVENT_READ, client)
            self._send(client)
            return
        try:
            data = client.sock.recv(READ_BYTES)
        except BlockingIOError:
            return
        except OSError:
            self._fail(client)
            return
        if not data:
            self._closed_by_server(client)
            return
        client.buffer += data
        self._parse(client)

    def _parse(self, client: _Client) -> None:
        head_end = client.buffer.find(b"\r\n\r\n")
        if head_end < 0:
            return
        head = bytes(client.buffer[:head_end]).lower()
        length = None
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name == b"content-length" and value.strip().isdigit():
                length = int(value.strip())
        if length is None or not head.startswith((b"http/1.1 200", b"http/1.0 200")):
            self._fail(client)
            return
        if len(client.buffer) < head_end + 4 + length:
            return
        del client.buffer[: head_end + 4 + length]
        with self._lock:
            self._stats.answered += 1
            if not client.served:
                client.served = True
                self._stats.served_connections += 1
        client.sent_at = None
        if client.buffer:  # an answer nobody asked for: the stream is out of step
            self._fail(client)
            return
        self._schedule(client, self._interval_s * (0.5 + random.random()))

    def _check_timeouts(self, now: float) -> None:
        if now < self._next_timeout_check:
            return
        self._next_timeout_check = now + 0.1
        for client in self._clients:
            if client.sent_at is not None and not client.timed_out:
                if now - client.sent_at > self._timeout_s:
                    client.timed_out = True  # counted once; keep waiting for the answer
                    with self._lock:
                        self._stats.timeouts += 1

    def _drop(self, client: _Client) -> None:
        if client.sock is not None:
            self._selector.unregister(client.sock)
            client.sock.close()
        client.sock, client.connected, client.sent_at = None, False, None
        client.buffer.clear()
        self._schedule(client, self._interval_s)

    def _fail(self, client: _Client) -> None:
        with self._lock:
            self._stats.errors += 1
        self._drop(client)

    def _closed_by_server(self, client: _Client) -> None:
        # Closing an idle keep-alive connection is the server's right; closing one with a
        # request outstanding loses that request.
        with self._lock:
            if client.sent_at is None:
                self._stats.closed_by_server += 1
            else:
                self._stats.errors += 1
        self._drop(client)
