"""Benchmark treadle against the WSGI servers it means to beat, in one run, on one machine.

    python -m benchmarks.peers [--duration 5] [--rounds 3] [--threads 8] [--servers a,b]

Every server (treadle and each peer found installed: gunicorn gthread, waitress, cheroot,
hypercorn, granian; plus bare-loop, a pure-Python ceiling with no checks at all) runs as
one process pinned to one core (`--server-cpu`), with the same worker-thread count where
it has one; wrk and this script run on another (`--client-cpu`).
Each (round, load, server) gets a fresh server process on a fresh port, so one load's
leftovers (a starved backlog, a grown heap) never colour the next, and the servers take
turns within each round so that drift on the machine touches them all alike.
Figures are medians over rounds; results go to benchmarks/results/ (JSON, chart, logs).

The HTTP/2 loads (h2-tls-m10, h2-tls-m100, h2c-m100: h2load over TLS with ALPN, and h2c
with prior knowledge, up to 100 streams per connection) run after the wrk loads, under the
same rules, against the servers that speak HTTP/2 (benchmarks/h2peers.py); their figures
print as their own tables and go to the JSON under "http2".
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import psutil

REPO = Path(__file__).resolve().parent.parent
if __package__ in (None, ""):  # run as a script: make `benchmarks` importable
    sys.path.insert(0, str(REPO))

from benchmarks import report  # noqa: E402
from benchmarks.idle_clients import IdleClients  # noqa: E402
from benchmarks.stopping import stop_on_sigterm  # noqa: E402

APPS_MODULE = "benchmarks.apps"
READY_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0
RSS_SAMPLE_S = 0.05
WRK_TIMEOUT_S = 2

# wrk's done() hook prints one JSON line: robust to parse, unlike wrk's human summary.
WRK_SCRIPT = r"""
function init(args)
  local body_bytes = tonumber(args[1] or "0")
  if body_bytes > 0 then
    wrk.method = "POST"
    wrk.body = string.rep("x", body_bytes)
    wrk.headers["Content-Type"] = "application/octet-stream"
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'PEERS-JSON {"requests": %d, "duration_us": %d, "bytes": %d, "connect": %d, ' ..
    '"read": %d, "write": %d, "status": %d, "timeout": %d, "p50_us": %d, ' ..
    '"p99_us": %d, "max_us": %d}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write,
    e.status, e.timeout, latency:percentile(50), latency:percentile(99), latency.max))
end
"""


@dataclass(frozen=True)
class Server:
    name: str
    module: str  # importable when the server is installed
    pure_python: bool
    # (app "module:attr", port, threads, processes) -> argv; a server that has no worker
    # processes (multi_process False) ignores `processes` and always runs as one process.
    command: Callable[[str, int, int, int], list[str]]
    multi_process: bool = True


@dataclass(frozen=True)
class Load:
    name: str
    description: str
    app: str  # callable in benchmarks.apps
    connections: int = 50
    headers: tuple[str, ...] = ()
    body_bytes: int = 0
    idle_connections: int = 0  # held by IdleClients while wrk drives `connections`


def _python(*args: str) -> list[str]:
    return [sys.executable, *args]


def _treadle(app: str, port: int, threads: int, processes: int) -> list[str]:
    workers = ["--workers", str(processes)] if processes > 1 else []
    return _python("-m", "treadle", app, "--bind", f"127.0.0.1:{port}", "--threads",
                   str(threads), *workers)


# --before PYTHON: treadle as another checkout installs it (its venv's python), run beside
# today's as "treadle-before" for before/after figures in one run.
BEFORE_PYTHON: list[str] = []


def before_python(argv: list[str]) -> list[str]:
    """`argv` (a treadle command line) run by the --before checkout's python."""
    return [BEFORE_PYTHON[0], *argv[1:]]


