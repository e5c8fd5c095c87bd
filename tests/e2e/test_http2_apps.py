"""WSGI applications served by the TLS and HTTP/2 end-to-end tests (no tests in here).

`python -m server tests.e2e.test_http2_apps:app` serves the dispatcher below; each path is
one behaviour the tests check from the client side.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from wsgiref.validate import validator

StartResponse = Callable[..., Any]

_released = threading.Event()
_HELD_TIMEOUT_S = 20.0
_BIG_FILE = os.path.join(tempfile.gettempdir(), f"treadle-h2-file-{os.getpid()}.bin")
_ENVIRON_KEYS = ("REQUEST_METHOD", "SCRIPT_NAME", "PATH_INFO", "QUERY_STRING", "CONTENT_TYPE",
                 "CONTENT_LENGTH", "SERVER_PROTOCOL", "SERVER_NAME", "SERVER_PORT",
                 "REMOTE_ADDR", "REMOTE_PORT", "wsgi.url_scheme", "HTTPS", "SSL_CLIENT_CERT",
                 "treadle.peercert")


def _text(start_response: StartResponse, body: bytes, status: str = "200 OK",
          extra: list[tuple[str, str]] | None = None) -> list[bytes]:
    headers = [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))]
    start_response(status, headers + (extra or []))
    return [body]


def environ_dump(environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
    shown = {key: environ[key] for key in _ENVIRON_KEYS if key in environ}
    shown.update({key: value for key, value in environ.items() if key.startswith("HTTP_")})
    body = b""
    while True:
        chunk = environ["wsgi.input"].read(65536)
        if not chunk:
            break
        body += chunk
    shown["body"] = body.decode("latin-1")
    return _text(start_response, json.dumps(shown, default=str).encode(),
                 extra=[("Connection", "keep-alive"), ("Transfer-Encoding", "chunked"),
                        ("Keep-Alive", "5"), ("Upgrade", "h2c"), ("X-Kept", "yes")])


def hold(environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
    """Answers only once /release has been served (on the same connection, in the test)."""
    released = _released.wait(_HELD_TIMEOUT_S)
    _released.clear()
    return _text(start_response, b"held, released" if released else b"held, timed out")


def release(environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
    _released.set()
    return _text(start_response, b"released")


def upload(environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
    """Counts the body as it streams in, 64 KiB at a time."""
    stream = environ["wsgi.input"]
    total = 0
    while True:
        chunk = stream.read(65536)
        if not chunk:
            break
        total += len(chunk)
    return _text(start_response, str(total).encode())


def download(environ: dict[str, Any], start_response: StartResponse) -> Iterator[bytes]:
    """`?N` MiB produced 1 MiB at a time, as fast as the server lets the generator run."""
    mib = int(environ["QUERY_STRING"] or "1")
    start_response("200 OK", [("Content-Type", "application/octet-stream"),
                              ("Content-Length", str(mib << 20))])
    block = b"x" * (1 << 20)
    for _ in range(mib):
        yield block


def slow(environ: dict[str, Any], start_response: StartResponse) -> Iterator[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    time.sleep(float(environ["QUERY_STRING"] or "1"))
    yield b"slow done"


def file_response(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    if not os.path.exists(_BIG_FILE):
        with open(_BIG_FILE + ".tmp", "wb") as handle:
            handle.write(bytes(range(256)) * 4096 * 3)  # 3 MiB
        os.replace(_BIG_FILE + ".tmp", _BIG_FILE)
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    wrapper = environ["wsgi.file_wrapper"]
    return wrapper(open(_BIG_FILE, "rb"), 65536)  # noqa: SIM115 - the server closes it


def fail_before(environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
    raise RuntimeError("failing before the response (expected by the test)")


def fail_after(environ: dict[str, Any], start_response: StartResponse) -> Iterator[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    yield b"partial"
    raise RuntimeError("failing after the response started (expected by the test)")


_ROUTES: dict[str, Callable[..., Iterable[bytes]]] = {
    "/environ": environ_dump,
    "/hold": hold,
    "/release": release,
    "/upload": upload,
    "/download": download,
    "/slow": slow,
    "/file": file_response,
    "/fail-before": fail_before,
    "/fail-after": fail_after,
}


def _dispatch(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    route = _ROUTES.get(environ["PATH_INFO"])
    if route is None:
        return _text(start_response, b"hello")
    return route(environ, start_response)


app = validator(_dispatch)
raw_app = _dispatch  # for the memory tests: without wsgiref's checks on every chunk


# -- helpers for the test modules (never used by the server process) -------------------------


class Certificates:
    """A throw-away CA (trustme), a server certificate for 127.0.0.1 and a client one."""

    def __init__(self, where: str) -> None:
        import trustme

        self.ca = trustme.CA()
        server = self.ca.issue_cert("127.0.0.1", "localhost")
        client = self.ca.issue_cert("client@example.com")
        self.ca_pem = os.path.join(where, "ca.pem")
        self.server_pem = os.path.join(where, "server.pem")  # key and chain in one file
        self.client_pem = os.path.join(where, "client.pem")
        self.ca.cert_pem.write_to_path(self.ca_pem)
        server.private_key_and_cert_chain_pem.write_to_path(self.server_pem)
        client.private_key_and_cert_chain_pem.write_to_path(self.client_pem)

    def client_context(self, with_cert: bool = False, alpn: tuple[str, ...] = ("h2",)) -> Any:
        import ssl

        context = ssl.create_default_context(cafile=self.ca_pem)
        if with_cert:
            context.load_cert_chain(self.client_pem)
        context.set_alpn_protocols(list(alpn))
        return context


class H2Client:
    """A raw HTTP/2 client (h2 as the client) over a TCP or TLS socket, for tests that need
    frames a polite client would never send. It checks nothing it sends."""

    def __init__(self, port: int, context: Any = None, settings: dict[int, int] | None = None,
                 preamble: bytes = b"") -> None:
        import socket

        import h2.config
        import h2.connection

        raw = socket.create_connection(("127.0.0.1", port), timeout=10)
        raw.sendall(preamble)  # a PROXY protocol header, before TLS
        self.sock = context.wrap_socket(raw, server_hostname="127.0.0.1") if context else raw
        config = h2.config.H2Configuration(client_side=True, header_encoding=None,
                                           validate_outbound_headers=False,
                                           normalize_outbound_headers=False,
                                           validate_inbound_headers=False)
        self.conn = h2.connection.H2Connection(config)
        self.conn.initiate_connection()
        if settings:
            self.conn.update_settings(settings)
        self.flush()
        self.events: list[Any] = []
        self.closed = False
        self.bodies: dict[int, bytes] = {}
        self.heads: dict[int, list[tuple[bytes, bytes]]] = {}
        self.ended: list[int] = []
        self.resets: dict[int, int] = {}
        self.goaway: Any = None
        self.informational: list[tuple[int, list[tuple[bytes, bytes]]]] = []

    def flush(self) -> None:
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def request(self, path: str, method: str = "GET", body: bytes | None = None,
                extra: list[tuple[bytes, bytes]] | None = None,
                headers: list[tuple[bytes, bytes]] | None = None) -> int:
        stream_id = self.conn.get_next_available_stream_id()
        if headers is None:
            headers = [(b":method", method.encode()), (b":scheme", b"https"),
                       (b":authority", b"127.0.0.1"), (b":path", path.encode())]
            headers += extra or []
        self.conn.send_headers(stream_id, headers, end_stream=body is None)
        if body is not None:
            self.conn.send_data(stream_id, body, end_stream=True)
        self.flush()
        return stream_id

    def read(self, until: Callable[[], bool], timeout_s: float = 10.0) -> None:
        """Receive and record events until `until()` holds (or the connection closes)."""
        import h2.events
        import h2.exceptions

        deadline = time.monotonic() + timeout_s
        while not until():
            if self.closed:
                return
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("the server did not answer in time")
            self.sock.settimeout(remaining)
            try:
                data = self.sock.recv(65536)
            except (ConnectionResetError, OSError) as exc:
                if isinstance(exc, TimeoutError):
                    raise
                self.closed = True
                return
            if not data:
                self.closed = True
                return
            try:
                events = self.conn.receive_data(data)
            except h2.exceptions.ProtocolError:
                if self.goaway is None:
                    raise
                self.closed = True  # h2 (as a client) reads nothing after a GOAWAY
                return
            for event in events:
                self.events.append(event)
                if isinstance(event, h2.events.InformationalResponseReceived):
                    self.informational.append((event.stream_id, list(event.headers)))
                elif isinstance(event, h2.events.ResponseReceived):
                    self.heads[event.stream_id] = list(event.headers)
                elif isinstance(event, h2.events.DataReceived):
                    self.bodies[event.stream_id] = self.bodies.get(event.stream_id, b"") + \
                        event.data
                    self.conn.acknowledge_received_data(event.flow_controlled_length,
                                                        event.stream_id)
                elif isinstance(event, h2.events.StreamEnded):
                    self.ended.append(event.stream_id)
                elif isinstance(event, h2.events.StreamReset):
                    self.resets[event.stream_id] = int(event.error_code)
                elif isinstance(event, h2.events.ConnectionTerminated):
                    self.goaway = event
            self.flush()

    def status(self, stream_id: int) -> int:
        return int(dict(self.heads[stream_id])[b":status"])

    def answered(self, stream_id: int) -> bool:
        return stream_id in self.ended or stream_id in self.resets

    def close(self) -> None:
        self.sock.close()
