"""Signals as a queue: handlers only record the signal and wake the one loop that acts on it.

Every process of treadle (the single server, the arbiter, each worker) installs one
SignalQueue for every signal an operator may send it, so that none takes its default action
by accident (a habitual USR1 or HUP would otherwise end the process and leave its pid file).
The main loop sleeps in `wait()` and dispatches what it gets; nothing else runs in a handler.
"""

from __future__ import annotations

import os
import signal
from types import FrameType

from .readiness import readable

# What an operator may send; the meaning of each is decided by the loop that receives it.
HANDLED_SIGNALS = (
    signal.SIGTERM, signal.SIGINT, signal.SIGQUIT, signal.SIGHUP, signal.SIGUSR1,
    signal.SIGUSR2, signal.SIGTTIN, signal.SIGTTOU, signal.SIGWINCH,
)
FAILED = 0  # not a signal: the server cannot go on (its poller died)
STARTUP_STOPS = (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT)


class StoppedStarting(KeyboardInterrupt):
    """A stop signal arrived before the serving loop's queue was in place."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _stop_starting(signum: int, frame: FrameType | None) -> None:
    raise StoppedStarting(signum)


def hold_while_starting() -> None:
    """From the start until a SignalQueue takes over (it unblocks what it handles): a stop
    signal ends the start (StoppedStarting unwinds it, so the pid file and sockets are
    cleaned up); the others are blocked, so that they wait for the queue instead of ending
    the process by their default action during a slow import."""
    signal.pthread_sigmask(signal.SIG_BLOCK, set(HANDLED_SIGNALS) - set(STARTUP_STOPS))
    for sig in STARTUP_STOPS:
        signal.signal(sig, _stop_starting)


def signal_name(signum: int) -> str:
    return "failure" if signum == FAILED else signal.Signals(signum).name


class SignalQueue:
    """Records the signals in `signals` and wakes `wait()` through a pipe; nothing more."""

    def __init__(self, signals: tuple[int, ...] = HANDLED_SIGNALS) -> None:
        self.received: list[int] = []  # every signal so far, in order
        self._next = 0  # index of the first one wait() has not returned yet
        self._read_fd, self._write_fd = os.pipe()
        os.set_blocking(self._read_fd, False)
        os.set_blocking(self._write_fd, False)
        self._previous = {sig: signal.signal(sig, self._handle) for sig in signals}
        # A signal may be delivered to any thread; CPython then only flags it, and the Python
        # handler runs on the main thread, which sleeps in wait()'s select and is not
        # interrupted. The wake-up fd is written at C level by whichever thread receives it.
        self._previous_wakeup_fd = signal.set_wakeup_fd(self._write_fd, warn_on_full_buffer=False)
        # Held back while starting (hold_while_starting, or blocked across a fork): what
        # arrived meanwhile is delivered now, to this queue.
        signal.pthread_sigmask(signal.SIG_UNBLOCK, signals)

    @property
    def fileno(self) -> int:
        """Readable when something arrived (for a loop that also watches other fds)."""
        return self._read_fd

    @property
    def failed(self) -> bool:
        return FAILED in self.received

    def count(self, *signals: int) -> int:
        """How many of `signals` arrived so far."""
        return sum(1 for sig in self.received if sig in signals)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.received.append(signum)
        self._wake()

    def _wake(self) -> None:
        try:
            os.write(self._write_fd, b"\0")
        except OSError:
            pass  # full: already readable

    def fail(self) -> None:
        """The process cannot go on (callable from any thread): wake the loop with FAILED."""
        self.received.append(FAILED)
        self._wake()

    def pop(self) -> int | None:
        """The next signal not yet returned, or None."""
        if self._next < len(self.received):
            self._next += 1
            return self.received[self._next - 1]
        return None

    def wait(self, timeout_s: float | None = None) -> int | None:
        """The next signal, waiting up to `timeout_s` (None: for ever); None on timeout."""
        got = self.pop()
        if got is not None:
            return got
        try:
            readable([self._read_fd], timeout_s)
        except InterruptedError:  # pragma: no cover - PEP 475 retries; kept for safety
            pass
        self.drain()
        return self.pop()

    def drain(self) -> None:
        """Empty the wake-up pipe (call after it was reported readable)."""
        try:
            while os.read(self._read_fd, 4096):
                pass
        except OSError:
            pass

    def restore(self) -> None:
        """Put the previous handlers back and close the pipe."""
        signal.set_wakeup_fd(self._previous_wakeup_fd)
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)
        self.close_fds()

    def close_fds(self) -> None:
        """Close the pipe only (a forked child installs its own queue right after)."""
        for fd in (self._read_fd, self._write_fd):
            try:
                os.close(fd)
            except OSError:
                pass
