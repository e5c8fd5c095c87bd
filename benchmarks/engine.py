"""Benchmark: the HTTP/1.1 engine (`protocol`) against h11, same work, one run.

    python benchmarks/engine.py            # all scenarios, median of 7 rounds
    python benchmarks/engine.py --rounds 3 --scenario keepalive
    python benchmarks/engine.py --profile keepalive   # cProfile of protocol only

Scenarios (server side, as a WSGI server drives the engine):
- keepalive: a ~400-byte GET with 8 headers -> events to EndOfMessage -> send Response +
  Data + EndOfMessage -> start_next_cycle();
- keepalive-varied: the same, but each of 4,096 requests in turn has its own target and
  Cookie value, more than the engine's caches of field lines and request lines hold (1,024
  each), so those two lines always miss: the cost when traffic does not repeat;
- bytewise: the same request arriving one byte at a time (a slow client);
- upload-chunked: a 1 MiB POST in 16 KiB chunks, received in 64 KiB reads;
- upload-length: a 1 MiB POST with Content-Length, received in 64 KiB reads.
Before timing, each scenario checks that both engines give identical events.
"""

from __future__ import annotations

import argparse
import cProfile
import itertools
import os
import platform
import pstats
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import h11  # noqa: E402

from treadle import protocol  # noqa: E402

GET = (
    b"GET /api/v1/items/12345?fields=name,price&lang=en HTTP/1.1\r\n"
    b"Host: shop.example.com\r\n"
    b"User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n"
    b"Accept: application/json, text/plain, */*\r\n"
    b"Accept-Language: en-GB,en;q=0.5\r\n"
    b"Accept-Encoding: gzip, deflate, br, zstd\r\n"
    b"Referer: https://shop.example.com/items\r\n"
    b"Cookie: session=4f6a9c2e8b1d7a3f; theme=dark\r\n"
    b"Connection: keep-alive\r\n"
    b"\r\n"
)
BODY = b"x" * (1024 * 1024)
CHUNK = 16 * 1024
READ = 64 * 1024
RESPONSE_BODY = b"Hello, world!"


def _chunked(body: bytes) -> bytes:
    pieces = [b"%x\r\n%s\r\n" % (len(body[i : i + CHUNK]), body[i : i + CHUNK])
              for i in range(0, len(body), CHUNK)]
    return b"".join(pieces) + b"0\r\n\r\n"


UPLOAD_CHUNKED = (b"POST /upload HTTP/1.1\r\nHost: shop.example.com\r\n"
                  b"Content-Type: application/octet-stream\r\n"
                  b"Transfer-Encoding: chunked\r\n\r\n" + _chunked(BODY))
UPLOAD_LENGTH = (b"POST /upload HTTP/1.1\r\nHost: shop.example.com\r\n"
                 b"Content-Type: application/octet-stream\r\n"
                 b"Content-Length: %d\r\n\r\n" % len(BODY) + BODY)


def _reads(raw: bytes, size: int) -> list[bytes]:
    return [raw[i : i + size] for i in range(0, len(raw), size)]


def _varied_gets(count: int) -> list[list[bytes]]:
    """`count` GETs that differ in their request line and Cookie line."""
    return [[GET.replace(b"/items/12345", b"/items/%d" % number)
             .replace(b"session=4f6a9c2e8b1d7a3f", b"session=%016x" % (number * 2654435761))]
            for number in range(count)]


# Each scenario is a list of cycles, run in turn; a cycle is the list of reads it arrives in.
SCENARIOS: dict[str, list[list[bytes]]] = {
    "keepalive": [[GET]],
    "keepalive-varied": _varied_gets(4096),
    "bytewise": [_reads(GET, 1)],
    "upload-chunked": [_reads(UPLOAD_CHUNKED, READ)],
    "upload-length": [_reads(UPLOAD_LENGTH, READ)],
}


