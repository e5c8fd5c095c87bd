"""The CPU cost of one HTTP/2 request through treadle's own code and h2, in one thread.

    python -m benchmarks.h2path [--requests 20000] [--streams 10] [--profile]

A real H2Driver (server/http2.py) and a real h2 client on the two ends of a socket pair, but
no threads: the client sends `--streams` requests at a time, the driver reads them
(`_receive`), the pool's jobs (StreamRunner: the application through the one WSGI bridge)
run inline as they are dispatched, the driver frames their responses (`_on_wake`) and writes
them (`_flush`), and the client reads them. What it leaves out is exactly the thread
hand-offs (poller -> driver -> pool -> driver), so it shows the per-request work that any
design pays, steady on a busy machine where requests/s are not (the minimum of several
runs). Then the same exchange through h2 alone (`h2_floor`): what any server built on h2
pays at least. `--profile` prints where treadle's time goes, h2 against ours (cProfile).
"""

from __future__ import annotations

import argparse
import cProfile
import logging
import pstats
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if __package__ in (None, ""):  # run as a script: make `benchmarks` importable
    sys.path.insert(0, str(REPO))

import h2.config  # noqa: E402
import h2.connection  # noqa: E402
import h2.events  # noqa: E402
from treadle.config import Config  # noqa: E402
from treadle.protocol.http2 import new_server_connection  # noqa: E402
from treadle.server.http2 import H2Driver  # noqa: E402
from treadle.server.runtime import build_runtime  # noqa: E402

from benchmarks.apps import hello  # noqa: E402

REQUEST = [(":method", "GET"), (":path", "/"), (":scheme", "https"),
           (":authority", "127.0.0.1"), ("user-agent", "h2path"), ("accept", "*/*")]


class InlineHost:
    """A Server's Host with no threads: jobs run when dispatched."""

    stopping = False
    exiting = False

    def __init__(self) -> None:
        self.jobs: list[Any] = []

    def dispatch(self, job: Any) -> None:
        self.jobs.append(job)

    def run_jobs(self) -> None:
        while self.jobs:
            self.jobs.pop().serve()

    def idle_workers_likely(self) -> bool:
        return True

    def park(self, conn: Any) -> None:
        pass

    def connection_closed(self, conn: object) -> None:
        pass

    def out_of_resources(self, why: str) -> None:
        pass

    def h2_opened(self, conn: Any) -> None:
        pass

    def h2_closed(self, conn: Any) -> None:
        pass

    def h2_serve(self, turn: Callable[[], None]) -> None:
        pass  # no driver thread: the benchmark calls the driver's steps itself


def new_client() -> h2.connection.H2Connection:
    client = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    client.initiate_connection()
    return client


def ask(client: h2.connection.H2Connection, streams: int) -> bytes:
    """`streams` requests, as the client's bytes."""
    for _ in range(streams):
        client.send_headers(client.get_next_available_stream_id(), REQUEST, end_stream=True)
    return client.data_to_send()


def answered_in(client: h2.connection.H2Connection, data: bytes) -> int:
    """How many responses `data` completes (their DATA acknowledged, as a client does)."""
    answered = 0
    for event in client.receive_data(data):
        if isinstance(event, h2.events.StreamEnded):
            answered += 1
        elif isinstance(event, h2.events.DataReceived):
            client.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
    return answered


