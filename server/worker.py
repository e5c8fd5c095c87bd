"""A worker process: what runs in the child the arbiter forks, and what it tells the arbiter.

The child serves exactly as the single process does (`serving.serve`, the same Server on the
arbiter's listeners); `WorkerLink` adds the supervision: it tells the arbiter when the server
accepts (READY), sends a heartbeat every second carrying `Server.alive_as_of` (the poller's
last loop), and recycles the worker after max_requests or over max_worker_memory (RETIRING
first, so the arbiter starts the replacement at once).
When every thread runs a request past `timeout` (each was logged with its stack) it says
STUCK: the arbiter starts a replacement and stops this worker once that one serves. With
--reload it polls its application's source files (server/reloader.py) and says RELOAD when
one changed: the arbiter then starts a new generation, as on SIGHUP.
Messages are 9-byte records on a pipe (one write each, atomic below PIPE_BUF). On SIGABRT,
faulthandler writes every thread's traceback to the error log and the worker dies: the
arbiter sends it to a worker that timed out (SIGKILL follows if that is not enough).
"""

from __future__ import annotations

import faulthandler
import gc
import logging
import os
import random
import signal
import struct
import threading
from typing import Any

from .app import AppLoadError, load_app
from .core import Server
from .listeners import Listener
from .logs import error_stream
from .metricshub import SnapshotSlot
from .reloader import SourceWatch
from .serving import WORKER_IGNORED, print_app_error, serve
from .signals import HANDLED_SIGNALS

EXIT_APP = 3
RECORD = struct.Struct("<cd")  # kind, monotonic time
READY, HEARTBEAT, RETIRING, STUCK, RELOAD = b"R", b"H", b"X", b"S", b"L"
# Why a worker retires, in its RETIRING record's time field (the restarts metric).
MAX_REQUESTS, MEMORY = 1.0, 2.0
RETIRING_REASONS = {MAX_REQUESTS: "max_requests", MEMORY: "memory"}
HEARTBEAT_S = 1.0
PAGE_BYTES = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def send_record(fd: int, kind: bytes, when_s: float) -> None:
    try:
        os.write(fd, RECORD.pack(kind, when_s))
    except OSError:
        pass  # the arbiter is gone (tick notices) or not reading (it then times us out)


class WorkerLink:
    """The worker's side of its supervision (serving.Supervision)."""

    tick_s = HEARTBEAT_S

    def __init__(self, status_fd: int, arbiter_pid: int, max_requests: int,
                 max_memory_mib: int, error_log: logging.Logger) -> None:
        self.status_fd = status_fd
        self.arbiter_pid = arbiter_pid
        self.max_requests = max_requests  # 0: never recycle
        self.max_rss_bytes = max_memory_mib * 1024 * 1024  # 0: no ceiling
        self.error_log = error_log
        self.served = 0
        self.retiring = False
        self.stuck_said = False
        self.watch: SourceWatch | None = None  # --reload
        self.metrics_slot: SnapshotSlot | None = None  # metrics_bind: read by the arbiter
        self._lock = threading.Lock()
        self._server: Server | None = None

    def started(self, server: Server) -> None:
        self._server = server
        if self.max_requests:
            server.count_requests(self._count)
        send_record(self.status_fd, READY, server.alive_as_of())
        self.report_metrics()

    def tick(self, server: Server, all_stuck: bool) -> bool:
        if os.getppid() != self.arbiter_pid:
            self.error_log.error("worker %d: the arbiter is gone; stopping", os.getpid())
            return False
        if self.retiring:
            return False
        if all_stuck and not self.stuck_said:
            self.stuck_said = True
            self.error_log.error("worker %d: every thread runs a request past timeout; "
                                 "asking for a replacement", os.getpid())
            send_record(self.status_fd, STUCK, 0.0)
        if self.max_rss_bytes:
            self._check_memory()
        if self.watch is not None and (path := self.watch.changed()) is not None:
            self.error_log.info("worker %d: %s changed; asking for a reload", os.getpid(), path)
            send_record(self.status_fd, RELOAD, 0.0)
        send_record(self.status_fd, HEARTBEAT, server.alive_as_of())
        self.report_metrics()
        return True

    def report_metrics(self) -> None:
        """This worker's totals into its shared slot (each tick, and once more at exit)."""
        if self.metrics_slot is not None and self._server is not None:
            self.metrics_slot.write(self._server.metrics_snapshot())

    def _count(self) -> None:
        with self._lock:
            self.served += 1
            if self.served < self.max_requests:
                return
        self._retire(f"max_requests ({self.max_requests}) reached", MAX_REQUESTS)

    def _check_memory(self) -> None:
        rss_bytes = resident_bytes()
        if rss_bytes is None:
            self.error_log.warning("worker %d: cannot read /proc/self/statm; "
                                   "max_worker_memory is ignored", os.getpid())
            self.max_rss_bytes = 0
        elif rss_bytes > self.max_rss_bytes:
            self._retire(f"max_worker_memory ({self.max_rss_bytes >> 20} MiB) exceeded: "
                         f"RSS {rss_bytes / 2**20:.1f} MiB", MEMORY)

    def _retire(self, why: str, reason: float) -> None:
        """Recycle: the arbiter starts the replacement now; this worker stops accepting and
        finishes its requests in flight (the main loop completes the stop at its next tick)."""
        with self._lock:
            if self.retiring:
                return
            self.retiring = True
        self.error_log.info("worker %d: %s; recycling", os.getpid(), why)
        send_record(self.status_fd, RETIRING, reason)
        if self._server is not None:
            self._server.begin_stop()


def resident_bytes() -> int | None:
    """This process's resident set size, from /proc (Linux); None where there is none."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * PAGE_BYTES
    except (OSError, ValueError, IndexError):
        return None


def worker_main(cfg: Any, app: Any, listeners: list[Listener], status_fd: int,
                arbiter_pid: int, error_log: logging.Logger,
                access_log: logging.Logger | None, metrics_slot: SnapshotSlot | None = None) -> int:
    """The child's whole life after fork; returns its exit status (3: app not loadable)."""
    for sig in HANDLED_SIGNALS:  # the arbiter's handlers are not ours; booting, TERM ends us
        signal.signal(sig, signal.SIG_IGN if sig in WORKER_IGNORED else signal.SIG_DFL)
    signal.set_wakeup_fd(-1)
    # The arbiter forked us with its signals blocked (its handlers are not ours): from here a
    # stop signal ends a booting worker; USR1 stays blocked until serve() has its queue.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, set(HANDLED_SIGNALS) - {signal.SIGUSR1})
    # On SIGABRT (the arbiter's timeout) and fatal signals: every thread's traceback, then die.
    faulthandler.enable(file=error_stream(error_log), all_threads=True)
    if app is None:
        try:
            app = load_app(cfg)
        except AppLoadError as exc:
            print_app_error(exc)
            return EXIT_APP
        gc.freeze()
    max_requests = cfg.max_requests
    if max_requests and cfg.max_requests_jitter:
        max_requests += random.randint(0, cfg.max_requests_jitter)
    link = WorkerLink(status_fd, arbiter_pid, max_requests, cfg.max_worker_memory, error_log)
    link.metrics_slot = metrics_slot
    if cfg.reload:
        link.watch = SourceWatch((cfg.wsgi_app or "").partition(":")[0], cfg.reload_extra_files)
    try:
        return serve(app, cfg, listeners, error_log, access_log, link)
    finally:
        link.report_metrics()  # the final totals: the arbiter keeps them once we are gone
