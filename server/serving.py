"""`serve()`: run one Server in this process until a stop signal, then stop it.

The same code serves the single-process mode (`workers = 0`) and each worker process of the
arbiter (which passes a `Supervision`: readiness, heartbeats and recycling go through it).
Signal handlers only record the signal (server/signals.py); this loop acts on them:
TERM and INT stop gracefully (stop accepting, close idle connections, let requests in flight
finish within graceful_timeout) and exit 0; a second stop signal, or QUIT, stops at once;
USR1 reopens the log files. In single-process mode HUP, USR2, TTIN, TTOU and WINCH are only
logged (they need an arbiter); a worker ignores them. About once a second the loop logs
requests running longer than `timeout` (server/inflight.py); when every thread runs one, a
worker asks its arbiter for a replacement, the single process can only say so.
"""

from __future__ import annotations

import faulthandler
import logging
import os
import signal
import sys
import time
from typing import Any, Protocol

from .app import AppLoadError
from .core import Server
from .listeners import Listener
from .logs import error_stream, reopen_log_files
from .metricsd import MetricsServer
from .metricshub import ProcessSource
from .sdnotify import sd_notify
from .signals import FAILED, HANDLED_SIGNALS, SignalQueue, signal_name
from .tls import TLSConfigError

EXIT_OK = 0
EXIT_UNEXPECTED = 1
EXIT_CONFIG = 2
WATCH_S = 1.0  # how often the single process looks for requests running past timeout
GRACEFUL_SIGNALS = (signal.SIGTERM, signal.SIGINT)
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT)
# Signals a worker leaves to its arbiter: ignored, so that one sent to the whole process group
# (a terminal's HUP) never ends a worker.
WORKER_IGNORED = (signal.SIGHUP, signal.SIGUSR2, signal.SIGTTIN, signal.SIGTTOU, signal.SIGWINCH)
_NEEDS_ARBITER: dict[int, str] = {
    signal.SIGHUP: "SIGHUP (reload) needs an arbiter (workers >= 1); ignored. "
                   "Restart the process to load new code or settings",
    signal.SIGUSR2: "SIGUSR2 (re-execute) needs an arbiter (workers >= 1); ignored",
    signal.SIGTTIN: "SIGTTIN (one more worker) needs an arbiter (workers >= 1); ignored",
    signal.SIGTTOU: "SIGTTOU (one worker fewer) needs an arbiter (workers >= 1); ignored",
    signal.SIGWINCH: "SIGWINCH ignored",
}


class Supervision(Protocol):
    """What a worker process tells its arbiter (server/worker.py implements it)."""

    tick_s: float

    def started(self, server: Server) -> None:
        """The server accepts connections now."""

    def tick(self, server: Server, all_stuck: bool) -> bool:
        """Called every tick_s while serving (`all_stuck`: every thread runs a request past
        timeout); False asks for a graceful stop (recycling)."""


def print_error(message: str) -> None:
    """The one-line `treadle: error: ...` form of failures before or instead of serving."""
    print(f"treadle: error: {message}", file=sys.stderr, flush=True)


def print_app_error(exc: AppLoadError) -> None:
    """The application cannot be loaded: its own traceback (when it raised), then one line."""
    sys.stderr.write(exc.traceback)
    print_error(f"cannot load the application: {exc}")


def reopen_logs(error_log: logging.Logger) -> None:
    try:
        count = reopen_log_files()
    except OSError as exc:
        error_log.error("SIGUSR1: cannot reopen the log files: %s", exc)
        return
    error_log.info("SIGUSR1: reopened %d log file(s)", count)


