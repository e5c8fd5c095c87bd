# The Logging section of the schema (config/schema.py splices it in its place): the error and
# access logs, their format and configuration, request ids, metrics and statsd. Kept apart
# only for size; the rules of config/schema.py apply.
from __future__ import annotations

from . import validators as v
from .setting import Setting

__all__ = ["LOGGING"]

_LOG_FORMAT = '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s"'

LOGGING: tuple[Setting, ...] = (
    Setting(
        "accesslog", "Logging", v.optional(v.log_target("stdout")), None,
        "The access log: '-' for stdout, or a file path. Off when unset.",
        flags=("--access-logfile",), metavar="FILE",
    ),
    Setting(
        "access_log_format", "Logging", v.access_log_format(), _LOG_FORMAT,
        "The access log line format, with gunicorn's %(atom)s names.",
        flags=("--access-logformat",), metavar="FORMAT",
        details="The default names: h remote address, l '-', u user, t time, r request line, "
        "s status, b response length, f referer, a user agent.",
    ),
    Setting(
        "errorlog", "Logging", v.log_target("stderr"), "-",
        "The error log: '-' for stderr, or a file path.",
        flags=("--error-logfile", "--log-file"), metavar="FILE",
    ),
    Setting(
        "loglevel", "Logging", v.choice("debug", "info", "warning", "error", "critical"),
        "info",
        "The error log level: debug, info, warning, error or critical.",
        flags=("--log-level",), metavar="LEVEL",
    ),
    # -- structured logs, logging configuration and request ids (docs/logging.md) --
    Setting(
        "log_format", "Logging", v.choice("text", "json"), "text",
        "text or json: the format of both logs. json writes one JSON object per line.",
        flags=("--log-format",), metavar="FORMAT",
        details="With json the access log has one object per request with typed fields "
        "(time, remote_addr, method, path, query, protocol, status, response_bytes, "
        "duration_s, user_agent, referer, request_id, pid) and access_log_format is not "
        "used; the error log has time, level, logger, pid, message and exception. Whatever "
        "a client sends, each line is valid JSON. See docs/logging.md.",
        gunicorn="new: gunicorn users write JSON by hand in access_log_format, which a quote "
        "in a header breaks.",
    ),
    Setting(
        "logconfig_dict", "Logging", v.optional(v.log_config_dict()), None,
        "A logging configuration (logging.config.dictConfig's schema) applied after "
        "errorlog and accesslog: a TOML table, or JSON text in the environment and on the "
        "command line.",
        flags=("--log-config-dict",), metavar="JSON",
        details="treadle's loggers are treadle.error and treadle.access (a configuration "
        "naming gunicorn.error or gunicorn.access configures them); naming one replaces the "
        "handlers errorlog or accesslog gave it. The access log is written when accesslog "
        "is set or the configuration gives treadle.access a handler. disable_existing_loggers "
        "defaults to false. A configuration that logging rejects stops the start with exit "
        "status 2.",
        gunicorn="gunicorn merges the table over its own defaults, which send every logger to "
        "the console; treadle keeps errorlog and accesslog for the loggers the table leaves "
        "alone. gunicorn has no flag for it.",
    ),
    Setting(
        "logconfig", "Logging", v.optional(v.path()), None,
        "A logging configuration file (logging.config.fileConfig's ini format), applied "
        "after errorlog and accesslog.",
        flags=("--log-config",), metavar="FILE",
        details="The same loggers and rules as logconfig_dict, which wins when both are set. "
        "%(here)s in the file is its directory.",
    ),
    Setting(
        "request_id_header", "Logging", v.optional(v.request_id_header()), None,
        "Echo each request's id in this response header (e.g. X-Request-ID); off when unset.",
        flags=("--request-id-header",), metavar="NAME",
        details="A request's id is the value of this header (X-Request-ID when unset) from a "
        "peer in forwarded_allow_ips, when it is 1 to 200 visible ASCII characters; "
        "otherwise a new one (32 hex digits). The application finds it in "
        "environ['treadle.request_id']; the JSON access log has it as request_id, the text "
        "one as %({treadle.request_id}e)s. Ids are made only when something uses them "
        "(this setting, log_format = json or that atom). An id the application sets in "
        "the header itself is kept.",
        gunicorn="new.",
    ),
    Setting(
        "metrics_bind", "Logging", v.optional(v.tcp_address()), None,
        "Serve GET /metrics (Prometheus), /healthz and /readyz on this address, e.g. "
        "127.0.0.1:9100. Off when unset.",
        flags=("--metrics-bind",), metavar="ADDRESS",
        details="A listener of its own, served by the arbiter (or by the single process "
        "with workers = 0) on a small thread, never by the application's listeners; the "
        "metrics add up every worker's and survive worker restarts. docs/observability.md "
        "lists the metrics and the probes. Keep it off the internet: it answers anyone.",
        gunicorn="new: gunicorn has statsd only.",
    ),
    Setting(
        "statsd_host", "Logging", v.optional(v.statsd_address()), None,
        "Send statsd metrics to this address: HOST:PORT (8125 when left out) or "
        "unix://PATH. Off when unset.",
        flags=("--statsd-host",), metavar="STATSD_ADDR",
        details="UDP (or a Unix datagram socket), never waiting: a datagram the kernel "
        "cannot take at once is dropped. Names as gunicorn's, docs/observability.md lists "
        "them.",
    ),
    Setting(
        "statsd_prefix", "Logging", v.statsd_text("a statsd name prefix"), "treadle",
        "The prefix of statsd metric names (a trailing '.' is added when missing).",
        flags=("--statsd-prefix",), metavar="STATSD_PREFIX",
        gunicorn="gunicorn's names are <statsd_prefix>gunicorn.requests and so on; here the "
        "prefix replaces 'gunicorn.' (<statsd_prefix>requests), and the default is "
        "treadle, not empty. statsd_prefix = \"gunicorn\" gives gunicorn's default names.",
    ),
    Setting(
        "dogstatsd_tags", "Logging", v.statsd_text("dogstatsd tags"), "",
        "Datadog (dogstatsd) tags added to every statsd datagram: tag1:value1,tag2:value2.",
        flags=("--dogstatsd-tags",), metavar="DOGSTATSD_TAGS",
    ),
)
