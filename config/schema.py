# The one declarative schema: a frozen record per setting. Everything else is generated from
# it: the command line (config/cli.py), environment and TOML parsing (config/sources.py),
# --print-config (config/render.py) and docs/settings.md (config/docs.py). gunicorn's registry
# idea kept as data: names, units, flags and defaults follow gunicorn unless noted.
from __future__ import annotations

from . import validators as v
from .schema_logging import LOGGING
from .setting import (
    ENV_PREFIX,
    INTERNAL_VARIABLES,
    SECTIONS,
    Setting,
    default_display,
)

__all__ = ["ENV_PREFIX", "INTERNAL_VARIABLES", "SECTIONS", "SETTINGS", "Setting", "by_name",
           "default_display"]

SETTINGS: tuple[Setting, ...] = (
    Setting(
        "config", "Config file", v.optional(v.path()), None,
        "TOML settings file.",
        flags=("-c", "--config"), metavar="PATH", in_file=False,
        default_text="treadle.toml in the working directory if present, "
        "else the [tool.treadle] table of pyproject.toml if present",
        details="Settings go at the top level of the file, named as in this reference. "
        "A file named pyproject.toml is read from its [tool.treadle] table. "
        "An empty value turns the search for a default file off.",
        gunicorn="gunicorn reads a Python file (gunicorn.conf.py); treadle reads TOML, "
        "so a settings file never runs code.",
    ),
    Setting(
        "wsgi_app", "Application", v.optional(v.wsgi_app()), None,
        "The WSGI application: module:attr, module:factory() or module (attr 'application').",
        positional="APP", metavar="APP",
        details="`module:factory()` calls `factory` and serves what it returns; literal "
        "arguments are allowed (`module:create_app(\"prod\", debug=False)`), as in "
        "gunicorn. Required to serve; optional with --check-config and --print-config.",
    ),
    Setting(
        "chdir", "Application", v.optional(v.path()), None,
        "Change to this directory (and put it first on sys.path) before loading the app.",
        flags=("--chdir",), metavar="DIR",
        gunicorn="gunicorn's default is the current directory, which has the same effect.",
    ),
    Setting(
        "raw_env", "Application", v.string_list(v.raw_env_item(), "KEY=VALUE items"), (),
        "Set an environment variable before loading the app (repeat the flag for more).",
        flags=("-e", "--env"), metavar="KEY=VALUE", repeat=True,
        details="In TOML: `raw_env = [\"FOO=1\", \"BAR=2\"]`. In the environment the items "
        "are comma-separated, so a value that holds a comma needs the file or the flag.",
    ),
    Setting(
        "root_path", "Application", v.root_path(), "",
        "The URL path the app is mounted at, given to it as SCRIPT_NAME.",
        flags=("--root-path",), metavar="PATH",
        details="Empty, or a path that starts with '/' and does not end with '/' "
        "(for example /api).",
        gunicorn="gunicorn has it for ASGI only (the ASGI root_path); here it is SCRIPT_NAME.",
    ),
    Setting(
        "bind", "Server socket", v.string_list(v.bind_address(), "addresses", at_least_one=True),
        ("127.0.0.1:8000",),
        "A socket to listen on (repeat the flag for more).",
        flags=("-b", "--bind"), metavar="ADDRESS", repeat=True,
        details="`HOST:PORT`, `[::1]:PORT` (IPv6), `:PORT` (every interface), "
        "`unix:/path` (a Unix socket) or `fd://N` (an inherited listening socket). "
        "A bare `HOST` means port 8000, as in gunicorn. Port 0 picks a free port; the "
        "server logs the real address.",
        gunicorn="gunicorn's default becomes 0.0.0.0:$PORT when PORT is set; treadle "
        "does not read PORT (use TREADLE_BIND).",
    ),
    Setting(
        "backlog", "Server socket", v.integer(1, 65535), 2048,
        "The maximum number of pending connections (the listen() backlog).",
        flags=("--backlog",), metavar="INT",
    ),
    Setting(
        "reuse_port", "Server socket", v.boolean(), False,
        "Set SO_REUSEPORT on the listening sockets.",
        flags=("--reuse-port",), switch=True, negative_flags=("--no-reuse-port",),
        details="With workers, each worker accepts on a TCP socket of its own, all bound "
        "to the same address, and the kernel spreads new connections over them; without "
        "it they share one socket. Unix sockets and fd:// sockets are always shared.",
        gunicorn="gunicorn sets the flag on the arbiter's sockets, which its workers share "
        "(so the kernel has nothing to balance); treadle gives each worker its own socket.",
    ),
    Setting(
        "workers", "Workers", v.integer(0, 1024), 0,
        "Worker processes started and supervised by a master process (the arbiter); 0 "
        "serves from this one process, with no master.",
        flags=("-w", "--workers"), metavar="INT",
        details="With 1 or more, the arbiter binds the listeners, forks that many workers "
        "(each a threaded server on the arbiter's sockets; see reuse_port), replaces any "
        "that exits or stops heartbeating (timeout), recycles them (max_requests) and answers "
        "gunicorn's signals: HUP starts a new generation, TTIN/TTOU add or remove one. "
        "0 keeps PID 1 the server itself, as containers often want; max_requests and "
        "preload_app then have no effect, and timeout only logs stuck requests. "
        "See docs/deployment.md.",
        gunicorn="gunicorn's default is 1, always with a master; treadle's default 0 runs "
        "without one, and `-w 1` means one supervised worker, as in gunicorn.",
    ),
    Setting(
        "threads", "Workers", v.integer(1), 8,
        "The number of worker threads that run the application.",
        flags=("--threads",), metavar="INT",
        details="Each thread runs one request at a time. Idle keep-alive connections are "
        "held by the poller, not by a thread, so threads only bound concurrent requests.",
        gunicorn="gunicorn's default is 1 because its default worker is sync and processes "
        "give it parallelism; treadle is one threaded process, and 8 threads keep a "
        "blocking request from stalling everyone else out of the box.",
    ),
    Setting(
        "worker_connections", "Workers", v.integer(1), 1000,
        "The maximum number of open client connections. At the cap, a new connection "
        "closes one waiting for a request to take its place: the one whose head has been "
        "arriving longest (a silent client), else the longest idle keep-alive one; when every "
        "connection is busy, the server stops accepting until one closes.",
        flags=("--worker-connections",), metavar="INT",
    ),
    Setting(
        "max_requests", "Workers", v.integer(0), 0,
        "Recycle a worker process after it has served this many requests; 0 never.",
        flags=("--max-requests",), metavar="INT",
        details="The worker stops accepting, finishes its requests in flight and exits; "
        "the arbiter starts its replacement at once. Needs workers >= 1.",
    ),
    Setting(
        "max_requests_jitter", "Workers", v.integer(0), 0,
        "Add a random 0..N to each worker's max_requests, so workers do not all recycle "
        "at once.",
        flags=("--max-requests-jitter",), metavar="INT",
    ),
    Setting(
        "max_worker_memory", "Workers", v.integer(0), 0,
        "Recycle a worker process whose resident memory (RSS) exceeds this many MiB; 0 "
        "never.",
        flags=("--max-worker-memory",), metavar="MIB",
        details="Each worker reads its RSS from /proc/self/statm about once a second (Linux; "
        "elsewhere the setting is ignored, with one warning). Over the ceiling it recycles "
        "as with max_requests: it stops accepting and finishes its requests in flight while "
        "the arbiter's replacement already serves. Needs workers >= 1.",
        gunicorn="new: gunicorn has no memory ceiling (granian's --workers-max-rss, also "
        "in MiB).",
    ),
    Setting(
        "preload_app", "Workers", v.boolean(), False,
        "Import the application in the arbiter before forking the workers.",
        flags=("--preload",), switch=True, negative_flags=("--no-preload",),
        details="Workers then share the imported code's memory pages, and an import error "
        "stops the start at once (exit 3). A reload (HUP) then cannot re-import the "
        "application: new workers get the code loaded at start; restart to change it. "
        "Needs workers >= 1.",
    ),
    Setting(
        "reload", "Workers", v.boolean(), False,
        "Development: restart the workers when the application's source files change.",
        flags=("--reload",), switch=True, negative_flags=("--no-reload",),
        details="Each worker polls, about once a second, the files of the modules it "
        "imported from the working directory or the application's package (not the "
        "standard library or site-packages), plus reload_extra_files; on a change the "
        "arbiter starts a new generation of workers, as on SIGHUP, so an edit that fails "
        "to import leaves the old workers serving and logs why. With workers = 0 it runs "
        "an arbiter with one worker. It turns preload_app off. Not for production.",
        gunicorn="Same name; treadle polls with the standard library only (no "
        "reload_engine) and restarts the workers new generation first.",
    ),
    Setting(
        "reload_extra_files", "Workers", v.string_list(v.path(), "files"), (),
        "Another file whose change triggers a reload (repeat the flag for more).",
        flags=("--reload-extra-file",), metavar="FILE", repeat=True,
        details="Templates, configuration files: anything the application reads that is "
        "not a Python module. Needs reload.",
    ),
    Setting(
        "keepalive", "Timeouts", v.seconds(), 5.0,
        "Seconds an idle keep-alive connection is kept open waiting for the next request.",
        flags=("--keep-alive",), metavar="SECONDS",
        details="0 closes the connection after each response.",
        gunicorn="gunicorn's default is 2 (an integer): its idle connections may hold a "
        "worker. Here an idle connection holds no thread, so a longer wait is cheap and "
        "saves clients reconnecting; 5 is also what many proxies expect. Fractions allowed.",
    ),
    Setting(
        "header_timeout", "Timeouts", v.seconds(zero_allowed=False), 10.0,
        "Seconds a client has to send a whole request head (stops slowloris).",
        flags=("--header-timeout",), metavar="SECONDS",
        gunicorn="new: gunicorn has no head timeout separate from its worker timeout.",
    ),
    Setting(
        "body_timeout", "Timeouts", v.seconds(zero_allowed=False), 30.0,
        "Seconds to wait for the next bytes of a request body before giving up.",
        flags=("--body-timeout",), metavar="SECONDS",
        gunicorn="new.",
    ),
    Setting(
        "timeout", "Timeouts", v.seconds(), 30.0,
        "Seconds a request may run before it is logged as stuck (once, with its thread's "
        "stack), and a worker process may go without a heartbeat before the arbiter aborts "
        "it (tracebacks first) and starts a replacement; 0 never.",
        flags=("-t", "--timeout"), metavar="SECONDS",
        details="Every process, workers or not, logs each request running longer than this "
        "with its method, path, run time and stack. When every thread of a worker runs such "
        "a request, the arbiter starts a replacement and stops the stuck worker once the "
        "replacement serves; the single process (workers = 0) can only log it: recovery "
        "needs --workers. A worker heartbeats about once a second while its poller runs; "
        "one silent for longer (hung in C code, stopped) is aborted. A worker gets the same "
        "time to start (import the application).",
        gunicorn="Same name and default; fractions allowed. gunicorn's gthread worker "
        "heartbeats even when all its threads are stuck, and logs no stuck request.",
    ),
    Setting(
        "graceful_timeout", "Timeouts", v.seconds(), 30.0,
        "Seconds in-flight requests get to finish after SIGTERM before the server exits.",
        flags=("--graceful-timeout",), metavar="SECONDS",
        gunicorn="Same default; fractions allowed.",
    ),
    Setting(
        "limit_request_line", "Request limits", v.integer(0), 4094,
        "The maximum size of the request line in bytes (beyond it: 414).",
        flags=("--limit-request-line",), metavar="INT",
        details="0 leaves only the whole-head cap (limit_request_head_size).",
        gunicorn="gunicorn caps it at 8190 and 0 means unlimited; here the head cap "
        "always applies, so there is no separate maximum.",
    ),
    Setting(
        "limit_request_fields", "Request limits", v.integer(1, 32768), 100,
        "The maximum number of header fields in a request (beyond it: 431).",
        flags=("--limit-request-fields",), metavar="INT",
    ),
    Setting(
        "limit_request_field_size", "Request limits", v.integer(0), 8190,
        "The maximum size of one header field line in bytes (beyond it: 431).",
        flags=("--limit-request-field-size", "--limit-request-field_size"), metavar="INT",
        details="0 leaves only the whole-head cap (limit_request_head_size). "
        "--limit-request-field_size is gunicorn's spelling, accepted as well.",
    ),
    Setting(
        "limit_request_head_size", "Request limits", v.integer(1024), 65536,
        "The maximum size of a whole request head in bytes (beyond it: 431).",
        flags=("--limit-request-head-size",), metavar="INT",
        gunicorn="new: gunicorn bounds only the line and each field.",
    ),
    # -- slow clients (issue 14 items 4 and 5): buffers and minimum data rates --
    Setting(
        "request_buffer_size", "Request limits", v.integer(0), 1048576,
        "Request bodies up to this many bytes are received whole before the application "
        "is called.",
        flags=("--request-buffer-size",), metavar="BYTES",
        details="Such a body (Content-Length or chunked) arrives while the connection waits "
        "in the poller, holding no worker thread, so clients uploading slowly cannot take "
        "the pool; it is held in memory (at most this much per connection). A larger body "
        "reaches the application as it arrives, through wsgi.input, under "
        "min_request_rate; so does one arriving fast (256 KiB at once), whose client needs "
        "no shelter. Over HTTP/2 each stream's body is received so before its worker "
        "starts, at most this much per connection across its streams (the connection waits "
        "in the poller meanwhile too); a stream whose client expects 100-continue streams. "
        "0 streams every body.",
        gunicorn="new (waitress receives every body before calling the application and "
        "spills past inbuf_overflow, 512 KB, to a file).",
    ),
    Setting(
        "response_buffer_size", "Request limits", v.integer(0), 1048576,
        "Bytes of a response kept in memory per connection while the client reads slowly; "
        "past it, a temporary file.",
        flags=("--response-buffer-size",), metavar="BYTES",
        details="A worker never waits on a client's socket: what the socket does not take "
        "at once is buffered, the worker goes back to the pool when the application's "
        "iterator is done, and the poller sends the rest as the client reads (files from "
        "wsgi.file_wrapper are not copied: sendfile continues from where the socket "
        "stopped). A client that reads promptly never uses the buffer.",
        gunicorn="new (waitress's outbuf_overflow, 1 MB, is the same idea).",
    ),
    Setting(
        "min_request_rate", "Timeouts", v.integer(0), 240,
        "Bytes per second a client must send a request body at, on average, once "
        "min_rate_grace has passed (408 otherwise); 0 turns it off.",
        flags=("--min-request-rate",), metavar="BYTES_PER_S",
        details="Counted only while treadle waits for the body (the application's own time "
        "between reads does not count), beside body_timeout for each wait: a client "
        "sending one byte just before each timeout is still cut off. The same holds for "
        "an HTTP/2 stream's body.",
        gunicorn="new: ASP.NET Kestrel's MinRequestBodyDataRate, with its default.",
    ),
    Setting(
        "min_response_rate", "Timeouts", v.integer(0), 240,
        "Bytes per second a client must read a buffered response at, on average, once "
        "min_rate_grace has passed (the connection is closed otherwise); 0 turns it off.",
        flags=("--min-response-rate",), metavar="BYTES_PER_S",
        details="Counted from when the socket first refuses bytes until the buffered "
        "response is sent; a client that reads promptly is never measured. Over HTTP/2 it "
        "is counted per stream while the stream's output waits for the client's "
        "flow-control window, and a stream too slow is reset (CANCEL), not the connection.",
        gunicorn="new: ASP.NET Kestrel's MinResponseDataRate, with its default.",
    ),
    Setting(
        "min_rate_grace", "Timeouts", v.seconds(), 5.0,
        "Seconds before min_request_rate and min_response_rate apply.",
        flags=("--min-rate-grace",), metavar="SECONDS",
        gunicorn="new: Kestrel's grace period (5 s).",
    ),
    Setting(
        "forwarded_allow_ips", "Proxies and headers",
        v.string_list(v.ip_or_network(), "IP addresses or CIDR networks"), ("127.0.0.1", "::1"),
        "Peers (IPs or CIDR networks, comma-separated; '*' = all) whose X-Forwarded-* and "
        "Forwarded headers are trusted.",
        flags=("--forwarded-allow-ips",), metavar="IPS",
        details="Those headers from any other peer are removed before the application sees "
        "them. A network must not have host bits set (10.0.0.0/8, not 10.0.0.1/8).",
        gunicorn="gunicorn takes one comma-separated string and defaults to "
        "$FORWARDED_ALLOW_IPS; treadle takes a list (a comma-separated string works too) and "
        "reads TREADLE_FORWARDED_ALLOW_IPS.",
    ),
    Setting(
        "server_header", "Proxies and headers", v.boolean(), True,
        "Send 'Server: treadle' in responses.",
        flags=("--server-header",), switch=True, negative_flags=("--no-server-header",),
        gunicorn="new: gunicorn always sends its Server header.",
    ),
    Setting(
        "certfile", "TLS", v.optional(v.path()), None,
        "The server certificate (PEM; the chain may follow it). Setting it turns TLS on for "
        "every listener.",
        flags=("--certfile",), metavar="FILE",
        details="The private key may be in the same file; otherwise give keyfile. "
        "TLS 1.2 is the minimum (ssl_min_version), TLS compression and renegotiation are "
        "off, and ALPN offers the protocols of http_protocols (h2 and http/1.1 by default). "
        "The handshake runs on a worker thread under handshake_timeout, never on the thread "
        "that accepts connections.",
    ),
    Setting(
        "keyfile", "TLS", v.optional(v.path()), None,
        "The private key of certfile (PEM), when it is not in certfile itself.",
        flags=("--keyfile",), metavar="FILE",
    ),
    Setting(
        "keyfile_password", "TLS", v.optional(v.text("a password")), None,
        "The password of an encrypted private key.",
        flags=("--keyfile-password",), metavar="PASSWORD", secret=True,
        details="Prefer TREADLE_KEYFILE_PASSWORD (or the file) to the flag: command lines "
        "are visible to other users of the machine. --print-config never shows it.",
        gunicorn="new: gunicorn needs a custom ssl_context hook for an encrypted key.",
    ),
    Setting(
        "ca_certs", "TLS", v.optional(v.path()), None,
        "CA certificates (PEM) that client certificates are verified against (mTLS).",
        flags=("--ca-certs",), metavar="FILE",
    ),
    Setting(
        "cert_reqs", "TLS", v.cert_reqs(), "none",
        "Client certificates: none (not asked for), optional (verified if sent) or "
        "required (the handshake fails without a valid one).",
        flags=("--cert-reqs",), metavar="MODE",
        details="gunicorn's numbers are accepted too: 0 = none, 1 = optional, 2 = required. "
        "optional and required need ca_certs. The verified certificate reaches the "
        "application as environ['treadle.peercert'] (the dict of ssl.getpeercert()) and "
        "environ['SSL_CLIENT_CERT'] (PEM), as docs/http2.md describes.",
        gunicorn="gunicorn takes only the numbers 0, 1 and 2.",
    ),
    Setting(
        "ciphers", "TLS", v.optional(v.ciphers()), None,
        "The TLS 1.2 cipher list in OpenSSL's format; unset keeps Python's default list.",
        flags=("--ciphers",), metavar="CIPHERS",
        details="TLS 1.3 suites are not affected (OpenSSL configures them separately). "
        "A list that selects no cipher stops the server at start with exit status 2.",
    ),
    Setting(
        "ssl_min_version", "TLS", v.tls_version(), "1.2",
        "The oldest TLS version accepted: 1.2 or 1.3.",
        flags=("--ssl-min-version",), metavar="VERSION",
        gunicorn="new: gunicorn's ssl_version is deprecated and ignored; its minimum is "
        "whatever Python's default context allows.",
    ),
    Setting(
        "handshake_timeout", "TLS", v.seconds(zero_allowed=False), 10.0,
        "Seconds a client has to complete the TLS handshake.",
        flags=("--handshake-timeout",), metavar="SECONDS",
        details="A connection waiting for the client's handshake bytes holds no thread; a "
        "handshake that fails or never finishes costs one debug-level log line.",
        gunicorn="new: gunicorn bounds the handshake only by its worker timeout.",
    ),
    Setting(
        "http_protocols", "HTTP/2",
        v.string_list(v.http_protocol(), "protocols (h1, h2)", at_least_one=True),
        ("h2", "h1"),
        "The HTTP versions served, in order of preference: h1 (HTTP/1.1) and h2 (HTTP/2).",
        flags=("--http-protocols",), metavar="PROTOCOLS",
        details="With TLS, ALPN offers them in this order (h2 as `h2`, h1 as `http/1.1`). "
        "A client that negotiates nothing (or a cleartext client without h2c) is served "
        "HTTP/1.1 whatever this says, as in gunicorn: h1 only decides whether ALPN offers "
        "http/1.1. Without h2, HTTP/2 is never served. On cleartext listeners h2 needs "
        "http2_cleartext.",
        gunicorn="gunicorn's default is h1, so its HTTP/2 must be asked for. treadle's is "
        "h2,h1: HTTP/2 costs nothing until a certificate is configured (or "
        "http2_cleartext is on), and then clients should get it, as browsers expect. "
        "Without TLS and http2_cleartext the default serves HTTP/1.1 only, as gunicorn's.",
    ),
    Setting(
        "http2_cleartext", "HTTP/2", v.h2_cleartext(), "off",
        "HTTP/2 without TLS (h2c): off, prior-knowledge (the connection starts with the "
        "HTTP/2 preface), upgrade (an HTTP/1.1 'Upgrade: h2c' request) or both.",
        flags=("--http2-cleartext",), metavar="MODE",
        details="For deployments where a trusted proxy terminates TLS and speaks HTTP/2 "
        "upstream; never expose an h2c port to the internet. With prior-knowledge, "
        "connections that do not start with the preface are served HTTP/1.1 as usual. "
        "Requires h2 in http_protocols and a cleartext listener (no certfile). true means "
        "prior-knowledge and false off, as in gunicorn.",
        gunicorn="as in gunicorn, h2c goes only to peers in forwarded_allow_ips (see "
        "http2_cleartext_trusted_only); treadle refuses it together with certfile instead "
        "of ignoring it.",
    ),
    Setting(
        "http2_max_concurrent_streams", "HTTP/2", v.integer(1, 2**31 - 1), 100,
        "The most HTTP/2 streams a client may have open on one connection.",
        flags=("--http2-max-concurrent-streams",), metavar="INT",
        details="Each stream's WSGI call runs on the worker pool, so streams of one "
        "connection are served concurrently, up to `http2_max_workers_per_connection` "
        "at once.",
    ),
    Setting(
        "http2_initial_window_size", "HTTP/2", v.integer(1, 2**31 - 1), 65535,
        "The flow-control window of each HTTP/2 stream the client sends on, in bytes.",
        flags=("--http2-initial-window-size",), metavar="BYTES",
        details="It bounds the request body held for a stream whose application has not read "
        "it yet: data is acknowledged as the application reads wsgi.input. The connection "
        "window is this times http2_max_concurrent_streams, at most 16 MiB (and never less "
        "than this), so a stalled stream cannot block the others.",
    ),
    Setting(
        "http2_max_frame_size", "HTTP/2", v.integer(16384, 16777215), 16384,
        "The largest HTTP/2 frame payload accepted from clients, in bytes.",
        flags=("--http2-max-frame-size",), metavar="BYTES",
    ),
    Setting(
        "http2_max_header_list_size", "HTTP/2", v.integer(1024, 2**31 - 1), 65536,
        "The largest HTTP/2 request header block, in bytes, both as received (before "
        "decoding, which stops CONTINUATION floods) and once decoded.",
        flags=("--http2-max-header-list-size",), metavar="BYTES",
        gunicorn="gunicorn's 0 (unlimited) is not offered: a header block is always capped.",
    ),
    Setting(
        "http2_max_workers_per_connection", "HTTP/2", v.integer(0), 0,
        "The most worker threads the streams of one HTTP/2 connection may hold at once; "
        "0 means a quarter of threads (at least 1).",
        flags=("--http2-max-workers-per-connection",), metavar="INT",
        details="Streams beyond it wait in their connection's own queue (not the pool's) "
        "and start as that connection's running streams finish, so one client with many "
        "slow streams cannot take every worker from the others.",
        gunicorn="new: gunicorn's HTTP/2 runs all of a connection's streams on one worker.",
    ),
    *LOGGING,
    Setting(
        "pidfile", "Process", v.optional(v.path()), None,
        "Write the process id to this file while serving.",
        flags=("-p", "--pid"), metavar="FILE",
    ),
    Setting(
        "user", "Process", v.optional(v.user_or_group("user")), None,
        "Switch to this user (name or uid) after binding the sockets.",
        flags=("-u", "--user"), metavar="USER",
        gunicorn="gunicorn's default is the current user, which means the same: no switch.",
    ),
    Setting(
        "group", "Process", v.optional(v.user_or_group("group")), None,
        "Switch to this group (name or gid) after binding the sockets.",
        flags=("-g", "--group"), metavar="GROUP",
        gunicorn="gunicorn's default is the current group, which means the same: no switch.",
    ),
    Setting(
        "umask", "Process", v.optional(v.umask()), None,
        "Set this umask (0o22, 022 or 18) for files the server creates; unset leaves it.",
        flags=("-m", "--umask"), metavar="INT",
        details="It applies to Unix sockets, the pid file and log files.",
        gunicorn="gunicorn's default 0 makes every file it creates writable by everyone; "
        "treadle leaves the inherited umask alone unless asked.",
    ),
    Setting(
        "check_config", "Debugging", v.boolean(), False,
        "Check the settings, the files they name and that the app imports; exit 0 or 2.",
        flags=("--check-config",), switch=True, in_file=False, in_env=False,
    ),
    Setting(
        "print_config", "Debugging", v.boolean(), False,
        "Print the effective settings as TOML, each with its source, and exit.",
        flags=("--print-config",), switch=True, in_file=False, in_env=False,
        gunicorn="gunicorn's also implies --check-config; here it only prints.",
    ),
    # -- the edge: the PROXY protocol, h2c for trusted peers only -----------------------------
    Setting(
        "proxy_protocol", "Proxies and headers", v.proxy_protocol(), "off",
        "Accept a PROXY protocol header (haproxy, stunnel, network load balancers) naming "
        "the client: off, v1 (text), v2 (binary) or auto (either).",
        flags=("--proxy-protocol",), metavar="MODE", flag_const="auto",
        details="--proxy-protocol without a value means auto, and true/false mean auto/off, as in "
        "gunicorn (and as there, a bare --proxy-protocol just before APP takes APP for its "
        "mode: write --proxy-protocol=auto, or put it after APP). The header is optional: a "
        "connection without one is served with its socket's peer. One naming a TCP client "
        "makes that client REMOTE_ADDR and REMOTE_PORT (and the access log's address, and the"
        " peer forwarded_allow_ips is checked against); PROXY_PROTOCOL, PROXY_ADDR and "
        "PROXY_PORT are in the environ, and a v2 SSL TLV saying the client used TLS makes "
        "wsgi.url_scheme https. On a TLS listener the header comes before the handshake. A "
        "header from a peer outside proxy_allow_ips, a malformed one, or one not whole within"
        " header_timeout closes the connection without a response. See docs/deployment.md.",
        gunicorn="the same modes; gunicorn checks forwarded_allow_ips against the proxy's "
        "address, treadle against the client the header names (in a TCP proxy the HTTP "
        "head is the client's). Malformed or forbidden headers get a close, not a 400/403; "
        "PROXY UNKNOWN and the v2 UNIX and UDP families are accepted (the socket's peer "
        "stands), as the specification asks.",
    ),
    Setting(
        "proxy_allow_ips", "Proxies and headers",
        v.string_list(v.ip_or_network(), "IP addresses or CIDR networks"), ("127.0.0.1", "::1"),
        "Peers (IPs or CIDR networks, comma-separated; '*' = all) allowed to send a PROXY "
        "header.",
        flags=("--proxy-allow-from",), metavar="IPS",
        details="Unix-socket peers are always allowed, as in gunicorn. A PROXY header from "
        "any other peer closes the connection.",
        gunicorn="gunicorn takes one comma-separated string; treadle takes a list (a "
        "comma-separated string works too).",
    ),
    Setting(
        "http2_cleartext_trusted_only", "HTTP/2", v.boolean(), True,
        "Serve h2c (http2_cleartext) only to peers in forwarded_allow_ips; others get "
        "HTTP/1.1.",
        flags=("--http2-cleartext-trusted-only",), switch=True,
        negative_flags=("--no-http2-cleartext-trusted-only",),
        details="From other peers an 'Upgrade: h2c' is ignored and the HTTP/2 preface is "
        "answered as a server without h2c answers it (400). On by default: h2c is meant "
        "for a trusted proxy in front (the default forwarded_allow_ips, 127.0.0.1 and ::1, "
        "covers a sidecar); turn it off to serve h2c to any peer that reaches the port.",
        gunicorn="new as a setting: gunicorn 26.2 and later always serve h2c only to "
        "peers in forwarded_allow_ips, which is this setting's default.",
    ),
)

_BY_NAME = {setting.name: setting for setting in SETTINGS}


def by_name(name: str) -> Setting:
    """The setting called ``name`` (KeyError if there is none)."""
    return _BY_NAME[name]