SERVERS = (
    Server("treadle", "treadle", True, _treadle),
    Server("treadle-before", "treadle", True, lambda app, port, threads, processes:
           before_python(_treadle(app, port, threads, processes))),
    # --workers N --reuse-port: the arbiter binds a SO_REUSEPORT socket per worker
    # (server/shards.py), so the kernel balances as for the hand-run processes below.
    Server("treadle-workers-reuseport", "treadle", True, lambda app, port, threads, processes:
           [*_treadle(app, port, threads, processes), "--reuse-port"]),
    # Not a peer: `processes` treadle processes started by hand on one SO_REUSEPORT port, the
    # figure treadle's own --workers (one supervising arbiter) is measured against.
    Server("treadle-reuseport", "treadle", True, lambda app, port, threads, processes: _python(
        "-m", "benchmarks.run_reuseport", "--processes", str(processes), "--",
        sys.executable, "-m", "treadle", app, "--bind", f"127.0.0.1:{port}", "--reuse-port",
        "--threads", str(threads))),
    Server("gunicorn", "gunicorn", True, lambda app, port, threads, processes: _python(
        "-m", "gunicorn", "--worker-class", "gthread", "--workers", str(processes),
        "--threads", str(threads), "--bind", f"127.0.0.1:{port}", app)),
    Server("waitress", "waitress", True, lambda app, port, threads, processes: _python(
        "-m", "waitress", f"--listen=127.0.0.1:{port}", f"--threads={threads}", app),
        multi_process=False),
    Server("cheroot", "cheroot", True, lambda app, port, threads, processes: _python(
        "-m", "benchmarks.run_cheroot", "--bind", f"127.0.0.1:{port}",
        "--threads", str(threads), app), multi_process=False),
    # hypercorn runs WSGI calls on asyncio's default executor: no thread-count setting.
    Server("hypercorn", "hypercorn", True, lambda app, port, threads, processes: _python(
        "-m", "hypercorn", "--workers", str(processes), "--bind", f"127.0.0.1:{port}",
        f"wsgi:{app}")),
    # Not a peer: the pure-Python ceiling (one thread, no checks) to read the others against.
    Server("bare-loop", "benchmarks.bare_loop", True, lambda app, port, threads, processes:
           _python("-m", "benchmarks.bare_loop", "--bind", f"127.0.0.1:{port}", app),
           multi_process=False),
    Server("granian", "granian", False, lambda app, port, threads, processes: _python(
        "-m", "granian", "--interface", "wsgi", "--workers", str(processes),
        "--blocking-threads", str(threads), "--host", "127.0.0.1", "--port", str(port),
        app)),
)

LOADS = (
    Load("keepalive", "keep-alive hello world, 50 connections", "hello"),
    Load("close", "a new connection per request, 50 at a time", "hello",
         headers=("Connection: close",)),
    Load("64k", "64 KiB responses, keep-alive, 50 connections", "big"),
    Load("upload-1m", "1 MiB POST bodies, keep-alive, 50 connections", "upload",
         body_bytes=1 << 20),
    Load("idle-500", "450 idle keep-alive connections asking ~1/s + wrk on 50", "hello",
         idle_connections=450),
)


def server_available(server: Server) -> bool:
    if server.name == "treadle-before":
        return bool(BEFORE_PYTHON)
    return find_spec(server.module) is not None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def pin_to(cpu: int | None) -> Callable[[], None] | None:
    if cpu is None:
        return None
    return lambda: os.sched_setaffinity(0, {cpu})


