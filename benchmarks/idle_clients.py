"""Many mostly idle clients: keep-alive HTTP/1.1 ones for the 500-connection load of the
peer benchmark, and idle HTTP/2 ones (run alone) to show what they cost the server.

HTTP/1.1 (`IdleClients`, used by benchmarks/peers.py): wrk cannot tell which of its
connections were never served, so this client holds the idle connections itself: each sends
`GET /`, reads the answer, waits about `interval_s` (jittered) and asks again, on one
keep-alive connection for the whole run. It counts what was sent and answered, how many
connections were served at all, errors and requests left waiting longer than `timeout_s`.
One thread and one selector: the load it adds is a few hundred requests per second, small
next to wrk on the same core.

HTTP/2 (`IdleH2Clients`, and this module's command line): N connections (h2c with prior
knowledge, or TLS with ALPN h2) that exchange SETTINGS and then stay silent. Run alone it
starts treadle (pinned to one core), measures an active client (h2load, on the other core:
requests/s and p99) without the idle connections, opens them, samples the server's threads
and descriptors, and measures the active client again:

    python -m benchmarks.idle_clients --http2 h2c --idle 2000 [--duration 5] [--threads 8] [--gc]

With `--gc` the server counts its garbage collections (benchmarks/gcwatch.py) and each
active run reports those that ran meanwhile, per generation: how many, their total and the
longest in milliseconds, wall clock and CPU (a full collection stops every thread), and
one full collection is timed without and with the idle connections.
"""
from __future__ import annotations

import argparse
import errno
import heapq
import json
import os
import random
import selectors
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.stopping import stop_on_sigterm

REPO = Path(__file__).resolve().parent.parent
if __package__ in (None, ""):  # run as a script: make `benchmarks` importable
    sys.path.insert(0, str(REPO))

READ_BYTES = 65536


@dataclass
class IdleStats:
    connections: int = 0
    served_connections: int = 0
    sent: int = 0
    answered: int = 0
    errors: int = 0
    timeouts: int = 0
    closed_by_server: int = 0


@dataclass(eq=False)
class _Client:
    index: int
    sock: socket.socket | None = None
    connected: bool = False
    buffer: bytearray = field(default_factory=bytearray)
    sent_at: float | None = None
    timed_out: bool = False
    served: bool = False
    schedule: int = 0  # generation of the one pending wake-up; older heap entries are stale


