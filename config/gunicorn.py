# gunicorn's settings that treadle does not have, each with what to do instead: data, so that a
# gunicorn user typing `--workers 4`, `TREADLE_TIMEOUT=30` or `preload_app = true` is told what
# that means here (not handed a spelling guess like --worker-connections, which caps the
# server at 4 connections). Compared with gunicorn 27.0.1's KNOWN_SETTINGS; a unit test checks
# the list against the installed gunicorn. The schema always wins: an entry whose name or
# flag is (or becomes) a treadle setting is never consulted, and a unit test asks for it to be
# removed. docs/gunicorn.md's table of absent settings is generated from this one.
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from .schema import SETTINGS

__all__ = ["DOCS", "GUNICORN_ONLY", "GunicornOnly", "by_flag", "by_name", "explain",
           "flags_to_recognise"]

DOCS = "docs/gunicorn.md"


@dataclass(frozen=True)
class GunicornOnly:
    """A gunicorn setting treadle does not have: gunicorn's name and flags, how many values
    a flag takes (argparse's nargs: None one, 0 none, "?" optional), and the advice."""

    name: str
    advice: str
    flags: tuple[str, ...] = ()
    nargs: int | str | None = None


def _same(advice: str, *names: str) -> list[GunicornOnly]:
    """Settings without flags that share one piece of advice (hooks, file-only settings)."""
    return [GunicornOnly(name, advice) for name in names]


_NO_RELOAD = ("not needed: --reload always polls with the standard library (no inotify); "
              "drop it")
_HOOK = ("server hooks need a Python config file, which treadle does not read: wrap the "
         "application in WSGI middleware for per-request work, and do start-up work at "
         "import time or in an application factory")
_LOGGING = ("not supported: use logconfig_dict (or logconfig) for other handlers, or log "
            "to stdout/stderr and let journald or the container runtime collect and forward")
_SYSLOG = ("not supported: give logconfig_dict a logging.handlers.SysLogHandler, or log to "
           "stdout/stderr and let journald collect")
_BACKLOG = ("not needed: the accept queue is always reported, as treadle_listen_backlog on "
           "metrics_bind (docs/observability.md)")
_STRICT = ("treadle has one strict HTTP/1.1 parser with no relaxations (any token is a valid "
           "method); see docs/security.md")
_TLS_FIXED = "not needed: the TLS handshake always runs in a worker under handshake_timeout"
_ASGI = "treadle serves WSGI only"
_DIRTY = "dirty arbiters are not supported"
_CONTROL = "there is no control socket"
_PASTE = "not supported: load the Paste application in a small module and name that module"

