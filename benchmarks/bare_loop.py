"""The ceiling, not a peer: one thread, one selector, find the end of the head, call the app.

`python -m benchmarks.bare_loop --bind HOST:PORT module:attr`
No validation, no timeouts, no limits, no threads: what a pure-Python HTTP/1.1 server costs
when it does nothing else. The peer benchmark runs it beside the real servers so that each
server's figures can be read against what Python itself allows on one core (issue 4's
"about 8 times waitress" claim is measured, not quoted). Never serve anything real with it.
"""

from __future__ import annotations

import argparse
import importlib
import io
import selectors
import socket
from collections.abc import Callable
from typing import Any

App = Callable[[dict[str, Any], Callable[..., Any]], Any]


def respond(app: App, head: bytes, body: bytes, port: int, close: bool) -> bytes:
    method, target, _ = head.split(b"\r\n", 1)[0].split(b" ", 2)
    path, _, query = target.partition(b"?")
    environ = {
        "REQUEST_METHOD": method.decode("latin-1"), "SCRIPT_NAME": "",
        "PATH_INFO": path.decode("latin-1"), "QUERY_STRING": query.decode("latin-1"),
        "CONTENT_LENGTH": str(len(body)), "SERVER_NAME": "127.0.0.1", "SERVER_PORT": str(port),
        "SERVER_PROTOCOL": "HTTP/1.1", "wsgi.version": (1, 0), "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body), "wsgi.errors": io.StringIO(),
        "wsgi.multithread": False, "wsgi.multiprocess": False, "wsgi.run_once": False,
    }
    started: list[bytes] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        lines = [f"HTTP/1.1 {status}"] + [f"{name}: {value}" for name, value in headers]
        if close:
            lines.append("Connection: close")
        started.append(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        return None

    result = app(environ, start_response)
    try:
        payload = b"".join(result)
    finally:
        if hasattr(result, "close"):
            result.close()
    return started[0] + payload


def content_length(head: bytes) -> int:
    at = head.lower().find(b"\r\ncontent-length:")
    if at < 0:
        return 0
    return int(head[at + 17:].split(b"\r\n", 1)[0])


def serve(app: App, host: str, port: int) -> None:
    selector = selectors.DefaultSelector()
    listener = socket.create_server((host, port), backlog=2048)
    listener.setblocking(False)
    selector.register(listener, selectors.EVENT_READ, None)
    while True:
        for key, _ in selector.select():
            if key.data is None:
                try:
                    while True:
                        conn, _ = listener.accept()
                        conn.setblocking(False)
                        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                        selector.register(conn, selectors.EVENT_READ, bytearray())
                except BlockingIOError:
                    continue
            elif not on_readable(app, key.fileobj, key.data, port):  # type: ignore[arg-type]
                selector.unregister(key.fileobj)
                key.fileobj.close()  # type: ignore[union-attr]


def on_readable(app: App, conn: socket.socket, buffer: bytearray, port: int) -> bool:
    """Serve every complete request buffered on `conn`; False when it should be closed."""
    try:
        data = conn.recv(262144)
    except BlockingIOError:
        return True
    except OSError:
        return False
    if not data:
        return False
    buffer += data
    while (end := buffer.find(b"\r\n\r\n")) >= 0:
        head = bytes(buffer[:end])
        length = content_length(head)
        if len(buffer) < end + 4 + length:
            break
        body = bytes(buffer[end + 4:end + 4 + length])
        del buffer[:end + 4 + length]
        close = b"\r\nconnection: close" in head.lower()
        out = respond(app, head, body, port, close)
        conn.setblocking(True)  # the simplest correct write: block until it is all sent
        try:
            conn.sendall(out)
        except OSError:
            return False
        conn.setblocking(False)
        if close:
            return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser(prog="bare_loop")
    parser.add_argument("--bind", required=True, help="HOST:PORT")
    parser.add_argument("app", help="module:attr")
    args = parser.parse_args()
    host, _, port = args.bind.rpartition(":")
    module_name, _, attr = args.app.partition(":")
    serve(getattr(importlib.import_module(module_name), attr), host, int(port))


if __name__ == "__main__":
    main()
