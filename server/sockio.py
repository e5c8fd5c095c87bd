"""Blocking-with-deadline reads and writes on non-blocking sockets.

Every connection socket stays non-blocking (timeout 0): the fast path is one plain
send/recv system call; only when the kernel says "would block" do we wait with poll() under
a deadline. (A socket timeout would cost a poll() before every call.)
"""

from __future__ import annotations

import os
import select
import socket
import threading
import time

from .errors import BodyTimeout, ClientGone


def wait_ready(sock: socket.socket, for_write: bool, deadline: float) -> None:
    """Wait until `sock` is readable (or writable); BodyTimeout once `deadline` passes.
    poll(), never select(): select() refuses descriptors from 1024 on (ValueError)."""
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise BodyTimeout("timed out waiting for the client")
    poller = select.poll()
    poller.register(sock.fileno(), select.POLLOUT if for_write else select.POLLIN)
    if not poller.poll(remaining * 1000.0):
        raise BodyTimeout("timed out waiting for the client")


def send_all(sock: socket.socket, data: bytes | bytearray | memoryview, timeout_s: float) -> None:
    """Send every byte of `data`; each wait for the socket to drain is bounded by timeout_s."""
    try:
        sent = sock.send(data)
    except BlockingIOError:
        sent = 0
    if sent == len(data):
        return
    view = memoryview(data)[sent:]
    deadline = time.monotonic() + timeout_s
    while view:
        wait_ready(sock, True, deadline)
        try:
            sent = sock.send(view)
        except BlockingIOError:
            continue
        view = view[sent:]
        deadline = time.monotonic() + timeout_s


_scratch = threading.local()  # each thread's receive buffer (see recv_copy)
RECV_BUFFER_BYTES = 65536  # its first size (reads are at most this, but for larger asks)


def recv_copy(sock: socket.socket, size: int) -> bytes:
    """sock.recv(size) without its allocate-then-shrink: the bytes arrive in this thread's
    reusable buffer and leave as an object of exactly their size (one copy). recv() allocates
    `size` bytes and shrinks them to what came: glibc leaves the freed tail of each block
    behind it, smaller objects settle in those tails, and under steady uploads the heaps grew
    without end (free space inside them growing, about 1 MiB a minute at 600 uploads of
    1 MiB a second; issue 14 item 12). With this they stay the same size."""
    try:
        buffer = _scratch.buffer
    except AttributeError:
        buffer = _scratch.buffer = bytearray(RECV_BUFFER_BYTES)
    if len(buffer) < size:
        buffer = _scratch.buffer = bytearray(size)
    count = sock.recv_into(buffer, size)
    # The views last only for this expression (the buffer is replaced, never resized, so
    # a view alive elsewhere could not stop it either): no `with` on the request path.
    return memoryview(buffer)[:count].tobytes()


def recv_some(sock: socket.socket, size: int, deadline: float) -> bytes:
    """Receive up to `size` bytes (b"" at EOF), waiting for them until `deadline`
    (monotonic; BodyTimeout then)."""
    try:
        return recv_copy(sock, size)
    except BlockingIOError:
        pass
    while True:
        wait_ready(sock, False, deadline)
        try:
            return recv_copy(sock, size)
        except BlockingIOError:
            continue


def send_file(
    sock: socket.socket, file_fd: int, offset: int, count: int, timeout_s: float
) -> int:
    """Send `count` bytes of a file with os.sendfile; returns how many went (less at EOF)."""
    total = 0
    deadline = time.monotonic() + timeout_s
    while total < count:
        try:
            sent = os.sendfile(sock.fileno(), file_fd, offset + total, count - total)
        except BlockingIOError:
            wait_ready(sock, True, deadline)
            continue
        if sent == 0:
            break
        total += sent
        deadline = time.monotonic() + timeout_s
    return total


def lingering_ok(sock: socket.socket) -> bool:
    """True when nothing unread is pending, so close() will not reset the connection."""
    try:
        return sock.recv(1, socket.MSG_PEEK) == b""
    except BlockingIOError:
        return True
    except OSError:
        return True


__all__ = ["ClientGone", "lingering_ok", "recv_copy", "recv_some", "send_all", "send_file",
           "wait_ready"]
