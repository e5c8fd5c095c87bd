"""The metrics listener (`metrics_bind`): GET /metrics, /healthz and /readyz on a port of
its own, served by one small thread of the arbiter (or of the single process).

It never shares anything with the application's listeners: its own socket (closed in every
worker after fork), its own thread, one connection at a time with a short deadline for the
whole exchange (a silent client holds it at most IO_TIMEOUT_S; this port is for scrapers and
probes, not the internet). Requests are parsed by our own HTTP/1.1 engine; each answer
closes the connection. It reads what it reports from a MetricsSource: the Server of this
process (server/core.py) or the arbiter's MetricsHub (server/metricshub.py), never blocking
the loop that owns them beyond a short lock.

/healthz is 200 while this process runs. /readyz is 200 when the source is ready (listeners
open, a worker serving, not stopping), else 503.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from typing import Any, Protocol

from .. import protocol
from .listeners import BindError, parse_host_port
from .metrics import Snapshot
from .metricstext import OPENMETRICS_TYPE, PROMETHEUS_TYPE, render, wants_openmetrics

IO_TIMEOUT_S = 5.0  # for one whole exchange
ACCEPT_TICK_S = 0.5  # how often the thread looks whether it should end
HEAD_MAX_BYTES = 8192


class MetricsSource(Protocol):
    def snapshot(self) -> Snapshot: ...
    def ready(self) -> bool: ...


def open_metrics_socket(bind: str) -> socket.socket:
    """The listening socket of `metrics_bind` (OSError when it cannot be bound).

    SO_REUSEPORT where there is one: during a USR2 re-execution the new arbiter binds the
    same port while the old one still serves it."""
    host, port = parse_host_port(bind)
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, socket.AF_UNSPEC, socket.SOCK_STREAM, 0, socket.AI_PASSIVE)[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if hasattr(socket, "SO_REUSEPORT"):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
        sock.listen(16)
    except BaseException:
        sock.close()
        raise
    return sock


def open_metrics(cfg: Any, error_log: logging.Logger) -> MetricsServer | None:
    """The metrics listener of `metrics_bind` (None when unset); BindError as for `bind`."""
    if not cfg.metrics_bind:
        return None
    try:
        sock = open_metrics_socket(cfg.metrics_bind)
    except (OSError, BindError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise BindError(f"cannot listen on {cfg.metrics_bind} (metrics_bind): {reason}") \
            from None
    return MetricsServer(sock, error_log)


class MetricsServer:
    """The thread serving the metrics listener; start() once, close() at the end."""

    def __init__(self, sock: socket.socket, error_log: logging.Logger) -> None:
        self.sock = sock
        self.error_log = error_log
        self.source: MetricsSource | None = None
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None

    def address(self) -> str:
        host, port = self.sock.getsockname()[:2]
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    def start(self, source: MetricsSource) -> None:
        self.source = source
        self._thread = threading.Thread(target=self._run, name="treadle-metrics", daemon=True)
        self._thread.start()
        self.error_log.info("Metrics at: %s/metrics", self.address())

    def close(self) -> None:
        self._stopped.set()
        if self._thread is not None:
            self._thread.join(IO_TIMEOUT_S + ACCEPT_TICK_S)
        self.sock.close()

    def _run(self) -> None:
        self.sock.settimeout(ACCEPT_TICK_S)  # accept() wakes up to look at _stopped
        while not self._stopped.is_set():
            try:
                conn, _peer = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                if self._stopped.is_set():
                    return
                time.sleep(ACCEPT_TICK_S)  # out of descriptors: try again later
                continue
            try:
                self._serve(conn)
            except Exception as exc:  # a scrape must never end the thread
                self.error_log.debug("metrics: %s", exc)
            finally:
                conn.close()

    def _serve(self, conn: socket.socket) -> None:
        deadline = time.monotonic() + IO_TIMEOUT_S
        request = _read_request(conn, deadline)
        if request is None:
            return
        path = request.target.split(b"?", 1)[0]
        if request.method not in (b"GET", b"HEAD"):
            status, kind, body = 405, "text/plain; charset=utf-8", b"method not allowed\n"
        else:
            status, kind, body = self._answer(path, _header(request, b"accept"))
        head = _head(status, kind, len(body))
        conn.settimeout(max(0.1, deadline - time.monotonic()))
        conn.sendall(head if request.method == b"HEAD" else head + body)

    def _answer(self, path: bytes, accept: str) -> tuple[int, str, bytes]:
        source = self.source
        assert source is not None
        if path == b"/metrics":
            openmetrics = wants_openmetrics(accept)
            return (200, OPENMETRICS_TYPE if openmetrics else PROMETHEUS_TYPE,
                    render(source.snapshot(), openmetrics))
        if path == b"/healthz":
            return 200, "text/plain; charset=utf-8", b"ok\n"
        if path == b"/readyz":
            if source.ready():
                return 200, "text/plain; charset=utf-8", b"ready\n"
            return 503, "text/plain; charset=utf-8", b"not ready\n"
        return 404, "text/plain; charset=utf-8", b"not found: /metrics, /healthz, /readyz\n"


def _read_request(conn: socket.socket, deadline: float) -> protocol.Request | None:
    """The request head, through our engine; None when the client sent none (or garbage:
    this port answers scrapers and probes only, so a bad request is simply closed)."""
    engine = protocol.Connection(protocol.SERVER, max_incomplete_event_size=HEAD_MAX_BYTES)
    while True:
        try:
            event = engine.next_event()
        except protocol.RemoteProtocolError:
            return None
        if type(event) is protocol.Request:
            return event
        if event is not protocol.NEED_DATA:
            return None
        remaining_s = deadline - time.monotonic()
        if remaining_s <= 0:
            return None
        conn.settimeout(remaining_s)
        data = conn.recv(HEAD_MAX_BYTES)
        engine.receive_data(data)


def _header(request: protocol.Request, name: bytes) -> str:
    for key, value in request.headers:
        if key == name:
            return value.decode("latin-1")
    return ""


def _head(status: int, content_type: str, length: int) -> bytes:
    reasons = {200: "OK", 404: "Not Found", 405: "Method Not Allowed",
               503: "Service Unavailable"}
    return (f"HTTP/1.1 {status} {reasons[status]}\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {length}\r\nCache-Control: no-store\r\n"
            "Connection: close\r\n\r\n").encode("ascii")
