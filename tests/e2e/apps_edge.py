"""Applications for the edge tests (PROXY protocol, 103 Early Hints, h2c for trusted peers)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

StartResponse = Callable[..., Any]
SHOWN = ("REMOTE_ADDR", "REMOTE_PORT", "PROXY_PROTOCOL", "PROXY_ADDR", "PROXY_PORT",
         "wsgi.url_scheme", "HTTPS", "SSL_PROTOCOL", "SSL_CIPHER", "SERVER_PROTOCOL",
         "HTTP_X_FORWARDED_FOR")
PRELOAD = "</style.css>; rel=preload; as=style"


def _json(start_response: StartResponse, shown: dict[str, Any]) -> list[bytes]:
    body = json.dumps(shown).encode()
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(body)))])
    return [body]


def environ(environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
    shown = {key: environ[key] for key in SHOWN if key in environ}
    info = environ.get("treadle.proxy")
    if info is not None:
        shown["proxy.version"] = info.version
        shown["proxy.authority"] = info.authority
    return _json(start_response, shown)


def hints(environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
    """Two 103s (the second with two fields), then the response."""
    early_hints = environ["wsgi.early_hints"]
    early_hints([("Link", PRELOAD)])
    early_hints([("Link", "</app.js>; rel=preload; as=script"), ("X-Hint", "two")])
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "5"),
                              ("Link", PRELOAD)])
    return [b"final"]


def hints_bad(environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
    """A value with CR LF: refused as header injection, as in start_response (a 500)."""
    environ["wsgi.early_hints"]([("Link", "</a.css>\r\nX-Injected: yes")])
    start_response("200 OK", [("Content-Length", "2")])
    return [b"no"]


def hints_late(environ: dict[str, Any], start_response: StartResponse) -> Iterator[bytes]:
    """Hints after the head went out are ignored (gunicorn's rule), not an error."""
    start_response("200 OK", [("Content-Type", "text/plain")])
    yield b"head "
    environ["wsgi.early_hints"]([("Link", PRELOAD)])
    yield b"body"


def hints_fail(environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
    """A hint, then a failure: a 103 is not the response starting, so a 500 follows."""
    environ["wsgi.early_hints"]([("Link", PRELOAD)])
    raise RuntimeError("the application failed after its hint")


def hints_upload(environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
    """A hint, then the body read (a client that sent `Expect: 100-continue` still gets its
    100 Continue), then its length."""
    environ["wsgi.early_hints"]([(b"Link", PRELOAD.encode())])  # bytes, as gunicorn takes
    body = environ["wsgi.input"].read()
    start_response("200 OK", [("Content-Length", str(len(str(len(body)))))])
    return [str(len(body)).encode()]


ROUTES = {"/environ": environ, "/hints": hints, "/hints-bad": hints_bad,
          "/hints-late": hints_late, "/hints-upload": hints_upload,
          "/hints-fail": hints_fail}


def app(environ: dict[str, Any], start_response: StartResponse) -> Any:
    route = ROUTES.get(environ["PATH_INFO"])
    if route is None:
        start_response("404 Not Found", [("Content-Length", "0")])
        return [b""]
    return route(environ, start_response)
