"""A socket fuzzer for the real server: mutated HTTP/1.1 requests, HTTP/2 conversations and
PROXY protocol headers.

    python -m benchmarks.fuzz --cases 2000 --seed 1            # half HTTP/1.1, half HTTP/2
    python -m benchmarks.fuzz --protocols proxy --cases 1000   # PROXY headers, then a request
    python -m benchmarks.fuzz --protocols h1 --cases 1000000 --seed 7 --json fuzz.json
    python -m benchmarks.fuzz --seed 7 --only h1:48213          # one case again, bytes shown

Each case (benchmarks/fuzzcases.py) is sent on its own connection in pieces split at random,
then the client shuts its side, so the server answers what it can and closes; then a canary
on a new connection (HTTP/1.1 `GET /stats`, or one HTTP/2 stream on a new h2c connection)
must be answered with 200. Counted: crashes (the server exited; it is started again and the
case named), hangs (a case's connection still open 3 s after the client shut its side),
canary failures, 5xx answers the application did not ask for (501 and 505 are the answers
docs/security.md gives to unimplemented codings, CONNECT and other major versions, counted
apart), and requests that reached the application but should not have: any value with a CR,
LF, NUL or other control byte, a body whose length differs from its Content-Length (the
application records both, benchmarks/attack_app.py), and, for HTTP/1.1, more requests than
h11 (the reference parser, fed the same bytes) finds. The server's descriptors are sampled
every 100 cases and must come back to where they started. The server reads PROXY headers
(proxy_protocol auto; they are optional), so every HTTP/1.1 and HTTP/2 case also checks that
a connection without one passes through unchanged; a PROXY case's request is judged like an
HTTP/1.1 one, without the h11 comparison (h11 knows no PROXY header).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import re
import socket
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if __package__ in (None, ""):  # run as a script: make `benchmarks` importable
    sys.path.insert(0, str(REPO))

from benchmarks.attackkit import H2Conn, Target  # noqa: E402
from benchmarks.fuzzcases import h1_case, h2_case, proxy_case, whole_frames  # noqa: E402
from benchmarks.stopping import stop_on_sigterm  # noqa: E402

PROGRESS_EVERY = 10_000  # cases between progress lines on stderr (a long run)
CASES: dict[str, Callable[[int, int], tuple[bytes, list[int]]]] = {
    "h1": h1_case, "h2": h2_case, "proxy": proxy_case}

CASE_TIMEOUT_S = 3.0
SERVER_FLAGS = ("--threads", "8", "--header-timeout", "2", "--body-timeout", "2",
                "--keep-alive", "2", "--graceful-timeout", "3", "--proxy-protocol=auto")
_STATUS = re.compile(rb"HTTP/1\.[01] (\d{3}) ")
_ASKED = re.compile(rb"\r\nx-asked: error\r\n", re.IGNORECASE)
APP_FLAGS = ("control_bytes", "length_mismatch")
PING_WAIT_S = 0.2  # for the ACK of the PING that ends an HTTP/2 case
QUIET_S = 0.02  # after the ACK: answers of streams still on a worker
_PING = b"\x00\x00\x08\x06\x00\x00\x00\x00\x00fuzzPING"
_PING_ACK = b"\x00\x00\x08\x06\x01\x00\x00\x00\x00fuzzPING"


@dataclass
class Counts:
    cases: int = 0
    answers: int = 0  # responses the cases got (HTTP/1.1 status lines, HTTP/2 HEADERS)
    crashes: int = 0
    hangs: int = 0
    canary_failures: int = 0
    server_5xx: int = 0
    asked_5xx: int = 0
    refused_501_505: int = 0
    app_requests: int = 0
    app_flagged: int = 0
    beyond_h11: int = 0
    closed_silently: int = 0  # PROXY cases closed without an answer (a refused header)
    fds_baseline: int = 0
    fds_peak: int = 0
    fds_end: int = 0
    seconds: float = 0.0
    examples: dict[str, list[str]] = field(default_factory=dict)

    def note(self, kind: str, case: str, limit: int = 10) -> None:
        found = self.examples.setdefault(kind, [])
        if len(found) < limit:
            found.append(case)


def send_case(port: int, data: bytes, splits: Sequence[int], h2: bool = False) -> bytes | None:
    """Send `data` in pieces, shut the writing side and read until the server closes; None
    when it keeps the connection open past CASE_TIMEOUT_S. HTTP/2 forgets its streams when
    the client shuts its side, so an HTTP/2 case first ends with a PING and waits (briefly)
    for its ACK and the answers that follow, before shutting."""
    with socket.create_connection(("127.0.0.1", port), timeout=CASE_TIMEOUT_S) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        received = bytearray()
        try:
            for start, end in zip([0, *splits], [*splits, len(data)], strict=True):
                sock.sendall(data[start:end])
            if h2 and whole_frames(data):
                sock.sendall(_PING)
                if not _read_until_ping_ack(sock, received):
                    return bytes(received)
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the server closed early (after a 400 or a GOAWAY); read what it said
        return _read_until_closed(sock, received)


def _read_until_ping_ack(sock: socket.socket, received: bytearray) -> bool:
    """Read until our PING's ACK and a quiet moment after it; False once the server closed."""
    deadline = time.monotonic() + PING_WAIT_S
    acked = False
    while time.monotonic() < deadline:
        sock.settimeout(QUIET_S if acked else max(0.001, deadline - time.monotonic()))
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            if acked:
                break
            continue
        if not chunk:
            return False
        received += chunk
        acked = acked or _PING_ACK in received
    sock.settimeout(CASE_TIMEOUT_S)
    return True


