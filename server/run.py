"""`run(cfg)`: one serving process from settings to exit status.

Order matters: logs, umask, signals held (a stop signal ends the start with status 0, the
others wait for the serving loop: server/signals.py), listeners (exit 4 when one cannot be
opened), then user/group (after binding, so privileged ports work), the pidfile, the
application (exit 3 when it cannot be loaded; it is imported as the final user), then serve
until a stop signal
(server/serving.py) in this process, or, with `workers` >= 1, hand over to the arbiter
(server/arbiter.py), which forks the workers and imports the application in each of them
(or once, before forking, with preload_app). --reload always runs an arbiter (one worker
when `workers` is 0) and turns preload_app off: a worker must import the code it watches.
"""

from __future__ import annotations

import gc
import logging
import os
from typing import Any

from .app import AppLoadError, load_app
from .arbiter import Arbiter, worker_count
from .http2 import descriptors_per_connection
from .listeners import BindError, Listener, open_listener
from .logsetup import LogConfigError, setup_logs
from .metricsd import MetricsServer, open_metrics
from .reexec import Inherited, take_inherited
from .serving import print_app_error, print_error, serve
from .shards import PortShards
from .signals import StoppedStarting, hold_while_starting, signal_name
from .statsd import count_log_records
from .tls import TLSConfigError, build_context

EXIT_OK = 0
EXIT_UNEXPECTED = 1
EXIT_CONFIG = 2
EXIT_APP = 3
EXIT_BIND = 4


class ProcessSettingError(Exception):
    """user, group or pidfile cannot take effect; `status` is the exit status."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def run(cfg: Any) -> int:
    """Serve `cfg.wsgi_app` until stopped; return the process exit status."""
    start_cwd = os.getcwd()  # a reload (SIGHUP) reads the configuration from here again
    logs = _open_logs(cfg)
    if logs is None:
        return EXIT_CONFIG
    error_log, access_log = logs
    if cfg.umask is not None:
        os.umask(cfg.umask)
    raise_open_file_limit(cfg.worker_connections * descriptors_per_connection(cfg) + 64)
    hold_while_starting()
    listeners: list[Listener] = []
    pidfile: str | None = None
    inherited: Inherited | None = None
    shards: PortShards | None = None
    supervised = cfg.workers > 0 or cfg.reload  # --reload needs workers to replace
    metrics_server: MetricsServer | None = None
    try:  # whatever happens, the listeners close and our pidfile goes
        try:
            inherited = take_inherited()  # started by an arbiter's USR2
            listeners.extend(open_listeners(cfg, inherited, error_log))
            if supervised:  # reuse_port: a socket per worker, bound before a user switch
                shards = PortShards(listeners, cfg.reuse_port, cfg.backlog, error_log)
                shards.prepare(worker_count(cfg))
            metrics_server = open_metrics(cfg, error_log)
            switch_user(cfg.user, cfg.group, listeners)
            pidfile = write_pidfile(cfg.pidfile)
            preload = cfg.preload_app and not cfg.reload
            app = load_app(cfg) if not supervised or preload else None
        except BindError as exc:
            print_error(str(exc))
            return EXIT_BIND
        except AppLoadError as exc:
            print_app_error(exc)
            return EXIT_APP
        except ProcessSettingError as exc:
            print_error(str(exc))
            return exc.status
        except StoppedStarting as exc:
            error_log.info("%s during start-up: stopping", signal_name(exc.signum))
            return EXIT_OK
        # Everything imported so far lives as long as the process: keep it out of the garbage
        # collector's full passes, which would otherwise walk it all (pauses under load).
        gc.freeze()
        if supervised:
            return run_arbiter(cfg, app, listeners, error_log, access_log, start_cwd,
                               inherited, shards, metrics_server)
        if inherited is not None:
            inherited.announce_ready()
        return serve(app, cfg, listeners, error_log, access_log, metrics_server=metrics_server)
    finally:
        if shards is not None:
            shards.release_all()
        if metrics_server is not None:
            metrics_server.close()
        _cleanup(listeners, pidfile)


def _open_logs(cfg: Any) -> tuple[logging.Logger, logging.Logger | None] | None:
    """The error and access logs (statsd counting the error log's records when on); None
    once the reason they cannot be opened is printed."""
    try:
        error_log, access_log = setup_logs(cfg)
    except OSError as exc:
        print_error(f"cannot open a log file: {exc}")
        return None
    except LogConfigError as exc:
        print_error(str(exc))
        return None
    count_log_records(cfg, error_log)
    return error_log, access_log


def open_listeners(cfg: Any, inherited: Inherited | None,
                   error_log: logging.Logger) -> list[Listener]:
    """A listener for each `bind`: the one an old arbiter handed over, else a new one."""
    listeners: list[Listener] = []
    try:
        for bind in cfg.bind:
            adopted = inherited.adopt(bind) if inherited is not None else None
            listeners.append(adopted or open_listener(bind, cfg.backlog, cfg.reuse_port))
    except BaseException:
        for listener in listeners:
            listener.close()
        raise
    if inherited is not None:
        for bind in inherited.close_unused():
            error_log.warning("the inherited listener for %s is no longer bound; closed", bind)
    return listeners


def run_arbiter(cfg: Any, app: Any, listeners: list[Listener], error_log: logging.Logger,
                access_log: logging.Logger | None, start_cwd: str,
                inherited: Inherited | None = None, shards: PortShards | None = None,
                metrics_server: MetricsServer | None = None) -> int:
    """Supervise `cfg.workers` worker processes (server/arbiter.py) until stopped."""
    try:
        build_context(cfg)  # fail once, here, rather than in every worker
    except TLSConfigError as exc:
        print_error(str(exc))
        return EXIT_CONFIG
    return Arbiter(cfg, app, listeners, error_log, access_log, start_cwd, inherited,
                   shards, metrics_server).run()


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
    """Write our pid; on failure (a full disk, a read-only place) one line and exit 2,
    leaving no empty pid file behind for a supervisor to misread."""
    if path is None:
        return None
    try:
        with open(path, "w", encoding="ascii") as handle:
            handle.write(f"{os.getpid()}\n")
    except OSError as exc:
        try:
            if os.path.isfile(path) and os.path.getsize(path) == 0:
                os.unlink(path)  # created but not written (ENOSPC at close)
        except OSError:
            pass
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