def serve(app: Any, cfg: Any, listeners: list[Listener], error_log: logging.Logger,
          access_log: logging.Logger | None, supervision: Supervision | None = None,
          metrics_server: MetricsServer | None = None) -> int:
    """Run a Server in this process until a stop signal; the caller owns the listeners
    (and the metrics listener of a single process, served from here)."""
    if supervision is not None:
        for sig in WORKER_IGNORED:
            signal.signal(sig, signal.SIG_IGN)
    else:  # (a worker did it before loading its app) a crash in C code, ours or the app's:
        faulthandler.enable(file=error_stream(error_log), all_threads=True)  # every stack
    signals = SignalQueue(STOP_SIGNALS + (signal.SIGUSR1,) if supervision is not None
                          else HANDLED_SIGNALS)
    try:
        server = Server(app, cfg, listeners, error_log, access_log,
                        multiprocess=supervision is not None, on_failure=signals.fail)
    except TLSConfigError as exc:
        signals.restore()
        print_error(str(exc))
        return EXIT_CONFIG
    server.start()
    if supervision is None:
        scheme = "https://" if server.tls_context is not None else "http://"
        for listener in listeners:
            error_log.info("Listening at: %s", listener.url().replace("http://", scheme, 1))
        error_log.info("Serving %s with %d threads (pid %d)", cfg.wsgi_app, cfg.threads,
                       os.getpid())
        sd_notify("READY=1")
        if metrics_server is not None:
            metrics_server.start(ProcessSource(server))
    else:
        supervision.started(server)
    try:
        first = _serve_until_stop(server, signals, error_log, supervision)
        if supervision is None:
            sd_notify("STOPPING=1")
        if first == FAILED:
            return EXIT_UNEXPECTED
        if first == signal.SIGQUIT:
            error_log.info("SIGQUIT: stopping at once")
        else:
            _stop_gracefully(server, signals, error_log, first, cfg.graceful_timeout)
    finally:
        server.close()
        signals.restore()
    error_log.info("Stopped")
    return EXIT_OK


def _serve_until_stop(server: Server, signals: SignalQueue, error_log: logging.Logger,
                      supervision: Supervision | None) -> int:
    """Dispatch signals until a stop; returns it (SIGTERM for a recycling worker's own stop).
    About once a second (with a timeout, or supervised) it watches for stuck requests."""
    tick_s = supervision.tick_s if supervision is not None else WATCH_S
    watching = supervision is not None or server.runtime.timeout_s > 0
    next_tick_s = time.monotonic() + tick_s
    all_stuck_logged = False
    while True:
        sig = signals.wait(max(0.0, next_tick_s - time.monotonic()) if watching else None)
        if watching and time.monotonic() >= next_tick_s:
            next_tick_s = time.monotonic() + tick_s
            all_stuck = server.check_stuck()
            if supervision is not None:
                if not supervision.tick(server, all_stuck):
                    return signal.SIGTERM  # recycling: a graceful stop of its own
            elif all_stuck and not all_stuck_logged:
                error_log.error("every thread runs a request past timeout: nothing more is "
                                "served until one returns (with --workers, the arbiter would "
                                "replace this process)")
            all_stuck_logged = all_stuck
        if sig is None:
            continue
        if sig in STOP_SIGNALS or sig == FAILED:
            return sig
        if sig == signal.SIGUSR1:
            reopen_logs(error_log)
        else:
            error_log.warning("%s", _NEEDS_ARBITER.get(sig, f"{signal_name(sig)} ignored"))


def _stop_gracefully(server: Server, signals: SignalQueue, error_log: logging.Logger,
                     first: int, graceful_timeout_s: float) -> None:
    error_log.info("Stopping gracefully (%s); in-flight requests get %.3gs",
                   signal_name(first), graceful_timeout_s)
    server.begin_stop()
    deadline = time.monotonic() + graceful_timeout_s
    stops_before = signals.count(*STOP_SIGNALS)
    while not server.wait_stopped(0.1):
        while (sig := signals.pop()) is not None:
            if sig == signal.SIGUSR1:
                reopen_logs(error_log)
        signals.drain()
        if signals.count(*STOP_SIGNALS) > stops_before:
            error_log.info("Second signal: stopping at once")
            return
        if time.monotonic() >= deadline:
            error_log.warning("graceful_timeout reached: dropping %d connection(s)%s",
                              server.open_connections,
                              "".join(f"; {r}" for r in server.inflight.running()))
            return
