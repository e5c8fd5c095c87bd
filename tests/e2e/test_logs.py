"""Structured logs, the logging configuration and request ids through the real server
(docs/logging.md): log_format = json gives one valid JSON object per line with typed fields
whatever a client sends; logconfig_dict and logconfig route the loggers; request ids are kept
from trusted proxies, replaced from anyone else, made when missing and echoed when asked."""

from __future__ import annotations

import http.client
import json
import re
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from treadle.config.render import toml_value

from tests.e2e.conftest import RunningServer, run_server
from tests.e2e.test_access_log import access_lines, send

APP = "tests.e2e.apps_logs:app"
Serve = Callable[..., RunningServer]
HEX_ID = re.compile(r"[0-9a-f]{32}\Z")
ISO_MS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\Z")


def json_lines(path: Path, count: int) -> list[dict[str, Any]]:
    """The lines as objects, sorted by path: a line is written after its response is sent, so
    under load the next request's line may come first."""
    lines = access_lines(path, count)
    assert len(lines) == count, lines
    return sorted((json.loads(line) for line in lines), key=lambda entry: entry["path"])


def get(server: RunningServer, path: str, headers: dict[str, str] | None = None
        ) -> http.client.HTTPResponse:
    client = http.client.HTTPConnection(server.host, server.port, timeout=10)
    client.request("GET", path, headers=headers or {})
    response = client.getresponse()
    response.read()
    client.close()
    return response


# --- JSON access and error logs ---------------------------------------------------------------


def test_json_access_lines_have_typed_fields(serve: Serve, tmp_path: Path) -> None:
    access = tmp_path / "access.log"
    server = serve(APP, "--log-format", "json", "--access-logfile", str(access))
    assert get(server, "/id?a=1&b=two", {"User-Agent": "probe/1.0",
                                         "Referer": "https://example.com/"}).status == 200
    assert get(server, "/zz-nothing-here").status == 200
    first, second = json_lines(access, 2)
    assert set(first) == {"time", "remote_addr", "method", "path", "query", "protocol",
                          "status", "response_bytes", "duration_s", "user_agent", "referer",
                          "request_id", "pid"}
    assert ISO_MS.match(first["time"]), first["time"]
    assert first["remote_addr"] == "127.0.0.1"
    assert (first["method"], first["path"], first["query"]) == ("GET", "/id", "a=1&b=two")
    assert first["protocol"] == "HTTP/1.1"
    assert first["status"] == 200 and type(first["status"]) is int
    assert first["response_bytes"] == 32 and type(first["response_bytes"]) is int
    assert type(first["duration_s"]) is float and 0 <= first["duration_s"] < 10
    assert (first["user_agent"], first["referer"]) == ("probe/1.0", "https://example.com/")
    assert HEX_ID.match(first["request_id"])  # the JSON log uses ids: one is made
    assert first["pid"] == server.process.pid
    assert second["referer"] is None and second["query"] == ""
    assert second["request_id"] != first["request_id"]


def test_hostile_requests_stay_one_valid_json_line_each(serve: Serve, tmp_path: Path) -> None:
    access = tmp_path / "access.log"
    server = serve(APP, "--log-format", "json", "--access-logfile", str(access))
    long_agent = "A" * 8000
    requests = [
        # invalid UTF-8, NUL, LF, ESC, NEL and U+2028 in the path; quotes and a backslash
        (b'GET /%FF%fe%00%0A%1B%C2%85%E2%80%A8"\\x HTTP/1.1\r\nHost: h\r\n'
         b"User-Agent: \xff\xc3(\x80 \"quote\" \\ end\r\nReferer: \t}{,:\r\n"
         b"Connection: close\r\n\r\n"),
        (b"GET /caf%C3%A9?q=%22\"&x=%E2%80%A8 HTTP/1.1\r\nHost: h\r\n"
         b"User-Agent: " + long_agent.encode() + b"\r\nConnection: close\r\n\r\n"),
        b"GET /end HTTP/1.1\r\nHost: h\r\nX-Request-ID: \"}\\\r\nConnection: close\r\n\r\n",
    ]
    for request in requests:
        assert send(server, request) == 200
    hostile, long_one, last = json_lines(access, 3)  # by path: "/\\xff...", "/caf", "/end"
    assert access.read_bytes().isascii()  # nothing a line reader could take for a line break
    assert hostile["path"] == '/\\xff\\xfe\x00\n\x1b\x85\u2028"\\x'
    assert hostile["user_agent"] == '\\xff\\xc3(\\x80 "quote" \\ end'
    assert hostile["referer"] == "}{,:"
    assert long_one["path"] == "/café"
    assert long_one["query"] == 'q=%22"&x=%E2%80%A8'
    assert long_one["user_agent"] == long_agent
    assert last["request_id"] == '"}\\'  # visible ASCII from a trusted peer: kept


