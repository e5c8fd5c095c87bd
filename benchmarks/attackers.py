"""The attacking clients of benchmarks/attacks.py, each bounded in connections and stopped
by `stop()`, which closes every socket it opened.

`Holders` keeps N connections open from one thread: each sends an opening, then trickles
its next bytes every `interval_s`, and reads everything, a fixed rate, or nothing at all;
one the server closes is reopened. That covers idle floods, slowloris, slow uploads, slow
and trickle readers, zero-window HTTP/2 streams and idle h2c connections. `Flood` runs one
thread per HTTP/2 connection sending frames as fast as the socket takes them (a connection
the server cuts is reopened and counted). `frame` and the HPACK blocks build raw HTTP/2.
"""

from __future__ import annotations

import errno
import selectors
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = \
    0x0, 0x1, 0x2, 0x3, 0x4, 0x6, 0x7, 0x8, 0x9
ENHANCE_YOUR_CALM = 0xB
END_STREAM, END_HEADERS = 0x1, 0x4
# HPACK: :method GET/POST, :scheme http, :path / (static indexes), then literals.
GET_ROOT = b"\x82\x86\x84\x01\x09127.0.0.1"
GET_BIG = b"\x82\x86\x04\x04/big\x01\x09127.0.0.1"
POST_UPLOAD = b"\x83\x86\x04\x07/upload\x01\x09127.0.0.1"


def frame(kind: int, flags: int, stream: int, payload: bytes = b"") -> bytes:
    return struct.pack(">I", len(payload))[1:] + bytes((kind, flags)) + \
        struct.pack(">I", stream) + payload


def h2_opening(initial_window: int | None = None) -> bytes:
    settings = b"" if initial_window is None else struct.pack(">HI", 4, initial_window)
    return PREFACE + frame(SETTINGS, 0, 0, settings)


@dataclass(eq=False)
class _Held:
    sock: socket.socket
    connected: bool = False
    next_at: float = 0.0
    sent: int = 0  # trickle steps sent


@dataclass
class HolderPlan:
    count: int
    opening: bytes = b""
    trickle: Callable[[int], bytes | None] = lambda step: None  # step -> bytes, None: silent
    interval_s: float = 1.0
    read: str = "all"  # "all", "none", or "rate"
    read_rate_bps: int = 40_000


@dataclass
class Counters:
    connections: int = 0
    closed_by_server: int = 0
    errors: int = 0
    extra: dict[str, int] = field(default_factory=dict)


class Holders:
    """Keep `plan.count` connections as the plan says, until stopped."""

    TICK_S = 0.05

    def __init__(self, port: int, plan: HolderPlan) -> None:
        self.port, self.plan = port, plan
        self.counters = Counters()
        self._held: list[_Held] = []
        self._selector = selectors.DefaultSelector()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="holders", daemon=True)

    def start(self) -> Holders:
        self._thread.start()
        return self

    def stop(self) -> Counters:
        self._stop.set()
        self._thread.join(10)
        for held in self._held:
            held.sock.close()
        self._selector.close()
        return self.counters

    def _open(self) -> None:
        try:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        except OSError:  # out of descriptors here: count it, try again next round
            self.counters.errors += 1
            return
        sock.setblocking(False)
        if self.plan.read != "all":  # a reader that lags should not hide megabytes in buffers
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        code = sock.connect_ex(("127.0.0.1", self.port))
        if code not in (0, errno.EINPROGRESS):
            sock.close()
            self.counters.errors += 1
            return
        held = _Held(sock)
        self._held.append(held)
        self._selector.register(sock, selectors.EVENT_WRITE, held)
        self.counters.connections += 1

    def _run(self) -> None:
        while not self._stop.is_set():
            for _ in range(self.plan.count - len(self._held)):
                self._open()
            now = time.monotonic()
            for key, _ in self._selector.select(self.TICK_S):
                self._ready(key.data, now)
            for held in list(self._held):
                if held.connected and now >= held.next_at:
                    self._step(held, now)

    def _ready(self, held: _Held, now: float) -> None:
        if not held.connected:
            if held.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) != 0:
                self._drop(held, closed=False)
                return
            held.connected, held.next_at = True, now + self.plan.interval_s
            if self.plan.read == "all":
                self._selector.modify(held.sock, selectors.EVENT_READ, held)
            else:
                self._selector.unregister(held.sock)
            self._send(held, self.plan.opening)
            return
        self._read(held, 1 << 20)

    def _step(self, held: _Held, now: float) -> None:
        held.next_at = now + self.plan.interval_s
        data = self.plan.trickle(held.sent)
        held.sent += 1
        if data:
            self._send(held, data)
        if self.plan.read == "rate":
            self._read(held, int(self.plan.read_rate_bps * self.plan.interval_s))

    def _send(self, held: _Held, data: bytes) -> None:
        try:
            if data:
                held.sock.send(data)  # small: fits the send buffer, or the server is stuck
        except BlockingIOError:
            pass
        except OSError:
            self._drop(held, closed=True)

    def _read(self, held: _Held, budget: int) -> None:
        try:
            while budget > 0:
                data = held.sock.recv(min(budget, 65536))
                if not data:
                    self._drop(held, closed=True)
                    return
                budget -= len(data)
        except BlockingIOError:
            return
        except OSError:
            self._drop(held, closed=True)

    def _drop(self, held: _Held, closed: bool) -> None:
        if closed:
            self.counters.closed_by_server += 1
        else:
            self.counters.errors += 1
        try:
            self._selector.unregister(held.sock)
        except (KeyError, ValueError):
            pass
        held.sock.close()
        self._held.remove(held)


