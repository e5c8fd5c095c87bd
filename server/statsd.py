"""statsd, as gunicorn sends it: the same settings (statsd_host, statsd_prefix,
dogstatsd_tags) and metric names, with the prefix in place of gunicorn's `gunicorn.`:
`<prefix>requests` and `<prefix>request.status.<code>` (counters), `<prefix>request.duration`
(a timer, milliseconds) after each request; `<prefix>workers` (a gauge) from the arbiter;
`<prefix>log.<level>` for each warning, error, exception and critical log record.

Datagrams go through a non-blocking socket: a request never waits for statsd, and a datagram
the kernel cannot take at once (EAGAIN) or nobody receives (ECONNREFUSED) is dropped.
"""

from __future__ import annotations

import logging
import socket
from typing import Any

DEFAULT_PORT = 8125


def normalise_prefix(prefix: str) -> str:
    """gunicorn's rule: a trailing dot is added when missing (none for an empty prefix)."""
    prefix = prefix.rstrip(".")
    return prefix + "." if prefix else ""


def statsd_address(value: str) -> tuple[int, Any]:
    """(address family, address) of `HOST:PORT`, `[V6]:PORT` or `unix://PATH`."""
    if value.startswith("unix://"):
        return socket.AF_UNIX, value[len("unix://"):]
    host, _, port = value.rpartition(":")
    if host.startswith("["):
        return socket.AF_INET6, (host[1:-1], int(port))
    return socket.AF_INET, (host, int(port))


class StatsdClient:
    """Sends statsd datagrams; never raises, never blocks."""

    def __init__(self, host: str, prefix: str, tags: str) -> None:
        self.prefix = normalise_prefix(prefix).encode("ascii", "replace")
        self.suffix = b"|#" + tags.encode("ascii", "replace") if tags else b""
        family, address = statsd_address(host)
        self.sock: socket.socket | None = socket.socket(family, socket.SOCK_DGRAM)
        try:
            self.sock.setblocking(False)
            self.sock.connect(address)  # resolved once; a UDP connect sends nothing
        except OSError:
            self.sock.close()
            self.sock = None  # unreachable at start (as gunicorn): statsd stays silent

    def send(self, name: str, value: float | int, kind: str) -> None:
        if self.sock is None:
            return
        line = b"%s%s:%s|%s%s" % (self.prefix, name.encode("ascii", "replace"),
                                  _number(value), kind.encode("ascii"), self.suffix)
        try:
            self.sock.send(line)
        except OSError:
            pass  # EAGAIN (the buffer is full), ECONNREFUSED (nobody listens): dropped

    def request(self, method: str, code: int, duration_s: float) -> None:
        """After each request (Metrics.on_request), gunicorn's three datagrams."""
        self.send("request.duration", duration_s * 1000.0, "ms")
        self.send("requests", 1, "c|@1.0")
        self.send(f"request.status.{code}", 1, "c|@1.0")

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()


def _number(value: float | int) -> bytes:
    if isinstance(value, int) or value == int(value):
        return b"%d" % int(value)
    return b"%.3f" % value


class StatsdLogHandler(logging.Handler):
    """Counts warning-or-worse log records as gunicorn does: log.warning, log.error,
    log.exception (an error with a traceback) and log.critical."""

    def __init__(self, client: StatsdClient) -> None:
        super().__init__(logging.WARNING)
        self.client = client

    def emit(self, record: logging.LogRecord) -> None:
        level = record.levelname.lower()
        if record.levelno == logging.ERROR and record.exc_info:
            level = "exception"
        self.client.send(f"log.{level}", 1, "c|@1.0")


def count_log_records(cfg: Any, error_log: logging.Logger) -> None:
    """With statsd_host: count the error log's warnings and worse (the whole process tree:
    workers inherit the handler and its socket)."""
    if cfg.statsd_host:
        error_log.addHandler(StatsdLogHandler(
            StatsdClient(cfg.statsd_host, cfg.statsd_prefix, cfg.dogstatsd_tags)))
