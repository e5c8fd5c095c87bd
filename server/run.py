"""`run(cfg)`: one serving process from settings to exit status.

Order matters: logs, umask, listeners (exit 4 when one cannot be opened), then user/group
(after binding, so privileged ports work), the pidfile, the application (exit 3 when it
cannot be loaded; it is imported as the final user), then serve until SIGTERM or SIGINT.
Signal handlers only record the signal and wake the main thread: the first stops gracefully
(stop accepting, finish requests in flight within graceful_timeout, close idle connections,
exit 0); a second one stops at once.
"""

from __future__ import annotations

import gc
import logging
import os
import signal
import sys
import time
from types import FrameType
from typing import Any

from .app import AppLoadError, load_app
from .core import Server
from .listeners import BindError, Listener, open_listener
from .logs import setup_access_log, setup_error_log
from .tls import TLSConfigError

EXIT_OK = 0
EXIT_UNEXPECTED = 1
EXIT_CONFIG = 2
EXIT_APP = 3
EXIT_BIND = 4
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class ProcessSettingError(Exception):
    """user, group or pidfile cannot take effect; `status` is the exit status."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def _error(message: str) -> None:
    print(f"treadle: error: {message}", file=sys.stderr, flush=True)


def run(cfg: Any) -> int:
    """Serve `cfg.wsgi_app` until stopped; return the process exit status."""
    try:
        error_log = setup_error_log(cfg.errorlog, cfg.loglevel)
        access_log = setup_access_log(cfg.accesslog)
    except OSError as exc:
        _error(f"cannot open a log file: {exc}")
        return EXIT_CONFIG
    if cfg.umask is not None:
        os.umask(cfg.umask)
    raise_open_file_limit(cfg.worker_connections + 64)
    listeners: list[Listener] = []
    pidfile: str | None = None
    try:  # whatever happens, the listeners close and our pidfile goes
        try:
            for bind in cfg.bind:
                listeners.append(open_listener(bind, cfg.backlog, cfg.reuse_port))
            switch_user(cfg.user, cfg.group, listeners)
            pidfile = write_pidfile(cfg.pidfile)
            app = load_app(cfg)
        except BindError as exc:
            _error(str(exc))
            return EXIT_BIND
        except AppLoadError as exc:
            sys.stderr.write(exc.traceback)
            _error(f"cannot load the application: {exc}")
            return EXIT_APP
        except ProcessSettingError as exc:
            _error(str(exc))
            return exc.status
        # Everything imported so far lives as long as the process: keep it out of the garbage
        # collector's full passes, which would otherwise walk it all (pauses under load).
        gc.freeze()
        return serve(app, cfg, listeners, error_log, access_log)
    finally:
        _cleanup(listeners, pidfile)


def serve(app: Any, cfg: Any, listeners: list[Listener], error_log: logging.Logger,
          access_log: logging.Logger | None) -> int:
    """Run a Server in this process until a stop signal; the caller owns the listeners."""
    stop = _StopSignals()
    try:
        server = Server(app, cfg, listeners, error_log, access_log, on_failure=stop.fail)
    except TLSConfigError as exc:
        stop.restore()
        _error(str(exc))
        return EXIT_CONFIG
    server.start()
    scheme = "https://" if server.tls_context is not None else "http://"
    for listener in listeners:
        error_log.info("Listening at: %s", listener.url().replace("http://", scheme, 1))
    error_log.info("Serving %s with %d threads (pid %d)", cfg.wsgi_app, cfg.threads, os.getpid())
    try:
        first = stop.wait()
        if stop.failed:
            return EXIT_UNEXPECTED
        error_log.info("Stopping gracefully (%s); in-flight requests get %.3gs",
                       signal.Signals(first).name, cfg.graceful_timeout)
        server.begin_stop()
        deadline = time.monotonic() + cfg.graceful_timeout
        while not server.wait_stopped(0.1):
            if stop.count > 1:
                error_log.info("Second signal: stopping at once")
                break
            if time.monotonic() >= deadline:
                error_log.warning("graceful_timeout reached: dropping %d connection(s)",
                                  server.open_connections)
                break
    finally:
        server.close()
        stop.restore()
    error_log.info("Stopped")
    return EXIT_OK


class _StopSignals:
    """Records SIGTERM/SIGINT and wakes the main thread through a pipe; nothing more."""

    def __init__(self) -> None:
        self.received: list[int] = []
        self.failed = False
        self._read_fd, self._write_fd = os.pipe()
        os.set_blocking(self._write_fd, False)
        self._previous = {sig: signal.signal(sig, self._handle) for sig in STOP_SIGNALS}
        # A signal may be delivered to any thread; CPython then only flags it, and the Python
        # handler runs on the main thread, which sleeps in wait()'s read and is not
        # interrupted. The wake-up fd is written at C level by whichever thread receives it.
        self._previous_wakeup_fd = signal.set_wakeup_fd(self._write_fd, warn_on_full_buffer=False)

    @property
    def count(self) -> int:
        return len(self.received)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.received.append(signum)
        try:
            os.write(self._write_fd, b"\0")
        except OSError:
            pass

    def fail(self) -> None:
        """The server cannot go on (from any thread): wake the main thread to exit 1."""
        self.failed = True
        self.received.append(0)
        try:
            os.write(self._write_fd, b"\0")
        except OSError:
            pass

    def wait(self) -> int:
        while not self.received:
            os.read(self._read_fd, 64)
        return self.received[0]

    def restore(self) -> None:
        signal.set_wakeup_fd(self._previous_wakeup_fd)
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)
        os.close(self._read_fd)
        os.close(self._write_fd)


def raise_open_file_limit(wanted: int) -> None:
    """Lift the soft limit on open files towards `wanted` (never past the hard limit)."""
    try:
        import resource
    except ImportError:  # pragma: no cover - not on POSIX
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= wanted:
        return
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (ValueError, OSError):
        pass


def switch_user(user: str | None, group: str | None, listeners: list[Listener]) -> None:
    """Drop to `user`/`group` after binding; unix socket files are handed over first."""
    if user is None and group is None:
        return
    import grp
    import pwd

    uid, gid, name = os.getuid(), os.getgid(), None
    try:
        if user is not None:
            entry = pwd.getpwuid(int(user)) if user.isdigit() else pwd.getpwnam(user)
            uid, gid, name = entry.pw_uid, entry.pw_gid, entry.pw_name
        if group is not None:
            gid = int(group) if group.isdigit() else grp.getgrnam(group).gr_gid
    except KeyError:
        raise ProcessSettingError(f"no such user or group: {user or group}", EXIT_CONFIG) from None
    try:
        for listener in listeners:
            if listener.unix_path is not None:
                os.chown(listener.unix_path, uid, gid)
        if name is not None and os.getuid() == 0:
            os.initgroups(name, gid)
        if gid != os.getgid():
            os.setgid(gid)
        if uid != os.getuid():
            os.setuid(uid)
    except OSError as exc:
        raise ProcessSettingError(f"cannot switch to user {user} group {group}: "
                                  f"{exc.strerror}", EXIT_UNEXPECTED) from None


def write_pidfile(path: str | None) -> str | None:
    if path is None:
        return None
    try:
        with open(path, "w", encoding="ascii") as handle:
            handle.write(f"{os.getpid()}\n")
    except OSError as exc:
        raise ProcessSettingError(f"cannot write pidfile {path}: {exc.strerror}",
                                  EXIT_CONFIG) from None
    return path


def _cleanup(listeners: list[Listener], pidfile: str | None) -> None:
    for listener in listeners:
        listener.close()
    if pidfile is not None:
        try:
            with open(pidfile, encoding="ascii") as handle:
                mine = handle.read().strip() == str(os.getpid())
            if mine:
                os.unlink(pidfile)
        except OSError:
            pass
