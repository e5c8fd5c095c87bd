"""The requests in flight, one slot per pool thread, and the watch for stuck ones.

A pool thread writes its own slot only: (start time, environ) when it hands a request to the
application (`begin`, one call from each protocol's bridge), None when its job ends (`end`,
from Server._work) or the next request begins. A slot write is one list store, so the hot
path takes no lock; the watcher (`stuck`, called about once a second by the serving loop)
only reads. A request running longer than `timeout` is reported once, with the stack of the
thread running it (sys._current_frames); when every thread runs such a request the server is
stuck as a whole: a worker process then asks its arbiter for a replacement (server/worker.py),
the single process can only log it.

Requests are also counted here, when they end: a worker recycles itself after max_requests,
HTTP/1.1 requests and HTTP/2 streams alike.
"""

from __future__ import annotations

import sys
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

Slot = tuple[float, dict[str, Any]]  # monotonic start, the request's environ


class InFlight:
    """Per pool thread: the request it runs. Each thread writes only its own slot."""

    def __init__(self, thread_count: int) -> None:
        self.slots: list[Slot | None] = [None] * thread_count
        self._reported: list[Slot | None] = [None] * thread_count  # the slot logged as stuck
        self._idents = [0] * thread_count
        self._slot_of: dict[int, int] = {}  # thread ident -> slot number
        self.on_request: Callable[[], None] | None = None  # after each request (max_requests)

    def bind(self, number: int) -> None:
        """Called by pool thread `number` before its first job."""
        ident = threading.get_ident()
        self._idents[number] = ident
        self._slot_of[ident] = number

    def begin(self, environ: dict[str, Any]) -> None:
        """The calling pool thread hands a request to the application now."""
        number = self._slot_of.get(threading.get_ident())
        if number is None:
            return  # not a pool thread
        if self.slots[number] is not None:
            self.end(number)  # the job's previous request (pipelined, or the next stream)
        self.slots[number] = (time.monotonic(), environ)

    def end(self, number: int) -> None:
        """Pool thread `number` is done with its request (if it ran one)."""
        if self.slots[number] is None:
            return
        self.slots[number] = None
        if self.on_request is not None:
            self.on_request()

    def stuck(self, timeout_s: float, report: Callable[[str], None]) -> bool:
        """Report each request running longer than `timeout_s` once; True when every thread
        runs such a request (the server cannot answer anyone any more)."""
        if timeout_s <= 0:
            return False
        now = time.monotonic()
        count = 0
        frames: dict[int, Any] | None = None
        for number, slot in enumerate(self.slots):
            if slot is None or now - slot[0] <= timeout_s:
                continue
            count += 1
            if self._reported[number] is slot:
                continue
            self._reported[number] = slot
            if frames is None:
                frames = sys._current_frames()
            report(describe(slot, now, frames.get(self._idents[number]), timeout_s))
        return count == len(self.slots)

    def running(self) -> list[str]:
        """One line per request in flight (what a stop that gives up leaves unfinished)."""
        now = time.monotonic()
        return [f"{slot[1].get('REQUEST_METHOD', '?')} {_path(slot[1])} "
                f"(running {now - slot[0]:.1f}s)" for slot in self.slots if slot is not None]


def describe(slot: Slot, now: float, frame: Any, timeout_s: float) -> str:
    started_s, environ = slot
    stack = "".join(traceback.format_stack(frame)) if frame is not None else "  (no frame)\n"
    return (f"request running longer than timeout ({timeout_s:g}s): "
            f"{environ.get('REQUEST_METHOD', '?')} {_path(environ)} has run "
            f"{now - started_s:.1f}s; its thread's stack (most recent call last):\n"
            f"{stack.rstrip()}")


def _path(environ: dict[str, Any]) -> str:
    path = str(environ.get("SCRIPT_NAME", "")) + str(environ.get("PATH_INFO", ""))
    query = environ.get("QUERY_STRING")
    text = f"{path}?{query}" if query else path
    # decoded from the request target: a %0A must not start a forged log line
    return text if text.isprintable() else text.encode("unicode_escape").decode("ascii")
