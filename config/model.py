# The result of loading: a frozen, typed record with one attribute per setting of the schema
# (config/schema.py), plus where each value came from. The field list is spelled out so that
# mypy and readers see the types; tests/unit/config checks it matches the schema exactly.
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import Any

__all__ = ["Config"]


@dataclass(frozen=True)
class Config:
    """The effective settings. Build one with ``config.load``; never mutate it.

    Paths are absolute (relative ones were resolved against the directory treadle was started
    in). ``sources[name]`` says where each value came from: ``"default"``,
    ``"file treadle.toml"``, ``"env TREADLE_BIND"`` or ``"command line --bind"``.
    """

    config: str | None = None
    wsgi_app: str | None = None
    chdir: str | None = None
    raw_env: tuple[str, ...] = ()
    root_path: str = ""
    bind: tuple[str, ...] = ("127.0.0.1:8000",)
    backlog: int = 2048
    reuse_port: bool = False
    workers: int = 0
    threads: int = 8
    worker_connections: int = 1000
    max_requests: int = 0
    max_requests_jitter: int = 0
    max_worker_memory: int = 0
    preload_app: bool = False
    reload: bool = False
    reload_extra_files: tuple[str, ...] = ()
    keepalive: float = 5.0
    header_timeout: float = 10.0
    body_timeout: float = 30.0
    timeout: float = 30.0
    graceful_timeout: float = 30.0
    limit_request_line: int = 4094
    limit_request_fields: int = 100
    limit_request_field_size: int = 8190
    limit_request_head_size: int = 65536
    request_buffer_size: int = 1048576
    response_buffer_size: int = 1048576
    min_request_rate: int = 240
    min_response_rate: int = 240
    min_rate_grace: float = 5.0
    forwarded_allow_ips: tuple[str, ...] = ("127.0.0.1", "::1")
    server_header: bool = True
    certfile: str | None = None
    keyfile: str | None = None
    keyfile_password: str | None = None
    ca_certs: str | None = None
    cert_reqs: str = "none"
    ciphers: str | None = None
    ssl_min_version: str = "1.2"
    handshake_timeout: float = 10.0
    http_protocols: tuple[str, ...] = ("h2", "h1")
    http2_cleartext: str = "off"
    http2_max_concurrent_streams: int = 100
    http2_initial_window_size: int = 65535
    http2_max_frame_size: int = 16384
    http2_max_header_list_size: int = 65536
    http2_max_workers_per_connection: int = 0
    accesslog: str | None = None
    access_log_format: str = '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s"'
    errorlog: str = "-"
    loglevel: str = "info"
    log_format: str = "text"
    logconfig_dict: Mapping[str, Any] | None = None
    logconfig: str | None = None
    request_id_header: str | None = None
    metrics_bind: str | None = None
    statsd_host: str | None = None
    statsd_prefix: str = "treadle"
    dogstatsd_tags: str = ""
    pidfile: str | None = None
    user: str | None = None
    group: str | None = None
    umask: int | None = None
    check_config: bool = False
    print_config: bool = False
    proxy_protocol: str = "off"
    proxy_allow_ips: tuple[str, ...] = ("127.0.0.1", "::1")
    http2_cleartext_trusted_only: bool = True
    sources: Mapping[str, str] = field(
        default_factory=lambda: _all_default(), compare=False, hash=False, repr=False
    )


def _all_default() -> Mapping[str, str]:
    """Sources of a Config built directly (in tests): every value is the default."""
    names = [item.name for item in fields(Config) if item.name != "sources"]
    return MappingProxyType(dict.fromkeys(names, "default"))
