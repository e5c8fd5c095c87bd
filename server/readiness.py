"""The poller's view of the kernel: which sockets to watch, and which became readable (or,
for a connection draining a response to a slow reader, writable).

Connections are watched one-shot: once one is reported readable it is no longer watched until
the poller arms it again (after a worker hands it back). On Linux this is epoll with
EPOLLONESHOT: one `epoll_ctl` per request instead of a register and an unregister, and no
`selectors` bookkeeping on the hot path. Elsewhere a `selectors` fallback gives the same
semantics with register/unregister. Only the poller thread calls these methods.
"""

from __future__ import annotations

import select
import selectors
from typing import Any

_HAS_EPOLL = hasattr(select, "epoll")


class EpollReadiness:
    """epoll: level-triggered for listeners and the wake-up, one-shot for connections."""

    def __init__(self) -> None:
        self._epoll = select.epoll()
        self._targets: dict[int, Any] = {}
        self._oneshot = select.EPOLLIN | select.EPOLLONESHOT | select.EPOLLRDHUP
        # Writable only: a peer that shut its side (RDHUP) or sent more bytes must not wake
        # a connection that waits to write, again and again.
        self._oneshot_write = select.EPOLLOUT | select.EPOLLONESHOT

    def watch(self, fd: int, target: Any) -> None:
        """Watch a listener or the wake-up descriptor until `unwatch`."""
        self._targets[fd] = target
        self._epoll.register(fd, select.EPOLLIN)

    def unwatch(self, fd: int) -> None:
        self._targets.pop(fd, None)
        try:
            self._epoll.unregister(fd)
        except (OSError, ValueError):
            pass

    def add(self, fd: int, conn: Any) -> None:
        """Start watching a new connection (armed)."""
        self._targets[fd] = conn
        self._epoll.register(fd, self._oneshot)

    def arm(self, fd: int, conn: Any) -> None:
        """Watch a known connection again after it was reported."""
        self._targets[fd] = conn
        try:
            self._epoll.modify(fd, self._oneshot)
        except FileNotFoundError:  # its descriptor number was closed and reused meanwhile
            self._epoll.register(fd, self._oneshot)

    def arm_write(self, fd: int, conn: Any) -> None:
        """Watch a known connection until it is writable (a response draining), once."""
        self._targets[fd] = conn
        try:
            self._epoll.modify(fd, self._oneshot_write)
        except FileNotFoundError:
            self._epoll.register(fd, self._oneshot_write)

    def remove(self, fd: int) -> None:
        """Forget a connection the poller is about to close."""
        self.unwatch(fd)

    def poll(self, timeout: float | None) -> list[Any]:
        targets = self._targets
        events = self._epoll.poll(-1 if timeout is None else timeout)
        return [targets.get(fd) for fd, _mask in events]

    def watched(self) -> list[Any]:
        return list(self._targets.values())

    def close(self) -> None:
        self._epoll.close()


class SelectorReadiness:
    """The portable fallback: selectors with register on arm, unregister when reported."""

    def __init__(self) -> None:
        self._selector = selectors.DefaultSelector()
        self._oneshot: set[int] = set()

    def watch(self, fd: int, target: Any) -> None:
        self._selector.register(fd, selectors.EVENT_READ, target)

    def unwatch(self, fd: int) -> None:
        try:
            self._selector.unregister(fd)
        except (KeyError, ValueError):
            pass
        self._oneshot.discard(fd)

    def add(self, fd: int, conn: Any) -> None:
        self.arm(fd, conn)

    def arm(self, fd: int, conn: Any, events: int = selectors.EVENT_READ) -> None:
        if fd in self._oneshot:
            self._selector.modify(fd, events, conn)
        else:
            self._selector.register(fd, events, conn)
            self._oneshot.add(fd)

    def arm_write(self, fd: int, conn: Any) -> None:
        self.arm(fd, conn, selectors.EVENT_WRITE)

    def remove(self, fd: int) -> None:
        self.unwatch(fd)

    def poll(self, timeout: float | None) -> list[Any]:
        ready = []
        for key, _mask in self._selector.select(timeout):
            if key.fd in self._oneshot:
                self.unwatch(key.fd)
            ready.append(key.data)
        return ready

    def watched(self) -> list[Any]:
        return [key.data for key in self._selector.get_map().values()]

    def close(self) -> None:
        self._selector.close()


def make_readiness() -> EpollReadiness | SelectorReadiness:
    return EpollReadiness() if _HAS_EPOLL else SelectorReadiness()


def readable(fds: list[int], timeout_s: float | None) -> set[int]:
    """Which of `fds` are readable (or closed), waiting up to `timeout_s` (None: for ever),
    for the loops that wait on a few descriptors (the arbiter, a signal queue). poll(), never
    select(): select() refuses descriptors from 1024 on."""
    poller = select.poll()
    for fd in fds:
        poller.register(fd, select.POLLIN)
    timeout_ms = None if timeout_s is None else max(0.0, timeout_s * 1000.0)
    return {fd for fd, _ in poller.poll(timeout_ms)}
