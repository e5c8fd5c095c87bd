"""Metrics across processes: each worker's snapshot in a shared memory slot, and the
arbiter's hub that adds them up for a scrape.

Choice: a shared anonymous mmap per worker, made by the arbiter before the fork. The worker
writes its snapshot there once a second (its heartbeat tick) and once more as it stops; the
arbiter reads the slots only when scraped, so no message crosses the status pipe and the
arbiter's loop does no metrics work. A slot survives its worker: when the arbiter reaps one
(recycled, reloaded, crashed, killed with SIGKILL) it reads the slot a last time and keeps
its counters and histograms in `retired`, so totals never go down. A snapshot is marshal
data with its length and CRC-32 in front; a read torn by a write in progress fails the check
and the previous good read stands.

The listen backlog (TCP_INFO on Linux: for a listening socket tcpi_unacked is the accept
queue's length) is read from the arbiter's listeners at scrape time.
"""

from __future__ import annotations

import marshal
import mmap
import socket
import struct
import threading
import time
import zlib
from typing import Any

from .core import Server
from .listeners import Listener
from .metrics import BACKLOG, RESTARTS, WORKERS, Snapshot, add_into
from .metricsd import MetricsServer
from .statsd import StatsdClient

SLOT_BYTES = 1 << 20  # anonymous pages: only what a snapshot touches is ever allocated
_HEADER = struct.Struct("<II")  # length, CRC-32 of the marshal data
_TCPI_UNACKED = struct.Struct("<I")
_TCPI_UNACKED_OFFSET = 24  # after 8 one-byte fields and rto, ato, snd_mss, rcv_mss
STATSD_GAUGE_S = 1.0  # the statsd workers gauge, at most this often (as gunicorn's loop)
RESTART_REASONS = ("timeout", "max_requests", "memory", "crash", "reload")


class SnapshotSlot:
    """One worker's snapshot in shared memory: the worker writes, the arbiter reads."""

    def __init__(self) -> None:
        self.map = mmap.mmap(-1, SLOT_BYTES)  # MAP_SHARED | MAP_ANONYMOUS: kept across fork
        self.last: Snapshot = {}  # the last good read (arbiter side)

    def write(self, snapshot: Snapshot) -> bool:
        data = marshal.dumps(snapshot)
        if _HEADER.size + len(data) > SLOT_BYTES:
            return False
        self.map[_HEADER.size:_HEADER.size + len(data)] = data
        self.map[:_HEADER.size] = _HEADER.pack(len(data), zlib.crc32(data))
        return True

    def read(self) -> Snapshot:
        for _ in range(3):
            length, crc = _HEADER.unpack_from(self.map, 0)
            if length == 0:
                return self.last
            if length > SLOT_BYTES - _HEADER.size:
                continue
            data = self.map[_HEADER.size:_HEADER.size + length]
            if zlib.crc32(data) != crc:
                continue  # a write in progress
            try:
                snapshot = marshal.loads(data)
            except (EOFError, ValueError, TypeError):
                continue
            if isinstance(snapshot, dict):
                self.last = snapshot
                return snapshot
        return self.last

    def close(self) -> None:
        self.map.close()


def listen_backlog(listeners: list[Listener]) -> Snapshot:
    """The accept queue's length of each TCP listener (Linux); nothing elsewhere."""
    out: Snapshot = {}
    tcp_info = getattr(socket, "TCP_INFO", None)
    if tcp_info is None:
        return out
    for listener in listeners:
        sock = listener.sock
        if sock.family not in (socket.AF_INET, socket.AF_INET6) or sock.fileno() < 0:
            continue
        try:
            info = sock.getsockopt(socket.IPPROTO_TCP, tcp_info, 104)
        except OSError:
            continue
        if len(info) >= _TCPI_UNACKED_OFFSET + 4:
            (queued,) = _TCPI_UNACKED.unpack_from(info, _TCPI_UNACKED_OFFSET)
            out[(BACKLOG, (listener.bind,))] = float(queued)
    return out