def test_json_error_log_holds_exceptions_and_wsgi_errors(serve: Serve) -> None:
    server = serve(APP, "--log-format", "json")  # the error log on stderr, the server's log
    assert get(server, "/raise").status == 500
    assert get(server, "/errors").status == 200
    deadline = time.monotonic() + 10
    while "printed" not in server.log() and time.monotonic() < deadline:
        time.sleep(0.02)
    records = [json.loads(line) for line in server.log().splitlines()]
    assert {"time", "level", "logger", "pid", "message"} <= set(records[0])
    assert records[0]["message"].startswith("Listening at: http://127.0.0.1:")
    failed = [r for r in records if r["message"] == "error handling GET /raise"]
    assert len(failed) == 1 and failed[0]["level"] == "ERROR"
    assert failed[0]["logger"] == "treadle.error" and ISO_MS.match(failed[0]["time"])
    assert failed[0]["exception"].startswith("Traceback (most recent call last):")
    assert failed[0]["exception"].endswith('ValueError: broken "on purpose"\nsecond line')
    written = [r["message"] for r in records if r["logger"] == "treadle.error.wsgi"]
    assert written == ['from the app: "quoted"', "printed\tline"]


def test_text_access_log_names_the_id_with_gunicorns_environ_atom(serve: Serve,
                                                                   tmp_path: Path) -> None:
    access = tmp_path / "access.log"
    server = serve(APP, "--access-logfile", str(access),
                   "--access-logformat", "%({treadle.request_id}e)s %(s)s %(U)s")
    assert get(server, "/id", {"X-Request-ID": "from-proxy-1"}).status == 200
    assert get(server, "/id").status == 200
    kept, made = sorted(access_lines(access, 2), key=lambda line: "from-proxy" not in line)
    assert kept == "from-proxy-1 200 /id"
    assert HEX_ID.match(made.split()[0]), made


# --- logconfig_dict and logconfig ---------------------------------------------------------------


def _config_file(tmp_path: Path, table: dict[str, Any]) -> Path:
    path = tmp_path / "treadle.toml"
    path.write_text(f"logconfig_dict = {toml_value(table)}\n", encoding="utf-8")
    return path


def _file_logging(logger: str, path: Path, fmt: str) -> dict[str, Any]:
    return {
        "formatters": {"plain": {"format": fmt}},
        "handlers": {"file": {"class": "logging.FileHandler", "filename": str(path),
                              "formatter": "plain"}},
        "loggers": {logger: {"handlers": ["file"], "level": "INFO", "propagate": False}},
    }


def test_logconfig_dict_routes_the_access_log_to_its_own_handler(serve: Serve,
                                                                 tmp_path: Path) -> None:
    routed = tmp_path / "routed.log"
    config = _config_file(tmp_path, _file_logging("treadle.access", routed,
                                                  "ACCESS %(name)s %(message)s"))
    server = serve(APP, "--config", str(config))  # no accesslog: the table turns it on
    assert get(server, "/first").status == 200
    [line] = access_lines(routed, 1)
    assert line.startswith('ACCESS treadle.access 127.0.0.1 - - [') and '"GET /first' in line
    assert "Listening at" in server.log()  # the error log the table left alone: unchanged


def test_a_gunicorn_logconfig_dict_configures_treadles_loggers(serve: Serve,
                                                               tmp_path: Path) -> None:
    routed = tmp_path / "gunicorn-named.log"
    config = _config_file(tmp_path, _file_logging("gunicorn.access", routed, "G %(message)s"))
    server = serve(APP, "--config", str(config), "--log-format", "json")
    assert get(server, "/named").status == 200
    [line] = access_lines(routed, 1)
    assert line.startswith("G {") and json.loads(line[2:])["path"] == "/named"


def test_logconfig_ini_file_routes_the_error_log(serve: Serve, tmp_path: Path) -> None:
    routed = tmp_path / "error-routed.log"
    ini = tmp_path / "logging.ini"
    ini.write_text(
        "[loggers]\nkeys=root,treadle_error\n\n[handlers]\nkeys=file,console\n\n"
        "[formatters]\nkeys=plain\n\n[logger_root]\nlevel=WARNING\nhandlers=\n\n"
        "[logger_treadle_error]\nlevel=INFO\nhandlers=file,console\npropagate=0\n"
        "qualname=treadle.error\n\n[handler_file]\nclass=FileHandler\nformatter=plain\n"
        "args=('%(here)s/error-routed.log',)\n\n[handler_console]\nclass=StreamHandler\n"
        "formatter=plain\nargs=(sys.stderr,)\n\n[formatter_plain]\nformat=INI %(message)s\n",
        encoding="utf-8")
    serve(APP, "--log-config", str(ini))
    assert any(line.startswith("INI Listening at: ") for line in access_lines(routed, 1))


