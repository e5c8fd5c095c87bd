"""A WSGI application for tests/e2e/test_logs.py (served by the real server). Paths:

  /id              200, the body is environ["treadle.request_id"] ("-" when there is none)
  /own-id          200 with its own X-Request-ID: app-chosen (the server keeps it)
  /errors          writes two lines to wsgi.errors, then 200
  /raise           raises ValueError (a 500, and a traceback in the error log)
  anything else    200 "ok"
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

Environ = dict[str, Any]
StartResponse = Callable[..., Any]


def _text(start_response: StartResponse, body: bytes,
          extra: list[tuple[str, str]] | None = None) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(body))), *(extra or [])])
    return [body]


def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    path = environ.get("PATH_INFO", "")
    if path == "/id":
        return _text(start_response, environ.get("treadle.request_id", "-").encode("ascii"))
    if path == "/own-id":
        return _text(start_response, b"own", [("X-Request-ID", "app-chosen")])
    if path == "/errors":
        errors = environ["wsgi.errors"]
        errors.write('from the app: "quoted"\n')
        print("printed\tline", file=errors)
        errors.flush()
        return _text(start_response, b"written")
    if path == "/raise":
        raise ValueError("broken \"on purpose\"\nsecond line")
    return _text(start_response, b"ok")