def one_run(requests: int, streams: int, profiler: cProfile.Profile | None = None) -> float:
    """The server side's CPU microseconds per request (the client's are not counted) for
    `requests` requests, `streams` at a time."""
    runtime = build_runtime(hello, Config(http2_cleartext="prior-knowledge"),
                            logging.getLogger("h2path"), None, False)
    host = InlineHost()
    ours, theirs = socket.socketpair()
    theirs.setblocking(False)
    driver = H2Driver(runtime, host, ours, "127.0.0.1", "1", ("127.0.0.1", 1), {})
    client = new_client()
    preface = client.data_to_send()
    driver.start()
    driver.first_turn = None
    driver._receive(preface)
    driver._flush()
    answered = 0
    clock = time.thread_time  # CPU time: waiting for a busy machine's core is not counted
    spent = 0.0
    while answered < requests:
        data = ask(client, streams)
        began = clock()  # the server's side only, from here
        if profiler is not None:
            profiler.enable()
        driver._receive(data)
        host.run_jobs()
        driver._on_wake(False)
        driver._flush()
        if profiler is not None:
            profiler.disable()
        spent += clock() - began
        while True:
            try:
                data = theirs.recv(1 << 20)
            except BlockingIOError:
                break
            answered += answered_in(client, data)
        pending = client.data_to_send()
        if pending:
            began = clock()
            driver._receive(pending)
            spent += clock() - began
    ours.close()
    theirs.close()
    return spent * 1e6 / answered


def print_shares(stats: pstats.Stats) -> None:
    """The server side's own time by package: h2's (h2, hpack, hyperframe) against ours."""
    shares: dict[str, float] = {}
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    for (filename, _line, _name), (_cc, _nc, tottime, _ct, _callers) in raw.items():
        part = "other (stdlib, builtins)"
        for package in ("h2", "hpack", "hyperframe"):
            if f"/{package}/" in filename:
                part = "h2, hpack, hyperframe"
        if "/server/" in filename or "/protocol/" in filename or "/config/" in filename:
            part = "treadle"
        shares[part] = shares.get(part, 0.0) + tottime
    total = sum(shares.values()) or 1.0
    for part, seconds in sorted(shares.items(), key=lambda item: -item[1]):
        print(f"{100 * seconds / total:5.1f}%  {part}")


RESPONSE_HEAD = [(b":status", b"200"), (b"content-type", b"text/plain"),
                 (b"content-length", b"14"), (b"date", b"Sat, 05 Dec 2026 09:00:00 GMT"),
                 (b"server", b"treadle")]


def h2_floor(requests: int, streams: int) -> float:
    """The h2 package's own CPU microseconds per request, server side, for the same
    exchange with treadle's h2 configuration: receive the requests, send each its head
    and 14-byte body, take the bytes. No policy, no WSGI, no socket: what any server built
    on h2 pays at least."""
    runtime = build_runtime(hello, Config(http2_cleartext="prior-knowledge"),
                            logging.getLogger("h2path"), None, False)
    server = new_server_connection(runtime.h2_limits)
    server.initiate_connection()
    client = new_client()
    server.receive_data(client.data_to_send())
    client.receive_data(server.data_to_send())
    clock = time.thread_time
    answered = 0
    spent = 0.0
    while answered < requests:
        data = ask(client, streams)
        began = clock()
        for event in server.receive_data(data):
            if isinstance(event, h2.events.RequestReceived):
                server.send_headers(event.stream_id, RESPONSE_HEAD)
                server.send_data(event.stream_id, b"Hello, world!\n", end_stream=True)
        out = server.data_to_send()
        spent += clock() - began
        answered += answered_in(client, out)
        began = clock()
        server.receive_data(client.data_to_send())
        spent += clock() - began
    return spent * 1e6 / answered


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.h2path", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--streams", type=int, default=10)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args(argv)
    logging.getLogger("h2path").addHandler(logging.NullHandler())
    if args.profile:
        profiler = cProfile.Profile()
        one_run(args.requests, args.streams, profiler)
        stats = pstats.Stats(profiler)
        print_shares(stats)
        stats.sort_stats("tottime").print_stats(25)
        return 0
    for name, run in (("treadle (driver, policy, WSGI bridge, h2)", one_run),
                      ("h2 alone, the same exchange", h2_floor)):
        times = [run(args.requests, args.streams) for _ in range(args.runs)]
        print(f"{name}: {min(times):.1f} us per request (best of {args.runs}; all: "
              f"{', '.join(f'{t:.1f}' for t in times)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