def test_a_logging_configuration_that_logging_refuses_exits_2(tmp_path: Path) -> None:
    bad = {"handlers": {"h": {"class": "logging.NoSuchHandler"}},
           "root": {"handlers": ["h"]}}
    result = run_server(APP, "--bind", "127.0.0.1:0", "--log-config-dict", json.dumps(bad))
    assert result.returncode == 2, result.stderr
    assert "treadle: error: logconfig_dict: Unable to configure handler 'h'" in result.stderr
    checked = run_server("--check-config", "--log-config-dict", json.dumps(bad))
    assert checked.returncode == 2
    assert "treadle: error: logconfig_dict: Unable to configure handler 'h'" in checked.stderr
    missing = run_server(APP, "--bind", "127.0.0.1:0", "--log-config",
                         str(tmp_path / "nowhere.ini"))
    assert missing.returncode == 2
    assert "treadle: error: logconfig " in missing.stderr


def test_usr1_reopens_file_handlers_a_logconfig_dict_put_anywhere(serve: Serve,
                                                                  tmp_path: Path) -> None:
    routed = tmp_path / "root.log"
    table = _file_logging("treadle.access", routed, "%(message)s")
    table["loggers"] = {"treadle.access": {"propagate": True}}  # to the root's file handler
    table["root"] = {"handlers": ["file"], "level": "INFO"}
    server = serve(APP, "--config", str(_config_file(tmp_path, table)))
    assert get(server, "/before").status == 200
    access_lines(routed, 1)
    routed.rename(tmp_path / "root.log.1")
    server.send_signal(signal.SIGUSR1)
    deadline = time.monotonic() + 10
    while "SIGUSR1: reopened" not in (tmp_path / "root.log.1").read_text() \
            and time.monotonic() < deadline:
        time.sleep(0.02)
    assert get(server, "/after").status == 200
    assert "/after" in "".join(access_lines(routed, 1))
    assert "/after" not in (tmp_path / "root.log.1").read_text()


# --- request ids --------------------------------------------------------------------------------


def test_no_id_is_made_when_nothing_uses_one(serve: Serve, tmp_path: Path) -> None:
    server = serve(APP, "--access-logfile", str(tmp_path / "access.log"))
    response = get(server, "/id", {"X-Request-ID": "from-proxy"})
    assert response.read() == b"" and response.getheader("X-Request-ID") is None
    client = http.client.HTTPConnection(server.host, server.port, timeout=10)
    client.request("GET", "/id")
    assert client.getresponse().read() == b"-"
    client.close()


def _body_and_echo(server: RunningServer, headers: dict[str, str] | None = None
                   ) -> tuple[str, str | None]:
    client = http.client.HTTPConnection(server.host, server.port, timeout=10)
    client.request("GET", "/id", headers=headers or {})
    response = client.getresponse()
    body = response.read().decode()
    client.close()
    return body, response.getheader("X-Request-ID")


def test_request_id_kept_from_a_trusted_peer_else_made_and_echoed(serve: Serve) -> None:
    server = serve(APP, "--request-id-header", "X-Request-ID")  # 127.0.0.1 is trusted
    assert _body_and_echo(server, {"X-Request-ID": "edge-42"}) == ("edge-42", "edge-42")
    made, echoed = _body_and_echo(server)
    assert HEX_ID.match(made) and echoed == made
    for malformed in ("two words", "x" * 201, "caf\xe9"):
        made, echoed = _body_and_echo(server, {"X-Request-ID": malformed})
        assert HEX_ID.match(made) and echoed == made, malformed
    assert _body_and_echo(server, {"X-Request-ID": "y" * 200})[0] == "y" * 200
    own = get(server, "/own-id", {"X-Request-ID": "edge-43"})
    assert own.getheaders().count(("X-Request-ID", "app-chosen")) == 1  # the app's wins


def test_request_id_from_an_untrusted_peer_is_replaced(serve: Serve) -> None:
    server = serve(APP, "--request-id-header", "X-Trace", "--forwarded-allow-ips", "10.9.9.9")
    client = http.client.HTTPConnection(server.host, server.port, timeout=10)
    client.request("GET", "/id", headers={"X-Trace": "forged-by-client"})
    response = client.getresponse()
    made = response.read().decode()
    client.close()
    assert HEX_ID.match(made) and response.getheader("X-Trace") == made


def test_request_id_echoed_over_http2(serve: Serve) -> None:
    server = serve(APP, "--request-id-header", "X-Request-ID",
                   "--http2-cleartext", "prior-knowledge")
    with httpx.Client(http1=False, http2=True) as client:
        kept = client.get(f"{server.url}/id", headers={"X-Request-ID": "h2-edge"})
        made = client.get(f"{server.url}/id")
    assert kept.http_version == "HTTP/2"
    assert kept.text == "h2-edge" and kept.headers["x-request-id"] == "h2-edge"
    assert HEX_ID.match(made.text) and made.headers["x-request-id"] == made.text