def answers_http(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
            return sock.recv(16).startswith(b"HTTP/1.")
    except OSError:
        return False


def process_tree(pid: int) -> list[psutil.Process]:
    """A server process and all its children (empty once it is gone)."""
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.Error:
        return []


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a server process and its children so far (less noisy than
    requests/s on a shared machine: it counts work, not waiting)."""
    total = 0.0
    for process in process_tree(pid):
        try:
            times = process.cpu_times()
            total += times.user + times.system
        except psutil.Error:
            pass
    return total


def stop_process_group(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the server's own session (it and its children), SIGKILL if it lingers."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=STOP_TIMEOUT_S)
            return
        except subprocess.TimeoutExpired:
            continue


class RunningServer:
    """One server process (and its children) under test, with a peak-RSS sampler."""

    def __init__(self, server: Server, load: Load, threads: int, processes: int,
                 cpu: int | None, log: Path):
        self.port = free_port()
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
        self._log = log.open("wb")
        self.process = subprocess.Popen(
            server.command(f"{APPS_MODULE}:{load.app}", self.port, threads, processes),
            cwd=REPO, env=env, stdin=subprocess.DEVNULL, stdout=self._log,
            stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=pin_to(cpu))
        self.peak_rss_bytes = 0
        self._sampling = threading.Event()
        self._sampler: threading.Thread | None = None

    def wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"exited with status {self.process.returncode} on start")
            if answers_http(self.port):
                return
            time.sleep(0.1)
        raise RuntimeError(f"no HTTP answer within {READY_TIMEOUT_S:.0f} s")

    def rss_bytes(self) -> int:
        total = 0
        for process in process_tree(self.process.pid):
            try:
                total += process.memory_info().rss
            except psutil.Error:
                pass
        return total

    def start_sampling(self) -> None:
        def sample() -> None:
            while not self._sampling.wait(RSS_SAMPLE_S):
                self.peak_rss_bytes = max(self.peak_rss_bytes, self.rss_bytes())

        self.peak_rss_bytes = self.rss_bytes()
        self._sampler = threading.Thread(target=sample, name="rss-sampler", daemon=True)
        self._sampler.start()

    def stop(self) -> None:
        """Stop sampling, then the whole process group; safe to call twice."""
        if self._log.closed:
            return
        self._sampling.set()
        if self._sampler is not None:
            self._sampler.join(timeout=2)
        stop_process_group(self.process)
        self._log.close()


def run_wrk(wrk: str, script: Path, port: int, load: Load,
            args: argparse.Namespace) -> dict[str, Any]:
    command = [wrk, "-t", str(args.wrk_threads), "-c", str(load.connections),
               "-d", f"{args.duration}s", "--timeout", f"{WRK_TIMEOUT_S}s", "-s", str(script)]
    for header in load.headers:
        command += ["-H", header]
    command += [f"http://127.0.0.1:{port}/", "--", str(load.body_bytes)]
    completed = subprocess.run(
        command, capture_output=True, text=True, timeout=args.duration + 60,
        preexec_fn=pin_to(args.client_cpu))
    for line in completed.stdout.splitlines():
        if line.startswith("PEERS-JSON "):
            parsed: dict[str, Any] = json.loads(line[len("PEERS-JSON "):])
            return parsed
    raise RuntimeError(f"wrk gave no summary: {completed.stderr.strip() or completed.stdout}")


def measure(server: Server, load: Load, args: argparse.Namespace, wrk: str, script: Path,
            log: Path) -> dict[str, Any]:
    """One server process, one load: wrk's figures, the idle clients' counts, peak RSS."""
    running = RunningServer(server, load, args.threads, args.workers, args.server_cpu, log)
    idle = None
    try:
        running.wait_ready()
        running.start_sampling()
        cpu_before = cpu_seconds(running.process.pid)
        if load.idle_connections:
            idle = IdleClients(running.port, load.idle_connections)
            idle.start()
            deadline = time.monotonic() + 3.0  # let them connect and be served once
            while time.monotonic() < deadline and idle.served_count() < load.idle_connections:
                time.sleep(0.05)
        wrk_result = run_wrk(wrk, script, running.port, load, args)
        idle_stats = idle.stop() if idle is not None else None
        idle = None
        cpu_used_s = cpu_seconds(running.process.pid) - cpu_before
    finally:
        if idle is not None:
            idle.stop()
        running.stop()
    seconds = wrk_result["duration_us"] / 1e6
    answered = wrk_result["requests"] > 0  # no answers, no latency (not a latency of 0)
    result: dict[str, Any] = {
        "rps": wrk_result["requests"] / seconds if seconds else 0.0,
        "requests": wrk_result["requests"],
        "p50_ms": wrk_result["p50_us"] / 1000 if answered else None,
        "p99_ms": wrk_result["p99_us"] / 1000 if answered else None,
        "max_ms": wrk_result["max_us"] / 1000 if answered else None,
        "errors": sum(wrk_result[key] for key in ("connect", "read", "write", "status")),
        "timeouts": wrk_result["timeout"],
        "wrk": wrk_result,
        "peak_rss_mib": running.peak_rss_bytes / (1 << 20),
    }
    served = wrk_result["requests"]
    if idle_stats is not None:
        result["idle"] = vars(idle_stats)
        result["errors"] += idle_stats.errors
        result["timeouts"] += idle_stats.timeouts
        served += idle_stats.answered
    # CPU per answered request: less disturbed by a busy machine than requests/s.
    result["cpu_us_per_req"] = cpu_used_s * 1e6 / served if served else None
    return result


def _median(values: Sequence[float | None]) -> float | None:
    known = [value for value in values if value is not None]
    return statistics.median(known) if known else None


def successful_runs_by_load_and_server(
        runs: Sequence[dict[str, Any]]) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """The rounds that succeeded, grouped by (load, server), in the order they ran."""
    grouped: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for run in runs:
        if "error" not in run:
            grouped.setdefault((run["load"], run["server"]), []).append(run)
    return grouped


def median_results(runs: Sequence[dict[str, Any]]) -> dict[str, dict[str, dict[str, Any]]]:
    """{load: {server: median of each figure over the rounds that succeeded}}."""
    medians: dict[str, dict[str, dict[str, Any]]] = {}
    for (load, server), group in successful_runs_by_load_and_server(runs).items():
        figures: dict[str, Any] = {key: _median([run.get(key) for run in group])
                   for key in ("rps", "p50_ms", "p99_ms", "errors", "timeouts", "peak_rss_mib",
                               "cpu_us_per_req")}
        if "idle" in group[0]:
            figures["idle"] = {key: _median([run["idle"][key] for run in group])
                               for key in group[0]["idle"]}
        figures["rounds"] = len(group)
        medians.setdefault(load, {})[server] = figures
    return medians


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.peers", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    from benchmarks import h2peers  # here: h2peers imports this module's helpers

    names = [server.name for server in SERVERS]
    loads = [load.name for load in LOADS] + [load.name for load in h2peers.LOADS]
    parser.add_argument("--duration", type=int, default=5, help="whole seconds per load (5)")
    parser.add_argument("--rounds", type=int, default=3, help="runs per server and load (3)")
    parser.add_argument("--threads", type=int, default=8, help="worker threads per server (8)")
    parser.add_argument("--servers", default=",".join(names), help=f"subset of {names}")
    parser.add_argument("--loads", default=",".join(loads), help=f"subset of {loads}")
    parser.add_argument("--workers", type=int, default=1,
                        help="worker processes for the servers that have them (1); "
                             "waitress, cheroot and bare-loop stay one process")
    parser.add_argument("--wrk-threads", type=int, default=1)
    parser.add_argument("--server-cpu", type=int, default=0, help="core for servers (0)")
    parser.add_argument("--client-cpu", type=int, default=1, help="core for wrk and us (1)")
    parser.add_argument("--unpinned", action="store_true",
                        help="pin neither the servers nor wrk (several processes share cores)")
    parser.add_argument("--output", type=Path, default=REPO / "benchmarks" / "results")
    parser.add_argument("--before", metavar="PYTHON",
                        help="also run treadle-before: treadle from this python (the venv of "
                             "another checkout, e.g. the main before a change)")
    args = parser.parse_args(argv)
    args.servers = [name for name in args.servers.split(",") if name]
    args.loads = [name for name in args.loads.split(",") if name]
    if args.before:
        BEFORE_PYTHON[:] = [args.before]
    unknown = set(args.servers) - set(names) | set(args.loads) - set(loads)
    if unknown:
        parser.error(f"unknown server or load: {', '.join(sorted(unknown))}")
    if args.unpinned:
        args.server_cpu = args.client_cpu = None
    elif len(os.sched_getaffinity(0)) < 2:
        print("warning: fewer than 2 usable cores; not pinning", file=sys.stderr)
        args.server_cpu = args.client_cpu = None
    return args


def raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 4096 <= hard or soft < hard < 4096:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4096), hard))


def run_all(args: argparse.Namespace, wrk: str) -> list[dict[str, Any]]:
    servers = [s for s in SERVERS if s.name in args.servers and server_available(s)]
    missing = [name for name in args.servers if name not in {s.name for s in servers}]
    if missing:
        print(f"not installed, skipped: {', '.join(missing)}", file=sys.stderr)
    loads = [load for load in LOADS if load.name in args.loads]
    logs = args.output / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as scratch:
        script = Path(scratch) / "report.lua"
        script.write_text(WRK_SCRIPT)
        for round_index in range(args.rounds):
            for load in loads:
                for server in servers:
                    log = logs / f"{server.name}-{load.name}-{round_index}.log"
                    entry: dict[str, Any] = {"server": server.name, "load": load.name,
                                             "round": round_index}
                    try:
                        entry.update(measure(server, load, args, wrk, script, log))
                    except Exception as error:  # a server that fails must not end the run
                        entry["error"] = f"{type(error).__name__}: {error} (log: {log})"
                    runs.append(entry)
                    print(report.progress_line(entry), flush=True)
    return runs


def main(argv: Sequence[str] | None = None) -> int:
    from benchmarks import h2peers

    args = parse_args(argv)
    stop_on_sigterm()
    h2_loads = [load for load in h2peers.LOADS if load.name in args.loads]
    wrk = shutil.which("wrk")
    if wrk is None and len(h2_loads) < len(args.loads):
        print("error: this benchmark needs wrk (apt-get install wrk)", file=sys.stderr)
        return 2
    raise_fd_limit()
    if args.client_cpu is not None:
        os.sched_setaffinity(0, {args.client_cpu})
    started = time.time()
    runs = run_all(args, wrk) if wrk is not None else []
    h2_runs = h2peers.run_loads(args, h2_loads) if h2_loads else []  # h2load, HTTP/2
    http2 = {"median": h2peers.medians(h2_runs), "runs": h2_runs}
    if h2_runs:
        print(h2peers.table(http2["median"]))
    if not runs:
        return _save_http2_only(args, started, http2)
    medians = median_results(runs)
    meta = report.metadata(args, started,
                           {load.name: load.description for load in (*LOADS, *h2peers.LOADS)},
                           {server.name: server.pure_python for server in SERVERS})
    print()
    print(report.tables(medians, meta))
    args.output.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(started))
    json_path = args.output / f"peers-{stamp}.json"
    json_path.write_text(json.dumps({"meta": meta, "median": medians, "runs": runs,
                                     "http2": http2}, indent=2))
    chart_path = report.chart(medians, meta, args.output / f"peers-{stamp}")
    print(f"\nresults: {json_path}\nchart:   {chart_path}")
    return 0


def _save_http2_only(args: argparse.Namespace, started: float, http2: dict[str, Any]) -> int:
    """Only HTTP/2 loads were asked for: their results alone (no wrk tables or chart)."""
    if not http2["runs"]:
        return 2
    args.output.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(started))
    json_path = args.output / f"peers-{stamp}.json"
    json_path.write_text(json.dumps({"http2": http2}, indent=2))
    print(f"\nresults: {json_path}")
    return 0


if __name__ == "__main__":
    # The main of the module benchmarks.h2peers imports, not of this copy (__main__): its
    # state (BEFORE_PYTHON) is the one the HTTP/2 loads read.
    from benchmarks import peers

    sys.exit(peers.main())
