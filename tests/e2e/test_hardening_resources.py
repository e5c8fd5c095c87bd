"""HARDENING.md items 26-28: slow and half-open clients, and more connections than allowed.

Three servers, each started once for the tests that need it:
- `short`: 1 s head, body and keep-alive timeouts, so the timeouts fire within the safety
  nets (8 s) of these tests;
- `holding`: one worker thread and 30 s timeouts, so a connection that waits while holding
  the thread would keep every other client waiting far past the 5 s safety net;
- `capped`: `--worker-connections 5`, fed 20 connections.
The clocks here are safety nets only: each test waits for an event (a close, an answer)
and fails if it never comes, never on how fast it came.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests.e2e.apps_hardening import (
    ServerProcess,
    assert_clean_log,
    assert_serves,
    connect,
    exchange,
    parse_responses,
    read_until_closed,
)

SAFETY_NET_S = 8.0
PARTIAL_HEAD = b"GET / HTTP/1.1\r\nHost: x\r\n"


def start(tmp_path_factory: pytest.TempPathFactory, name: str,
          *flags: str) -> Iterator[ServerProcess]:
    process = ServerProcess(Path(tmp_path_factory.mktemp(name)) / "server.log", flags=flags)
    process.start()
    yield process
    process.stop_cleanly()


@pytest.fixture(scope="module")
def short(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    yield from start(tmp_path_factory, "hardening-short", "--threads", "2",
                     "--header-timeout", "1", "--body-timeout", "1", "--keep-alive", "1")


@pytest.fixture(scope="module")
def holding(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    yield from start(tmp_path_factory, "hardening-holding", "--threads", "1",
                     "--header-timeout", "30", "--body-timeout", "30", "--keep-alive", "30")


@pytest.fixture(scope="module")
def capped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    yield from start(tmp_path_factory, "hardening-capped", "--threads", "2",
                     "--worker-connections", "5", "--keep-alive", "30")


def assert_timeout_answer(data: bytes) -> None:
    """A timed-out request may get a 408 with Connection: close, or just the close."""
    responses, rest = parse_responses(data)
    assert rest == b"" and [r.status for r in responses] in ([], [408]), data[:600]
    if responses:
        assert b"close" in (responses[0].header(b"connection") or b"").lower()


def test_slow_head_is_cut_off(short: ServerProcess) -> None:
    """Item 26 (slowloris): a head dripped one field every 0.25 s ends at --header-timeout,
    even though bytes keep arriving."""
    mark = short.mark()
    received = bytearray()
    closed = False
    with connect(short.port) as sock:
        sock.sendall(PARTIAL_HEAD)
        deadline = time.monotonic() + SAFETY_NET_S
        sock.settimeout(0.25)
        while not closed and time.monotonic() < deadline:
            try:
                data = sock.recv(65536)
                received += data
                closed = not data
            except TimeoutError:
                try:
                    sock.sendall(b"X-Drip: 1\r\n")
                except OSError:
                    closed = True
            except OSError:
                closed = True
        assert_serves(short)  # while this one dripped, others were answered
    assert closed, f"the server still read a dripping head after {SAFETY_NET_S} s"
    assert_timeout_answer(bytes(received))
    assert_clean_log(short, mark)


def test_silent_connection_is_closed(short: ServerProcess) -> None:
    """Item 26: connected, nothing sent: closed by a timeout, not kept forever."""
    mark = short.mark()
    with connect(short.port) as sock:
        got = read_until_closed(sock, SAFETY_NET_S)
    assert got.closed, "a connection that never sent a byte was kept open"
    assert_timeout_answer(got.data)
    assert_clean_log(short, mark)


def test_idle_keepalive_connection_is_closed(short: ServerProcess) -> None:
    mark = short.mark()
    with connect(short.port) as sock:
        sock.sendall(PARTIAL_HEAD + b"\r\n")
        got = read_until_closed(sock, SAFETY_NET_S)
    responses, rest = parse_responses(got.data)
    assert [r.status for r in responses] == [200] and rest == b""
    assert got.closed, "an idle keep-alive connection outlived --keep-alive"
    assert_clean_log(short, mark)


def test_stalled_body_times_out(short: ServerProcess) -> None:
    """Item 26: half a body, then silence: the app's read fails at --body-timeout and the
    connection closes."""
    mark = short.mark()
    with connect(short.port) as sock:
        sock.sendall(b"POST /read?id=stalled-body HTTP/1.1\r\nHost: x\r\n"
                     b"Content-Length: 10\r\n\r\nhello")
        got = read_until_closed(sock, SAFETY_NET_S)
    found = short.wait_for_log(r"HARDENING-READ stalled-body (\S+)", since=mark)
    assert found and found.group(1).startswith("error:"), short.log_since(mark)[-2000:]
    assert got.closed
    assert_clean_log(short, mark)


def test_waiting_connections_hold_no_worker(holding: ServerProcess) -> None:
    """Item 26: with one worker thread and 30 s timeouts, connections that wait (for the rest
    of a head, for a first byte, idle between requests) leave the thread to others."""
    mark = holding.mark()
    socks: list[socket.socket] = []
    try:
        partial = [connect(holding.port) for _ in range(4)]
        for sock in partial:
            sock.sendall(PARTIAL_HEAD)
        socks += partial
        socks += [connect(holding.port) for _ in range(4)]
        for _ in range(4):
            sock = connect(holding.port)
            socks.append(sock)
            sock.sendall(PARTIAL_HEAD + b"\r\n")
            assert sock.recv(65536).startswith(b"HTTP/1.1 200")
        assert_serves(holding)  # 5 s safety net per read, far below the 30 s timeouts
        for sock in partial:  # the waiting heads were kept, and complete normally
            sock.sendall(b"Connection: close\r\n\r\n")
            responses, _ = parse_responses(read_until_closed(sock).data)
            assert [r.status for r in responses] == [200]
    finally:
        for sock in socks:
            sock.close()
    assert_clean_log(holding, mark)


def server_cpu_seconds(server: ServerProcess) -> float:
    assert server.process is not None
    process = psutil.Process(server.process.pid)
    total = 0.0
    for each in [process, *process.children(recursive=True)]:
        times = each.cpu_times()
        total += times.user + times.system
    return total


def test_half_open_sockets_do_not_spin(holding: ServerProcess) -> None:
    """Item 27: clients that shut down their sending side mid-request (waitress
    CVE-2024-49769): the server closes them and no thread spins on the EOF."""
    mark = holding.mark()
    requests = [
        PARTIAL_HEAD,
        PARTIAL_HEAD + b"\r\n",
        b"POST /read?id=half-open HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nhello",
        b"",
        b"GET / HTTP/1.1\r\n",
    ]
    socks = [connect(holding.port) for _ in requests]
    try:
        for sock, request in zip(socks, requests, strict=True):
            sock.sendall(request)
            sock.shutdown(socket.SHUT_WR)
        time.sleep(0.3)
        before = server_cpu_seconds(holding)
        time.sleep(1.0)
        used = server_cpu_seconds(holding) - before
        assert used < 0.5, f"the server burnt {used:.2f} s of CPU in 1 s with half-open sockets"
        results = [read_until_closed(sock) for sock in socks]
    finally:
        for sock in socks:
            sock.close()
    assert all(result.closed for result in results), [r.closed for r in results]
    assert [r.status for r in parse_responses(results[1].data)[0]] == [200]
    found = holding.wait_for_log(r"HARDENING-READ half-open (\S+)", since=mark)
    assert found and found.group(1).startswith("error:")
    assert_serves(holding)
    assert_clean_log(holding, mark)


def test_more_connections_than_worker_connections(capped: ServerProcess) -> None:
    """Item 28: 20 keep-alive clients against --worker-connections 5: those let in are
    answered (200, or 503 for refused ones), the server survives, later clients are served."""
    mark = capped.mark()
    socks = [connect(capped.port) for _ in range(20)]
    statuses: list[int] = []
    try:
        for index, sock in enumerate(socks):
            sock.sendall(b"GET /cap-%d HTTP/1.1\r\nHost: x\r\n\r\n" % index)
        deadline = time.monotonic() + 3.0
        for sock in socks:
            sock.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                data = sock.recv(65536)
            except (TimeoutError, ConnectionResetError):
                continue
            statuses += [r.status for r in parse_responses(data)[0]]
        assert capped.alive()
    finally:
        for sock in socks:
            sock.close()
    assert set(statuses) <= {200, 503}, statuses
    assert 200 in statuses, "none of the 20 clients was served"
    deadline = time.monotonic() + SAFETY_NET_S
    while True:  # the server notices the closes and takes new clients again
        got = exchange(capped.port, b"GET /later HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                       timeout_s=1.0)
        responses, _ = parse_responses(got.data)
        if [r.status for r in responses] == [200] or time.monotonic() > deadline:
            break
    assert [(r.status, r.body) for r in responses] == [(200, b"ok /later")]
    assert_clean_log(capped, mark)
