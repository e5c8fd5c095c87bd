"""A WSGI application setting response headers the way frameworks really do, for
tests/e2e/test_response_headers.py and test_access_log.py (served by the real server).

Not wrapped in wsgiref.validate: some routes break PEP 3333 on purpose (hop-by-hop headers,
control bytes), which is what the tests check the server's answer to. Paths:

  /django-cookie      Set-Cookie as Django writes it (`SimpleCookie.output(header="")` starts
                      with a space) and a value with trailing spaces and a tab
  /inject?kind=K      a header value with CR LF (K=crlf), a bare LF (lf) or NUL (nul) inside
  /connection-close   `Connection: close` from the application (?stream=1: a generator body)
  /keep-alive         `Keep-Alive: timeout=5` from the application
  /huge-header?n=N    one header value of N bytes (1 MiB by default), or N headers of 100 bytes
                      with ?many=1
  anything else       200 "ok"
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qs

Environ = dict[str, Any]
StartResponse = Callable[..., Any]
INJECTED = {"crlf": "a\r\nX-Injected: 1", "lf": "a\nX-Injected: 1", "nul": "a\x00b"}


def _text(start_response: StartResponse, body: bytes,
          extra: list[tuple[str, str]] | None = None) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(body))), *(extra or [])])
    return [body]


def django_cookie(environ: Environ, start_response: StartResponse) -> list[bytes]:
    cookie: SimpleCookie = SimpleCookie()
    cookie["csrftoken"] = "abc123"
    cookie["csrftoken"]["path"] = "/"
    value = cookie.output(header="")  # " csrftoken=abc123; Path=/", as Django sends it
    assert value.startswith(" ")
    return _text(start_response, b"cookie", [("Set-Cookie", value),
                                             ("X-Trailing", "spaced \t  ")])


def inject(environ: Environ, start_response: StartResponse) -> list[bytes]:
    kind = parse_qs(environ.get("QUERY_STRING", "")).get("kind", ["crlf"])[0]
    return _text(start_response, b"should never be sent", [("X-Bad", INJECTED[kind])])


def connection_close(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    if "stream=1" in environ.get("QUERY_STRING", ""):
        start_response("200 OK", [("Content-Type", "text/plain"), ("Connection", "close")])
        return _parts()
    return _text(start_response, b"closing", [("Connection", "close")])


def _parts() -> Iterator[bytes]:
    yield b"part 1;"
    yield b"part 2"


def keep_alive(environ: Environ, start_response: StartResponse) -> list[bytes]:
    return _text(start_response, b"kept", [("Keep-Alive", "timeout=5")])


def huge_header(environ: Environ, start_response: StartResponse) -> list[bytes]:
    query = parse_qs(environ.get("QUERY_STRING", ""))
    size = int(query.get("n", [str(1 << 20)])[0])
    if query.get("many"):
        return _text(start_response, b"many", [(f"X-F{i}", "v" * 100) for i in range(size)])
    return _text(start_response, b"huge", [("X-Huge", "h" * size)])


ROUTES: dict[str, Callable[[Environ, StartResponse], Iterable[bytes]]] = {
    "/django-cookie": django_cookie,
    "/inject": inject,
    "/connection-close": connection_close,
    "/keep-alive": keep_alive,
    "/huge-header": huge_header,
}


def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    route = ROUTES.get(environ.get("PATH_INFO", ""))
    if route is None:
        return _text(start_response, b"ok")
    return route(environ, start_response)