class IdleClients:
    """Hold `count` keep-alive connections to 127.0.0.1:`port`, each asking now and then."""

    def __init__(self, port: int, count: int, interval_s: float = 1.0, timeout_s: float = 2.0):
        self._address = ("127.0.0.1", port)
        self._request = b"GET / HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n" % port
        self._interval_s = interval_s
        self._timeout_s = timeout_s
        self._clients = [_Client(i) for i in range(count)]
        self._selector = selectors.DefaultSelector()
        self._due: list[tuple[float, int, int]] = []  # (when, client index, generation)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._stats = IdleStats(connections=count)
        self._next_timeout_check = 0.0
        self._thread = threading.Thread(target=self._run, name="idle-clients", daemon=True)

    def start(self) -> None:
        for client in self._clients:
            # Spread the connects over a tenth of a second, as real clients would arrive.
            self._schedule(client, random.random() * 0.1)
        self._thread.start()

    def _schedule(self, client: _Client, delay_s: float) -> None:
        client.schedule += 1
        heapq.heappush(self._due, (time.monotonic() + delay_s, client.index, client.schedule))

    def served_count(self) -> int:
        with self._lock:
            return self._stats.served_connections

    def stop(self) -> IdleStats:
        self._stop.set()
        self._thread.join(timeout=10)
        now = time.monotonic()
        with self._lock:
            for client in self._clients:
                if client.sent_at is not None and not client.timed_out:
                    if now - client.sent_at > self._timeout_s:
                        self._stats.timeouts += 1
                if client.sock is not None:
                    client.sock.close()
            self._selector.close()
            return IdleStats(**vars(self._stats))

    def _run(self) -> None:
        while not self._stop.is_set():
            now = time.monotonic()
            while self._due and self._due[0][0] <= now:
                _, index, generation = heapq.heappop(self._due)
                client = self._clients[index]
                if generation == client.schedule:
                    self._send(client)
            wait_s = 0.05 if not self._due else min(0.05, max(0.0, self._due[0][0] - now))
            for key, _ in self._selector.select(wait_s):
                self._on_ready(key.data)
            self._check_timeouts(time.monotonic())

    def _send(self, client: _Client) -> None:
        if client.sock is None:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setblocking(False)
            code = sock.connect_ex(self._address)
            if code not in (0, errno.EINPROGRESS):
                sock.close()
                self._fail(client)
                return
            client.sock, client.connected = sock, False
            self._selector.register(sock, selectors.EVENT_WRITE, client)
            return
        try:
            client.sock.send(self._request)  # tiny: always fits the empty send buffer
        except OSError:
            self._fail(client)
            return
        client.sent_at, client.timed_out = time.monotonic(), False
        with self._lock:
            self._stats.sent += 1

    def _on_ready(self, client: _Client) -> None:
        assert client.sock is not None
        if not client.connected:
            if client.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) != 0:
                self._fail(client)
                return
            client.connected = True
            self._selector.modify(client.sock, selectors.EVENT_READ, client)
            self._send(client)
            return
        try:
            data = client.sock.recv(READ_BYTES)
        except BlockingIOError:
            return
        except OSError:
            self._fail(client)
            return
        if not data:
            self._closed_by_server(client)
            return
        client.buffer += data
        self._parse(client)

    def _parse(self, client: _Client) -> None:
        head_end = client.buffer.find(b"\r\n\r\n")
        if head_end < 0:
            return
        head = bytes(client.buffer[:head_end]).lower()
        length = None
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name == b"content-length" and value.strip().isdigit():
                length = int(value.strip())
        if length is None or not head.startswith((b"http/1.1 200", b"http/1.0 200")):
            self._fail(client)
            return
        if len(client.buffer) < head_end + 4 + length:
            return
        del client.buffer[: head_end + 4 + length]
        with self._lock:
            self._stats.answered += 1
            if not client.served:
                client.served = True
                self._stats.served_connections += 1
        client.sent_at = None
        if client.buffer:  # an answer nobody asked for: the stream is out of step
            self._fail(client)
            return
        self._schedule(client, self._interval_s * (0.5 + random.random()))

    def _check_timeouts(self, now: float) -> None:
        if now < self._next_timeout_check:
            return
        self._next_timeout_check = now + 0.1
        for client in self._clients:
            if client.sent_at is not None and not client.timed_out:
                if now - client.sent_at > self._timeout_s:
                    client.timed_out = True  # counted once; keep waiting for the answer
                    with self._lock:
                        self._stats.timeouts += 1

    def _drop(self, client: _Client) -> None:
        if client.sock is not None:
            self._selector.unregister(client.sock)
            client.sock.close()
        client.sock, client.connected, client.sent_at = None, False, None
        client.buffer.clear()
        self._schedule(client, self._interval_s)

    def _fail(self, client: _Client) -> None:
        with self._lock:
            self._stats.errors += 1
        self._drop(client)

    def _closed_by_server(self, client: _Client) -> None:
        # Closing an idle keep-alive connection is the server's right; closing one with a
        # request outstanding loses that request.
        with self._lock:
            if client.sent_at is None:
                self._stats.closed_by_server += 1
            else:
                self._stats.errors += 1
        self._drop(client)


# -- idle HTTP/2 connections ----------------------------------------------------------------

H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
H2_SETTINGS = bytes.fromhex("000000040000000000")  # an empty SETTINGS frame
H2_SETTINGS_ACK = bytes.fromhex("000000040100000000")


class IdleH2Clients:
    """Hold `count` HTTP/2 connections to 127.0.0.1:`port` that exchange SETTINGS and then
    say nothing (TLS with ALPN h2 given `context`, else h2c with prior knowledge)."""

    def __init__(self, port: int, count: int, context: ssl.SSLContext | None = None) -> None:
        self._port = port
        self._count = count
        self._context = context
        self.socks: list[socket.socket] = []

    def open(self) -> int:
        """Connect them one after another; how many got the server's SETTINGS."""
        served = 0
        for _ in range(self._count):
            try:
                sock = socket.create_connection(("127.0.0.1", self._port), timeout=10)
                if self._context is not None:
                    sock = self._context.wrap_socket(sock, server_hostname="127.0.0.1")
                sock.sendall(H2_PREFACE + H2_SETTINGS)
                if sock.recv(65536)[3:4] == b"\x04":
                    sock.sendall(H2_SETTINGS_ACK)
                    served += 1
                sock.setblocking(False)
                self.socks.append(sock)
            except OSError:
                continue
        return served

    def still_open(self) -> int:
        """How many the server has not closed (what it sent meanwhile is read and dropped)."""
        count = 0
        for sock in self.socks:
            try:
                count += bool(sock.recv(65536))
            except (BlockingIOError, ssl.SSLWantReadError):
                count += 1
            except OSError:
                pass
        return count

    def close(self) -> None:
        for sock in self.socks:
            sock.close()
        self.socks = []


def server_threads_and_fds(pid: int) -> tuple[int, int]:
    return len(os.listdir(f"/proc/{pid}/task")), len(os.listdir(f"/proc/{pid}/fd"))


def gc_stats(port: int, tls: bool, path: str = "/gc-stats") -> dict[str, Any]:
    """The server's garbage collections since the last call (benchmarks/gcwatch.py), or
    with `/gc-full` the cost of one full collection, asked over HTTP/1.1 on a connection of
    its own."""
    import http.client

    conn: http.client.HTTPConnection
    if tls:
        context = ssl.create_default_context()
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
        conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=30, context=context)
    else:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", path)
        return dict(json.loads(conn.getresponse().read()))
    finally:
        conn.close()