def _read_until_closed(sock: socket.socket, received: bytearray) -> bytes | None:
    deadline = time.monotonic() + CASE_TIMEOUT_S
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            return None
        except OSError:
            return bytes(received)
        if not chunk:
            return bytes(received)
        received += chunk
    return None


def h11_requests(data: bytes) -> int:
    """How many request heads h11, as a server, accepts from `data` followed by EOF, with
    the one leniency docs/security.md gives: up to 8 empty lines (CRLF) before a request
    line are skipped (RFC 9112 2.2), where h11 refuses them."""
    import h11

    count = 0
    while True:
        data = _skip_empty_lines(data)
        conn = h11.Connection(h11.SERVER)
        conn.receive_data(data)
        conn.receive_data(b"")
        requests, whole = _h11_one_cycle(conn)
        count += requests
        if not whole:
            return count
        data = conn.trailing_data[0]


def _skip_empty_lines(data: bytes, most: int = 8) -> bytes:
    skipped = 0
    while data.startswith(b"\r\n") and skipped < most:
        data, skipped = data[2:], skipped + 1
    return data


def _h11_one_cycle(conn: Any) -> tuple[int, bool]:
    """(requests seen, whether a whole exchange ended and the connection may go on)."""
    import h11

    requests = 0
    try:
        while True:
            event = conn.next_event()
            if isinstance(event, h11.Request):
                requests += 1
            elif isinstance(event, h11.EndOfMessage):
                conn.send(h11.Response(status_code=200, headers=[("Content-Length", "0")]))
                conn.send(h11.EndOfMessage())
                return requests, conn.our_state is h11.DONE and conn.their_state is h11.DONE
            elif event in (h11.NEED_DATA, h11.PAUSED) or isinstance(event, h11.ConnectionClosed):
                return requests, False
    except (h11.RemoteProtocolError, h11.LocalProtocolError):
        return requests, False


def h2_statuses(data: bytes) -> list[tuple[int, bool]]:
    """The :status of every HEADERS frame the server sent (HPACK decoded in order), each with
    whether the application marked it as asked for."""
    import hpack

    decoder, statuses, at = hpack.Decoder(), [], 0
    while at + 9 <= len(data):
        length, kind = int.from_bytes(data[at:at + 3], "big"), data[at + 3]
        payload = data[at + 9:at + 9 + length]
        at += 9 + length
        if kind == 0x1:
            try:
                headers = dict(decoder.decode(payload, raw=True))
                statuses.append((int(headers.get(b":status", b"0")), b"x-asked" in headers))
            except Exception:  # noqa: BLE001 - the rest of the stream is not ours to judge
                break
    return statuses


