"""Signals under load: failed requests and time back to full capacity for each process event.

    python -m benchmarks.signals_load [--events hup,ttin,ttou,usr2,max_requests,kill9]
        [--modes shared,reuseport] [--rounds 1] [--connections 50] [--clients 2]

For each (round, mode, event) a fresh `treadle benchmarks.apps:hello --workers 2` starts (with
`--reuse-port` in the reuseport mode: a socket per worker), a load runs for `--pre` seconds,
the event happens, and the load goes on for `--post` seconds. Events: HUP, TTIN, TTOU (from 3
workers to 2, so that capacity can come back), USR2, `max_requests` recycling (the server
runs with `--max-requests 5000`; the event is the first dip of the throughput) and
`kill -9` of one worker. The load is `--clients` processes of asyncio keep-alive
connections (`--connections` in all), each sending the next GET as soon as the previous
answer is read, counting every request exactly:

- ok: a 200 answer, counted in 100 ms buckets (the throughput timeline);
- failed: a refused connection, a reset or end of stream in the middle of an answer, a
  non-200 status, no answer within 5 s; kill -9 is allowed the requests in flight on the
  killed worker;
- unanswered: the connection, reused for this request, was closed or reset before any
  byte of the answer. For kill -9 these are the killed worker's requests in flight (allowed);
  for the other events they would be a stopping worker closing an idle keep-alive connection
  as the next request crossed it (HTTP clients retry those, RFC 9110 section 9.2.2, but the
  goal is 0 here too).

The table gives, per event, the failures and the time from the event until the throughput
(a rolling 0.5 s mean) is back at 90 % of its median before the event, plus the lowest
100 ms bucket after the event as a share of that median. The timeline is noisy on a shared
machine: run several rounds (medians are printed) and read the failures first.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from benchmarks.stopping import stop_on_sigterm

REPO = Path(__file__).resolve().parent.parent
BUCKET_S = 0.1
ANSWER_TIMEOUT_S = 5.0
RECOVERED_SHARE = 0.9
ROLLING_BUCKETS = 5
EVENTS = ("hup", "ttin", "ttou", "usr2", "max_requests", "kill9")
REQUEST = b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n"
_LENGTH = re.compile(rb"(?i)\r\ncontent-length:\s*(\d+)")


@dataclass
class Counts:
    ok_buckets: list[int] = field(default_factory=list)
    failed: int = 0
    unanswered: int = 0
    reasons: dict[str, int] = field(default_factory=dict)

    def fail(self, reason: str) -> None:
        self.failed += 1
        self.reasons[reason] = self.reasons.get(reason, 0) + 1

    def merge(self, other: Counts) -> None:
        width = max(len(self.ok_buckets), len(other.ok_buckets))
        self.ok_buckets = [(self.ok_buckets[i] if i < len(self.ok_buckets) else 0)
                           + (other.ok_buckets[i] if i < len(other.ok_buckets) else 0)
                           for i in range(width)]
        self.failed += other.failed
        self.unanswered += other.unanswered
        for reason, count in other.reasons.items():
            self.reasons[reason] = self.reasons.get(reason, 0) + count


# -- the load (each client process) -------------------------------------------------------

async def _answer(reader: asyncio.StreamReader) -> tuple[bytes, bool]:
    head = await reader.readuntil(b"\r\n\r\n")
    match = _LENGTH.search(head)
    if match is None:
        raise ValueError("no Content-Length")
    await reader.readexactly(int(match.group(1)))
    return head[9:12], b"connection: close" in head.lower()


async def _connection(port: int, t0: float, end: float, counts: Counts) -> None:
    writer: asyncio.StreamWriter | None = None
    reader: asyncio.StreamReader | None = None
    reused = False
    while time.monotonic() < end:
        if writer is None:
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError as exc:
                counts.fail(f"connect: {type(exc).__name__}")
                await asyncio.sleep(0.01)
                continue
            reused = False
        assert reader is not None
        got_bytes = False
        try:
            writer.write(REQUEST)
            status, close = await asyncio.wait_for(_answer(reader), ANSWER_TIMEOUT_S)
            got_bytes = True
            if status != b"200":
                counts.fail(f"status {status.decode()}")
            else:
                index = max(0, int((time.monotonic() - t0) / BUCKET_S))
                counts.ok_buckets.extend([0] * (index + 1 - len(counts.ok_buckets)))
                counts.ok_buckets[index] += 1
            reused = True
            if close:
                writer.close()
                writer = None
        except (OSError, asyncio.IncompleteReadError, asyncio.TimeoutError,
                asyncio.LimitOverrunError, ValueError) as exc:
            partial = isinstance(exc, asyncio.IncompleteReadError) and bool(exc.partial)
            if reused and not partial and not got_bytes and \
                    not isinstance(exc, asyncio.TimeoutError):
                counts.unanswered += 1
            else:
                counts.fail(type(exc).__name__)
            if writer is not None:
                writer.close()
            writer = None


async def _client(port: int, connections: int, t0: float, end: float) -> Counts:
    counts = Counts()
    await asyncio.sleep(max(0.0, t0 - time.monotonic()))  # every client starts together
    await asyncio.gather(*(_connection(port, t0, end, counts) for _ in range(connections)))
    return counts


def _client_process(port: int, connections: int, t0: float, end: float,
                    results: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    counts = asyncio.run(_client(port, connections, t0, end))
    results.put((counts.ok_buckets, counts.failed, counts.unanswered, counts.reasons))


# -- the server and the event -------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(port: int, mode: str, event: str, workers: int, max_requests: int,
                 directory: Path) -> tuple[subprocess.Popen[bytes], Path, Path]:
    pidfile, log = directory / f"{mode}-{event}.pid", directory / f"{mode}-{event}.log"
    argv = [sys.executable, "-m", "treadle", "benchmarks.apps:hello", "--bind",
            f"127.0.0.1:{port}", "--workers", str(workers), "--pid", str(pidfile)]
    if mode == "reuseport":
        argv.append("--reuse-port")
    if event == "max_requests":
        argv += ["--max-requests", str(max_requests)]
    with open(log, "wb") as out:
        process = subprocess.Popen(argv, cwd=REPO, stdout=out, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 30
    while log.read_text(errors="replace").count(" serving") < workers:
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"treadle did not start:\n{log.read_text(errors='replace')}")
        time.sleep(0.05)
    return process, pidfile, log


def trigger(event: str, arbiter: int) -> None:
    if event == "kill9":
        victim = min(child.pid for child in psutil.Process(arbiter).children())
        os.kill(victim, signal.SIGKILL)
        return
    sig = {"hup": signal.SIGHUP, "ttin": signal.SIGTTIN, "ttou": signal.SIGTTOU,
           "usr2": signal.SIGUSR2}.get(event)
    if sig is not None:
        os.kill(arbiter, sig)


def stop_server(process: subprocess.Popen[bytes], pidfile: Path) -> None:
    try:  # after a USR2 the arbiter is the one in the pid file
        pids = {int(pidfile.read_text().strip()), process.pid}
    except (OSError, ValueError):
        pids = {process.pid}
    for pid in pids:
        try:
            os.killpg(pid, signal.SIGTERM) if pid == process.pid else os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    deadline = time.monotonic() + 15
    while any(psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
              for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.1)


def run_one(mode: str, event: str, args: argparse.Namespace, directory: Path) -> dict[str, float]:
    port = free_port()
    workers = 3 if event == "ttou" else 2
    process, pidfile, log = start_server(port, mode, event, workers, args.max_requests,
                                         directory)
    try:
        t0 = time.monotonic() + 0.3  # the clients start meanwhile
        end = t0 + args.pre + args.post
        results: multiprocessing.Queue = multiprocessing.Queue()  # type: ignore[type-arg]
        share = [args.connections // args.clients + (i < args.connections % args.clients)
                 for i in range(args.clients)]
        clients = [multiprocessing.Process(target=_client_process,
                                           args=(port, n, t0, end, results)) for n in share]
        for client in clients:
            client.start()
        time.sleep(max(0.0, t0 + args.pre - time.monotonic()))
        event_s = time.monotonic() - t0
        trigger(event, process.pid)
        counts = Counts()
        for _ in clients:
            ok, failed, unanswered, reasons = results.get(timeout=args.pre + args.post + 30)
            counts.merge(Counts(ok, failed, unanswered, reasons))
        for client in clients:
            client.join()
    finally:
        stop_server(process, pidfile)
    if event == "max_requests":  # nothing is sent: the event is the first recycling's dip
        event_s = first_dip_s(counts.ok_buckets) or event_s
    summary = summarize(counts, event_s)
    summary["recycled"] = log.read_text(errors="replace").count("recycling")
    return summary


def first_dip_s(buckets: list[int]) -> float | None:
    """When the rolling throughput first falls below 90 % of what came before it."""
    first = int(0.5 / BUCKET_S)
    for i in range(first + ROLLING_BUCKETS, len(buckets) - ROLLING_BUCKETS):
        before = statistics.median(buckets[first:i])
        if statistics.fmean(buckets[i:i + ROLLING_BUCKETS]) < RECOVERED_SHARE * before:
            return i * BUCKET_S
    return None


def summarize(counts: Counts, event_s: float) -> dict[str, float]:
    buckets = counts.ok_buckets
    first, event_index = int(0.5 / BUCKET_S), int(event_s / BUCKET_S)
    before = buckets[first:event_index] or [0]
    baseline = statistics.median(before)
    after = buckets[event_index:-1]  # the last bucket is cut short by the end
    recovered_s = float("nan")
    for i in range(len(after) - ROLLING_BUCKETS + 1):
        if statistics.fmean(after[i:i + ROLLING_BUCKETS]) >= RECOVERED_SHARE * baseline:
            recovered_s = max(0.0, (event_index + i) * BUCKET_S - event_s)
            break
    lowest = min(after) / baseline if after and baseline else float("nan")
    return {"failed": counts.failed, "unanswered": counts.unanswered, "recovered_s": recovered_s,
            "lowest_share": lowest, "baseline_rps": baseline / BUCKET_S,
            "ok": sum(buckets), "reasons": counts.reasons}  # type: ignore[dict-item]


# -- the table ----------------------------------------------------------------------------

def _median(values: list[float]) -> float:
    clean = [v for v in values if v == v]  # nan: never recovered within the window
    return statistics.median(clean) if clean else float("nan")


def print_table(results: dict[tuple[str, str], list[dict[str, float]]], rounds: int) -> None:
    print(f"\nmedians of {rounds} round(s); failed/unanswered per run in brackets")
    print("| mode | event | failed | unanswered | back to 90 % (s) | lowest 100 ms | "
          "req/s before |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for (mode, event), runs in results.items():
        failed = "/".join(str(int(r["failed"])) for r in runs)
        unanswered = "/".join(str(int(r["unanswered"])) for r in runs)
        print(f"| {mode} | {event} | {_median([r['failed'] for r in runs]):.0f} ({failed}) | "
              f"{_median([r['unanswered'] for r in runs]):.0f} ({unanswered}) | "
              f"{_median([r['recovered_s'] for r in runs]):.1f} | "
              f"{_median([r['lowest_share'] for r in runs]):.0%} | "
              f"{_median([r['baseline_rps'] for r in runs]):,.0f} |")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="signals_load", description=__doc__.split("\n")[0])
    parser.add_argument("--events", default=",".join(EVENTS))
    parser.add_argument("--modes", default="shared,reuseport")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--clients", type=int, default=2, help="load processes")
    parser.add_argument("--pre", type=float, default=2.0, help="seconds before the event")
    parser.add_argument("--post", type=float, default=4.0, help="seconds after it")
    parser.add_argument("--max-requests", type=int, default=5000,
                        help="for the max_requests event (per worker)")
    args = parser.parse_args(argv)
    args.events = [e for e in args.events.split(",") if e]
    args.modes = [m for m in args.modes.split(",") if m]
    unknown = set(args.events) - set(EVENTS) | set(args.modes) - {"shared", "reuseport"}
    if unknown:
        parser.error(f"unknown: {', '.join(sorted(unknown))}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    stop_on_sigterm()
    results: dict[tuple[str, str], list[dict[str, float]]] = {}
    with tempfile.TemporaryDirectory(prefix="signals-load-") as directory:
        for round_number in range(args.rounds):
            for event in args.events:
                for mode in args.modes:  # the modes take turns, event by event
                    run = run_one(mode, event, args, Path(directory))
                    results.setdefault((mode, event), []).append(run)
                    print(f"round {round_number + 1} {mode:9} {event:12} failed "
                          f"{run['failed']:.0f} unanswered {run['unanswered']:.0f} back in "
                          f"{run['recovered_s']:.1f}s lowest {run['lowest_share']:.0%} "
                          f"({run['baseline_rps']:,.0f} req/s before; recycled "
                          f"{run['recycled']:.0f}) {run['reasons'] or ''}", flush=True)
    print_table(results, args.rounds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