GUNICORN_ONLY: tuple[GunicornOnly, ...] = (
    GunicornOnly("worker_class", "treadle has one worker type, threads (like gunicorn's "
                 "gthread): drop it and set --threads", ("-k", "--worker-class")),
    GunicornOnly("reload_engine", _NO_RELOAD, ("--reload-engine",)),
    GunicornOnly("spew", "not supported: use sys.settrace or a debugger in the application",
                 ("--spew",), 0),
    GunicornOnly("sendfile", "not needed: wsgi.file_wrapper always uses os.sendfile on "
                 "cleartext connections; drop it", ("--no-sendfile",), 0),
    GunicornOnly("daemon", "not supported: run treadle under systemd, a container runtime or "
                 "another supervisor", ("-D", "--daemon"), 0),
    GunicornOnly("worker_tmp_dir", "not needed: worker heartbeats go through a pipe, not a file",
                 ("--worker-tmp-dir",)),
    GunicornOnly("initgroups", "not needed: with --user, started as root, the user's "
                 "supplementary groups are always set", ("--initgroups",), 0),
    GunicornOnly("tmp_upload_dir", "not needed: request bodies are streamed to the "
                 "application, never spooled to files"),
    GunicornOnly("secure_scheme_headers", "fixed: X-Forwarded-Proto, then Forwarded proto=, "
                 "then X-Forwarded-Ssl: on, from peers in forwarded_allow_ips only"),
    GunicornOnly("disable_redirect_access_to_syslog", _LOGGING,
                 ("--disable-redirect-access-to-syslog",), 0),
    GunicornOnly("capture_output", "not needed: the application's stdout and stderr are the "
                 "process's", ("--capture-output",), 0),
    GunicornOnly("logger_class", "not supported (a Python class): logconfig_dict configures "
                 "the treadle.error and treadle.access loggers", ("--logger-class",)),
    GunicornOnly("logconfig_json", "not supported: give the same JSON as logconfig_dict (a "
                 "TOML table, or the JSON text in TREADLE_LOGCONFIG_DICT)",
                 ("--log-config-json",)),
    GunicornOnly("syslog_addr", _SYSLOG, ("--log-syslog-to",)),
    GunicornOnly("syslog", _SYSLOG, ("--log-syslog",), 0),
    GunicornOnly("syslog_prefix", _SYSLOG, ("--log-syslog-prefix",)),
    GunicornOnly("syslog_facility", _SYSLOG, ("--log-syslog-facility",)),
    GunicornOnly("enable_stdio_inheritance", "not needed: the application's stdout and "
                 "stderr are the process's", ("-R", "--enable-stdio-inheritance"), 0),
    GunicornOnly("enable_backlog_metric", _BACKLOG, ("--enable-backlog-metric",), 0),
    GunicornOnly("proc_name", "not supported: the process is named after the command that "
                 "starts it", ("-n", "--name")),
    GunicornOnly("default_proc_name", "not supported: the process is named after the command "
                 "that starts it"),
    GunicornOnly("pythonpath", "set PYTHONPATH in the environment, or use --chdir (which "
                 "puts the directory first on sys.path)", ("--pythonpath",)),
    GunicornOnly("paste", _PASTE, ("--paste", "--paster")),
    GunicornOnly("raw_paste_global_conf", _PASTE, ("--paste-global",)),
    *_same(_HOOK, "on_starting", "on_reload", "when_ready", "pre_fork", "post_fork",
           "post_worker_init", "worker_int", "worker_abort", "pre_exec", "pre_request",
           "post_request", "child_exit", "worker_exit", "nworkers_changed", "on_exit"),
    GunicornOnly("ssl_context", "not supported (it is a Python hook): certfile, keyfile, "
                 "keyfile_password, ca_certs, cert_reqs, ciphers and ssl_min_version build "
                 "the context"),
    GunicornOnly("protocol", "treadle speaks HTTP only (no uwsgi protocol)", ("--protocol",)),
    GunicornOnly("uwsgi_allow_ips", "treadle speaks HTTP only (no uwsgi protocol)",
                 ("--uwsgi-allow-from",)),
    GunicornOnly("ssl_version", "use ssl_min_version (--ssl-min-version 1.2 or 1.3)",
                 ("--ssl-version",)),
    GunicornOnly("suppress_ragged_eofs", _TLS_FIXED, ("--suppress-ragged-eofs",), 0),
    GunicornOnly("do_handshake_on_connect", _TLS_FIXED, ("--do-handshake-on-connect",), 0),
    GunicornOnly("permit_obsolete_folding", _STRICT, ("--permit-obsolete-folding",), 0),
    GunicornOnly("strip_header_spaces", _STRICT, ("--strip-header-spaces",), 0),
    GunicornOnly("permit_unconventional_http_method", _STRICT,
                 ("--permit-unconventional-http-method",), 0),
    GunicornOnly("permit_unconventional_http_version", _STRICT,
                 ("--permit-unconventional-http-version",), 0),
    GunicornOnly("casefold_http_method", _STRICT, ("--casefold-http-method",), 0),
    GunicornOnly("http_parser", _STRICT, ("--http-parser",)),
    GunicornOnly("forwarder_headers", "not supported: SCRIPT_NAME comes only from root_path, "
                 "never from a header", ("--forwarder-headers",)),
    GunicornOnly("header_map", "fixed to gunicorn's default, drop: header names with '_' "
                 "never reach the environ", ("--header-map",)),
    GunicornOnly("asgi_loop", _ASGI, ("--asgi-loop",)),
    GunicornOnly("asgi_lifespan", _ASGI, ("--asgi-lifespan",)),
    GunicornOnly("asgi_disconnect_grace_period", _ASGI, ("--asgi-disconnect-grace-period",)),
    GunicornOnly("websocket_max_message_size", _ASGI, ("--websocket-max-message-size",)),
    GunicornOnly("dirty_apps", _DIRTY, ("--dirty-app",)),
    GunicornOnly("dirty_workers", _DIRTY, ("--dirty-workers",)),
    GunicornOnly("dirty_timeout", _DIRTY, ("--dirty-timeout",)),
    GunicornOnly("dirty_threads", _DIRTY, ("--dirty-threads",)),
    GunicornOnly("dirty_graceful_timeout", _DIRTY, ("--dirty-graceful-timeout",)),
    *_same(_DIRTY, "on_dirty_starting", "dirty_post_fork", "dirty_worker_init",
           "dirty_worker_exit"),
    GunicornOnly("control_socket", _CONTROL, ("--control-socket",)),
    GunicornOnly("control_socket_mode", _CONTROL, ("--control-socket-mode",)),
    GunicornOnly("control_socket_disable", _CONTROL, ("--no-control-socket",), 0),
)

_SETTING_NAMES = frozenset(setting.name for setting in SETTINGS)
_SETTING_FLAGS = frozenset(flag for setting in SETTINGS
                           for flag in (*setting.flags, *setting.negative_flags))


def _live() -> Iterator[GunicornOnly]:
    """The entries the schema does not override."""
    return (entry for entry in GUNICORN_ONLY if entry.name not in _SETTING_NAMES)


_BY_NAME = {entry.name: entry for entry in _live()}
_BY_FLAG = {flag: entry for entry in _live() for flag in entry.flags if flag not in _SETTING_FLAGS}


def by_name(name: str) -> GunicornOnly | None:
    """The entry for gunicorn setting ``name`` (any case, '-' or '_'), unless treadle has it."""
    return _BY_NAME.get(name.lower().replace("-", "_"))


def by_flag(flag: str) -> GunicornOnly | None:
    """The entry for gunicorn's command-line ``flag``, unless it is a treadle flag."""
    return _BY_FLAG.get(flag)


def flags_to_recognise() -> list[tuple[tuple[str, ...], GunicornOnly]]:
    """(flags, entry) for every gunicorn flag the command line should recognise."""
    found = []
    for entry in _live():
        flags = tuple(flag for flag in entry.flags if flag not in _SETTING_FLAGS)
        if flags:
            found.append((flags, entry))
    return found


def explain(entry: GunicornOnly) -> str:
    """What the user reads after naming the source: the setting and what to do instead."""
    return f"gunicorn's {entry.name} setting, which treadle does not have: {entry.advice} " \
           f"(see {DOCS})"
