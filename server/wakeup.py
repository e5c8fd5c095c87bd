"""A wake-up descriptor: another thread makes it readable to end a poll() early.

The poller and each HTTP/2 connection's thread sleep in poll() on their sockets plus one of
these; workers call notify() when they hand something over. On Linux it is an eventfd (one
descriptor); elsewhere a pipe (two). Descriptors are what the open-file limit counts, so
server/run.py raises that limit by DESCRIPTORS for every HTTP/2 connection it may hold.
"""

from __future__ import annotations

import os

_EVENTFD = hasattr(os, "eventfd")
DESCRIPTORS = 1 if _EVENTFD else 2


class Wakeup:
    """One wake-up channel; raises OSError (EMFILE) when no descriptor is left for it."""

    __slots__ = ("_read_fd", "_write_fd")

    def __init__(self) -> None:
        if _EVENTFD:
            fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
            self._read_fd = self._write_fd = fd
        else:  # pragma: no cover - not on Linux
            self._read_fd, self._write_fd = os.pipe()
            os.set_blocking(self._read_fd, False)
            os.set_blocking(self._write_fd, False)

    def fileno(self) -> int:
        """The descriptor to poll for reading."""
        return self._read_fd

    def notify(self) -> None:
        """Make fileno() readable; from any thread, never raises."""
        try:
            if _EVENTFD:
                os.eventfd_write(self._write_fd, 1)
            else:  # pragma: no cover - not on Linux
                os.write(self._write_fd, b"\0")
        except OSError:
            pass  # full (so readable already) or closed during shutdown

    def drain(self) -> None:
        """Make fileno() unreadable again (until the next notify)."""
        try:
            if _EVENTFD:
                os.eventfd_read(self._read_fd)
            else:  # pragma: no cover - not on Linux
                os.read(self._read_fd, 4096)
        except OSError:
            pass  # nothing to read

    def close(self) -> None:
        for fd in {self._read_fd, self._write_fd}:
            try:
                os.close(fd)
            except OSError:
                pass