class MetricsHub:
    """The arbiter's view, for the metrics listener's thread: the live workers' slots, the
    totals of replaced ones, restarts, the worker count and readiness. One lock; the
    arbiter's loop only takes it for a few dictionary operations."""

    def __init__(self, listeners: list[Listener]) -> None:
        self.listeners = listeners
        self._lock = threading.Lock()
        self._slots: dict[int, SnapshotSlot] = {}
        self._retired: Snapshot = {}
        self._restarts = dict.fromkeys(RESTART_REASONS, 0)
        self._serving = 0
        self._ready = False

    def attach(self, pid: int, slot: SnapshotSlot) -> None:
        with self._lock:
            self._slots[pid] = slot

    def detach(self, pid: int) -> None:
        """Worker `pid` has exited: keep its counters, free its slot."""
        with self._lock:
            slot = self._slots.pop(pid, None)
            if slot is None:
                return
            add_into(self._retired, slot.read(), kept_only=True)
        slot.close()

    def restarted(self, reason: str) -> None:
        with self._lock:
            self._restarts[reason] += 1

    def set_state(self, serving: int, ready: bool) -> None:
        with self._lock:
            self._serving, self._ready = serving, ready

    def ready(self) -> bool:
        with self._lock:
            return self._ready

    def snapshot(self) -> Snapshot:
        with self._lock:
            total = dict(self._retired)
            for slot in self._slots.values():
                add_into(total, slot.read())
            for reason, count in self._restarts.items():
                total[(RESTARTS, (reason,))] = float(count)
            total[(WORKERS, ())] = float(self._serving)
        total.update(listen_backlog(self.listeners))
        return total



class ProcessSource:
    """The single process's view (workers = 0): its Server, its listeners, one worker."""

    def __init__(self, server: Server) -> None:
        self.server = server

    def snapshot(self) -> Snapshot:
        snapshot = self.server.metrics_snapshot()
        snapshot[(WORKERS, ())] = 1.0
        snapshot.update(listen_backlog(self.server.listeners))
        return snapshot

    def ready(self) -> bool:
        return self.server.ready()


class ArbiterMetrics:
    """What the arbiter does for metrics, one call at each place (all no-ops when neither
    metrics_bind nor statsd_host is set): a slot for each worker it forks, a replaced
    worker's totals kept, restarts counted, and once a second the worker count."""

    def __init__(self, cfg: Any, listeners: list[Listener],
                 server: MetricsServer | None) -> None:
        self.server = server
        self.hub = MetricsHub(listeners) if server is not None else None
        self.statsd = StatsdClient(cfg.statsd_host, cfg.statsd_prefix, cfg.dogstatsd_tags) \
            if cfg.statsd_host else None
        self._statsd_at = 0.0

    def start(self) -> None:
        if self.server is not None and self.hub is not None:
            self.server.start(self.hub)

    def new_slot(self) -> SnapshotSlot | None:
        """Before a fork: the new worker's slot (None when metrics_bind is off)."""
        return SnapshotSlot() if self.hub is not None else None

    def in_child(self) -> None:
        """In a new worker: the metrics listener is the arbiter's alone."""
        if self.server is not None:
            self.server.sock.close()

    def forked(self, pid: int, slot: SnapshotSlot | None) -> None:
        if self.hub is not None and slot is not None:
            self.hub.attach(pid, slot)

    def exited(self, pid: int) -> None:
        if self.hub is not None:
            self.hub.detach(pid)

    def restarted(self, reason: str) -> None:
        if self.hub is not None:
            self.hub.restarted(reason)

    def report(self, serving: int, stopping: bool) -> None:
        """After each turn of the arbiter's loop: readiness, and the statsd gauge."""
        if self.hub is not None:
            self.hub.set_state(serving, serving > 0 and not stopping)
        now = time.monotonic()
        if self.statsd is not None and now - self._statsd_at >= STATSD_GAUGE_S:
            self._statsd_at = now
            self.statsd.send("workers", serving, "g")
