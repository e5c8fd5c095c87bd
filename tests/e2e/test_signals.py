"""A stop signal is honoured whichever thread of the server the kernel delivers it to.

kill() sends a process-directed signal, which Linux may hand to any thread; CPython runs the
Python handler on the main thread only. Aiming SIGTERM at a worker thread with tgkill makes
that case certain instead of a rare race.
"""

from __future__ import annotations

import ctypes
import platform
import signal

import psutil
import pytest

SYS_TGKILL = {"x86_64": 234, "aarch64": 131}.get(platform.machine())


@pytest.mark.skipif(SYS_TGKILL is None,
                    reason=f"tgkill's syscall number is not known on {platform.machine()}")
def test_sigterm_delivered_to_a_worker_thread_still_stops_the_server(serve) -> None:
    server = serve("examples.hello:app", "--threads", "2")
    process = psutil.Process(server.process.pid)
    others = [t.id for t in process.threads() if t.id != process.pid]
    assert others, "the server has no threads besides the main one"
    libc = ctypes.CDLL(None, use_errno=True)
    assert libc.syscall(SYS_TGKILL, process.pid, others[-1], int(signal.SIGTERM)) == 0
    assert server.process.wait(timeout=10) == 0
    assert "Stopping gracefully" in server.log()