class Fuzzer:
    """One server under fuzzing, started again after a crash, and the counts so far."""

    def __init__(self, seed: int, log: Path | None = None) -> None:
        self.seed, self.log = seed, log
        self.counts = Counts()
        self.target = self._start()
        self.counts.fds_baseline = self.target.settle_fds(0, 0.2)
        self.stats = self._stats()

    def _start(self) -> Target:
        return Target(SERVER_FLAGS, log_path=self.log)

    def _stats(self) -> dict[str, int] | None:
        try:
            with socket.create_connection(("127.0.0.1", self.target.port), timeout=2) as sock:
                sock.sendall(b"GET /stats HTTP/1.1\r\nHost: canary\r\nConnection: close\r\n\r\n")
                data = b""
                while chunk := sock.recv(65536):
                    data += chunk
        except OSError:
            return None
        head, _, body = data.partition(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 200 "):
            return None
        parsed: dict[str, int] = json.loads(body)
        return parsed

    def run_case(self, protocol: str, index: int) -> None:
        data, splits = CASES[protocol](self.seed, index)
        name = f"{protocol}:{index}"
        self.counts.cases += 1
        try:
            answer = send_case(self.target.port, data, splits, h2=protocol == "h2")
        except OSError:
            answer = b""
        if not self.target.alive():
            self._crashed(name)
            return
        if answer is None:
            self.counts.hangs += 1
            self.counts.note("hangs", name)
            answer = b""
        self._judge_answer(protocol, name, answer)
        self._canary(protocol, name, h11_requests(data) if protocol == "h1" else None)
        if protocol == "proxy" and not answer:
            self.counts.closed_silently += 1

    def _judge_answer(self, protocol: str, name: str, answer: bytes) -> None:
        if protocol != "h2":
            statuses = [int(s) for s in _STATUS.findall(answer)]
            asked = len(_ASKED.findall(answer))
        else:
            answers = h2_statuses(answer)
            statuses, asked = [s for s, _ in answers], sum(1 for _, a in answers if a)
        self.counts.answers += len(statuses)
        fives = [s for s in statuses if s >= 500]
        refused = sum(1 for s in fives if s in (501, 505))
        server = len(fives) - refused - asked
        self.counts.refused_501_505 += refused
        self.counts.asked_5xx += asked
        if server > 0:
            self.counts.server_5xx += server
            self.counts.note("server_5xx", name)

    def _canary(self, protocol: str, name: str, h11_count: int | None) -> None:
        ok = True
        if protocol == "h2":
            try:
                conn = H2Conn(self.target.port)
                ok = conn.get("/case") == 200
                conn.close()
            except Exception:  # noqa: BLE001 - any failure of a good stream is a failure
                ok = False
        stats = self._stats()
        if stats is None or not ok:
            self.counts.canary_failures += 1
            self.counts.note("canary_failures", name)
            if not self.target.alive():
                self._crashed(name)
                return
        if stats is not None:
            self._account(protocol, name, stats, h11_count)

    def _account(self, protocol: str, name: str, stats: dict[str, int],
                 h11_count: int | None) -> None:
        previous = self.stats or stats
        reached = max(0, stats["requests"] - previous["requests"] - (1 if protocol == "h2" else 0))
        flagged = sum(stats[key] - previous[key] for key in APP_FLAGS)
        self.stats = stats
        self.counts.app_requests += reached
        if flagged:
            self.counts.app_flagged += flagged
            self.counts.note("app_flagged", name)
        if h11_count is not None and reached > h11_count:
            self.counts.beyond_h11 += reached - h11_count
            self.counts.note("beyond_h11", name)

    def _crashed(self, name: str) -> None:
        self.counts.crashes += 1
        self.counts.note("crashes", name)
        self.counts.note("crash_logs", self.target.log()[-2000:], limit=3)
        self.target.stop()
        self.target = self._start()
        self.stats = self._stats()

    def health(self) -> None:
        sample = self.target.sample()
        if sample:
            self.counts.fds_peak = max(self.counts.fds_peak, sample.fds)

    def finish(self) -> Counts:
        self.counts.fds_end = self.target.settle_fds(self.counts.fds_baseline, 10.0)
        status = self.target.stop()
        if status != 0:
            self.counts.note("exit_status", str(status))
        return self.counts


def run(seed: int, cases: int, protocols: Sequence[str], log: Path | None = None,
        only: str | None = None, jobs: int = 1) -> Counts:
    """Run the plan on one server, or split over `jobs` processes with a server each (every
    case is the one a single run would send)."""
    plan = [(only.split(":")[0], int(only.split(":")[1]))] if only else [
        (protocols[i % len(protocols)], i // len(protocols)) for i in range(cases)]
    if jobs > 1 and len(plan) > 1:
        return _run_jobs(seed, plan, log, jobs)
    return _run_plan(seed, plan, log)


def _run_plan(seed: int, plan: Sequence[tuple[str, int]], log: Path | None,
              label: str = "") -> Counts:
    fuzzer = Fuzzer(seed, log)
    started = time.monotonic()
    try:
        for number, (protocol, index) in enumerate(plan):
            fuzzer.run_case(protocol, index)
            if number % 100 == 0:
                fuzzer.health()
            if number and number % PROGRESS_EVERY == 0:
                c = fuzzer.counts
                print(f"{label}{number:,} cases in {time.monotonic() - started:.0f} s: "
                      f"{c.crashes} crashes, {c.hangs} hangs, {c.canary_failures} canary "
                      "failures", file=sys.stderr, flush=True)
        fuzzer.health()
        counts = fuzzer.finish()
    finally:
        fuzzer.target.stop()  # (again, after finish: it is only a wait then)
    counts.seconds = time.monotonic() - started
    return counts


def _job(seed: int, plan: Sequence[tuple[str, int]], log: Path | None, label: str,
         results: Any) -> None:
    """One job of a split run, in its own process: SIGTERM stops its server too."""
    stop_on_sigterm()
    results.put(asdict(_run_plan(seed, plan, log, label)))


def _run_jobs(seed: int, plan: Sequence[tuple[str, int]], log: Path | None,
              jobs: int) -> Counts:
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    # Whole rounds of the protocols to each job in turn, so every job has its share of each
    # (an HTTP/2 case takes longer: a job of HTTP/2 cases alone would finish last, alone).
    rounds = len({protocol for protocol, _ in plan})
    shares: list[list[tuple[str, int]]] = [[] for _ in range(jobs)]
    for number, case in enumerate(plan):
        shares[number // rounds % jobs].append(case)
    workers = [context.Process(target=_job, args=(
        seed, shares[k], log and log.with_name(f"{log.name}.{k}"), f"job {k}: ", results))
        for k in range(jobs)]
    try:
        for worker in workers:
            worker.start()
        parts = [results.get() for _ in workers]
    finally:
        for worker in workers:
            if worker.is_alive():
                worker.terminate()  # SIGTERM: the job stops its server on the way out
            worker.join()
    return merge_counts([Counts(**part) for part in parts])


def merge_counts(parts: Sequence[Counts]) -> Counts:
    """The counts of a split run: numbers added (descriptors too: every job's server must
    come back to its own baseline), the longest job's seconds, the first examples of each."""
    merged = Counts()
    for part in parts:
        for name, value in asdict(part).items():
            if name == "seconds":
                merged.seconds = max(merged.seconds, value)
            elif name == "examples":
                for kind, cases in value.items():
                    for case in cases:
                        merged.note(kind, case, 3 if kind == "crash_logs" else 10)
            else:
                setattr(merged, name, getattr(merged, name) + value)
    return merged


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--cases", type=int, default=2000, help="in all, protocols alternating")
    parser.add_argument("--protocols", default="h1,h2",
                        help="a comma-separated choice of h1, h2 and proxy")
    parser.add_argument("--only", help="run one case, PROTOCOL:INDEX, and print its bytes")
    parser.add_argument("--json", type=Path, help="write the counts to this file")
    parser.add_argument("--log", type=Path, help="keep the server's log here")
    parser.add_argument("--jobs", type=int, default=1,
                        help="split the cases over this many processes, a server each "
                             "(a case mostly waits on the network: 8 jobs go ~6x faster)")
    args = parser.parse_args(argv)
    stop_on_sigterm()
    if args.only:
        protocol, index = args.only.split(":")
        print(repr(CASES[protocol](args.seed, int(index))[0]))
    counts = run(args.seed, args.cases, args.protocols.split(","), args.log, args.only,
                 args.jobs)
    summary: dict[str, Any] = asdict(counts)
    print(json.dumps(summary, indent=2))
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2))
    bad = counts.crashes + counts.hangs + counts.canary_failures + counts.server_5xx
    return 1 if bad or counts.fds_end > counts.fds_baseline else 0


if __name__ == "__main__":
    sys.exit(main())
