"""systemd's readiness protocol: READY, RELOADING and STOPPING to $NOTIFY_SOCKET, if set.

Only the process systemd started (the single server or the arbiter) speaks; workers never do.
With `Type=notify` (or `notify-reload`) systemd then knows when treadle really serves.
"""

from __future__ import annotations

import os
import socket
import time


def sd_notify(state: str) -> None:
    """Send `state` (e.g. "READY=1"); a missing or broken socket is silently ignored."""
    path = os.environ.get("NOTIFY_SOCKET")
    if not path:
        return
    address = "\0" + path[1:] if path.startswith("@") else path  # abstract namespace
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.connect(address)
            sock.sendall(state.encode("utf-8"))
    except OSError:
        pass


def sd_reloading() -> None:
    """RELOADING=1 with the timestamp that Type=notify-reload requires."""
    usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    sd_notify(f"RELOADING=1\nMONOTONIC_USEC={usec}")