def active_h2load(h2load: str, url: str, args: argparse.Namespace, scratch: Path,
                  ) -> dict[str, Any]:
    """The active client: h2load for `args.duration` s; requests/s, p99 and failures (and,
    with --gc, the server's collections meanwhile: generation -> [count, total ms, longest
    ms, total CPU ms, longest CPU ms])."""
    from benchmarks.h2peers import p99_ms, parse_h2load
    from benchmarks.peers import pin_to

    port = int(url.rsplit(":", 1)[1].strip("/"))
    if args.gc:
        gc_stats(port, url.startswith("https"))
    request_log = scratch / "requests.log"
    completed = subprocess.run(
        [h2load, "-D", str(args.duration), "-c", str(args.active_connections), "-m",
         str(args.active_streams), "-t", "1", f"--log-file={request_log}", url],
        capture_output=True, text=True, timeout=args.duration + 30,
        preexec_fn=pin_to(args.client_cpu))
    figures = parse_h2load(completed.stdout)
    result = {"rps": figures["rps"], "p99_ms": p99_ms(request_log), "failed": figures["failed"]}
    if args.gc:
        result["gc"] = gc_stats(port, url.startswith("https"))
    return result


def run_http2(args: argparse.Namespace, h2load: str) -> dict[str, Any]:
    from benchmarks.h2peers import answers, make_certificate
    from benchmarks.peers import free_port, pin_to, stop_process_group

    tls = args.http2 == "tls"
    port = free_port()
    with tempfile.TemporaryDirectory() as scratch_name:
        scratch = Path(scratch_name)
        cert, key = make_certificate(scratch)
        app = "benchmarks.gcwatch:hello" if args.gc else "benchmarks.apps:hello"
        command = [sys.executable, "-m", "treadle", app, "--bind",
                   f"127.0.0.1:{port}", "--threads", str(args.threads), "--keep-alive",
                   "3600", "--header-timeout", "3600", "--worker-connections",
                   str(args.idle + 100)]
        command += ["--certfile", cert, "--keyfile", key] if tls else [
            "--http2-cleartext", "prior-knowledge"]
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
        server = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL, start_new_session=True,
                                  preexec_fn=pin_to(args.server_cpu))
        try:
            while not answers(port, tls):
                if server.poll() is not None:
                    raise RuntimeError("treadle did not start")
                time.sleep(0.1)
            url = f"{'https' if tls else 'http'}://127.0.0.1:{port}/"
            result: dict[str, Any] = {"mode": args.http2, "idle": args.idle}
            result["threads_fds_before"] = server_threads_and_fds(server.pid)
            result["without_idle"] = active_h2load(h2load, url, args, scratch)
            if args.gc:
                result["full_collection"] = gc_stats(port, tls, "/gc-full")
            context = None
            if tls:
                context = ssl.create_default_context()
                context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
                context.set_alpn_protocols(["h2"])
            idle = IdleH2Clients(port, args.idle, context)
            started = time.monotonic()
            result["idle_served"] = idle.open()
            result["idle_open_s"] = round(time.monotonic() - started, 1)
            time.sleep(3.0)  # let the last ones park (and be packed: server/h2cold.py)
            result["threads_fds_idle"] = server_threads_and_fds(server.pid)
            result["with_idle"] = active_h2load(h2load, url, args, scratch)
            if args.gc:
                result["full_collection_idle"] = gc_stats(port, tls, "/gc-full")
            result["threads_fds_after"] = server_threads_and_fds(server.pid)
            result["idle_still_open"] = idle.still_open()
            idle.close()
            return result
        finally:
            stop_process_group(server)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.idle_clients",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--http2", choices=["h2c", "tls"], required=True)
    parser.add_argument("--idle", type=int, default=2000, help="idle connections (2000)")
    parser.add_argument("--duration", type=int, default=5, help="seconds per active run (5)")
    parser.add_argument("--threads", type=int, default=8, help="worker threads (8)")
    parser.add_argument("--active-connections", type=int, default=1)
    parser.add_argument("--active-streams", type=int, default=1)
    parser.add_argument("--gc", action="store_true",
                        help="record the server's garbage collections during each active "
                             "run (benchmarks/gcwatch.py)")
    parser.add_argument("--server-cpu", type=int, default=0)
    parser.add_argument("--client-cpu", type=int, default=1)
    args = parser.parse_args(argv)
    stop_on_sigterm()
    h2load = shutil.which("h2load")
    if h2load is None:
        print("needs h2load (apt-get install nghttp2-client)", file=sys.stderr)
        return 2
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = args.idle + 256
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(wanted, hard), hard))
    result = run_http2(args, h2load)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
