"""Every validator with good and bad values, as a TOML value and as text (env, flags)."""

from __future__ import annotations

import pytest
from treadle.config import SETTINGS
from treadle.config.errors import Invalid
from treadle.config.schema import by_name


def check(name: str, raw: object) -> object:
    return by_name(name).validator(raw)


GOOD = [
    # (setting, raw value, stored value)
    ("backlog", "1", 1),
    ("backlog", 65535, 65535),
    ("threads", "16", 16),
    ("workers", "4", 4),
    ("workers", 0, 0),
    ("timeout", "0.5", 0.5),
    ("max_requests", "1000", 1000),
    ("max_requests_jitter", 50, 50),
    ("max_worker_memory", "512", 512),
    ("preload_app", "yes", True),
    ("reload", "true", True),
    ("reload_extra_files", "a.html,b.toml", ("a.html", "b.toml")),
    ("worker_connections", 1, 1),
    ("limit_request_line", "0", 0),
    ("limit_request_fields", 32768, 32768),
    ("limit_request_field_size", "0", 0),
    ("limit_request_head_size", "1024", 1024),
    ("keepalive", "0", 0.0),
    ("keepalive", 2, 2.0),
    ("keepalive", "2.5", 2.5),
    ("keepalive", ".5", 0.5),
    ("header_timeout", 0.25, 0.25),
    ("body_timeout", "30", 30.0),
    ("graceful_timeout", 0, 0.0),
    ("request_buffer_size", "0", 0),
    ("response_buffer_size", 65536, 65536),
    ("min_request_rate", "0", 0),
    ("min_response_rate", "1000", 1000),
    ("min_rate_grace", "2.5", 2.5),
    ("reuse_port", True, True),
    ("reuse_port", "yes", True),
    ("reuse_port", "1", True),
    ("reuse_port", "TRUE", True),
    ("server_header", "no", False),
    ("server_header", "0", False),
    ("server_header", "False", False),
    ("bind", ["127.0.0.1:8000"], ("127.0.0.1:8000",)),
    ("bind", "127.0.0.1:80, [::1]:80", ("127.0.0.1:80", "[::1]:80")),
    ("bind", [":0"], (":0",)),
    ("bind", ["localhost"], ("localhost:8000",)),
    ("bind", ["[::]"], ("[::]:8000",)),
    ("bind", ["example.com:443"], ("example.com:443",)),
    ("bind", ["0.0.0.0:08080"], ("0.0.0.0:8080",)),
    ("bind", ["unix:/run/t.sock"], ("unix:/run/t.sock",)),
    ("bind", ["unix:///run/t.sock"], ("unix:/run/t.sock",)),
    ("bind", ["fd://3"], ("fd://3",)),
    ("forwarded_allow_ips", "*", ("*",)),
    ("forwarded_allow_ips", "10.0.0.0/8, 192.168.1.1", ("10.0.0.0/8", "192.168.1.1")),
    ("forwarded_allow_ips", ["::1", "fd00::/8"], ("::1", "fd00::/8")),
    ("forwarded_allow_ips", "", ()),
    ("root_path", "", ""),
    ("root_path", "/api", "/api"),
    ("root_path", "/a/b c", "/a/b c"),
    ("accesslog", "-", "-"),
    ("accesslog", "", None),
    ("accesslog", None, None),
    ("accesslog", "logs/access.log", "logs/access.log"),
    ("errorlog", "-", "-"),
    ("errorlog", "/var/log/t.log", "/var/log/t.log"),
    ("access_log_format", '%(h)s "%(r)s" %(s)s', '%(h)s "%(r)s" %(s)s'),
    ("access_log_format", "100%% %({x-id}i)s", "100%% %({x-id}i)s"),
    ("loglevel", "debug", "debug"),
    ("loglevel", "WARNING", "warning"),
    ("pidfile", "t.pid", "t.pid"),
    ("pidfile", "", None),
    ("chdir", "/srv/app", "/srv/app"),
    ("config", "", None),
    ("user", "www-data", "www-data"),
    ("user", "1000", "1000"),
    ("user", 1000, "1000"),
    ("group", "staff", "staff"),
    ("group", "", None),
    ("umask", 18, 18),
    ("umask", "0o22", 0o22),
    ("umask", "022", 0o22),
    ("umask", "18", 18),
    ("umask", "0", 0),
    ("umask", "0x12", 0o22),
    ("umask", "0o777", 0o777),
    ("raw_env", ["A=1", "B=x=y", "C="], ("A=1", "B=x=y", "C=")),
    ("raw_env", "A=1,B=2", ("A=1", "B=2")),
    ("wsgi_app", "examples.hello:app", "examples.hello:app"),
    ("wsgi_app", "pkg.mod", "pkg.mod"),
    ("wsgi_app", "mod:create_app()", "mod:create_app()"),
    ("wsgi_app", 'mod:make(1, name="x")', 'mod:make(1, name="x")'),
    ("wsgi_app", "mod:obj.wsgi", "mod:obj.wsgi"),
    ("check_config", True, True),
    # TLS and HTTP/2
    ("certfile", "cert.pem", "cert.pem"),
    ("certfile", "", None),
    ("keyfile", "key.pem", "key.pem"),
    ("keyfile_password", "s3cret", "s3cret"),
    ("ca_certs", "ca.pem", "ca.pem"),
    ("cert_reqs", "REQUIRED", "required"),
    ("cert_reqs", "optional", "optional"),
    ("cert_reqs", 0, "none"),
    ("cert_reqs", "2", "required"),
    ("ciphers", "ECDHE+AESGCM", "ECDHE+AESGCM"),
    ("ssl_min_version", "1.3", "1.3"),
    ("ssl_min_version", "TLSv1.2", "1.2"),
    ("ssl_min_version", 1.3, "1.3"),
    ("handshake_timeout", "2.5", 2.5),
    ("http_protocols", "h2,h1", ("h2", "h1")),
    ("http_protocols", ["H1"], ("h1",)),
    ("http2_cleartext", "both", "both"),
    ("http2_cleartext", "Prior-Knowledge", "prior-knowledge"),
    ("http2_cleartext", True, "prior-knowledge"),
    ("http2_cleartext", "false", "off"),
    ("http2_max_concurrent_streams", "1", 1),
    ("http2_initial_window_size", 2**31 - 1, 2**31 - 1),
    ("http2_max_frame_size", "16777215", 16777215),
    ("http2_max_header_list_size", 1024, 1024),
]