def goaway_codes(received: bytearray) -> list[int]:
    """The error codes of the GOAWAY frames whole in `received` (raw frames from the server),
    which loses those frames; a frame cut short stays for the next bytes."""
    codes = []
    while len(received) >= 9:
        end = 9 + int.from_bytes(received[:3], "big")
        if len(received) < end:
            break
        if received[3] == GOAWAY and end >= 17:
            codes.append(int.from_bytes(received[13:17], "big"))
        del received[:end]
    return codes


class Flood:
    """`count` HTTP/2 connections, each sending `opening` then `block(i)` as fast as it can,
    up to `budget_bytes` per connection (then it only reads) when given. It counts the
    connections the server ended with GOAWAY (`closed_by_server`; ENHANCE_YOUR_CALM ones in
    `extra["calm"]`)."""

    def __init__(self, port: int, count: int, opening: bytes, block: Callable[[int], bytes],
                 budget_bytes: int | None = None) -> None:
        self.port, self.opening, self.block = port, opening, block
        self.budget_bytes = budget_bytes
        self.counters = Counters(extra={"bytes_sent": 0, "reconnects": 0, "calm": 0})
        self._lock = threading.Lock()
        self._socks: set[socket.socket] = set()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(count)]

    def start(self) -> Flood:
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> Counters:
        self._stop.set()
        with self._lock:
            for sock in self._socks:
                sock.close()
        for thread in self._threads:
            thread.join(10)
        return self.counters

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                sock = socket.create_connection(("127.0.0.1", self.port), timeout=1.0)
            except OSError:
                self._count("errors")
                self._stop.wait(0.1)
                continue
            with self._lock:
                self._socks.add(sock)
                self.counters.connections += 1
            try:
                self._pump(sock)
            except OSError:
                pass
            finally:
                with self._lock:
                    self._socks.discard(sock)
                sock.close()
            if not self._stop.is_set():
                self._count("reconnects")
                self._stop.wait(0.05)

    def _pump(self, sock: socket.socket) -> None:
        received = bytearray()
        codes: list[int] = []
        try:
            self._flood(sock, received, codes)
        finally:
            _read_what_came(sock, received)  # a GOAWAY waiting while a send was stuck
            codes += goaway_codes(received)
            if codes:
                with self._lock:
                    self.counters.closed_by_server += 1
                    self.counters.extra["calm"] += ENHANCE_YOUR_CALM in codes

    def _flood(self, sock: socket.socket, received: bytearray, codes: list[int]) -> None:
        """Send until stopped or cut; the codes of GOAWAYs received go to `codes`."""
        sock.sendall(self.opening)
        index = sent = 0
        while not self._stop.is_set():
            if self.budget_bytes is not None and sent >= self.budget_bytes:
                data = b""
                self._stop.wait(0.05)
            else:
                data = self.block(index)
            index += 1
            sent += len(data)
            sock.sendall(data)
            with self._lock:
                self.counters.extra["bytes_sent"] += len(data)
            sock.setblocking(False)
            try:
                while True:  # take what the server says (ACKs, GOAWAY)
                    data = sock.recv(65536)
                    if not data:
                        raise ConnectionError("cut by the server")
                    received += data
                    codes += goaway_codes(received)
            except BlockingIOError:
                pass
            finally:
                sock.setblocking(True)
                sock.settimeout(1.0)

    def _count(self, name: str) -> None:
        with self._lock:
            if name == "errors":
                self.counters.errors += 1
            else:
                self.counters.extra[name] += 1


def _read_what_came(sock: socket.socket, received: bytearray) -> None:
    """Whatever the server sent that is still unread, without waiting."""
    try:
        sock.setblocking(False)
        while data := sock.recv(65536):
            received += data
    except OSError:
        pass
