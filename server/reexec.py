"""SIGUSR2: re-execute the server binary with the listening sockets inherited.

The old arbiter forks a child that execs the same command line (sys.orig_argv, from the
directory treadle started in) with the listeners' descriptors left open and named in
TREADLE_FDS: a JSON object with the child's own pid (so a grandchild that inherits the
variable ignores it), the listeners by their `bind` string, and the write end of a pipe. The
new process adopts a listener for each `bind` it is configured with that is named there (it
binds the others anew), boots its workers, and writes one byte to the pipe once they serve:
the old arbiter then stops its own workers gracefully and exits. Connections keep arriving on
the same sockets throughout, so none is refused. If the new process exits before it serves,
the pipe closes empty and the old arbiter keeps serving (the pid file is given back).

The pid file: renamed to `<pidfile>.oldbin` while the two overlap (as gunicorn does), the
new process writes its own, and the old one removes the `.oldbin` when it exits.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import sys
from dataclasses import dataclass, field

from .listeners import BindError, Listener
from .signals import HANDLED_SIGNALS

ENV_NAME = "TREADLE_FDS"  # config.schema.INTERNAL_VARIABLES leaves it alone


@dataclass
class Inherited:
    """What a re-executed process received from the arbiter that started it."""

    listeners: dict[str, int] = field(default_factory=dict)  # bind -> file descriptor
    ready_fd: int = -1

    def adopt(self, bind: str) -> Listener | None:
        fd = self.listeners.pop(bind, None)
        if fd is None:
            return None
        try:
            sock = socket.socket(fileno=fd)
        except OSError as exc:
            raise BindError(f"cannot adopt the inherited socket for {bind}: "
                            f"{exc.strerror or exc}") from None
        sock.setblocking(False)
        os.set_inheritable(fd, False)
        # A socket file stays the old arbiter's until this process serves (claim_files): one
        # that fails to start must not remove it from under the old one.
        return Listener(sock, bind)

    def close_unused(self) -> list[str]:
        """Close the inherited sockets no `bind` asked for; returns their binds."""
        for fd in self.listeners.values():
            try:
                os.close(fd)
            except OSError:
                pass
        unused, self.listeners = list(self.listeners), {}
        return unused

    @staticmethod
    def claim_files(listeners: list[Listener]) -> None:
        """This process serves: the unix socket files it adopted are its own to remove."""
        for listener in listeners:
            if listener.bind.startswith("unix:") and listener.unix_path is None:
                listener.unix_path = listener.bind[len("unix:"):]

    def announce_ready(self) -> None:
        """Tell the old arbiter that this process serves (once)."""
        if self.ready_fd < 0:
            return
        try:
            os.write(self.ready_fd, b"1")
        except OSError:
            pass  # the old arbiter is gone already
        os.close(self.ready_fd)
        self.ready_fd = -1


def take_inherited() -> Inherited | None:
    """Read and remove TREADLE_FDS (workers and the application never see it); None when
    this process was not started by a USR2, or the variable was meant for another one."""
    text = os.environ.pop(ENV_NAME, None)
    if text is None:
        return None
    try:
        data = json.loads(text)
        if data["pid"] != os.getpid():
            return None
        listeners = {str(bind): int(fd) for bind, fd in data["listeners"]}
        return Inherited(listeners, int(data["ready"]))
    except (ValueError, KeyError, TypeError) as exc:
        raise BindError(f"{ENV_NAME} is not usable ({exc})") from None


def start_new_binary(listeners: list[Listener], start_cwd: str,
                     error_log: logging.Logger) -> tuple[int, int]:
    """Fork and exec this server's command line again with `listeners` inherited; returns
    (pid, read end of the readiness pipe)."""
    read_fd, write_fd = os.pipe()
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, HANDLED_SIGNALS)
    pid = os.fork()
    if pid != 0:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        os.close(write_fd)
        return pid, read_fd
    try:  # the child: exec, or die; never back into the arbiter's loop
        os.close(read_fd)
        os.chdir(start_cwd)
        for listener in listeners:
            os.set_inheritable(listener.sock.fileno(), True)
        os.set_inheritable(write_fd, True)
        os.environ[ENV_NAME] = json.dumps({
            "pid": os.getpid(), "ready": write_fd,
            "listeners": [[listener.bind, listener.sock.fileno()] for listener in listeners],
        })
        for sig in HANDLED_SIGNALS:
            signal.signal(sig, signal.SIG_DFL)
        signal.set_wakeup_fd(-1)
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        os.execv(sys.executable, [sys.executable, *sys.orig_argv[1:]])
    except BaseException as exc:
        error_log.error("SIGUSR2: cannot execute %s: %s", sys.executable, exc)
    finally:
        os._exit(1)


def rename_quietly(source: str, target: str, error_log: logging.Logger) -> bool:
    try:
        os.replace(source, target)
    except OSError as exc:
        error_log.warning("cannot rename the pid file %s to %s: %s", source, target,
                          exc.strerror or exc)
        return False
    return True
