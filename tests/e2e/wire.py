"""Raw-socket helpers for end-to-end tests: send bytes, read responses exactly as sent."""

from __future__ import annotations

import socket
from dataclasses import dataclass, field


@dataclass
class WireResponse:
    status: int
    headers: list[tuple[str, str]]
    body: bytes
    complete: bool = True  # False when the connection ended before the framing said
    raw_head: bytes = b""
    trailers: list[tuple[str, str]] = field(default_factory=list)

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None


class Wire:
    """A client socket with a receive buffer, reading one response at a time."""

    def __init__(self, host: str, port: int, timeout_s: float = 10.0) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout_s)
        self.buffer = b""

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _fill(self) -> bool:
        try:
            data = self.sock.recv(65536)
        except ConnectionResetError:
            data = b""
        self.buffer += data
        return bool(data)

    def read_until_close(self) -> bytes:
        while self._fill():
            pass
        data, self.buffer = self.buffer, b""
        return data

    def closed_by_peer(self) -> bool:
        """True when the server closed (EOF or reset) with nothing more to read."""
        return not self.buffer and not self._fill()

    def read_response(self, head_request: bool = False) -> WireResponse:
        while b"\r\n\r\n" not in self.buffer:
            if not self._fill():
                raise ConnectionError(f"closed before a response head: {self.buffer!r}")
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1])
        headers = [tuple(x.split(": ", 1)) for x in lines[1:]]
        response = WireResponse(status, headers, b"", raw_head=head)  # type: ignore[arg-type]
        if head_request or status in (204, 304) or 100 <= status < 200:
            return response
        length = response.header("content-length")
        if length is not None:
            while len(self.buffer) < int(length):
                if not self._fill():
                    response.body, self.buffer, response.complete = self.buffer, b"", False
                    return response
            response.body, self.buffer = self.buffer[: int(length)], self.buffer[int(length):]
        elif (response.header("transfer-encoding") or "").lower() == "chunked":
            self._read_chunked(response)
        else:
            response.body = self.read_until_close()
        return response

    def _read_line(self) -> bytes | None:
        while b"\r\n" not in self.buffer:
            if not self._fill():
                return None
        line, self.buffer = self.buffer.split(b"\r\n", 1)
        return line

    def _read_exact(self, size: int) -> bytes | None:
        while len(self.buffer) < size:
            if not self._fill():
                return None
        data, self.buffer = self.buffer[:size], self.buffer[size:]
        return data

    def _read_chunked(self, response: WireResponse) -> None:
        body = b""
        while True:
            line = self._read_line()
            if line is None:
                response.body, response.complete = body + self.buffer, False
                self.buffer = b""
                return
            size = int(line.split(b";")[0], 16)
            if size == 0:
                while (trailer := self._read_line()) not in (b"", None):
                    name, _, value = trailer.decode("latin-1").partition(": ")
                    response.trailers.append((name, value))
                response.body, response.complete = body, trailer == b""
                return
            data = self._read_exact(size + 2)
            if data is None:
                response.body, response.complete = body + self.buffer, False
                self.buffer = b""
                return
            body += data[:size]

    def close(self) -> None:
        self.sock.close()


def get(path: str, *headers: str, method: str = "GET", body: bytes = b"") -> bytes:
    """A request as bytes: Host added, Content-Length when there is a body."""
    lines = [f"{method} {path} HTTP/1.1", "Host: test", *headers]
    if body:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
