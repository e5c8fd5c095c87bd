"""Applications the container tests serve through the image's entry point."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from typing import Any


def slow(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """Answer after a pause, touching $SLOW_APP_MARKER first so a test knows it is in flight."""
    marker = os.environ.get("SLOW_APP_MARKER")
    if marker:
        with open(marker, "w") as f:
            f.write("started")
    time.sleep(1.5)
    body = b"slow done\n"
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
