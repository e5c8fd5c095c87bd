"""Joining threads completely, so that none is still ending when the process exits.

`Thread.join` returns when the thread's Python part is done (CPython before 3.13 does not
wait for the system thread). The system thread then runs its thread-local destructors, and
OpenSSL's is one of them for every thread that used TLS. If the main thread meanwhile
reaches exit(), OpenSSL's exit handler frees what that destructor is still using, and the
process dies of SIGSEGV after "Stopped" (seen in CI). So after the join we wait, on Linux,
until the system thread is gone from /proc/self/task.
"""

from __future__ import annotations

import os
import threading
import time

_TASKS = "/proc/self/task"
_POLL_S = 0.001


def join_threads(threads: list[threading.Thread], deadline: float) -> bool:
    """Join each thread until `deadline` (monotonic), then wait for the system thread of
    each that ended to be gone; True when every one has ended. A thread still running
    (stuck in an application) is left behind as it was."""
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    ended = [thread for thread in threads if not thread.is_alive()]
    if os.path.isdir(_TASKS):  # else (not Linux) the join is all we can know
        for thread in ended:
            task = f"{_TASKS}/{thread.native_id}"
            while os.path.exists(task) and time.monotonic() < deadline:
                time.sleep(_POLL_S)
    return len(ended) == len(threads)
