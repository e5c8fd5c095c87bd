"""Listening sockets from `bind` strings: HOST:PORT, [v6]:PORT, :PORT, unix:/path, fd://N.

Listeners are created here (by `run`, or later by a parent process that forks workers) and
passed to a Server; the Server never creates or unlinks them itself.
"""

from __future__ import annotations

import errno
import os
import socket
import stat
from dataclasses import dataclass


class BindError(Exception):
    """A listening socket cannot be opened; the message is one line."""


@dataclass
class Listener:
    """A bound, listening, non-blocking socket and what to call it in logs and environ."""

    sock: socket.socket
    bind: str
    unix_path: str | None = None  # a socket file we created, removed on close

    def url(self) -> str:
        """`http://127.0.0.1:8000`, `http://[::1]:8000` or `unix:/path`, from the real address."""
        return describe_address(self.sock)

    def close(self) -> None:
        self.sock.close()
        if self.unix_path is not None:
            try:
                if stat.S_ISSOCK(os.lstat(self.unix_path).st_mode):
                    os.unlink(self.unix_path)
            except OSError:
                pass


def describe_address(sock: socket.socket) -> str:
    address = sock.getsockname()
    if sock.family == socket.AF_INET:
        return f"http://{address[0]}:{address[1]}"
    if sock.family == socket.AF_INET6:
        return f"http://[{address[0]}]:{address[1]}"
    name = address.decode("utf-8", "replace") if isinstance(address, bytes) else address
    return f"unix:{name}"


def parse_host_port(bind: str) -> tuple[str, int]:
    """Split `HOST:PORT`, `[v6]:PORT` or `:PORT`; an empty host means every IPv4 interface."""
    if bind.startswith("["):
        host, sep, rest = bind[1:].partition("]")
        if not sep or not rest.startswith(":"):
            raise BindError(f"bind {bind!r}: expected [IPV6]:PORT")
        port_text = rest[1:]
    else:
        host, sep, port_text = bind.rpartition(":")
        if not sep:
            raise BindError(f"bind {bind!r}: expected HOST:PORT, unix:/path or fd://N")
        host = host or "0.0.0.0"
    if not port_text.isdigit() or not port_text.isascii() or int(port_text) > 65535:
        raise BindError(f"bind {bind!r}: port must be a number from 0 to 65535")
    return host, int(port_text)


def open_listener(bind: str, backlog: int, reuse_port: bool) -> Listener:
    """Create, bind and listen; BindError (one line) on any failure."""
    try:
        if bind.startswith("unix:"):
            return _open_unix(bind, bind[len("unix:") :], backlog)
        if bind.startswith("fd://"):
            return _adopt_fd(bind, backlog)
        return _open_tcp(bind, backlog, reuse_port)
    except OSError as exc:
        raise BindError(f"cannot listen on {bind}: {exc.strerror or exc}") from None


def _open_tcp(bind: str, backlog: int, reuse_port: bool) -> Listener:
    host, port = parse_host_port(bind)
    try:
        infos = socket.getaddrinfo(host, port, socket.AF_UNSPEC, socket.SOCK_STREAM, 0,
                                   socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise BindError(f"cannot listen on {bind}: {exc.strerror}") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            if not hasattr(socket, "SO_REUSEPORT"):
                raise BindError(f"cannot listen on {bind}: SO_REUSEPORT is not supported here")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
        sock.listen(backlog)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return Listener(sock, bind)


def _open_unix(bind: str, path: str, backlog: int) -> Listener:
    if not path:
        raise BindError(f"bind {bind!r}: expected unix:/path")
    _remove_stale_socket(bind, path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(path)  # the process umask decides the file's mode
        sock.listen(backlog)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return Listener(sock, bind, unix_path=path)


def _remove_stale_socket(bind: str, path: str) -> None:
    """Unlink a socket file nobody listens on any more; refuse to touch anything else."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise BindError(f"cannot listen on {bind}: {path} exists and is not a socket")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
    except OSError as exc:
        if exc.errno in (errno.ECONNREFUSED, errno.ENOENT):
            os.unlink(path)
            return
        raise
    else:
        raise BindError(f"cannot listen on {bind}: another process is listening there")
    finally:
        probe.close()


def _adopt_fd(bind: str, backlog: int) -> Listener:
    text = bind[len("fd://") :]
    if not text.isdigit() or not text.isascii():
        raise BindError(f"bind {bind!r}: expected fd://N with N a file descriptor number")
    try:
        sock = socket.socket(fileno=int(text))
    except OSError as exc:
        raise BindError(f"cannot listen on {bind}: {exc.strerror or exc}") from None
    if sock.type != socket.SOCK_STREAM:
        sock.detach()
        raise BindError(f"cannot listen on {bind}: not a stream socket")
    sock.listen(backlog)  # harmless if already listening; required if only bound
    sock.setblocking(False)
    return Listener(sock, bind)
