"""Shared parts of the attack benchmark, the fuzzer and the soak: the server under test and
the clients that measure it.

`Target` runs `python -m treadle benchmarks.attack_app:app` on 127.0.0.1 (port 0, read
from the `Listening at:` line) and samples its RSS, threads and open descriptors with
psutil. `H1Client` and `H2Client` are the active clients: one keep-alive connection each,
asking `GET /` in a loop and recording when each answer came and how long it took, so
that any window of time gives requests/s and p99. `probe` asks once on a fresh connection.
Everything binds to loopback, and every process started here is stopped by its pid.
"""

from __future__ import annotations

import os
import re
import resource
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

REPO = Path(__file__).resolve().parent.parent
APP = "benchmarks.attack_app:app"
START_TIMEOUT_S = 60.0  # a busy machine can take long to import the server
STOP_TIMEOUT_S = 15.0
REQUEST_TIMEOUT_S = 2.0
_LISTENING = re.compile(r"Listening at: http://127\.0\.0\.1:(\d+)")
_LENGTH = re.compile(rb"\r\ncontent-length: *(\d+)", re.IGNORECASE)


def fd_limit(limit: int) -> Callable[[], None]:
    """A preexec_fn putting the child's open-file limit (soft and hard) at `limit`."""
    return lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))


@dataclass
class Sample:
    at: float
    rss_mib: float
    threads: int
    fds: int


class Target:
    """The server process under test."""

    def __init__(self, flags: Sequence[str] = (), log_path: Path | None = None,
                 preexec: Callable[[], None] | None = None, app: str = APP) -> None:
        self._own_log = log_path is None  # a temporary log, removed at stop()
        self.log_path = log_path or Path(tempfile.gettempdir()) / \
            f"treadle-attack-{os.getpid()}-{time.time_ns()}.log"
        argv = [sys.executable, "-m", "treadle", app, "--bind", "127.0.0.1:0",
                "--http2-cleartext", "prior-knowledge", *flags]
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(argv, cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, preexec_fn=preexec)
        self.port = self._wait_listening()
        self.ps = psutil.Process(self.process.pid)

    def _wait_listening(self) -> int:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            found = _LISTENING.search(self.log())
            if found:
                return int(found.group(1))
            if self.process.poll() is not None:
                break
            time.sleep(0.02)
        log = self.log()  # before stop(), which removes a temporary log
        self.stop()
        raise RuntimeError(f"the server did not start:\n{log}")

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def alive(self) -> bool:
        return self.process.poll() is None

    def sample(self) -> Sample | None:
        try:
            with self.ps.oneshot():
                return Sample(time.monotonic(), self.ps.memory_info().rss / 2**20,
                              self.ps.num_threads(), self.ps.num_fds())
        except psutil.Error:
            return None

    def cpu_seconds(self) -> float:
        try:
            times = self.ps.cpu_times()
        except psutil.Error:
            return 0.0
        return float(times.user + times.system)

    def settle_fds(self, at_most: int, timeout_s: float) -> int:
        """Wait until the server holds at most `at_most` descriptors; the count it reached."""
        deadline = time.monotonic() + timeout_s
        while True:
            sample = self.sample()
            fds = sample.fds if sample else -1
            if fds <= at_most or time.monotonic() > deadline:
                return fds
            time.sleep(0.05)

    def stop(self) -> int:
        """SIGTERM, then SIGKILL if it lingers; the exit status."""
        if self.process.poll() is None:
            self.process.terminate()
        try:
            status = self.process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            status = self.process.wait()
        if self._own_log:
            self.log_path.unlink(missing_ok=True)
        return status


class Sampler:
    """Samples the target every `interval_s` in a thread; `window` gives the peak in a span."""

    def __init__(self, target: Target, interval_s: float = 0.1) -> None:
        self.target, self.interval_s = target, interval_s
        self.samples: list[Sample] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            sample = self.target.sample()
            if sample:
                self.samples.append(sample)

    def peak(self, start: float, end: float) -> dict[str, float]:
        inside = [s for s in self.samples if start <= s.at <= end] or self.samples[-1:]
        return {"rss_mib": max((s.rss_mib for s in inside), default=0.0),
                "threads": max((s.threads for s in inside), default=0),
                "fds": max((s.fds for s in inside), default=0)}

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def read_response(sock: socket.socket, buffer: bytearray) -> int:
    """Read one response with a Content-Length from `sock`; its status (raises OSError)."""
    while (end := buffer.find(b"\r\n\r\n")) < 0:
        _fill(sock, buffer)
    length_match = _LENGTH.search(bytes(buffer[:end + 2]))
    length = int(length_match.group(1)) if length_match else 0
    while len(buffer) < end + 4 + length:
        _fill(sock, buffer)
    status = int(buffer[9:12])
    del buffer[:end + 4 + length]
    return status


def _fill(sock: socket.socket, buffer: bytearray) -> None:
    data = sock.recv(65536)
    if not data:
        raise ConnectionError("closed by the server")
    buffer += data


def probe(port: int, timeout_s: float = REQUEST_TIMEOUT_S, path: str = "/") -> bool:
    """One `GET` on a fresh connection: answered with 200 within the timeout?"""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as sock:
            sock.sendall(b"GET %s HTTP/1.1\r\nHost: probe\r\nConnection: close\r\n\r\n"
                         % path.encode())
            return read_response(sock, bytearray()) == 200
    except OSError:
        return False


