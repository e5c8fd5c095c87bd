"""What a set of flags costs: one treadle process with and without them, in alternating rounds.

    python -m benchmarks.ab --flags "--metrics-bind 127.0.0.1:0"           # metrics' cost
    python -m benchmarks.ab --flags "--log-format json" --base "--access-logfile /tmp/a.log"
    python -m benchmarks.ab --flags "" --python-b /work/venvs/base/bin/python   # two trees

Each round starts a fresh `python -m treadle benchmarks.apps:hello` (pinned to core 0, wrk to
core 1), warms it for a second, then runs `wrk -t1 -c50 -d<duration>s --latency` (HTTP/1.1
keep-alive) and reads the server's CPU time from /proc before and after. Rounds alternate
A B B A A B ..., so a drift of the machine weighs on both. It prints each round and the
medians of requests/s and of CPU microseconds per request, and their ratios (B / A): on a
noisy machine the CPU per request is the steadier figure. With --python-b the B rounds run
that interpreter (a venv with another checkout installed): a change measured against main.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from benchmarks.stopping import stop_on_sigterm

REPO = Path(__file__).resolve().parent.parent
APP = "benchmarks.apps:hello"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _wait_listening(port: int, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def one_round(flags: Sequence[str], duration_s: int, threads: int,
              python: str = sys.executable) -> tuple[float, float]:
    """(requests/s, server CPU µs per request) of one fresh server with `flags`."""
    port = _free_port()
    argv = ["taskset", "-c", "0", python, "-m", "treadle", APP, "--bind",
            f"127.0.0.1:{port}", "--threads", str(threads), *flags]
    server = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        _wait_listening(port)
        url = f"http://127.0.0.1:{port}/"
        subprocess.run(["taskset", "-c", "1", "wrk", "-t1", "-c50", "-d1s", url],
                       capture_output=True, check=True)
        before = _cpu_s(server.pid)
        out = subprocess.run(["taskset", "-c", "1", "wrk", "-t1", "-c50", f"-d{duration_s}s",
                              "--latency", url], capture_output=True, text=True,
                             check=True).stdout
        spent_s = _cpu_s(server.pid) - before
    finally:
        server.terminate()
        server.wait(10)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    return rps, spent_s / max(total, 1) * 1e6


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--flags", required=True, help="what B adds (one shell-quoted string)")
    parser.add_argument("--python-b", default=sys.executable,
                        help="the interpreter of the B rounds (another checkout's venv)")
    parser.add_argument("--base", default="", help="flags both A and B have")
    parser.add_argument("--rounds", type=int, default=8, help="rounds of each (8)")
    parser.add_argument("--duration", type=int, default=5, help="seconds per round (5)")
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args(argv)
    stop_on_sigterm()
    base, extra = shlex.split(args.base), shlex.split(args.flags)
    variants = [("A", base, sys.executable), ("B", base + extra, args.python_b)]
    rps: dict[str, list[float]] = {"A": [], "B": []}
    cpu: dict[str, list[float]] = {"A": [], "B": []}
    for index in range(args.rounds):
        for name, flags, python in variants if index % 2 == 0 else variants[::-1]:
            got_rps, got_cpu = one_round(flags, args.duration, args.threads, python)
            rps[name].append(got_rps)
            cpu[name].append(got_cpu)
            print(f"{name} round {index + 1}: {got_rps:,.0f} requests/s, "
                  f"{got_cpu:.1f} µs CPU per request", flush=True)
    print(f"A = {' '.join(base) or '(defaults)'}; B = A + {' '.join(extra)}"
          + (f", run by {args.python_b}" if args.python_b != sys.executable else ""))
    for name in ("A", "B"):
        print(f"{name}: median {statistics.median(rps[name]):,.0f} requests/s, "
              f"{statistics.median(cpu[name]):.1f} µs CPU per request")
    print(f"B / A: requests/s {statistics.median(rps['B']) / statistics.median(rps['A']):.3f}, "
          f"CPU per request {statistics.median(cpu['B']) / statistics.median(cpu['A']):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