BAD = [
    # (setting, raw value, a piece of the message)
    ("backlog", "0", "from 1 to 65535"),
    ("backlog", 65536, "from 1 to 65535"),
    ("backlog", "+5", "an integer"),
    ("backlog", "1_000", "an integer"),
    ("backlog", " 5", "an integer"),
    ("backlog", "0x10", "an integer"),
    ("backlog", True, "an integer"),
    ("backlog", 5.0, "an integer"),
    ("threads", "0", ">= 1"),
    ("workers", "-1", "from 0 to 1024"),
    ("timeout", -1, ">= 0"),
    ("max_requests", "lots", "an integer >= 0"),
    ("max_requests_jitter", -2, ">= 0"),
    ("max_worker_memory", "1G", "an integer >= 0"),
    ("preload_app", "maybe", "a boolean"),
    ("reload", "often", "a boolean"),
    ("reload_extra_files", 7, "files"),
    ("threads", -3, ">= 1"),
    ("threads", "many", "an integer >= 1"),
    ("worker_connections", 0, ">= 1"),
    ("limit_request_line", -1, ">= 0"),
    ("limit_request_fields", 0, "from 1 to 32768"),
    ("limit_request_fields", 32769, "from 1 to 32768"),
    ("limit_request_field_size", "-1", ">= 0"),
    ("limit_request_head_size", 1023, ">= 1024"),
    ("keepalive", "-1", "seconds >= 0"),
    ("keepalive", "nan", "seconds"),
    ("keepalive", float("inf"), "seconds"),
    ("keepalive", "1e3", "seconds"),
    ("keepalive", False, "seconds"),
    ("header_timeout", 0, "> 0"),
    ("body_timeout", "0", "> 0"),
    ("graceful_timeout", -0.5, ">= 0"),
    ("request_buffer_size", "-1", ">= 0"),
    ("response_buffer_size", "1 MiB", "integer"),
    ("min_request_rate", "-5", ">= 0"),
    ("min_response_rate", 2.5, "integer"),
    ("min_rate_grace", "-1", ">= 0"),
    ("reuse_port", "maybe", "a boolean"),
    ("reuse_port", 1, "a boolean"),
    ("server_header", "", "a boolean"),
    ("bind", ["localhost:99999"], "0 to 65535"),
    ("bind", ["localhost:http"], "0 to 65535"),
    ("bind", ["::1:8000"], "brackets"),
    ("bind", ["[::1"], "[ADDRESS]:PORT"),
    ("bind", ["[not-v6]:80"], "not a valid IPv6"),
    ("bind", ["999.1.1.1:80"], "not a valid IPv4"),
    ("bind", ["bad_host!:80"], "host name"),
    ("bind", ["unix:"], "empty path"),
    ("bind", ["fd://x"], "file descriptor"),
    ("bind", ["fd://-1"], "file descriptor"),
    ("bind", [5], "not a string"),
    ("bind", 8000, "a non-empty list of addresses"),
    ("bind", [], "a non-empty list"),
    ("bind", " , ", "a non-empty list"),
    ("forwarded_allow_ips", "10.0.0.1/8", "host bits set"),
    ("forwarded_allow_ips", ["300.1.1.1"], "does not appear to be an IPv4 or IPv6"),
    ("forwarded_allow_ips", "localhost", "IP address"),
    ("root_path", "api", "start with '/'"),
    ("root_path", "/api/", "not end with '/'"),
    ("root_path", "/", "not end with '/'"),
    ("root_path", "/a\nb", "control character"),
    ("root_path", 5, "a URL path"),
    ("accesslog", 1, "'-' (stdout) or a file path"),
    ("errorlog", "", "empty path"),
    ("errorlog", None, "'-' (stderr) or a file path"),
    ("access_log_format", "%(h", "not a %(name)s format"),
    ("access_log_format", "%s %s", "not a %(name)s format"),
    ("access_log_format", "%(h)d", "not a %(name)s format"),
    ("loglevel", "verbose", "one of debug, info, warning, error, critical"),
    ("loglevel", "warn", "one of"),
    ("pidfile", "a\x00b", "NUL"),
    ("chdir", "/srv\x00", "NUL"),
    ("config", 5, "a path"),
    ("user", "no body", "names are letters"),
    ("user", -1, "a user name or numeric id"),
    ("group", "a:b", "names are letters"),
    ("umask", "0o1000", "between 0 and 0o777"),
    ("umask", "08", "a umask"),
    ("umask", "rwx", "a umask"),
    ("umask", 512, "between 0 and 0o777"),
    ("umask", -1, "between 0 and 0o777"),
    ("raw_env", ["NOEQUALS"], "KEY=VALUE"),
    ("raw_env", ["=value"], "KEY=VALUE"),
    ("wsgi_app", "1mod:app", "not a module name"),
    ("wsgi_app", "mod:app()x", "not an attribute"),
    ("wsgi_app", "mod:make(os.getcwd())", "literal arguments"),
    ("wsgi_app", "mod:", "not an attribute"),
    ("wsgi_app", "mod-name:app", "not a module name"),
    # TLS and HTTP/2
    ("certfile", "a\x00b", "NUL"),
    ("keyfile", 5, "a path"),
    ("keyfile_password", 5, "a password"),
    ("ca_certs", "a\x00", "NUL"),
    ("cert_reqs", "3", "none, optional or required"),
    ("cert_reqs", "yes", "none, optional or required"),
    ("ciphers", "a\nb", "cipher lists use"),
    ("ciphers", "AES;rm", "cipher lists use"),
    ("ssl_min_version", "1.1", "1.2 or 1.3"),
    ("ssl_min_version", 1.0, "1.2 or 1.3"),
    ("handshake_timeout", 0, "> 0"),
    ("http_protocols", "h3", "the protocols are h1 and h2"),
    ("http_protocols", "", "a non-empty list"),
    ("http2_cleartext", "on", "off, prior-knowledge, upgrade or both"),
    ("http2_max_concurrent_streams", 0, "from 1 to 2147483647"),
    ("http2_initial_window_size", 2**31, "from 1 to 2147483647"),
    ("http2_max_frame_size", 16383, "from 16384 to 16777215"),
    ("http2_max_header_list_size", 0, "from 1024 to 2147483647"),
]