def make_cycle(
    engine: ModuleType, cycles: list[list[bytes]], keep_events: bool = False
) -> tuple[Callable[[], None], list[Any]]:
    """A function running one request/response cycle on one kept-alive connection (the
    next of `cycles` each time), and the list it records events into when `keep_events`
    (for the identical-events check; not while timing, where keeping 1 MiB per cycle would
    measure the allocator)."""
    conn = engine.Connection(engine.SERVER)
    turn = itertools.cycle(cycles).__next__
    need_data = engine.NEED_DATA
    end_of_message = engine.EndOfMessage
    response_cls = engine.Response
    data_cls = engine.Data
    seen: list[Any] = []
    record = seen.append if keep_events else (lambda event: None)

    def cycle() -> None:
        for piece in turn():
            conn.receive_data(piece)
            while True:
                event = conn.next_event()
                if event is need_data:
                    break
                record(event)
                if type(event) is end_of_message:
                    break
        conn.send(response_cls(status_code=200, headers=[
            ("Content-Type", "text/plain"), ("Content-Length", "13")]))
        conn.send(data_cls(data=RESPONSE_BODY))
        conn.send(end_of_message())
        conn.start_next_cycle()

    return cycle, seen


def describe(event: Any) -> Any:
    name = type(event).__name__
    if name == "Data":
        return (name, bytes(event.data), event.chunk_start, event.chunk_end)
    if name == "Request":
        return (name, event.method, event.target, event.http_version,
                event.headers.raw_items())
    return (name, event.headers.raw_items())


def check_identical(cycles: list[list[bytes]]) -> None:
    outcomes = []
    for engine in (h11, protocol):
        cycle, seen = make_cycle(engine, cycles[:3], keep_events=True)
        for _ in range(4):
            cycle()
        outcomes.append([describe(e) for e in seen])
    if outcomes[0] != outcomes[1]:
        raise SystemExit("the engines gave different events; not benchmarking")


def measure(cycle: Callable[[], None], min_time_s: float) -> float:
    """Cycles per CPU second of this process over at least `min_time_s` of CPU time.

    CPU time rather than wall time: on a shared machine other processes' load would
    otherwise count against whichever engine happened to be running."""
    count = 0
    start = time.process_time()
    deadline = start + min_time_s
    now = start
    while now < deadline:
        for _ in range(8):
            cycle()
        count += 8
        now = time.process_time()
    return count / (now - start)


def run_scenario(name: str, rounds: int, min_time_s: float) -> tuple[float, float]:
    scenario = SCENARIOS[name]
    check_identical(scenario)
    cycles = {engine: make_cycle(engine, scenario)[0] for engine in (h11, protocol)}
    results: dict[ModuleType, list[float]] = {h11: [], protocol: []}
    for _ in range(rounds):
        for engine in (h11, protocol):  # interleaved, so drift hits both alike
            results[engine].append(measure(cycles[engine], min_time_s))
    return statistics.median(results[h11]), statistics.median(results[protocol])


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (f"{platform.python_implementation()} {platform.python_version()}, {cpu}, "
            f"{os.cpu_count()} CPUs, {platform.system()} {platform.release()}")


def profile(name: str) -> None:
    cycle, _ = make_cycle(protocol, SCENARIOS[name])
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(50 if name.startswith("upload") else 2000):
        cycle()
    profiler.disable()
    pstats.Stats(profiler).sort_stats("tottime").print_stats(25)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=7, help="rounds per engine (median)")
    parser.add_argument("--time", type=float, default=0.5, help="seconds per round")
    parser.add_argument("--scenario", choices=sorted(SCENARIOS), action="append")
    parser.add_argument("--profile", choices=sorted(SCENARIOS))
    args = parser.parse_args(argv)
    if args.profile:
        profile(args.profile)
        return 0
    print(f"# {machine()}; h11 {h11.__version__}; median of {args.rounds} rounds;"
          " cycles per CPU second")
    print(f"{'scenario':16} {'h11 cycles/s':>14} {'protocol cycles/s':>18} {'ratio':>7}")
    for name in args.scenario or list(SCENARIOS):
        theirs, ours = run_scenario(name, args.rounds, args.time)
        print(f"{name:16} {theirs:14,.0f} {ours:18,.0f} {ours / theirs:6.2f}x", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
