"""The access log through the real server: what a client sends cannot forge log fields or
lines (quotes, backslashes, tabs, non-ASCII and percent-encoded newlines are escaped), and
`{name}e` finds environ names in any case, as gunicorn's does."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path

from tests.e2e.conftest import RunningServer
from tests.e2e.wire import Wire

APP = "tests.e2e.apps_headers:app"
Serve = Callable[..., RunningServer]
QUOTED = r'"((?:[^"\\]|\\.)*)"'  # a quoted field in which \" and \\ are escapes
DEFAULT_LINE = re.compile(r"(\S+) (\S+) (\S+) \[([^\]]+)\] " + QUOTED + r" (\d{3}) (\S+) "
                          + QUOTED + " " + QUOTED + r"\Z")


def send(server: RunningServer, request: bytes) -> int:
    wire = Wire(server.host, server.port)
    wire.send(request)
    status = wire.read_response().status
    wire.close()
    return status


def access_lines(path: Path, count: int) -> list[str]:
    """The access log's lines once it holds `count` (it is written after each response)."""
    deadline = time.monotonic() + 10
    while True:
        text = path.read_text(encoding="utf-8") if path.exists() else ""
        lines = text.splitlines()
        if len(lines) >= count or time.monotonic() > deadline:
            return lines
        time.sleep(0.02)


def test_a_client_cannot_forge_fields_of_the_default_format(serve: Serve, tmp_path: Path):
    log_path = tmp_path / "access.log"
    server = serve(APP, "--access-logfile", str(log_path))
    forged = (b'GET /a"b?q="x" HTTP/1.1\r\nHost: h\r\nConnection: close\r\n'
              b'User-Agent: evil" 200 "forged\r\nReferer: caf\xc3\xa9\t\\\r\n\r\n')
    assert send(server, forged) == 200
    # a DEL byte is refused by the parser (400): it never reaches the log unescaped
    assert send(server, b"GET / HTTP/1.1\r\nHost: h\r\nUser-Agent: a\x7fb\r\n\r\n") == 400
    assert send(server, b"GET /after HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n") == 200
    lines = access_lines(log_path, 2)
    assert len(lines) == 2, lines
    fields = DEFAULT_LINE.match(lines[0])
    assert fields is not None, lines[0]
    assert fields.group(5) == 'GET /a\\"b?q=\\"x\\" HTTP/1.1'
    assert fields.group(6) == "200"
    assert fields.group(8) == "caf\\xc3\\xa9\\x09\\\\"
    assert fields.group(9) == 'evil\\" 200 \\"forged'
    assert DEFAULT_LINE.match(lines[1]) is not None and '"GET /after HTTP/1.1"' in lines[1]
    assert "\x7f" not in log_path.read_text(encoding="utf-8")


def test_decoded_path_headers_and_environ_atoms_are_escaped(serve: Serve, tmp_path: Path):
    log_path = tmp_path / "access.log"
    log_format = '%({remote_addr}e)s %({REQUEST_METHOD}e)s "%(U)s" "%({x-note}i)s" %(s)s'
    server = serve(APP, "--access-logfile", str(log_path), "--access-logformat", log_format)
    assert send(server, b'GET /x%0A%22forged%5c HTTP/1.1\r\nHost: h\r\nConnection: close\r\n'
                        b'X-Note: tab\there "quoted"\r\n\r\n') == 200
    lines = access_lines(log_path, 1)
    assert lines == ['127.0.0.1 GET "/x\\x0a\\"forged\\\\" "tab\\x09here \\"quoted\\"" 200']


def test_requests_the_application_failed_are_logged_with_what_the_client_got(
        serve: Serve, tmp_path: Path):
    """As gunicorn does: an exception is no reason to leave a request out of the access log.
    Before the head: the 500 the server answered; after it: the status already sent."""
    log_path = tmp_path / "access.log"
    server = serve("tests.e2e.apps_core:app", "--access-logfile", str(log_path))
    assert send(server, b"GET /error-before HTTP/1.1\r\nHost: h\r\n\r\n") == 500
    wire = Wire(server.host, server.port)
    wire.send(b"GET /error-after HTTP/1.1\r\nHost: h\r\n\r\n")
    wire.read_until_close()  # the response is cut short: the connection closes
    wire.close()
    lines = access_lines(log_path, 2)
    assert len(lines) == 2, lines
    by_path = {DEFAULT_LINE.match(line).group(5): DEFAULT_LINE.match(line) for line in lines}
    assert by_path["GET /error-before HTTP/1.1"].group(6) == "500"
    assert by_path["GET /error-after HTTP/1.1"].group(6) == "200"
