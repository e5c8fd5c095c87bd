"""The arbiter: the master process that forks worker processes and keeps them serving.

It owns the listeners (bound once by `run`, inherited by every worker: the kernel hands each
new connection to one worker that waits in accept, and a connection waiting in the backlog
survives any worker's exit; with reuse_port one socket per worker slot, server/shards.py),
the pid file and the worker count. Signal handlers only queue
the signal (server/signals.py); one loop waits on that queue and on each worker's status pipe,
then dispatches signals, reads heartbeats, reaps every child (PID 1 in a container must),
aborts workers silent past `timeout` (SIGABRT: tracebacks to the log; then SIGKILL) and
starts workers until the count is right, backing off when they die before serving.

TERM/INT: graceful stop of every worker, exit 0. QUIT (or a second stop signal): quick stop.
TTIN/TTOU: one worker more/fewer (never below 1). USR1: reopen log files here and in every
worker. USR2: start a new arbiter from the binary on disk with the listeners inherited; once
it serves, this one stops gracefully (server/reexec.py). HUP: a new generation with the
configuration read again (and the application imported again, unless preload_app); the old
workers are stopped gracefully once every new one serves; a configuration or application
that fails leaves the old generation serving. With --reload a worker that sees a source file
change asks for the same new generation.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import time
from dataclasses import dataclass
from typing import Any

from ..config import ConfigError, load
from .listeners import Listener
from .logsetup import LogConfigError, log_settings, setup_logs
from .metricsd import MetricsServer
from .metricshub import ArbiterMetrics
from .readiness import readable
from .reexec import Inherited, rename_quietly, start_new_binary
from .sdnotify import sd_notify, sd_reloading
from .serving import reopen_logs
from .shards import PortShards
from .signals import HANDLED_SIGNALS, SignalQueue, signal_name
from .statsd import count_log_records
from .tls import TLSConfigError, build_context
from .worker import (
    HEARTBEAT,
    READY,
    RECORD,
    RELOAD,
    RETIRING,
    RETIRING_REASONS,
    STUCK,
    worker_main,
)

EXIT_OK = 0
EXIT_APP = 3
BOOT_FAILURES = (2, 3)  # a worker's exit status that no retry can fix (config, app)
KILL_GRACE_S = 2.0  # after SIGABRT (tracebacks) or past graceful_timeout, before SIGKILL
QUICK_STOP_S = 5.0  # after SIGQUIT, before SIGKILL
MAX_BACKOFF_S = 10.0
LOOP_TICK_S = 1.0


@dataclass
class Generation:
    """The workers started from one configuration (a HUP starts the next one)."""

    number: int
    cfg: Any
    app: Any  # the preloaded application, or None: each worker imports it
    ever_ready: bool = False


@dataclass
class WorkerProcess:
    pid: int
    generation: Generation
    status_fd: int
    alive_at: float  # monotonic time of its last sign of life (heartbeats carry it)
    slot: int = 0  # which of the shards' sockets it accepts on (server/shards.py)
    ready: bool = False
    leaving: bool = False  # stopping, retiring or aborted: no longer counted
    stuck: bool = False  # every thread stuck: stopped once a replacement serves
    aborted: bool = False  # sent SIGABRT (tracebacks to the log); SIGKILL is next
    kill_at: float | None = None  # SIGKILL then, if still running
    buffer: bytes = b""


class Arbiter:
    def __init__(self, cfg: Any, app: Any, listeners: list[Listener], error_log: logging.Logger,
                 access_log: logging.Logger | None, start_cwd: str,
                 inherited: Inherited | None = None, shards: PortShards | None = None,
                 metrics_server: MetricsServer | None = None) -> None:
        self.current = Generation(1, cfg, app)
        self.metrics = ArbiterMetrics(cfg, listeners, metrics_server)
        self.pending: Generation | None = None
        self.preloaded = app is not None
        self.listeners = listeners
        self.shards = shards or PortShards(listeners, False, cfg.backlog, error_log)
        self.error_log = error_log
        self.access_log = access_log
        self.start_cwd = start_cwd
        self.target = worker_count(cfg)
        self.workers: dict[int, WorkerProcess] = {}
        self.failures = 0  # workers in a row that died before serving
        self.spawn_at = 0.0  # backoff: no spawn before this
        self.stopping = False
        self.announced_ready = False  # READY=1 sent to systemd (once every first worker serves)
        self.status: int = EXIT_OK
        self.signals: SignalQueue | None = None
        self.inherited = inherited  # started by an old arbiter's USR2: tell it when we serve
        self.pidfile: str | None = cfg.pidfile
        self.successor_pid = 0  # USR2: the new arbiter starting
        self.successors: set[int] = set()  # every one started, until reaped
        self.successor_fd = -1  # readable once it serves (a byte) or has died (EOF)
        self.oldbin: str | None = None  # our pid file, renamed while a successor starts

    # -- the loop ------------------------------------------------------------------------

    def run(self) -> int:
        self.signals = SignalQueue()
        try:
            for listener in self.listeners:
                self.error_log.info("Listening at: %s", self._url(listener))
            self.error_log.info("Arbiter booted (pid %d): %d workers of %s, %d threads each",
                                os.getpid(), self.target, self.current.cfg.wsgi_app,
                                self.current.cfg.threads)
            self.metrics.start()
            while not (self.stopping and not self.workers):
                if not self.stopping:
                    self.maintain()
                self.wait(self._next_wake_s())
                self.reap()
                self.check_deadlines()
                self.metrics.report(sum(1 for w in self.workers.values()
                                        if w.ready and not w.leaving), self.stopping)
        finally:
            self._kill_all()
            self.signals.restore()
            self._drop_oldbin()
        self.error_log.info("Stopped")
        return self.status

    def _url(self, listener: Listener) -> str:
        scheme = "https://" if self.current.cfg.certfile else "http://"
        return listener.url().replace("http://", scheme, 1)

    def _next_wake_s(self) -> float:
        now = time.monotonic()
        wake = now + LOOP_TICK_S
        for worker in self.workers.values():
            if worker.kill_at is not None:
                wake = min(wake, worker.kill_at)
        if self.spawn_at > now:
            wake = min(wake, self.spawn_at)
        return max(0.0, wake - now)

    def wait(self, timeout_s: float) -> None:
        assert self.signals is not None
        fds = [self.signals.fileno] + [w.status_fd for w in self.workers.values()
                                       if w.status_fd >= 0]
        if self.successor_fd >= 0:
            fds.append(self.successor_fd)
        ready = readable(fds, timeout_s)
        if self.signals.fileno in ready:
            self.signals.drain()
        if self.successor_fd in ready:
            self.successor_said()
        while (sig := self.signals.pop()) is not None:
            self.on_signal(sig)
        for worker in list(self.workers.values()):
            if worker.status_fd in ready:
                self.read_status(worker)

    # -- signals -------------------------------------------------------------------------

    def on_signal(self, sig: int) -> None:
        if sig in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT):
            self.stop(quick=sig == signal.SIGQUIT or self.stopping, reason=signal_name(sig))
        elif self.stopping:
            return
        elif sig == signal.SIGHUP:
            self.reload()
        elif sig == signal.SIGTTIN:
            self.target += 1
            self.error_log.info("SIGTTIN: %d workers", self.target)
        elif sig == signal.SIGTTOU:
            self.target = max(1, self.target - 1)
            self.error_log.info("SIGTTOU: %d workers", self.target)
        elif sig == signal.SIGUSR1:
            reopen_logs(self.error_log)
            for pid in self.workers:
                self._signal(pid, signal.SIGUSR1)
        elif sig == signal.SIGUSR2:
            self.reexec()
        else:
            self.error_log.warning("%s ignored", signal_name(sig))

    def stop(self, quick: bool, reason: str) -> None:
        sd_notify("STOPPING=1")
        if quick:
            self.error_log.info("%s: stopping at once", reason)
        else:
            self.error_log.info("Stopping gracefully (%s); in-flight requests get %.3gs",
                                reason, self.current.cfg.graceful_timeout)
        self.stopping = True
        self.shards.release_all()  # stop listening at once; the workers take their backlogs
        for worker in list(self.workers.values()):
            self.stop_worker(worker, quick)

    def stop_worker(self, worker: WorkerProcess, quick: bool = False) -> None:
        worker.leaving = True
        grace_s = QUICK_STOP_S if quick else worker.generation.cfg.graceful_timeout + KILL_GRACE_S
        kill_at = time.monotonic() + grace_s
        worker.kill_at = kill_at if worker.kill_at is None else min(worker.kill_at, kill_at)
        self._release_unused_slots()  # before it takes its socket's backlog
        self._signal(worker.pid, signal.SIGQUIT if quick else signal.SIGTERM)

    def _release_unused_slots(self) -> None:
        """Close the sockets of slots past the count that no staying worker uses."""
        used = {w.slot for w in self.workers.values() if not w.leaving}
        alive = {w.slot for w in self.workers.values()}
        for slot in self.shards.open_slots():
            if slot >= self.target and slot not in used:
                # steer new connections away while a worker still holds its socket
                self.shards.release(slot, steer=slot in alive)

    def _signal(self, pid: int, sig: int) -> None:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass  # exited; reap() will see it

    # -- reload --------------------------------------------------------------------------

    def reload(self, why: str = "SIGHUP") -> None:
        """SIGHUP (or --reload): start a new generation from the configuration read again."""
        try:
            cfg = load(sys.argv[1:], os.environ, self.start_cwd)
            if cfg.certfile is not None:
                build_context(cfg)
        except (ConfigError, TLSConfigError) as exc:
            self.error_log.error("%s: the new configuration is not usable (%s); "
                                 "the current workers keep serving", why, exc)
            return
        if cfg.bind != self.current.cfg.bind:
            self.error_log.warning("%s: bind changed; listeners stay as they are until "
                                   "a restart", why)
        if log_settings(cfg) != log_settings(self.current.cfg):
            try:
                self.error_log, self.access_log = setup_logs(cfg)
                count_log_records(cfg, self.error_log)  # (its handlers were replaced)
            except (OSError, LogConfigError) as exc:
                self.error_log.error("%s: cannot set the logs up (%s)", why, exc)
        sd_reloading()
        if self.pending is not None:  # a reload during a reload: the newest one wins
            for worker in self._workers_of(self.pending):
                self.stop_worker(worker)
        number = max(self.current.number, self.pending.number if self.pending else 0) + 1
        self.pending = Generation(number, cfg, self.current.app)
        self.target = worker_count(cfg)
        self.failures, self.spawn_at = 0, 0.0
        note = " (preload_app: the application is not imported again)" if self.preloaded else ""
        self.error_log.info("%s: starting generation %d with %d workers%s", why, number,
                            self.target, note)

    # -- USR2: a new binary takes over (server/reexec.py) -------------------------------

    def reexec(self) -> None:
        if self.successor_pid:
            self.error_log.warning("SIGUSR2: a new arbiter (pid %d) is starting already; "
                                   "ignored", self.successor_pid)
            return
        if self.pidfile is not None and rename_quietly(self.pidfile, self.pidfile + ".oldbin",
                                                       self.error_log):
            self.oldbin = self.pidfile + ".oldbin"
        self.successor_pid, self.successor_fd = start_new_binary(
            self.listeners, self.start_cwd, self.error_log)
        self.successors.add(self.successor_pid)
        self.error_log.info("SIGUSR2: started a new arbiter (pid %d) on the same listeners",
                            self.successor_pid)

    def successor_said(self) -> None:
        """The new arbiter serves (one byte), or died before it did (end of file)."""
        try:
            data = os.read(self.successor_fd, 1)
        except OSError:
            data = b""
        os.close(self.successor_fd)
        self.successor_fd = -1
        if data:
            for listener in self.listeners:
                listener.unix_path = None  # its socket file is the new arbiter's now
            self.stop(quick=False, reason=f"SIGUSR2: the new arbiter (pid "
                                          f"{self.successor_pid}) serves")
            return
        self.error_log.error("SIGUSR2: the new arbiter (pid %d) exited before serving; this "
                             "one keeps serving", self.successor_pid)
        if self.oldbin is not None and self.pidfile is not None:
            rename_quietly(self.oldbin, self.pidfile, self.error_log)
            self.oldbin = None
        self.successor_pid = 0  # reap() collects it

    def _drop_oldbin(self) -> None:
        if self.oldbin is None:
            return
        try:
            with open(self.oldbin, encoding="ascii") as handle:
                mine = handle.read().strip() == str(os.getpid())
            if mine:
                os.unlink(self.oldbin)
        except OSError:
            pass

    def _workers_of(self, generation: Generation) -> list[WorkerProcess]:
        return [w for w in self.workers.values() if w.generation is generation]

    def _promote(self) -> None:
        """Every worker of the pending generation serves: stop the older ones."""
        assert self.pending is not None
        self.error_log.info("Generation %d serving; stopping the previous workers",
                            self.pending.number)
        for worker in list(self.workers.values()):
            if worker.generation is not self.pending and not worker.leaving:
                self.metrics.restarted("reload")
                self.stop_worker(worker)
        self.current, self.pending = self.pending, None
        sd_notify("READY=1")

    # -- keeping the count ---------------------------------------------------------------

    def maintain(self) -> None:
        if not self.announced_ready:
            ready = [w for w in self._workers_of(self.current) if w.ready]
            if len(ready) >= self.target:
                self.announced_ready = True
                if self.inherited is not None:  # USR2: the old arbiter may go now
                    self.inherited.claim_files(self.listeners)
                    self.inherited.announce_ready()
                    sd_notify(f"MAINPID={os.getpid()}")
                sd_notify("READY=1")
        if self.pending is not None:
            ready = [w for w in self._workers_of(self.pending) if w.ready and not w.leaving]
            if len(ready) >= self.target:
                self._promote()
        for generation in (self.current, self.pending):
            if generation is not None:
                self._keep_count(generation)
        self._stop_replaced_stuck()

    def _stop_replaced_stuck(self) -> None:
        """Stop stuck workers once the full count serves without them (new one first)."""
        stuck = [w for w in self.workers.values() if w.stuck and w.kill_at is None]
        if not stuck:
            return
        serving = [w for w in self._workers_of(self.current) if w.ready and not w.leaving]
        if len(serving) >= self.target:
            for worker in stuck:
                self.error_log.info("Worker %d replaced; stopping it", worker.pid)
                self.stop_worker(worker)

    def _keep_count(self, generation: Generation) -> None:
        active = [w for w in self._workers_of(generation) if not w.leaving]
        target = self.target if generation is (self.pending or self.current) \
            else worker_count(generation.cfg)
        while len(active) < target and time.monotonic() >= self.spawn_at:
            active.append(self.spawn(generation))
        if len(active) > target and self.pending is None:
            # the oldest first, as gunicorn; with a socket per slot the highest slot first,
            # so that the slots in use stay 0..target-1
            order = (lambda w: (-w.slot, w.pid)) if self.shards.active else (lambda w: w.pid)
            for worker in sorted(active, key=order)[: len(active) - target]:
                self.stop_worker(worker)

    def spawn(self, generation: Generation) -> WorkerProcess:
        taken = {w.slot for w in self._workers_of(generation) if not w.leaving}
        slot = min(set(range(len(taken) + 1)) - taken)
        read_fd, write_fd = os.pipe()
        arbiter_pid = os.getpid()
        # Blocked across the fork: until the child has its own dispositions, a signal sent to
        # it (an operator's USR1 to the whole group) waits instead of running our handlers or
        # taking its default action; worker_main and serve() unblock them.
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, HANDLED_SIGNALS)
        self.shards.listeners_for(slot)  # bound here, before the fork
        metrics_slot = self.metrics.new_slot()
        pid = os.fork()
        if pid != 0:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        if pid == 0:  # the child: never returns into the arbiter's code
            status = 1
            try:
                os.close(read_fd)
                for other in self.workers.values():
                    if other.status_fd >= 0:
                        os.close(other.status_fd)
                assert self.signals is not None
                self.signals.close_fds()
                listeners = self.shards.keep_only(slot)
                self.metrics.in_child()
                status = worker_main(generation.cfg, generation.app, listeners, write_fd,
                                     arbiter_pid, self.error_log, self.access_log, metrics_slot)
            except BaseException:
                self.error_log.exception("worker %d failed", os.getpid())
            finally:
                _flush_logs()
                os._exit(status)
        os.close(write_fd)
        os.set_blocking(read_fd, False)
        self.error_log.info("Booting worker with pid: %d", pid)
        worker = WorkerProcess(pid, generation, read_fd, alive_at=time.monotonic(), slot=slot)
        self.workers[pid] = worker
        self.metrics.forked(pid, metrics_slot)
        return worker

    # -- what workers say, and when they end ---------------------------------------------

    def read_status(self, worker: WorkerProcess) -> None:
        try:
            data = os.read(worker.status_fd, RECORD.size * 455)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:  # the worker closed its end: it exited (reap() collects it)
            os.close(worker.status_fd)
            worker.status_fd = -1
            return
        data = worker.buffer + data
        whole = len(data) - len(data) % RECORD.size
        worker.buffer = data[whole:]
        for offset in range(0, whole, RECORD.size):
            kind, when_s = RECORD.unpack_from(data, offset)
            if kind == READY:
                self.error_log.info("Worker %d serving", worker.pid)
                worker.ready = worker.generation.ever_ready = True
                worker.alive_at = when_s
                self.failures = 0
            elif kind == HEARTBEAT:
                worker.alive_at = when_s
            elif kind == STUCK and not worker.leaving:
                self.error_log.error("Worker %d is stuck: starting its replacement; it stops "
                                     "once that one serves", worker.pid)
                self.metrics.restarted("timeout")
                worker.leaving = worker.stuck = True
            elif kind == RELOAD and not worker.leaving and self.pending is None \
                    and worker.generation is self.current and not self.stopping:
                self.reload(why="--reload")  # once: the other workers' reports are ignored
            elif kind == RETIRING and not worker.leaving:
                self.metrics.restarted(RETIRING_REASONS.get(when_s, "max_requests"))
                worker.leaving = True  # its replacement starts now; it finishes and exits
                cfg = worker.generation.cfg
                worker.kill_at = time.monotonic() + cfg.graceful_timeout + KILL_GRACE_S

    def reap(self) -> None:
        while True:
            try:
                pid, wait_status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            worker = self.workers.pop(pid, None)
            if worker is not None:
                self.metrics.exited(pid)
                self.on_exit(worker, wait_status)
            elif pid in self.successors:
                self.successors.discard(pid)
                code = os.waitstatus_to_exitcode(wait_status)
                self.error_log.info("The new arbiter (pid %d) exited (status %d)", pid, code)

    def on_exit(self, worker: WorkerProcess, wait_status: int) -> None:
        if worker.status_fd >= 0:
            os.close(worker.status_fd)
        code = os.waitstatus_to_exitcode(wait_status)
        how = f"exit status {code}" if code >= 0 else f"signal {signal_name(-code)}"
        # A released slot's socket is closed once no leaving worker holds it (a worker
        # started on that slot since, by TTIN, has a new socket of its own).
        if not any(o.slot == worker.slot and o.leaving for o in self.workers.values()):
            self.shards.exited(worker.slot)
        if worker.leaving:
            self.error_log.info("Worker %d exited (%s)", worker.pid, how)
            return
        self.error_log.error("Worker %d exited unexpectedly (%s)", worker.pid, how)
        self.metrics.restarted("crash")
        if worker.ready:
            return  # maintain() replaces it at once
        generation = worker.generation
        if generation is self.pending and code in BOOT_FAILURES:
            self.error_log.error("Reload: the new workers cannot start (%s); the previous "
                                 "generation keeps serving", how)
            for other in self._workers_of(generation):
                self.stop_worker(other)
            self.pending = None
            self.target = worker_count(self.current.cfg)
            return
        if code in BOOT_FAILURES and not generation.ever_ready and generation is self.current:
            self.error_log.error("Workers cannot start (%s): stopping", how)
            self.status = code
            self.stop(quick=True, reason="boot failure")
            return
        self.failures += 1  # died before serving: back off before the next try
        delay_s = min(MAX_BACKOFF_S, 0.1 * 2 ** self.failures)
        self.spawn_at = time.monotonic() + delay_s
        self.error_log.warning("%d worker(s) in a row died before serving; next start in %.1fs",
                               self.failures, delay_s)

    def check_deadlines(self) -> None:
        now = time.monotonic()
        for worker in list(self.workers.values()):
            if worker.kill_at is not None:
                if now < worker.kill_at:
                    continue
                if not worker.aborted:  # its tracebacks first, as gunicorn's worker_abort
                    self.error_log.error("Worker %d still running: its threads' tracebacks "
                                         "follow, then SIGKILL", worker.pid)
                    worker.aborted = True
                    worker.kill_at = now + KILL_GRACE_S
                    self._signal(worker.pid, signal.SIGABRT)
                    continue
                self.error_log.error("Worker %d still running: SIGKILL", worker.pid)
                self._signal(worker.pid, signal.SIGKILL)
                worker.kill_at = now + LOOP_TICK_S  # again later if it somehow survives
                continue
            timeout_s = worker.generation.cfg.timeout
            if timeout_s and now - worker.alive_at > timeout_s:
                self.error_log.critical(
                    "WORKER TIMEOUT (pid:%d): no sign of life for %.1fs; its threads' "
                    "tracebacks follow, then SIGKILL", worker.pid, now - worker.alive_at)
                self.metrics.restarted("timeout")
                worker.leaving = worker.aborted = True  # its replacement starts now
                worker.kill_at = now + KILL_GRACE_S
                self._signal(worker.pid, signal.SIGABRT)

    def _kill_all(self) -> None:
        """Leave no child behind, whatever ended the loop."""
        for pid in list(self.workers):
            self._signal(pid, signal.SIGKILL)
        for pid in list(self.workers):
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass
            worker = self.workers.pop(pid)
            if worker.status_fd >= 0:
                os.close(worker.status_fd)


def worker_count(cfg: Any) -> int:
    """The workers a configuration asks for: --reload with workers = 0 still needs one."""
    return max(int(cfg.workers), 1)


def _flush_logs() -> None:
    for handler in logging.getLogger("treadle.error").handlers + \
            logging.getLogger("treadle.access").handlers:
        try:
            handler.flush()
        except Exception:
            pass
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass
