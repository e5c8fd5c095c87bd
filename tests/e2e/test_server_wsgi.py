"""PEP 3333 end to end: environ, wsgi.input, start_response, framing and failures.

The applications (tests/e2e/apps_core.py) are wrapped in wsgiref.validate except where a test
needs an application that breaks the rules on purpose (`apps_core:raw`).
"""

from __future__ import annotations

import http.client
import json
import socket

import pytest

from tests.e2e.conftest import RunningServer
from tests.e2e.wire import Wire, get


@pytest.fixture(scope="module")
def server(serve_module) -> RunningServer:
    return serve_module("tests.e2e.apps_core:app", "--root-path", "/app", "--threads", "4")


@pytest.fixture(scope="module")
def raw_server(serve_module) -> RunningServer:
    return serve_module("tests.e2e.apps_core:raw", "--forwarded-allow-ips", "10.9.9.9")


def fetch(server: RunningServer, path: str, method: str = "GET", body: bytes | None = None,
          headers: dict[str, str] | None = None) -> tuple[http.client.HTTPResponse, bytes]:
    conn = http.client.HTTPConnection(server.host, server.port, timeout=10)
    conn.request(method, path, body=body, headers=headers or {})
    response = conn.getresponse()
    data = response.read()
    conn.close()
    return response, data


def environ_of(server: RunningServer, request: bytes) -> dict:
    wire = Wire(server.host, server.port)
    wire.send(request)
    response = wire.read_response()
    wire.close()
    assert response.status == 200, response
    return json.loads(response.body)


def test_environ_holds_what_pep_3333_requires(server):
    request = get("/app/environ/caf%C3%A9%20x?q=1%202&r", "X-Custom: a", "X-Custom: b",
                  "X_Under: dropped", "Content-Type: text/plain", method="POST", body=b"hi")
    environ = environ_of(server, request)
    assert environ["REQUEST_METHOD"] == "POST"
    assert environ["SCRIPT_NAME"] == "/app"
    assert environ["PATH_INFO"] == "/environ/caf\u00c3\u00a9 x"  # UTF-8 bytes as latin-1
    assert environ["QUERY_STRING"] == "q=1%202&r"
    assert environ["SERVER_PROTOCOL"] == "HTTP/1.1"
    assert environ["SERVER_NAME"] == "127.0.0.1"
    assert environ["SERVER_PORT"] == str(server.port)
    assert environ["REMOTE_ADDR"] == "127.0.0.1"
    assert int(environ["REMOTE_PORT"]) > 0
    assert environ["HTTP_HOST"] == "test"
    assert environ["HTTP_X_CUSTOM"] == "a, b"
    assert "HTTP_X_UNDER" not in environ and not any("UNDER" in key for key in environ)
    assert environ["CONTENT_TYPE"] == "text/plain"
    assert environ["CONTENT_LENGTH"] == "2"
    assert "HTTP_CONTENT_TYPE" not in environ and "HTTP_CONTENT_LENGTH" not in environ
    assert environ["wsgi.url_scheme"] == "http"
    assert environ["wsgi.version"] == [1, 0]
    assert environ["wsgi.multithread"] is True
    assert environ["wsgi.multiprocess"] is False
    assert environ["wsgi.run_once"] is False
    assert environ["wsgi.input_terminated"] is True


def test_path_outside_root_path_keeps_script_name_and_full_path(server):
    environ = environ_of(server, get("/environ-direct"))
    assert environ["SCRIPT_NAME"] == "/app"
    assert environ["PATH_INFO"] == "/environ-direct"


def test_forwarded_headers_from_a_trusted_peer_are_kept(server):
    environ = environ_of(server, get("/app/environ", "X-Forwarded-Proto: https",
                                     "X-Forwarded-For: 203.0.113.7", "Forwarded: for=x",
                                     "X_Forwarded_For: 6.6.6.6"))
    assert environ["wsgi.url_scheme"] == "https"
    assert environ["HTTP_X_FORWARDED_FOR"] == "203.0.113.7"
    assert environ["HTTP_FORWARDED"] == "for=x"
    assert "6.6.6.6" not in json.dumps(environ)


def test_forwarded_headers_from_an_untrusted_peer_are_removed(raw_server):
    environ = environ_of(raw_server, get("/environ", "X-Forwarded-Proto: https",
                                         "X-Forwarded-For: 203.0.113.7", "Forwarded: for=x",
                                         "X-Forwarded-Host: evil", "X-Real-IP: 1.1.1.1"))
    assert environ["wsgi.url_scheme"] == "http"
    leaked = [key for key in environ if "FORWARDED" in key or "REAL_IP" in key]
    assert leaked == []


def test_input_read_readline_iteration(server):
    _, body = fetch(server, "/app/lines", "POST", b"first\nsecond\nthird\nlast")
    assert json.loads(body) == ["first\n", "sec", "ond\n", "third\n", "last"]
    _, body = fetch(server, "/app/echo", "POST", b"x" * 100_000)
    assert body == b"x" * 100_000


