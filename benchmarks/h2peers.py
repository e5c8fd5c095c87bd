"""HTTP/2 loads of the peer benchmark: treadle against the peers that serve WSGI over HTTP/2,
driven by h2load. benchmarks/peers.py runs them with its own loads (they are in its
`--loads`); alone:

    python -m benchmarks.h2peers [--duration 5] [--rounds 3] [--threads 8] [--servers a,b]

The same rules as peers.py, the same hello-world application (benchmarks.apps:hello).
Every server runs as one process pinned to one core (`--server-cpu`), h2load runs on
another (`--client-cpu`), each (round, load, server) on a fresh process and port, servers
taking turns within a round; figures are medians over rounds. Peers, where installed:
gunicorn (gthread worker, `--http-protocols h2,h1`), hypercorn and granian. Loads: TLS with
ALPN h2 at 10 streams per connection and at 100 (`h2load -m 100`), and h2c with prior
knowledge at 100. Results go to benchmarks/results/h2peers-<time>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if __package__ in (None, ""):  # run as a script: make `benchmarks` importable
    sys.path.insert(0, str(REPO))

from benchmarks.peers import (  # noqa: E402
    BEFORE_PYTHON,
    before_python,
    cpu_seconds,
    free_port,
    pin_to,
    raise_fd_limit,
    stop_process_group,
    successful_runs_by_load_and_server,
)
from benchmarks.stopping import stop_on_sigterm  # noqa: E402

APP = "benchmarks.apps:hello"
READY_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Load:
    name: str
    description: str
    tls: bool
    connections: int
    streams: int  # concurrent streams per connection (h2load -m)


LOADS = (
    # 8 connections, not more: gunicorn's gthread worker holds a thread per HTTP/2
    # connection, so with more connections than threads the extra ones are never served.
    Load("h2-tls-m10", "HTTP/2 over TLS (ALPN), 8 connections x 10 streams", True, 8, 10),
    Load("h2-tls-m100", "HTTP/2 over TLS (ALPN), 4 connections x 100 streams", True, 4, 100),
    Load("h2c-m100", "h2c prior knowledge, 4 connections x 100 streams", False, 4, 100),
)

# (port, threads, cert, key, tls) -> argv
Command = Callable[[int, int, str, str, bool], list[str]]


@dataclass(frozen=True)
class Server:
    name: str
    module: str
    command: Command


def _treadle(port: int, threads: int, cert: str, key: str, tls: bool) -> list[str]:
    argv = [sys.executable, "-m", "treadle", APP, "--bind", f"127.0.0.1:{port}",
            "--threads", str(threads)]
    return argv + (["--certfile", cert, "--keyfile", key] if tls
                   else ["--http2-cleartext", "prior-knowledge"])


def _gunicorn(port: int, threads: int, cert: str, key: str, tls: bool) -> list[str]:
    argv = [sys.executable, "-m", "gunicorn", "--worker-class", "gthread", "--workers", "1",
            "--threads", str(threads), "--http-protocols", "h2,h1",
            "--bind", f"127.0.0.1:{port}"]
    argv += ["--certfile", cert, "--keyfile", key] if tls else ["--http2-cleartext",
                                                                "prior-knowledge"]
    return argv + [APP]


def _hypercorn(port: int, threads: int, cert: str, key: str, tls: bool) -> list[str]:
    # hypercorn runs WSGI calls on asyncio's default executor: no thread-count setting.
    argv = [sys.executable, "-m", "hypercorn", "--workers", "1", "--bind", f"127.0.0.1:{port}"]
    argv += ["--certfile", cert, "--keyfile", key] if tls else []
    return argv + [f"wsgi:{APP}"]


def _granian(port: int, threads: int, cert: str, key: str, tls: bool) -> list[str]:
    argv = [sys.executable, "-m", "granian", "--interface", "wsgi", "--workers", "1",
            "--blocking-threads", str(threads), "--host", "127.0.0.1", "--port", str(port)]
    argv += ["--ssl-certificate", cert, "--ssl-keyfile", key] if tls else ["--http", "2"]
    return argv + [APP]


SERVERS = (
    Server("treadle", "treadle", _treadle),
    Server("treadle-before", "treadle", lambda port, threads, cert, key, tls:
           before_python(_treadle(port, threads, cert, key, tls))),
    Server("gunicorn", "gunicorn", _gunicorn),
    Server("hypercorn", "hypercorn", _hypercorn),
    Server("granian", "granian", _granian),
)


def available(server: Server) -> bool:
    if server.name == "treadle-before":
        return bool(BEFORE_PYTHON)
    return find_spec(server.module) is not None


def make_certificate(where: Path) -> tuple[str, str]:
    """A self-signed certificate for 127.0.0.1 (trustme if installed, else openssl)."""
    cert, key = where / "cert.pem", where / "key.pem"
    try:
        import trustme

        issued = trustme.CA().issue_cert("127.0.0.1")
        issued.cert_chain_pems[0].write_to_path(str(cert))
        issued.private_key_pem.write_to_path(str(key))
    except ImportError:
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days",
                        "2", "-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                       check=True, capture_output=True)
    return str(cert), str(key)


def answers(port: int, tls: bool) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as raw:
            sock: socket.socket = raw
            if tls:
                context = ssl.create_default_context()
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
                sock = context.wrap_socket(raw)
                sock.sendall(b"GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
                return sock.recv(16).startswith(b"HTTP/1.")
            # h2c: some peers speak only HTTP/2 there; their SETTINGS frame answers
            sock.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0")
            return sock.recv(9)[3:4] == b"\x04"
    except OSError:
        return False


_FINISHED = re.compile(r"finished in [\d.]+m?s, ([\d.]+) req/s")
_REQUESTS = re.compile(r"requests: (\d+) total, \d+ started, (\d+) done, (\d+) succeeded, "
                       r"(\d+) failed, (\d+) errored, (\d+) timeout")
_STATUS = re.compile(r"status codes: (\d+) 2xx")
_LATENCY = re.compile(r"time for request:\s+(\S+)\s+(\S+)\s+(\S+)")


def _ms(text: str) -> float:
    for suffix, scale in (("us", 0.001), ("ms", 1.0), ("s", 1000.0)):
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * scale
    return float(text)


def parse_h2load(output: str) -> dict[str, Any]:
    finished, requests = _FINISHED.search(output), _REQUESTS.search(output)
    if finished is None or requests is None:
        raise RuntimeError(f"h2load gave no summary: {output[-500:]}")
    total, done, succeeded, failed, errored, timeout = map(int, requests.groups())
    status = _STATUS.search(output)
    latency = _LATENCY.search(output)
    return {"rps": float(finished.group(1)), "requests": total, "succeeded": succeeded,
            "failed": failed + errored + timeout + (done - succeeded),
            "ok_2xx": int(status.group(1)) if status else 0,
            "mean_ms": _ms(latency.group(3)) if latency else None}


def p99_ms(request_log: Path) -> float | None:
    """The 99th percentile of the request times in an h2load --log-file (tab-separated:
    start in us since the epoch, status, us until the end of the response)."""
    times_us = sorted(int(line.split("\t")[2]) for line in
                      request_log.read_text().splitlines() if line.count("\t") >= 2)
    if not times_us:
        return None
    return times_us[min(len(times_us) - 1, int(len(times_us) * 0.99))] / 1000.0


def measure(server: Server, load: Load, args: argparse.Namespace, h2load: str, cert: str,
            key: str, log: Path) -> dict[str, Any]:
    port = free_port()
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    with log.open("wb") as log_file:
        process = subprocess.Popen(
            server.command(port, args.threads, cert, key, load.tls), cwd=REPO, env=env,
            stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT,
            start_new_session=True, preexec_fn=pin_to(args.server_cpu))
        try:
            deadline = time.monotonic() + READY_TIMEOUT_S
            while not answers(port, load.tls):
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{server.name} did not start (log: {log})")
                time.sleep(0.1)
            scheme = "https" if load.tls else "http"
            # -N: a connection the server leaves without an answer for 5 s counts as failed
            request_log = log.with_suffix(".requests")
            command = [h2load, "-D", str(args.duration), "-N", "5s",
                       "-c", str(load.connections), "-m", str(load.streams), "-t", "1",
                       f"--log-file={request_log}", f"{scheme}://127.0.0.1:{port}/"]
            cpu_before = cpu_seconds(process.pid)
            try:
                completed = subprocess.run(command, capture_output=True, text=True,
                                           timeout=args.duration + 20,
                                           preexec_fn=pin_to(args.client_cpu))
            except subprocess.TimeoutExpired:
                raise RuntimeError("stalled: h2load never finished (connections left "
                                   "unanswered)") from None
            figures = parse_h2load(completed.stdout)
            cpu_s = cpu_seconds(process.pid) - cpu_before
            served = figures["succeeded"]
            figures["cpu_us_per_req"] = cpu_s * 1e6 / served if served else None
            figures["p99_ms"] = p99_ms(request_log)
            request_log.unlink()
            return figures
        finally:
            stop_process_group(process)


def medians(runs: Sequence[dict[str, Any]]) -> dict[str, dict[str, dict[str, Any]]]:
    result: dict[str, dict[str, dict[str, Any]]] = {}
    for (load, server), group in successful_runs_by_load_and_server(runs).items():
        result.setdefault(load, {})[server] = {
            "rps": statistics.median(run["rps"] for run in group),
            "failed": max(run["failed"] for run in group),
            "mean_ms": statistics.median(run["mean_ms"] or 0.0 for run in group),
            "p99_ms": statistics.median(run.get("p99_ms") or 0.0 for run in group),
            "cpu_us_per_req": statistics.median(run["cpu_us_per_req"] or 0.0 for run in group),
            "rounds": len(group),
        }
    return result


def table(result: dict[str, dict[str, dict[str, Any]]]) -> str:
    lines = []
    for load in LOADS:
        figures = result.get(load.name)
        if not figures:
            continue
        lines.append(f"\n{load.name}: {load.description}")
        lines.append(f"  {'server':<10} {'req/s':>10} {'mean ms':>9} {'p99 ms':>8} "
                     f"{'failed':>7} {'CPU us/req':>11} {'treadle/x':>10}")
        ours = figures.get("treadle", {}).get("rps")
        for name, row in sorted(figures.items(), key=lambda item: -item[1]["rps"]):
            ratio = f"{ours / row['rps']:.2f}x" if ours and row["rps"] else "-"
            lines.append(f"  {name:<10} {row['rps']:>10.0f} {row['mean_ms']:>9.2f} "
                         f"{row['p99_ms']:>8.2f} {row['failed']:>7} "
                         f"{row['cpu_us_per_req']:>11.0f} {ratio:>10}")
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.h2peers", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    names = [server.name for server in SERVERS]
    parser.add_argument("--duration", type=int, default=5, help="seconds per run (5)")
    parser.add_argument("--rounds", type=int, default=3, help="runs per server and load (3)")
    parser.add_argument("--threads", type=int, default=8, help="worker threads (8)")
    parser.add_argument("--servers", default=",".join(names), help=f"subset of {names}")
    parser.add_argument("--loads", default=",".join(load.name for load in LOADS))
    parser.add_argument("--server-cpu", type=int, default=0)
    parser.add_argument("--client-cpu", type=int, default=1)
    parser.add_argument("--output", type=Path, default=REPO / "benchmarks" / "results")
    args = parser.parse_args(argv)
    args.servers = [name for name in args.servers.split(",") if name]
    args.loads = [name for name in args.loads.split(",") if name]
    if len(os.sched_getaffinity(0)) < 2:
        print("warning: fewer than 2 usable cores; not pinning", file=sys.stderr)
        args.server_cpu = args.client_cpu = None
    return args


def run_loads(args: argparse.Namespace, loads: Sequence[Load]) -> list[dict[str, Any]]:
    """Every (round, load, server) with h2load; `args` as benchmarks/peers.py parses them
    (duration, rounds, threads, servers, server_cpu, client_cpu, output)."""
    h2load = shutil.which("h2load")
    if h2load is None:
        print("HTTP/2 loads skipped: they need h2load (apt-get install nghttp2-client)",
              file=sys.stderr)
        return []
    servers = [server for server in SERVERS if server.name in args.servers and available(server)]
    logs = args.output / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as scratch:
        cert, key = make_certificate(Path(scratch))
        for round_index in range(args.rounds):
            for load in loads:
                for server in servers:
                    log = logs / f"{server.name}-{load.name}-{round_index}.log"
                    entry: dict[str, Any] = {"server": server.name, "load": load.name,
                                             "round": round_index}
                    try:
                        entry.update(measure(server, load, args, h2load, cert, key, log))
                    except Exception as error:  # a server that fails must not end the run
                        entry["error"] = f"{type(error).__name__}: {error}"
                    runs.append(entry)
                    shown = (f"{entry['rps']:.0f} req/s, p99 {entry['p99_ms'] or 0:.2f} ms, "
                             f"{entry['failed']} failed"
                             if "rps" in entry else entry["error"])
                    print(f"round {round_index} {load.name:<11} {server.name:<10} {shown}",
                          flush=True)
    return runs


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    stop_on_sigterm()
    raise_fd_limit()
    started = time.time()
    runs = run_loads(args, [load for load in LOADS if load.name in args.loads])
    if not runs:
        return 2
    result = medians(runs)
    print(table(result))
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(started))
    path = args.output / f"h2peers-{stamp}.json"
    path.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()},
                                "median": result, "runs": runs}, indent=2))
    print(f"\nresults: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
