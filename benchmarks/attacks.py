"""The attacks of issue 14 against the real server, with active clients measured throughout.

    python -m benchmarks.attacks                       # every scenario, 5 s phases
    python -m benchmarks.attacks --scenarios idle-flood,ping --duration 3 --json out.json
    python -m benchmarks.attacks --short               # the test suite's scale (seconds each)

Each scenario starts a fresh `python -m treadle benchmarks.attack_app:app` on 127.0.0.1
(h2c by prior knowledge on, so the HTTP/2 attacks and client need no TLS). An HTTP/1.1
keep-alive client and an HTTP/2 client ask `GET /` in a loop; they are measured for one
phase before the attack, one during (after a short ramp, with a probe on a fresh connection
every eighth of the phase) and one after. Between the attack's end and the after phase the
clients pause: the server's CPU in that second is its own work left over from the attack,
then it must give back its descriptors (to the count it had before any client came) and
every connection slot (`slot_check`). RSS, threads and descriptors are sampled every 0.1 s.
It prints one table (`cut`: attacking connections the server closed, such as the slow
readers and uploaders below the minimum data rates, or silent ones evicted at the cap);
`--json` writes every figure. Bounded: every attack has a fixed number of connections, every
phase a fixed length, and every process and socket is closed at the end.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import queue
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if __package__ in (None, ""):  # run as a script: make `benchmarks` importable
    sys.path.insert(0, str(REPO))

from treadle.protocol.http2 import FLOOD_PAUSE_S  # noqa: E402

from benchmarks import attackers as at  # noqa: E402
from benchmarks.attackkit import (  # noqa: E402
    H1Client,
    H2Client,
    Sampler,
    Target,
    fd_limit,
    h2_probe,
    probe,
    slot_check,
)
from benchmarks.peers import raise_fd_limit  # noqa: E402
from benchmarks.stopping import stop_on_sigterm  # noqa: E402

Attack = Any  # Holders or Flood: start() and stop() -> Counters
FD_LIMIT = 256
SLOW_THREADS = 4  # the pool under the slow-reader and slow-upload attacks


@dataclass(frozen=True)
class Scale:
    short: bool

    def pick(self, full: int, short: int) -> int:
        return short if self.short else full

    @property
    def cpu_window_s(self) -> float:  # the server's CPU is measured over this after the attack
        return 0.3 if self.short else 1.0

    @property
    def flood_budget_bytes(self) -> int | None:
        """Per flooding connection: short runs must not leave seconds of buffered frames."""
        return 1 << 20 if self.short else None

    @property
    def probe_timeout_s(self) -> float:
        return 1.0 if self.short else 2.0

    @property
    def connections(self) -> int:  # worker_connections of the server under attack
        return self.pick(200, 64)


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    attack: Callable[[int, Scale], Attack]
    flags: Callable[[Scale], tuple[str, ...]] = lambda scale: (
        "--worker-connections", str(scale.connections))
    fd_limit: int | None = None
    handled_during: bool = False  # main already serves the active client during the attack
    goaway: bool = False  # the server ends attacking connections with GOAWAY

    def attack_s(self, duration_s: float, scale: Scale) -> float:
        """How long the attack is measured: a flood long enough, even at the short scale,
        for the server to pause it once and cut it at its next excess (GOAWAY)."""
        return max(duration_s, FLOOD_PAUSE_S + 0.6) if self.goaway and scale.short \
            else duration_s


def _few_threads(scale: Scale) -> tuple[str, ...]:
    """Slow clients against a pool of 4 threads: more attackers than workers."""
    return ("--worker-connections", str(scale.connections), "--threads", str(SLOW_THREADS))


def _holders(plan: Callable[[Scale], at.HolderPlan]) -> Callable[[int, Scale], Attack]:
    return lambda port, scale: at.Holders(port, plan(scale))


def _flood(opening: bytes, block: Callable[[int], bytes]) -> Callable[[int, Scale], Attack]:
    return lambda port, scale: at.Flood(port, scale.pick(20, 3), opening, block,
                                        scale.flood_budget_bytes)


def _repeat(data: bytes, times: int = 500) -> Callable[[int], bytes]:
    block = data * times
    return lambda index: block


def _slowloris(step: int) -> bytes:
    head = b"GET / HTTP/1.1\r\nHost: slow\r\n" + b"X-Slow: yes\r\n" * 1000
    return head[step:step + 1]


def _priority(index: int) -> bytes:
    return b"".join(at.frame(at.PRIORITY, 0, 2 * ((index * 500 + i) % 10000) + 1,
                             b"\x00\x00\x00\x00\x0f") for i in range(500))


def _rapid_reset(index: int) -> bytes:
    first = 2 * index * 100 + 1
    return b"".join(at.frame(at.HEADERS, at.END_STREAM | at.END_HEADERS, sid, at.GET_ROOT)
                    + at.frame(at.RST_STREAM, 0, sid, b"\x00\x00\x00\x08")
                    for sid in range(first, first + 200, 2))


_GET_BIG = b"GET /big HTTP/1.1\r\nHost: reader\r\n\r\n"
_CHUNKED = b"POST /upload HTTP/1.1\r\nHost: up\r\nTransfer-Encoding: chunked\r\n\r\n"
_LENGTH = b"POST /upload HTTP/1.1\r\nHost: up\r\nContent-Length: 1048576\r\n\r\n"
_H2_UPLOAD = at.h2_opening() + at.frame(at.HEADERS, at.END_HEADERS, 1, at.POST_UPLOAD)
_ZERO_WINDOW = at.h2_opening(initial_window=0) + b"".join(
    at.frame(at.HEADERS, at.END_STREAM | at.END_HEADERS, sid, at.GET_BIG)
    for sid in range(1, 17, 2))

SCENARIOS = [
    Scenario("idle-flood", "silent clients at the connection cap, reconnecting when closed",
             _holders(lambda s: at.HolderPlan(s.pick(2000, 150))), handled_during=True),
    Scenario("slowloris", "request heads sent one byte per second",
             _holders(lambda s: at.HolderPlan(s.pick(150, 40), trickle=_slowloris)),
             handled_during=True),
    Scenario("slow-readers", "GET of 10 MiB never read, 4 threads",
             _holders(lambda s: at.HolderPlan(s.pick(40, 12), _GET_BIG, read="none")),
             flags=_few_threads, handled_during=True),
    Scenario("trickle-readers", "GET of 10 MiB read at 40 KB/s, 4 threads",
             _holders(lambda s: at.HolderPlan(8, _GET_BIG, interval_s=0.1, read="rate")),
             flags=_few_threads, handled_during=True),
    Scenario("slow-upload-chunked", "chunked uploads at 1 byte/s, 4 threads",
             _holders(lambda s: at.HolderPlan(s.pick(150, 16), _CHUNKED,
                                              trickle=lambda step: b"1\r\nx\r\n")),
             flags=_few_threads, handled_during=True),
    Scenario("slow-upload-length", "Content-Length 1 MiB uploads at 1 byte/s, 4 threads",
             _holders(lambda s: at.HolderPlan(s.pick(150, 16), _LENGTH,
                                              trickle=lambda step: b"x")),
             flags=_few_threads, handled_during=True),
    Scenario("h2-slow-upload", "h2c uploads at 1 byte/s (a DATA frame a second), 4 threads",
             _holders(lambda s: at.HolderPlan(s.pick(150, 16), _H2_UPLOAD,
                                              trickle=lambda step: at.frame(at.DATA, 0, 1, b"x"))),
             flags=_few_threads, handled_during=True),
    Scenario("zero-window", "h2c connections, 8 streams of 10 MiB each with a zero window, "
             "4 threads", _holders(lambda s: at.HolderPlan(s.pick(2, 1), _ZERO_WINDOW)),
             flags=_few_threads, handled_during=True),
    Scenario("window-update", "HTTP/2 WINDOW_UPDATE flood (connection window +1)",
             _flood(at.h2_opening(), _repeat(at.frame(at.WINDOW_UPDATE, 0, 0,
                                                      b"\x00\x00\x00\x01"))), goaway=True),
    Scenario("priority", "HTTP/2 PRIORITY flood on idle streams",
             _flood(at.h2_opening(), _priority), goaway=True),
    Scenario("unknown-frame", "HTTP/2 frames of an unknown type (0x20)",
             _flood(at.h2_opening(), _repeat(at.frame(0x20, 0, 0, b"\x00" * 8))), goaway=True),
    Scenario("settings", "HTTP/2 empty SETTINGS flood (each needs an ACK)",
             _flood(at.h2_opening(), _repeat(at.frame(at.SETTINGS, 0, 0))), goaway=True),
    Scenario("ping", "HTTP/2 PING flood", _flood(at.h2_opening(),
                                                  _repeat(at.frame(at.PING, 0, 0, b"\x00" * 8))),
             goaway=True),
    Scenario("continuation", "HTTP/2 header block that never ends (CONTINUATION)",
             _flood(at.h2_opening() + at.frame(at.HEADERS, at.END_STREAM, 1, at.GET_ROOT),
                    _repeat(at.frame(at.CONTINUATION, 0, 1, b"\x40\x01a\x01b"))),
             goaway=True),
    Scenario("empty-data", "HTTP/2 empty DATA frames on an open request body",
             _flood(at.h2_opening() + at.frame(at.HEADERS, at.END_HEADERS, 1, at.POST_UPLOAD),
                    _repeat(at.frame(at.DATA, 0, 1))), goaway=True),
    Scenario("rapid-reset", "HTTP/2 HEADERS then RST_STREAM, as fast as possible",
             _flood(at.h2_opening(), _rapid_reset), goaway=True),
    Scenario("fd-limit", f"idle h2c connections, server's open-file limit at {FD_LIMIT}",
             _holders(lambda s: at.HolderPlan(s.pick(300, 150), at.h2_opening())),
             flags=lambda scale: (), fd_limit=FD_LIMIT, handled_during=False),
]
BY_NAME = {scenario.name: scenario for scenario in SCENARIOS}


def _attack_child(name: str, port: int, short: bool, stop: Any, results: Any) -> None:
    attack = BY_NAME[name].attack(port, Scale(short)).start()
    results.put("started")
    stop.wait()
    results.put(vars(attack.stop()))


class AttackProcess:
    """The attack runs in a process of its own, so that its threads never take the
    measuring clients' GIL (a flood in the same process would slow the clients, not only
    the server). `stop()` ends it and returns its counters."""

    def __init__(self, scenario: Scenario, port: int, scale: Scale) -> None:
        context = multiprocessing.get_context("spawn")
        self._stop, self._results = context.Event(), context.Queue()
        self.process = context.Process(target=_attack_child, daemon=True, args=(
            scenario.name, port, scale.short, self._stop, self._results))

    def start(self) -> AttackProcess:
        self.process.start()
        self._results.get(timeout=30)  # "started": its connections are being opened
        return self

    def stop(self) -> dict[str, Any]:
        self._stop.set()
        try:
            counters: dict[str, Any] = self._results.get(timeout=30)
        except queue.Empty:
            counters = {}
        self.process.join(10)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
        return counters


def _probes(port: int, count: int, spacing_s: float,
            timeout_s: float) -> Callable[[], tuple[int, int]]:
    """Start `count` probes `spacing_s` apart, each in its own thread; returns a join."""
    answers: list[bool] = []
    threads = []
    for index in range(count):
        def one(delay_s: float = index * spacing_s) -> None:
            time.sleep(delay_s)
            answers.append(probe(port, timeout_s))
        threads.append(threading.Thread(target=one, daemon=True))
        threads[-1].start()

    def join() -> tuple[int, int]:
        for thread in threads:
            thread.join()
        return sum(answers), count
    return join


def _slot_count(scenario: Scenario, scale: Scale) -> int:
    return FD_LIMIT // 3 if scenario.fd_limit else scale.connections


def run_scenario(scenario: Scenario, duration_s: float, scale: Scale,
                 log_dir: Path | None = None) -> dict[str, Any]:
    """One scenario on a fresh server; every figure of the table, and the facts tests check."""
    log_path = (log_dir / f"{scenario.name}.log") if log_dir else None
    target = Target(("--graceful-timeout", "5", *scenario.flags(scale)), log_path=log_path,
                    preexec=fd_limit(scenario.fd_limit) if scenario.fd_limit else None)
    try:
        result = _measure(target, scenario, duration_s, scale)
    finally:
        status = target.stop()
    result["exit_status"] = status
    return result


def _measure(target: Target, scenario: Scenario, duration_s: float,
             scale: Scale) -> dict[str, Any]:
    probe(target.port)
    base = target.settle_fds(0, 0.1)
    sampler = Sampler(target)
    h1, h2 = H1Client(target.port).start(), H2Client(target.port).start()
    t0 = time.monotonic()
    time.sleep(duration_s)
    attack = AttackProcess(scenario, target.port, scale).start()
    time.sleep(min(1.0, duration_s / 3))  # ramp
    t1 = time.monotonic()
    attack_s = scenario.attack_s(duration_s, scale)
    join_probes = _probes(target.port, 8, attack_s / 8, scale.probe_timeout_s)
    time.sleep(attack_s)
    t2 = time.monotonic()
    probes = join_probes()
    counters = attack.stop()
    h1.running.clear()
    h2.running.clear()
    cpu_start = target.cpu_seconds()
    time.sleep(scale.cpu_window_s)
    cpu_after = (target.cpu_seconds() - cpu_start) / scale.cpu_window_s
    fds_settled = target.settle_fds(base, 15.0)
    slots_free = slot_check(target, _slot_count(scenario, scale)) if target.alive() else False
    fds_after_slots = target.settle_fds(base, 10.0)
    h1.running.set()
    h2.running.set()
    t3 = time.monotonic()
    time.sleep(duration_s)
    t4 = time.monotonic()
    h1.stop()
    h2.stop()
    sampler.stop()
    end = target.sample()
    return {
        "scenario": scenario.name, "description": scenario.description,
        "h1": {phase: h1.record.window(a, b) for phase, (a, b) in
               {"before": (t0, t0 + duration_s), "during": (t1, t2), "after": (t3, t4)}.items()},
        "h2": {phase: h2.record.window(a, b) for phase, (a, b) in
               {"before": (t0, t0 + duration_s), "during": (t1, t2), "after": (t3, t4)}.items()},
        "client_failures": {"h1": h1.record.failures, "h2": h2.record.failures},
        "probes_during": {"answered": probes[0], "sent": probes[1]},
        "h2_probe_after": h2_probe(target.port) if target.alive() else False,
        "peak_during": sampler.peak(t1 - 1.0, t2),
        "end": None if end is None else {"rss_mib": end.rss_mib, "threads": end.threads,
                                         "fds": end.fds},
        "fds_baseline": base, "fds_settled": fds_settled, "fds_after_slots": fds_after_slots,
        "slots_free": slots_free, "cpu_after_attack_pct": cpu_after * 100,
        "attack": counters, "alive": target.alive(),
    }


def _rate(window: dict[str, Any]) -> str:
    return f"{window['rps']:.0f}"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def table(results: Sequence[dict[str, Any]]) -> str:
    header = ("scenario", "h1 rps b/d/a", "h1 p99 d ms", "h2 rps b/d/a", "probes",
              "RSS MiB pk/end", "thr pk/end", "fds base/pk/end", "cpu 1s %", "cut", "alive")
    rows = [header]
    for r in results:
        end = r["end"] or {"rss_mib": 0, "threads": 0, "fds": -1}
        peak = r["peak_during"]
        rows.append((
            r["scenario"],
            "/".join(_rate(r["h1"][p]) for p in ("before", "during", "after")),
            _ms(r["h1"]["during"]["p99_ms"]),
            "/".join(_rate(r["h2"][p]) for p in ("before", "during", "after")),
            f"{r['probes_during']['answered']}/{r['probes_during']['sent']}",
            f"{peak['rss_mib']:.0f}/{end['rss_mib']:.0f}",
            f"{peak['threads']}/{end['threads']}",
            f"{r['fds_baseline']}/{peak['fds']}/{end['fds']}",
            f"{r['cpu_after_attack_pct']:.0f}",
            str(r["attack"].get("closed_by_server", "-")),
            "yes" if r["alive"] else "NO",
        ))
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(header))]
    lines = ["| " + " | ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)) + " |"
             for row in rows]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenarios", default=",".join(BY_NAME),
                        help="comma-separated, from: " + ", ".join(BY_NAME))
    parser.add_argument("--duration", type=float, default=None,
                        help="seconds per phase (default 5, 0.4 with --short)")
    parser.add_argument("--short", action="store_true",
                        help="the test suite's scale: fewer attacking connections")
    parser.add_argument("--json", type=Path, help="write every figure to this file")
    parser.add_argument("--logs", type=Path, help="keep each server's log in this folder")
    args = parser.parse_args(argv)
    unknown = set(args.scenarios.split(",")) - set(BY_NAME)
    if unknown:
        parser.error(f"unknown scenarios: {', '.join(sorted(unknown))}")
    if args.duration is None:
        args.duration = 0.4 if args.short else 5.0
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    stop_on_sigterm()
    raise_fd_limit()  # the idle flood holds 2,000 sockets here
    scale = Scale(args.short)
    if args.logs:
        args.logs.mkdir(parents=True, exist_ok=True)
    results = []
    for name in args.scenarios.split(","):
        print(f"{name}: {BY_NAME[name].description} ...", file=sys.stderr, flush=True)
        results.append(run_scenario(BY_NAME[name], args.duration, scale, args.logs))
    print(table(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0 if all(r["alive"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
