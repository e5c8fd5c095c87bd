"""The runtime: what the configuration decides for every connection, built once and frozen.

Drivers (server/http1.py, server/http2.py), the preamble (server/negotiate.py) and the bridge
(server/exchange.py) read their limits, timeouts, TLS context, application, loggers, trusted
proxies, header flags and HTTP/2 settings from one Runtime instead of reaching into the
Server; what changes while serving (counts, the poller, the pool) stays on the Server, behind
the small `Host` interface below. A reload builds a new Runtime and swaps it as one value.
"""

from __future__ import annotations

import logging
import os
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import formatdate
from time import time as wall_clock_s
from typing import Any, Protocol

from ..protocol.http2 import H2Limits, RequestLimits
from .inflight import InFlight
from .logjson import access_json
from .logs import access_atoms, format_access, wsgi_errors
from .metrics import Metrics
from .parking import Parkable
from .rates import MinRate
from .requestid import RequestIds
from .statsd import StatsdClient
from .tls import build_context
from .wsgi import FileWrapper, TrustedProxies

SERVER_SOFTWARE = "treadle"


@dataclass(frozen=True)
class Limits:
    """What the engine may receive (constructor keywords of protocol.Connection)."""

    head_size: int
    request_line: int
    field_count: int
    field_size: int


class DateCache:
    """The Date header value, formatted at most once a second (any thread: the cached pair
    is replaced whole, never changed)."""

    __slots__ = ("_cached",)

    def __init__(self) -> None:
        self._cached: tuple[int, bytes] = (0, b"")

    def http_date(self) -> bytes:
        now = int(wall_clock_s())
        cached = self._cached
        if cached[0] != now:
            cached = (now, formatdate(now, usegmt=True).encode("ascii"))
            self._cached = cached
        return cached[1]


@dataclass(frozen=True)
class Runtime:
    """Everything fixed while a generation of the configuration serves."""

    app: Callable[..., Any]
    error_log: logging.Logger
    access_log: logging.Logger | None
    access_log_format: str
    access_json: bool  # log_format = json: the access line is a JSON object
    request_ids: RequestIds | None  # None: nothing uses request ids (none are made)
    limits: Limits
    h2_request_limits: RequestLimits  # the same limits, as the HTTP/2 request policy takes them
    tls_context: ssl.SSLContext | None
    handshake_timeout_s: float
    header_timeout_s: float
    body_timeout_s: float
    keepalive_s: float
    root_path: str
    server_header: bool
    trusted_proxies: TrustedProxies
    h2_enabled: bool
    h2c_prior: bool
    h2c_upgrade: bool
    h2_limits: H2Limits
    sendfile_ok: bool
    thread_count: int
    h2_workers_per_connection: int  # http2_max_workers_per_connection, 0 (auto) resolved
    max_connections: int
    # The request each pool thread runs (a mutable registry whose reference is fixed; each
    # thread writes only its own slot): the bridge marks where a request begins.
    inflight: InFlight
    timeout_s: float  # a request running longer is logged as stuck (0: never)
    environ_common: dict[str, Any]  # read-only: copied for each connection
    # The Date header value, formatted at most once a second: DateCache.http_date, bound
    # (one call on the hot path, not two).
    http_date: Callable[[], bytes]
    # The edge (server/proxyheader.py, h2c for trusted peers only)
    proxy_protocol: str  # off, v1, v2 or auto
    proxy_allowed: TrustedProxies  # proxy_allow_ips: who may send a PROXY header
    h2c_trusted_only: bool  # h2c only for peers in forwarded_allow_ips
    # Slow clients (server/rates.py, server/outbuf.py): bodies up to request_buffer_bytes
    # are received before dispatch; a response's unsent bytes stay in memory up to
    # response_buffer_bytes, then in a temporary file; the minimum rates.
    request_buffer_bytes: int
    response_buffer_bytes: int
    min_request_rate: MinRate
    min_response_rate: MinRate
    # Request, connection and rejection counts (server/metrics.py); None when neither
    # metrics_bind nor statsd_host asks for them, so the request path skips them.
    metrics: Metrics | None

    def count_rejected(self, reason: str) -> None:
        """A connection or request refused by the server itself (treadle_rejected_total)."""
        if self.metrics is not None:
            self.metrics.rejected(reason)

    def environ_base(self, peer_host: str | None, peer_port: str, listener_name: str,
                     listener_port: int, tls_environ: dict[str, Any] | None) -> dict[str, Any]:
        """The environ entries that stay the same for every request on one connection."""
        base = self.environ_common.copy()
        base["REMOTE_ADDR"] = peer_host or ""
        base["REMOTE_PORT"] = peer_port
        base["SERVER_NAME"] = listener_name
        base["SERVER_PORT"] = str(listener_port)
        if tls_environ:
            base.update(tls_environ)
        return base

    def log_access(self, environ: dict[str, Any], status: str,
                   headers: list[tuple[bytes, bytes]], sent: int, duration_s: float) -> None:
        if self.access_log is None:
            return
        try:
            if self.access_json:
                line = access_json(environ, status, sent, duration_s)
            else:
                line = format_access(self.access_log_format,
                                     access_atoms(environ, status, headers, sent, duration_s))
            self.access_log.info(line)
        except Exception:
            self.error_log.exception("writing the access log failed")