def test_chunked_upload_is_read_to_its_end(server):
    wire = Wire(server.host, server.port)
    wire.send(b"POST /app/echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
              b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
    response = wire.read_response()
    assert (response.status, response.body) == (200, b"hello world")
    wire.close()


def test_100_continue_is_sent_when_the_application_reads(server):
    wire = Wire(server.host, server.port)
    wire.send(b"POST /app/echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n"
              b"Expect: 100-continue\r\n\r\n")
    interim = wire.read_response()
    assert interim.status == 100
    wire.send(b"hello")
    response = wire.read_response()
    assert (response.status, response.body) == (200, b"hello")
    wire.close()


def test_no_100_continue_when_the_application_does_not_read(server):
    wire = Wire(server.host, server.port)
    wire.send(b"POST /app/no-read HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n"
              b"Expect: 100-continue\r\n\r\n")
    response = wire.read_response()
    assert response.status == 200
    assert response.header("connection") == "close"
    wire.close()


def test_body_cut_short_is_never_seen_as_complete(server):
    wire = Wire(server.host, server.port)
    wire.send(b"POST /app/echo HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\nonly ten..")
    wire.sock.shutdown(socket.SHUT_WR)
    data = wire.read_until_close()
    assert b"200 OK" not in data and b"only ten.." not in data
    wire.close()


def test_unread_body_is_drained_and_the_connection_kept(server):
    wire = Wire(server.host, server.port)
    wire.send(get("/app/no-read", method="POST", body=b"z" * 50_000) + get("/app/big?n=3"))
    first, second = wire.read_response(), wire.read_response()
    assert (first.status, second.status, second.body) == (200, 200, b"xxx")
    wire.close()


def test_head_204_304_have_no_body(server):
    wire = Wire(server.host, server.port)
    wire.send(get("/app/big?n=100", method="HEAD") + get("/app/status?code=204")
              + get("/app/status?code=304") + get("/app/big?n=2"))
    head = wire.read_response(head_request=True)
    assert head.status == 200 and head.header("content-length") == "100"
    no_content, not_modified = wire.read_response(), wire.read_response()
    assert no_content.status == 204 and no_content.header("content-length") is None
    assert not_modified.status == 304
    last = wire.read_response()
    assert (last.status, last.body) == (200, b"xx")  # nothing stray before it
    wire.close()


def test_framing_chunked_for_generators_and_write(server):
    response, body = fetch(server, "/app/generator?n=3")
    assert response.getheader("Transfer-Encoding") == "chunked"
    assert body == b"part 0\npart 1\npart 2\n"
    _, body = fetch(server, "/app/write")
    assert body == b"written then returned\n"


def test_http_10_client_gets_a_close_delimited_body(server):
    wire = Wire(server.host, server.port)
    wire.send(b"GET /app/generator?n=2 HTTP/1.0\r\n\r\n")
    data = wire.read_until_close()
    assert data.startswith(b"HTTP/1.1 200 ")
    assert data.endswith(b"\r\n\r\npart 0\npart 1\n")
    assert b"chunked" not in data.lower()
    wire.close()


def test_file_wrapper_sends_the_file(server, raw_server, tmp_path):
    payload = bytes(range(256)) * 1200
    path = tmp_path / "payload.bin"
    path.write_bytes(payload)
    response, body = fetch(server, f"/app/file?path={path}")  # validator hides the wrapper
    assert (response.status, body) == (200, payload)
    response, body = fetch(raw_server, f"/file?path={path}")  # os.sendfile
    assert (response.status, body) == (200, payload)
    assert response.getheader("Content-Length") == str(len(payload))  # the sendfile path


def test_exc_info_replaces_the_response_before_it_starts(server):
    response, body = fetch(server, "/app/exc-info")
    assert (response.status, body) == (503, b"error page\n")


def test_error_before_the_response_gives_500_and_a_traceback(server):
    response, body = fetch(server, "/app/error-before")
    assert response.status == 500
    assert response.getheader("Connection") == "close"
    assert len(body) < 100
    log = server.log()
    assert "Traceback" in log and "boom before the response" in log


def test_error_after_the_response_started_truncates_it(server):
    wire = Wire(server.host, server.port)
    wire.send(get("/app/error-after"))
    response = wire.read_response()
    assert response.status == 200
    assert not response.complete
    assert "boom after the response started" in server.log()
    wire.close()


@pytest.mark.parametrize("path", ["/bad-status", "/bad-header-type", "/crlf-header"])
def test_bad_start_response_arguments_give_500(raw_server, path):
    response, body = fetch(raw_server, path)
    assert response.status == 500
    assert b"never be seen" not in body
    assert response.getheader("X-Evil") is None and response.getheader("Set-Cookie") is None
    assert "start_response" in raw_server.log()


def test_body_longer_than_content_length_is_not_sent_as_valid(raw_server):
    wire = Wire(raw_server.host, raw_server.port)
    wire.send(get("/cl-long"))
    response = wire.read_response()
    assert response.status == 500 or not response.complete
    assert wire.closed_by_peer()
    wire.close()


def test_body_shorter_than_content_length_closes_the_connection(raw_server):
    wire = Wire(raw_server.host, raw_server.port)
    wire.send(get("/cl-short"))
    response = wire.read_response()
    assert response.status != 200 or not response.complete
    wire.close()
