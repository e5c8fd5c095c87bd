"""WSGI applications the core end-to-end tests serve (imported by the server subprocess).

`app` is one router, wrapped in wsgiref.validate, so every behaviour below is also checked
against PEP 3333 by the standard library's validator. `raw` is the same router unwrapped, for
tests of what the server does with applications that break the rules (the validator would
raise first). Paths:

  /environ            JSON of the environ's str values (and the wsgi.* flags)
  /echo               the request body, read with read(8192) until empty
  /lines              the body's lines, read with readline() and iteration, as JSON
  /stream-input       reads one line, reports it to /tmp-file named by ?mark=..., then the rest
  /sleep?s=0.5        answers after sleeping
  /status?code=204    an empty response with that status (304 too)
  /generator?n=3      a generator body (chunked framing)
  /write              the write() callable, then an iterable
  /file?path=...      a file through wsgi.file_wrapper
  /big?n=1000000      n bytes with Content-Length
  /error-before       raises before start_response
  /error-after        raises after the first chunk went out
  /exc-info           start_response, then an error page through exc_info
  /cl-long, /cl-short a body longer / shorter than its Content-Length
  /bad-status, /bad-header-type, /crlf-header  (raw only) bad start_response
  /no-read            answers without reading the body
  /upload-size        reads the body in 64 KiB pieces and reports its size
  /osenv?name=X       os.environ[X], the working directory and the pid, as JSON
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs
from wsgiref.validate import validator

Environ = dict[str, Any]
StartResponse = Callable[..., Any]
TEXT = [("Content-Type", "text/plain")]


def _query(environ: Environ) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}


def _reply(start_response: StartResponse, body: bytes, status: str = "200 OK",
           content_type: str = "text/plain") -> list[bytes]:
    start_response(status, [("Content-Type", content_type), ("Content-Length", str(len(body)))])
    return [body]


def environ_json(environ: Environ, start_response: StartResponse) -> list[bytes]:
    shown = {k: v for k, v in environ.items() if isinstance(v, (str, bool, int, tuple))}
    return _reply(start_response, json.dumps(shown).encode(), content_type="application/json")


def echo(environ: Environ, start_response: StartResponse) -> list[bytes]:
    stream = environ["wsgi.input"]
    parts = []
    while True:
        chunk = stream.read(8192)
        if not chunk:
            break
        parts.append(chunk)
    return _reply(start_response, b"".join(parts))


def lines(environ: Environ, start_response: StartResponse) -> list[bytes]:
    stream = environ["wsgi.input"]
    first = stream.readline()
    limited = stream.readline(3)
    rest = list(stream)
    body = json.dumps([x.decode("latin-1") for x in [first, limited, *rest]]).encode()
    return _reply(start_response, body, content_type="application/json")


def stream_input(environ: Environ, start_response: StartResponse) -> list[bytes]:
    """Proves streaming: the first line is reported before the client sends the rest."""
    stream = environ["wsgi.input"]
    first = stream.readline()
    with open(_query(environ)["mark"], "wb") as handle:
        handle.write(first)
    rest = stream.read(1 << 20)
    while True:
        more = stream.read(1 << 20)
        if not more:
            break
        rest += more
    return _reply(start_response, first + rest)


def sleep(environ: Environ, start_response: StartResponse) -> list[bytes]:
    time.sleep(float(_query(environ).get("s", "0.5")))
    return _reply(start_response, b"slept\n")


def status(environ: Environ, start_response: StartResponse) -> list[bytes]:
    code = _query(environ).get("code", "204")
    headers = [("ETag", '"x"')] if code == "304" else []
    start_response(f"{code} Whatever", headers)
    return []


def generator(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    start_response("200 OK", TEXT)
    for number in range(int(_query(environ).get("n", "3"))):
        yield f"part {number}\n".encode()


def write_callable(environ: Environ, start_response: StartResponse) -> list[bytes]:
    write = start_response("200 OK", TEXT)
    write(b"written ")
    return [b"then returned\n"]


def file_response(environ: Environ, start_response: StartResponse) -> Any:
    path = _query(environ)["path"]
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    return environ["wsgi.file_wrapper"](open(path, "rb"), 65536)  # noqa: SIM115


def big(environ: Environ, start_response: StartResponse) -> list[bytes]:
    return _reply(start_response, b"x" * int(_query(environ).get("n", "1000000")))


def error_before(environ: Environ, start_response: StartResponse) -> list[bytes]:
    raise RuntimeError("boom before the response")


def error_after(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    start_response("200 OK", TEXT)
    yield b"first part, "
    raise RuntimeError("boom after the response started")


def exc_info_page(environ: Environ, start_response: StartResponse) -> list[bytes]:
    start_response("200 OK", TEXT)
    try:
        raise ValueError("caught by the application")
    except ValueError:
        import sys

        start_response("503 Service Unavailable", TEXT, sys.exc_info())
    return [b"error page\n"]


def cl_long(environ: Environ, start_response: StartResponse) -> list[bytes]:
    start_response("200 OK", TEXT + [("Content-Length", "5")])
    return [b"0123456789"]


def cl_short(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    start_response("200 OK", TEXT + [("Content-Length", "100")])
    yield b"only ten.."


def bad_start(kind: str) -> Callable[[Environ, StartResponse], list[bytes]]:
    headers: dict[str, Any] = {
        "/bad-status": ("OK", TEXT),
        "/bad-header-type": ("200 OK", [("Content-Type", 5)]),
        "/crlf-header": ("200 OK", [("X-Evil", "a\r\nSet-Cookie: x=1")]),
    }

    def bad(environ: Environ, start_response: StartResponse) -> list[bytes]:
        status_line, response_headers = headers[kind]
        start_response(status_line, response_headers)
        return [b"should never be seen"]

    return bad


def no_read(environ: Environ, start_response: StartResponse) -> list[bytes]:
    return _reply(start_response, b"did not read\n")


def upload_size(environ: Environ, start_response: StartResponse) -> list[bytes]:
    stream = environ["wsgi.input"]
    total = 0
    while True:
        chunk = stream.read(65536)
        if not chunk:
            break
        total += len(chunk)
    return _reply(start_response, str(total).encode())


def process_env(environ: Environ, start_response: StartResponse) -> list[bytes]:
    name = _query(environ).get("name", "")
    body = json.dumps({"value": os.environ.get(name), "cwd": os.getcwd(), "pid": os.getpid()})
    return _reply(start_response, body.encode(), content_type="application/json")


ROUTES: dict[str, Callable[[Environ, StartResponse], Iterable[bytes]]] = {
    "/environ": environ_json,
    "/echo": echo,
    "/lines": lines,
    "/stream-input": stream_input,
    "/sleep": sleep,
    "/status": status,
    "/generator": generator,
    "/write": write_callable,
    "/file": file_response,
    "/big": big,
    "/error-before": error_before,
    "/error-after": error_after,
    "/exc-info": exc_info_page,
    "/cl-long": cl_long,
    "/cl-short": cl_short,
    "/no-read": no_read,
    "/upload-size": upload_size,
    "/osenv": process_env,
}
for _kind in ("/bad-status", "/bad-header-type", "/crlf-header"):
    ROUTES[_kind] = bad_start(_kind)


def raw(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    path = environ["PATH_INFO"]
    handler = ROUTES.get(path) or (environ_json if path.startswith("/environ") else None)
    if handler is None:
        return _reply(start_response, b"not found\n", "404 Not Found")
    return handler(environ, start_response)


app = validator(raw)
