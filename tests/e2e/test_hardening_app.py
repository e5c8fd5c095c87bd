"""HARDENING.md items 9, 21, 29 and 30: what reaches the application's environ, and what the
client sees when the application misbehaves.

The server runs with `--forwarded-allow-ips 192.0.2.1`, so the test client (127.0.0.1) is an
untrusted peer: its proxy headers must be removed from the environ, not merely ignored.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.apps_hardening import (
    BAD_START,
    HOP_BY_HOP_START,
    ServerProcess,
    assert_clean_log,
    assert_serves,
    exchange,
    parse_responses,
    probe_request,
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    log = Path(tmp_path_factory.mktemp("hardening-app")) / "server.log"
    process = ServerProcess(log, flags=("--forwarded-allow-ips", "192.0.2.1"))
    process.start()
    yield process
    process.stop_cleanly()


def environ_for(server: ServerProcess, *fields: bytes) -> dict[str, str]:
    request = (b"GET /environ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" + b"".join(fields)
               + b"\r\n")
    got = exchange(server.port, request)
    responses, _ = parse_responses(got.data)
    assert [r.status for r in responses] == [200], got.data[:600]
    environ: dict[str, str] = json.loads(responses[0].body)
    return environ


def test_underscore_names_are_dropped(server: ServerProcess) -> None:
    """Item 9: `X_Forwarded_For` would land on HTTP_X_FORWARDED_FOR; drop such names."""
    mark = server.mark()
    environ = environ_for(
        server, b"X_Forwarded_For: 203.0.113.9\r\n", b"Content_Length: 5\r\n",
        b"Content_Type: text/evil\r\n", b"X-Mixed_Name: 1\r\n", b"Foo_Bar: underscore\r\n",
        b"Foo-Bar: dash\r\n", b"X-Plain: kept\r\n")
    assert environ["HTTP_FOO_BAR"] == "dash"
    assert environ["HTTP_X_PLAIN"] == "kept"
    for key in ("HTTP_X_FORWARDED_FOR", "HTTP_CONTENT_LENGTH", "HTTP_CONTENT_TYPE",
                "HTTP_X_MIXED_NAME"):
        assert key not in environ, key
    assert environ.get("CONTENT_TYPE", "") != "text/evil"
    assert environ.get("CONTENT_LENGTH", "") in ("", "0")
    assert_clean_log(server, mark)


PROXY_HEADERS = [
    b"X-Forwarded-For: 203.0.113.9", b"x-forwarded-for: 203.0.113.10",
    b"X-Forwarded-Proto: https", b"X-Forwarded-Host: evil.example",
    b"X-Forwarded-Port: 443", b"X-Forwarded-Prefix: /evil", b"X-Forwarded-Ssl: on",
    b"X-Forwarded-Scheme: https", b"Forwarded: for=203.0.113.9;proto=https;host=evil.example",
    b"Script-Name: /evil",
]


@pytest.mark.parametrize("header", PROXY_HEADERS, ids=lambda h: h.split(b":")[0].decode())
def test_untrusted_proxy_headers_are_removed(server: ServerProcess, header: bytes) -> None:
    """Item 21: from a peer outside forwarded_allow_ips, the header never reaches the app
    and changes nothing the app sees."""
    mark = server.mark()
    environ = environ_for(server, header + b"\r\n", b"X-Plain: kept\r\n")
    assert environ["HTTP_X_PLAIN"] == "kept"
    name = header.split(b":")[0].decode().upper().replace("-", "_")
    assert "HTTP_" + name not in environ
    assert environ["REMOTE_ADDR"] == "127.0.0.1"
    assert environ["wsgi.url_scheme"] == "http"
    assert environ["SCRIPT_NAME"] == ""
    assert environ["PATH_INFO"] == "/environ"
    assert environ["HTTP_HOST"] == "x" and environ["SERVER_NAME"] != "evil.example"
    assert environ["SERVER_PORT"] == str(server.port)
    assert_clean_log(server, mark)


def test_untrusted_proxy_protocol_preamble_closes(server: ServerProcess) -> None:
    """Item 21: a PROXY protocol line from an untrusted peer is not a request to serve."""
    mark = server.mark()
    probe, probe_path = probe_request()
    got = exchange(server.port, b"PROXY TCP4 203.0.113.9 127.0.0.1 4711 80\r\n" + probe)
    responses, rest = parse_responses(got.data)
    assert got.closed and rest == b""
    assert [r.status for r in responses] in ([], [400]), got.data[:600]
    assert f"HARDENING-SERVED {probe_path}\n" not in server.log()
    assert_serves(server)
    assert_clean_log(server, mark)


def get_path(server: ServerProcess, path: str) -> tuple[list, bool]:
    got = exchange(server.port, b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path.encode(),
                   timeout_s=3.0)
    responses, rest = parse_responses(got.data)
    assert rest == b"", got.data[:600]
    return responses, got.closed


def app_error_logged(server: ServerProcess, mark: int, marker: str) -> bool:
    return server.wait_for_log(marker, timeout_s=3.0, since=mark) is not None


def test_exception_before_start_response_is_500(server: ServerProcess) -> None:
    """Item 29: a 500 answer, the traceback logged, the server unharmed."""
    mark = server.mark()
    responses, _ = get_path(server, "/raise-before")
    assert [r.status for r in responses][:1] == [500]
    assert responses[0].complete
    assert app_error_logged(server, mark, r"AppFailure: raised before start_response")
    assert_serves(server)
    assert server.alive()


@pytest.mark.parametrize("framing", ["cl", "chunked", "write"])
def test_exception_after_start_aborts_the_response(server: ServerProcess,
                                                   framing: str) -> None:
    """Item 29: the client must see a truncated response, never a well-formed one."""
    mark = server.mark()
    responses, closed = get_path(server, f"/raise-after-{framing}")
    assert [r.status for r in responses] == [200]
    assert responses[0].body.startswith(b"first part;")
    assert not responses[0].complete, "the aborted response was framed as complete"
    assert closed
    assert app_error_logged(server, mark, r"AppFailure: raised after the response started")
    assert_serves(server)


@pytest.mark.parametrize("path", [f"/bad-start/{case}" for case in BAD_START]
                         + ["/start-twice", "/str-body"])
def test_bad_start_response_arguments_give_500(server: ServerProcess, path: str) -> None:
    """Item 30: 500, the error logged, nothing of the bad response on the wire."""
    mark = server.mark()
    responses, _ = get_path(server, path)
    assert [r.status for r in responses] == [500], [(r.status, r.headers) for r in responses]
    response = responses[0]
    assert response.complete
    assert response.header(b"x-injected") is None and response.header(b"x-a") is None
    assert b"should never be sent" not in response.body
    assert response.header(b"upgrade") is None and response.header(b"keep-alive") is None
    logged = [line for line in server.log_since(mark).splitlines()
              if line.strip() and not line.startswith("HARDENING-")]
    assert logged, "the application's error was not logged"
    assert_serves(server)
    assert server.alive()


@pytest.mark.parametrize("case", HOP_BY_HOP_START)
def test_hop_by_hop_headers_from_the_app_are_dropped_not_500(server: ServerProcess,
                                                             case: str) -> None:
    """Item 30 as amended by issue 10: harmless, so dropped with a warning, not a 500."""
    name = HOP_BY_HOP_START[case][0]
    mark = server.mark()
    got = exchange(server.port, b"GET /hop-start/%s HTTP/1.1\r\nHost: x\r\n"
                   b"Connection: close\r\n\r\n" % case.encode(), timeout_s=3.0)
    responses, rest = parse_responses(got.data)
    assert rest == b"" and [r.status for r in responses] == [200], got.data[:600]
    response = responses[0]
    assert response.complete and response.body == b"served without it"
    if name not in ("Connection", "Transfer-Encoding"):  # (those the server sets itself)
        assert response.header(name.lower().encode()) is None
    assert [v for n, v in response.headers if n == b"transfer-encoding"] == [b"chunked"]
    log = server.log_since(mark)
    assert "Traceback" not in log
    if name != "Connection":  # Connection: close is honoured, not warned about
        assert server.wait_for_log(f"hop-by-hop header {name}:", timeout_s=3.0) is not None
    assert_serves(server)


def test_body_longer_than_declared_is_cut_and_closed(server: ServerProcess) -> None:
    """Item 30: Content-Length 5, then 5 + 5 bytes streamed: five are sent, then the close."""
    responses, closed = get_path(server, "/cl-long-stream")
    assert [(r.status, r.body, r.complete) for r in responses] == [(200, b"01234", True)]
    assert closed, "the connection stayed open after a body longer than declared"
    assert_serves(server)


def test_body_shorter_than_declared_is_closed(server: ServerProcess) -> None:
    """Item 30: Content-Length 100, ten bytes streamed: the client sees it truncated."""
    responses, closed = get_path(server, "/cl-short-stream")
    assert [(r.status, r.body, r.complete) for r in responses] == [(200, b"0123456789", False)]
    assert closed
    assert_serves(server)


@pytest.mark.parametrize("path", ["/cl-long", "/cl-short", "/cl-long-write"])
def test_length_mismatch_known_before_sending(server: ServerProcess, path: str) -> None:
    """Item 30, when the whole body is one list item: the server may see the mismatch before
    sending anything (a clean 500) or send and close; never a well-formed wrong response."""
    mark = server.mark()
    responses, closed = get_path(server, path)
    outcomes = [(r.status, r.body, r.complete) for r in responses]
    if outcomes and outcomes[0][0] == 500:
        assert outcomes[0][2] and len(outcomes) == 1
        assert app_error_logged(server, mark, r"(?i)content-length")
    else:
        expected = ((200, b"0123456789", False) if path == "/cl-short"
                    else (200, b"01234", True))
        assert outcomes == [expected] and closed
    assert_serves(server)