@pytest.mark.parametrize(("name", "raw", "stored"), GOOD)
def test_good_values_are_stored_normalised(name: str, raw: object, stored: object) -> None:
    assert check(name, raw) == stored


@pytest.mark.parametrize(("name", "raw", "fragment"), BAD)
def test_bad_values_are_refused_with_a_reason(name: str, raw: object, fragment: str) -> None:
    with pytest.raises(Invalid) as caught:
        check(name, raw)
    message = caught.value.describe(by_name(name).validator.expected, raw)
    assert message.startswith("expected ")
    assert fragment in message


def test_a_bad_list_item_is_named_alone() -> None:
    with pytest.raises(Invalid) as caught:
        check("bind", ["127.0.0.1:80", "unix:"])
    message = caught.value.describe("unused", None)
    assert message == (
        "expected HOST:PORT, [IPv6]:PORT, :PORT, unix:PATH or fd://N, got 'unix:' (empty path)"
    )


def test_every_setting_has_good_and_bad_examples_here() -> None:
    tested_good = {name for name, _, _ in GOOD}
    # the actions share the boolean validator of reuse_port and server_header
    assert tested_good | {"print_config"} == {setting.name for setting in SETTINGS}
    tested_bad = {name for name, _, _ in BAD}
    assert {s.name for s in SETTINGS} - tested_bad == {"check_config", "print_config"}


def test_every_default_passes_its_own_validator() -> None:
    for setting in SETTINGS:
        assert setting.validator(setting.default) == setting.default, setting.name
