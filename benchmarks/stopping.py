"""SIGTERM ends a benchmark as Ctrl-C does: by an exception, so that its `finally` blocks
stop every server and client it started (killed by the default action, a benchmark left its
servers running: an orphaned treadle on a test port, still holding the CPU)."""

from __future__ import annotations

import signal
from types import FrameType


def stop_on_sigterm() -> None:
    """From here on SIGTERM raises SystemExit(143) in the main thread."""
    def leave(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, leave)