@dataclass
class Record:
    """What an active client saw: (time answered, seconds taken) per answer, and failures."""

    done: list[tuple[float, float]] = field(default_factory=list)
    failures: int = 0

    def window(self, start: float, end: float) -> dict[str, float | None]:
        latencies = sorted(took for at, took in self.done if start <= at < end)
        p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] \
            if latencies else None
        return {"rps": len(latencies) / max(end - start, 1e-9), "answered": len(latencies),
                "p99_ms": None if p99 is None else p99 * 1000}


class ActiveClient:
    """Asks in a loop on one kept connection (reopened when lost) until stopped."""

    name = "client"

    def __init__(self, port: int) -> None:
        self.port = port
        self.record = Record()
        self.running = threading.Event()  # cleared: paused between requests
        self.running.set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)

    def start(self) -> ActiveClient:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self.running.set()
        self._thread.join(REQUEST_TIMEOUT_S * 3)

    def _run(self) -> None:
        conn: Any = None
        while not self._stop.is_set():
            if not self.running.is_set():
                if conn is not None:  # a paused client leaves the server idle
                    self.close(conn)
                    conn = None
                self.running.wait()
                continue
            began = time.monotonic()
            try:
                conn = conn or self.connect()
                self.ask(conn)
            except Exception:  # noqa: BLE001 - any failure is counted, then a new connection
                self.record.failures += 1
                if conn is not None:
                    self.close(conn)
                conn = None
                self._stop.wait(0.05)
                continue
            now = time.monotonic()
            self.record.done.append((now, now - began))
        if conn is not None:
            self.close(conn)

    def connect(self) -> Any:
        raise NotImplementedError

    def ask(self, conn: Any) -> None:
        raise NotImplementedError

    def close(self, conn: Any) -> None:
        raise NotImplementedError


class H1Client(ActiveClient):
    name = "h1-client"
    REQUEST = b"GET / HTTP/1.1\r\nHost: active\r\n\r\n"

    def connect(self) -> Any:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=REQUEST_TIMEOUT_S)
        return sock, bytearray()

    def ask(self, conn: Any) -> None:
        sock, buffer = conn
        sock.sendall(self.REQUEST)
        if read_response(sock, buffer) != 200:
            raise ConnectionError("not 200")

    def close(self, conn: Any) -> None:
        conn[0].close()


class H2Conn:
    """A minimal h2c (prior knowledge) client connection: one stream at a time."""

    def __init__(self, port: int, timeout_s: float = REQUEST_TIMEOUT_S) -> None:
        import h2.config
        import h2.connection

        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout_s)
        self.conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        self.conn.initiate_connection()
        self.sock.sendall(self.conn.data_to_send())

    def get(self, path: str = "/") -> int:
        """One request; its status (raises on a reset, GOAWAY or close)."""
        import h2.events

        stream = self.conn.get_next_available_stream_id()
        self.conn.send_headers(stream, [(":method", "GET"), (":scheme", "http"),
                                        (":authority", "127.0.0.1"), (":path", path)],
                               end_stream=True)
        self.sock.sendall(self.conn.data_to_send())
        status = 0
        while True:
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("closed by the server")
            for event in self.conn.receive_data(data):
                if isinstance(event, h2.events.ResponseReceived) and event.stream_id == stream:
                    status = int(dict(event.headers)[b":status"])
                elif isinstance(event, h2.events.DataReceived):
                    self.conn.acknowledge_received_data(event.flow_controlled_length,
                                                        event.stream_id)
                elif isinstance(event, (h2.events.StreamReset, h2.events.ConnectionTerminated)):
                    raise ConnectionError(f"reset: {event}")
                elif isinstance(event, h2.events.StreamEnded) and event.stream_id == stream:
                    self.sock.sendall(self.conn.data_to_send())
                    return status
            self.sock.sendall(self.conn.data_to_send())

    def close(self) -> None:
        self.sock.close()


class H2Client(ActiveClient):
    name = "h2-client"

    def connect(self) -> Any:
        return H2Conn(self.port)

    def ask(self, conn: Any) -> None:
        if conn.get() != 200:
            raise ConnectionError("not 200")

    def close(self, conn: Any) -> None:
        conn.close()


def h2_probe(port: int, path: str = "/") -> bool:
    """One HTTP/2 stream on a fresh h2c connection: answered with 200?"""
    try:
        conn = H2Conn(port)
    except OSError:
        return False
    try:
        return conn.get(path) == 200
    except Exception:  # noqa: BLE001 - h2 raises its own errors on a broken peer
        return False
    finally:
        conn.close()


def slot_check(target: Target, count: int, timeout_s: float = 10.0) -> bool:
    """Are `count` connection slots free? Opens `count` connections in a state the server
    never evicts (a small request body still arriving, held by the poller) and waits until the
    server holds a descriptor for each; then finishes and closes them."""
    base = target.sample()
    if base is None:
        return False
    socks: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.create_connection(("127.0.0.1", target.port), timeout=timeout_s)
            sock.sendall(b"POST /upload HTTP/1.1\r\nHost: slots\r\nContent-Length: 1\r\n\r\n")
            socks.append(sock)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            sample = target.sample()
            if sample and sample.fds >= base.fds + count:
                return True
            time.sleep(0.05)
        return False
    finally:
        for sock in socks:
            sock.close()
