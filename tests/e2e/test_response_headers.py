"""Response headers as frameworks send them, over HTTP/1.1 (raw sockets) and HTTP/2 (httpx,
h2c with prior knowledge) through the real server: surrounding whitespace stripped, control
bytes refused (500, the header named in the log), `Connection: close` honoured on HTTP/1.1 and
dropped on HTTP/2, other hop-by-hop headers dropped with one warning per name.
(Applications: tests/e2e/apps_headers.py.)"""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from tests.e2e.conftest import RunningServer
from tests.e2e.wire import Wire, get

APP = "tests.e2e.apps_headers:app"
Serve = Callable[..., RunningServer]


@pytest.fixture(scope="module")
def server(serve_module: Serve) -> RunningServer:
    return serve_module(APP, "--http2-cleartext", "prior-knowledge", "--threads", "4")


def h2_get(server: RunningServer, path: str) -> httpx.Response:
    with httpx.Client(http1=False, http2=True, timeout=10) as client:
        response = client.get(f"http://127.0.0.1:{server.port}{path}")
    assert response.http_version == "HTTP/2"
    return response


def test_django_set_cookie_and_trailing_spaces_are_served_stripped(server: RunningServer):
    wire = Wire(server.host, server.port)
    wire.send(get("/django-cookie"))
    response = wire.read_response()
    wire.close()
    assert response.status == 200 and response.body == b"cookie"
    assert b"\r\nSet-Cookie: csrftoken=abc123; Path=/\r\n" in response.raw_head + b"\r\n"
    assert b"\r\nX-Trailing: spaced\r\n" in response.raw_head + b"\r\n"

    over_h2 = h2_get(server, "/django-cookie")
    assert over_h2.status_code == 200
    assert over_h2.headers["set-cookie"] == "csrftoken=abc123; Path=/"
    assert over_h2.headers["x-trailing"] == "spaced"
    assert over_h2.cookies["csrftoken"] == "abc123"


@pytest.mark.parametrize("kind", ["crlf", "lf", "nul"])
def test_control_bytes_in_a_value_give_500_naming_the_header(server: RunningServer, kind: str):
    before = server.log().count("'X-Bad' has control characters")
    wire = Wire(server.host, server.port)
    wire.send(get(f"/inject?kind={kind}"))
    response = wire.read_response()
    assert response.status == 500
    assert response.header("X-Injected") is None and response.header("X-Bad") is None
    assert b"should never be sent" not in response.body
    wire.close()

    over_h2 = h2_get(server, f"/inject?kind={kind}")
    assert over_h2.status_code == 500
    assert "x-injected" not in over_h2.headers and "x-bad" not in over_h2.headers
    assert server.log().count("'X-Bad' has control characters") == before + 2


@pytest.mark.parametrize("query", ["n=1048576", "n=70000", "n=700&many=1"])
def test_a_response_head_over_64_kib_is_a_500(server: RunningServer, query: str):
    """Issue 14 item 9: the application's fault, answered 500 at once on both protocols (HPACK
    took 81 s to encode a 1 MiB header); just under the bound is served."""
    before = server.log().count("over the 65536 allowed")
    wire = Wire(server.host, server.port)
    wire.send(get(f"/huge-header?{query}"))
    assert wire.read_response().status == 500
    wire.close()
    assert h2_get(server, f"/huge-header?{query}").status_code == 500
    assert server.log().count("over the 65536 allowed") == before + 2
    served = h2_get(server, "/huge-header?n=60000")
    assert served.status_code == 200 and len(served.headers["x-huge"]) == 60000


@pytest.mark.parametrize("path", ["/connection-close", "/connection-close?stream=1"])
def test_connection_close_from_the_app_closes_after_the_whole_response(server: RunningServer,
                                                                        path: str):
    wire = Wire(server.host, server.port)
    wire.send(get(path) + get("/"))  # a pipelined second request that must not be served
    response = wire.read_response()
    assert response.status == 200 and response.complete
    assert response.body in (b"closing", b"part 1;part 2")
    assert [value for name, value in response.headers if name.lower() == "connection"] == [
        "close"]
    assert wire.closed_by_peer()  # EOF: the second request got no answer
    wire.close()


def test_connection_close_is_not_sent_over_http2(server: RunningServer):
    with httpx.Client(http1=False, http2=True, timeout=10) as client:
        first = client.get(f"http://127.0.0.1:{server.port}/connection-close")
        second = client.get(f"http://127.0.0.1:{server.port}/connection-close?stream=1")
    assert (first.status_code, first.content) == (200, b"closing")
    assert (second.status_code, second.content) == (200, b"part 1;part 2")
    assert "connection" not in first.headers and "connection" not in second.headers


def test_keep_alive_from_the_app_is_dropped_with_one_warning(serve: Serve):
    server = serve(APP, "--http2-cleartext", "prior-knowledge")
    wire = Wire(server.host, server.port)
    for _ in range(3):  # one connection, kept alive: the app's header does not close it
        wire.send(get("/keep-alive"))
        response = wire.read_response()
        assert (response.status, response.body) == (200, b"kept")
        assert response.header("Keep-Alive") is None and response.header("Connection") is None
    wire.close()
    for _ in range(2):
        over_h2 = h2_get(server, "/keep-alive")
        assert over_h2.status_code == 200 and "keep-alive" not in over_h2.headers
    warnings = [line for line in server.log().splitlines() if "hop-by-hop header" in line]
    assert len(warnings) == 1, warnings
    assert "[WARNING]" in warnings[0] and "Keep-Alive" in warnings[0]
    assert "Traceback" not in server.log()