def build_runtime(app: Callable[..., Any], cfg: Any, error_log: logging.Logger,
                  access_log: logging.Logger | None, multiprocess: bool) -> Runtime:
    """The Runtime of a configuration; TLSConfigError when its TLS files are unusable."""
    head = cfg.limit_request_head_size
    limits = Limits(
        head_size=head,
        request_line=cfg.limit_request_line or head,
        field_count=cfg.limit_request_fields,
        field_size=cfg.limit_request_field_size or head,
    )
    tls_context = build_context(cfg)
    h2_enabled = "h2" in cfg.http_protocols
    cleartext = cfg.http2_cleartext if h2_enabled and tls_context is None else "off"
    trusted_proxies = TrustedProxies(cfg.forwarded_allow_ips)
    ids_wanted = RequestIds.wanted(cfg.request_id_header, access_log is not None,
                                   cfg.log_format, cfg.access_log_format)
    return Runtime(
        app=app,
        error_log=error_log,
        access_log=access_log,
        access_log_format=cfg.access_log_format,
        access_json=cfg.log_format == "json",
        request_ids=RequestIds(cfg.request_id_header, trusted_proxies) if ids_wanted else None,
        limits=limits,
        h2_request_limits=RequestLimits(limits.field_count, limits.field_size,
                                        limits.request_line),
        tls_context=tls_context,
        handshake_timeout_s=cfg.handshake_timeout,
        header_timeout_s=cfg.header_timeout,
        body_timeout_s=cfg.body_timeout,
        keepalive_s=cfg.keepalive,
        root_path=cfg.root_path,
        server_header=cfg.server_header,
        trusted_proxies=trusted_proxies,
        h2_enabled=h2_enabled,
        h2c_prior=cleartext in ("prior-knowledge", "both"),
        h2c_upgrade=cleartext in ("upgrade", "both"),
        h2_limits=h2_limits_from(cfg),
        sendfile_ok=hasattr(os, "sendfile") and tls_context is None,
        thread_count=cfg.threads,
        h2_workers_per_connection=h2_worker_share(cfg),
        max_connections=cfg.worker_connections,
        inflight=InFlight(cfg.threads),
        timeout_s=cfg.timeout,
        environ_common=_environ_common(cfg, error_log, multiprocess),
        http_date=DateCache().http_date,
        proxy_protocol=cfg.proxy_protocol,
        proxy_allowed=TrustedProxies(cfg.proxy_allow_ips),
        h2c_trusted_only=cfg.http2_cleartext_trusted_only,
        metrics=_metrics_from(cfg),
        request_buffer_bytes=cfg.request_buffer_size,
        response_buffer_bytes=cfg.response_buffer_size,
        min_request_rate=MinRate(float(cfg.min_request_rate), cfg.min_rate_grace),
        min_response_rate=MinRate(float(cfg.min_response_rate), cfg.min_rate_grace),
    )


def _metrics_from(cfg: Any) -> Metrics | None:
    if not cfg.metrics_bind and not cfg.statsd_host:
        return None
    metrics = Metrics()
    if cfg.statsd_host:
        metrics.on_request = StatsdClient(cfg.statsd_host, cfg.statsd_prefix,
                                          cfg.dogstatsd_tags).request
    return metrics


def h2_worker_share(cfg: Any) -> int:
    """The workers one HTTP/2 connection's streams may hold at once: the setting, or a
    quarter of the pool (at least 1) when it is 0; never more than the pool."""
    share = cfg.http2_max_workers_per_connection or max(1, cfg.threads // 4)
    return int(min(share, cfg.threads))


def h2_limits_from(cfg: Any) -> H2Limits:
    """The HTTP/2 settings we announce, from the configuration."""
    return H2Limits(
        max_concurrent_streams=cfg.http2_max_concurrent_streams,
        initial_window_size=cfg.http2_initial_window_size,
        max_frame_size=cfg.http2_max_frame_size,
        max_header_list_size=cfg.http2_max_header_list_size,
    )


def _environ_common(cfg: Any, error_log: logging.Logger, multiprocess: bool) -> dict[str, Any]:
    """The environ entries every request of this server shares."""
    return {
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.errors": wsgi_errors(error_log),
        "wsgi.multithread": True,
        "wsgi.multiprocess": multiprocess,
        "wsgi.run_once": False,
        "wsgi.input_terminated": True,
        "wsgi.file_wrapper": FileWrapper,
        "SERVER_SOFTWARE": SERVER_SOFTWARE,
        "SCRIPT_NAME": cfg.root_path,
    }


class Job(Protocol):
    """Work for the pool: a dispatched connection, or an HTTP/2 connection's StreamRunner."""

    def serve(self) -> None: ...


class Wakeable(Protocol):
    """An HTTP/2 connection, as a graceful stop sees it."""

    def wake(self) -> None: ...


class Host(Protocol):
    """What a connection may ask of the Server that holds it (the mutable side: counts, the
    poller, the pool). The Server implements it; drivers never see more of it."""

    @property
    def stopping(self) -> bool: ...
    @property
    def exiting(self) -> bool:
        """Stopping at once: connections still served close now."""

    def park(self, conn: Parkable) -> None:
        """Give a connection back to the poller (from a worker)."""
    def dispatch(self, job: Job) -> None: ...
    def idle_workers_likely(self) -> bool: ...
    def connection_closed(self, conn: object) -> None: ...
    def out_of_resources(self, why: str) -> None: ...
    def h2_opened(self, conn: Wakeable) -> None: ...
    def h2_closed(self, conn: Wakeable) -> None: ...
    def h2_serve(self, turn: Callable[[], None]) -> None:
        """Run an HTTP/2 connection's turn on a driver thread (RuntimeError: no thread)."""
