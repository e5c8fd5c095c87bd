"""Connections: pipelining, streaming uploads, idle keep-alive, slow clients, limits.

Timeouts here are safety nets, never measurements: "promptly" means within a bound far
larger than normal service (seconds), yet far smaller than what a blocked worker would cause.
"""

from __future__ import annotations

import re
import resource
import socket
import time
from pathlib import Path

import pytest

from tests.e2e.wire import Wire, get

APP = "tests.e2e.apps_core:app"


def raise_fd_limit(wanted: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        if target < wanted:
            pytest.skip(f"needs {wanted} open files, the hard limit is {hard}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def wait_for(condition, timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return False


def test_pipelined_requests_are_answered_in_order(serve):
    server = serve(APP)
    wire = Wire(server.host, server.port)
    wire.send(get("/big?n=1") + get("/echo", method="POST", body=b"two")
              + get("/big?n=3") + get("/generator?n=1"))
    bodies = [wire.read_response().body for _ in range(4)]
    assert bodies == [b"x", b"two", b"xxx", b"part 0\n"]
    wire.send(get("/big?n=2"))  # the connection is still usable afterwards
    assert wire.read_response().body == b"xx"
    wire.close()


def test_chunked_upload_reaches_the_application_while_streaming(serve, tmp_path: Path):
    # Bodies up to request_buffer_size arrive whole before the call: 0 streams every one.
    server = serve(APP, "--request-buffer-size", "0")
    mark = tmp_path / "first-line"
    wire = Wire(server.host, server.port)
    wire.send(f"POST /stream-input?mark={mark} HTTP/1.1\r\nHost: t\r\n"
              "Transfer-Encoding: chunked\r\n\r\n".encode() + b"b\r\nfirst line\n\r\n")
    # The rest is not sent until the application has seen the first line.
    assert wait_for(mark.exists), "the application did not see the first chunk"
    assert wait_for(lambda: mark.read_bytes() == b"first line\n")
    wire.send(b"5\r\nrest!\r\n0\r\n\r\n")
    response = wire.read_response()
    assert (response.status, response.body) == (200, b"first line\nrest!")
    wire.close()


def test_idle_keepalive_connections_hold_no_thread(serve):
    count = 1000
    raise_fd_limit(count * 2 + 200)
    server = serve(APP, "--threads", "8", "--worker-connections", str(count + 50),
                   "--keep-alive", "60")
    clients = []
    try:
        for _ in range(count):
            sock = socket.create_connection((server.host, server.port), timeout=20)
            sock.sendall(get("/big?n=1"))
            clients.append(sock)
        for sock in clients:  # every one answered, then left idle and open
            data = b""
            while not data.endswith(b"\r\n\r\nx"):
                chunk = sock.recv(4096)
                assert chunk, "a keep-alive connection was closed"
                data += chunk
        # Another client is answered at once although 1,000 connections are open.
        wire = Wire(server.host, server.port, timeout_s=5)
        wire.send(get("/big?n=2"))
        assert wire.read_response().body == b"xx"
        wire.close()
        for sock in clients[::100]:  # and the idle ones are still served
            sock.sendall(get("/big?n=3"))
            assert sock.recv(4096).endswith(b"xxx")
    finally:
        for sock in clients:
            sock.close()


def test_a_burst_on_many_open_connections_is_answered_whole(serve):
    """Requests that become ready together reach the workers in batches (the poller wakes
    them after a round of reading, or every 128 requests): every one is answered."""
    count = 400
    raise_fd_limit(count * 2 + 200)
    server = serve(APP, "--threads", "4", "--worker-connections", str(count + 50))
    clients = [socket.create_connection((server.host, server.port), timeout=20)
               for _ in range(count)]
    try:
        for round_number in range(3):
            for sock in clients:  # all sent before any answer is read
                sock.sendall(get(f"/big?n={round_number + 1}"))
            expected = b"\r\n\r\n" + b"x" * (round_number + 1)
            for sock in clients:
                data = b""
                while not data.endswith(expected):
                    chunk = sock.recv(4096)
                    assert chunk, "a connection was closed mid-burst"
                    data += chunk
    finally:
        for sock in clients:
            sock.close()


def test_responses_built_once_are_never_confused(serve):
    """The server builds each distinct response head once and reuses it (a cache of
    300-odd different heads here, more than it keeps): each answer is still its own."""
    server = serve(APP)
    wire = Wire(server.host, server.port)
    try:
        for n in range(1, 301):
            code = (204, 304)[n % 2]
            wire.send(get(f"/big?n={n}") + get(f"/status?code={code}"))
            response = wire.read_response()
            assert (response.status, response.header("Content-Length")) == (200, str(n))
            assert response.body == b"x" * n
            status = wire.read_response()
            assert status.raw_head.startswith(f"HTTP/1.1 {code} Whatever".encode())
            assert (status.header("ETag") == '"x"') == (code == 304)
    finally:
        wire.close()


def test_slow_header_client_blocks_nobody_and_times_out(serve):
    server = serve(APP, "--threads", "1", "--header-timeout", "1")
    slow = Wire(server.host, server.port)
    slow.send(b"GET /big?n=1 HTTP/1.1\r\nHost: t\r\n")  # and never the blank line
    fast = Wire(server.host, server.port, timeout_s=5)
    fast.send(get("/big?n=2"))
    assert fast.read_response().body == b"xx"  # the only worker is free
    fast.close()
    slow.sock.settimeout(10)
    assert slow.closed_by_peer()  # header_timeout closed it
    slow.close()


def test_idle_connection_closed_after_keepalive(serve):
    server = serve(APP, "--keep-alive", "0.5")
    wire = Wire(server.host, server.port)
    wire.send(get("/big?n=1"))
    assert wire.read_response().body == b"x"
    wire.sock.settimeout(10)
    assert wire.closed_by_peer()
    wire.close()


def test_worker_connections_caps_open_connections(serve):
    """Every slot busy in the application: a new connection waits in the backlog until one
    closes (nothing can be evicted)."""
    server = serve(APP, "--worker-connections", "3", "--threads", "4")
    held = []
    for _ in range(3):
        wire = Wire(server.host, server.port)
        wire.send(get("/sleep?s=1.5"))  # in flight, not idle
        held.append(wire)
    time.sleep(0.3)  # let the three be accepted first
    extra = Wire(server.host, server.port, timeout_s=0.5)  # queued by the kernel
    extra.send(get("/big?n=4"))
    with pytest.raises(TimeoutError):
        extra.read_response()
    for wire in held:  # the sleeps end; each answered connection then waits idle
        wire.sock.settimeout(10)
        assert wire.read_response().body == b"slept\n"
    extra.sock.settimeout(10)
    assert extra.read_response().body == b"xxxx"
    for wire in held + [extra]:
        wire.close()


def test_at_worker_connections_the_longest_waiting_connection_makes_room(serve):
    """Issue 14 item 7: clients that connect and stay silent (or idle keep-alive ones) can
    not hold every slot: at the cap a connection waiting for a request is closed to admit a
    new one, and the newcomer is served at once. Silent ones go first, the longest waiting
    first; an idle keep-alive connection (served, and older than all of them) only when
    no silent one is left."""
    server = serve(APP, "--worker-connections", "4", "--log-level", "debug")
    idle = Wire(server.host, server.port)  # served once, then idle keep-alive
    idle.send(get("/big?n=1"))
    assert idle.read_response().body == b"x"
    time.sleep(0.05)
    silent = []
    for _ in range(3):  # connect, never send anything
        silent.append(Wire(server.host, server.port))
        time.sleep(0.05)
    fresh = []
    for _ in range(2):  # each newcomer (kept open) evicts the longest-waiting one
        wire = Wire(server.host, server.port, timeout_s=5)
        wire.send(get("/big?n=2"))
        assert wire.read_response().body == b"xx"
        fresh.append(wire)
    log = server.log()
    evicted = [int(port) for port in re.findall(r"closing 127\.0\.0\.1:(\d+) \(waiting", log)]
    # the silent ones in the order they came, not the idle keep-alive one (older than them)
    assert evicted[:2] == [silent[0].sock.getsockname()[1], silent[1].sock.getsockname()[1]], log
    for wire in silent[:2]:
        wire.sock.settimeout(5)
        assert wire.closed_by_peer()
    idle.send(get("/big?n=3"))  # still open: served on the same connection
    assert idle.read_response().body == b"xxx"
    last = []
    for _ in range(2):  # the last silent one goes, then (none left) the longest idle one
        wire = Wire(server.host, server.port, timeout_s=5)
        wire.send(get("/big?n=1"))
        assert wire.read_response().body == b"x"
        last.append(wire)
    evicted = [int(port) for port in
               re.findall(r"closing 127\.0\.0\.1:(\d+) \(waiting", server.log())]
    assert evicted == [wire.sock.getsockname()[1] for wire in silent + fresh[:1]]
    for wire in silent + fresh + last:
        wire.close()
    idle.close()


def test_half_closed_client_is_answered_then_closed(serve):
    server = serve(APP)
    wire = Wire(server.host, server.port)
    wire.send(get("/big?n=5"))
    wire.sock.shutdown(socket.SHUT_WR)
    response = wire.read_response()
    assert response.body == b"xxxxx"
    assert wire.closed_by_peer()
    wire.close()
    again = Wire(server.host, server.port)  # and nothing spins or breaks
    again.send(get("/big?n=1"))
    assert again.read_response().body == b"x"
    again.close()


def test_bad_request_gets_one_answer_and_the_pipeline_is_not_read(serve):
    server = serve(APP)
    wire = Wire(server.host, server.port)
    wire.send(b"GET / HTTP/1.1\r\nHost: t\r\nContent-Length: 1, 1\r\n\r\n" + get("/big?n=1"))
    response = wire.read_response()
    assert response.status == 400
    assert response.header("connection") == "close"
    assert wire.read_until_close() == b""
    wire.close()
    assert "Traceback" not in server.log()


def test_slow_small_body_holds_no_worker_and_gets_408(serve):
    server = serve(APP, "--threads", "1", "--body-timeout", "6")
    slow = Wire(server.host, server.port, timeout_s=15)
    slow.send(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nab")
    fast = Wire(server.host, server.port, timeout_s=3)  # well inside the slow one's 6 s
    fast.send(get("/big?n=1"))
    assert fast.read_response().body == b"x"  # the only worker was never taken
    fast.close()
    response = slow.read_response()
    assert response.status == 408
    assert response.header("connection") == "close"
    slow.close()


def test_slow_large_body_gets_408_from_the_worker(serve):
    server = serve(APP, "--threads", "1", "--body-timeout", "1")
    slow = Wire(server.host, server.port, timeout_s=10)
    slow.send(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n\r\nab")
    response = slow.read_response()
    assert response.status == 408
    slow.close()
    fast = Wire(server.host, server.port, timeout_s=5)
    fast.send(get("/big?n=1"))
    assert fast.read_response().body == b"x"
    fast.close()


def test_bad_request_after_a_good_one_is_answered_once(serve):
    server = serve(APP)
    wire = Wire(server.host, server.port)
    wire.send(get("/big?n=2") + b"GET / HTTP/1.1\r\nHost: t\r\nBad Name: x\r\n\r\n"
              + get("/big?n=3"))
    first, second = wire.read_response(), wire.read_response()
    assert (first.status, first.body, second.status) == (200, b"xx", 400)
    assert wire.read_until_close() == b""  # one answer; the pipelined request is not read
    wire.close()
    assert "Traceback" not in server.log()


def test_request_limits_from_the_settings_reach_the_engine(serve):
    server = serve(APP, "--limit-request-line", "100", "--limit-request-fields", "3",
                   "--limit-request-field-size", "50", "--limit-request-head-size", "2048")
    cases = [
        (get("/big?n=1&pad=" + "p" * 200), 414),
        (get("/big?n=1", "A: 1", "B: 2", "C: 3"), 431),
        (get("/big?n=1", "A: " + "v" * 100), 431),
        (get("/big?n=1", *[f"X: {'w' * 40}"] * 2), 200),
    ]
    for request, status in cases:
        wire = Wire(server.host, server.port)
        wire.send(request)
        assert wire.read_response().status == status, request
        wire.close()


def test_reuse_port_lets_two_servers_share_a_port(serve):
    first = serve(APP, "--reuse-port")
    second = serve(APP, "--reuse-port", bind=f"127.0.0.1:{first.port}")
    assert second.port == first.port


def test_no_descriptor_or_thread_leaks(serve):
    import psutil

    server = serve(APP, "--threads", "4")
    process = psutil.Process(server.process.pid)
    baseline = (process.num_fds(), process.num_threads())  # listener, epoll, pipes, logs
    for number in range(60):
        wire = Wire(server.host, server.port)
        kind = number % 6
        if kind == 0:
            wire.send(get("/big?n=1") + get("/generator?n=2"))
            wire.read_response(), wire.read_response()
        elif kind == 1:
            wire.send(b"GET / HTTP/1.1\r\n\r\n")  # no Host: 400, then lingering
            wire.read_until_close()
        elif kind == 2:
            wire.send(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 99\r\n\r\nab")
        elif kind == 3:
            wire.send(get("/error-before"))
            wire.read_response()
        elif kind == 4:
            wire.send(get("/error-after"))
            wire.read_response()
        else:
            wire.send(b"GET /big?n=1 HTTP/1.1\r\nHost:")  # a head never finished
        wire.close()
    assert wait_for(lambda: (process.num_fds(), process.num_threads()) == baseline), (
        (process.num_fds(), process.num_threads()), baseline)
