"""`--reuse-port` with `--workers`: a listening socket per worker (server/shards.py), under
real signals and a steady real client opening a new connection per request.

The sockets are told apart by their inode in /proc/PID/fd: with reuse_port every worker
listens on its own socket, and every socket the arbiter still holds is accepted on by a
worker (a socket nobody accepts on would leave connections waiting for ever).
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import threading
import time

import psutil
import pytest

from tests.e2e.load import Load
from tests.e2e.test_arbiter import (
    APP,
    stop_and_check_no_orphans,
    wait_until,
    worker_count,
    workers,
    workers_where,
)

pytestmark = pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc")


def listening_inodes(pid: int, port: int) -> set[str]:
    """The inodes of the sockets process `pid` listens on at `port`."""
    found = set()
    try:
        for conn in psutil.Process(pid).net_connections(kind="tcp"):
            if conn.status == psutil.CONN_LISTEN and conn.laddr.port == port and conn.fd >= 0:
                found.add(os.readlink(f"/proc/{pid}/fd/{conn.fd}"))
    except (psutil.NoSuchProcess, FileNotFoundError):
        return set()  # it exited meanwhile (a recycled worker)
    return found


def sockets_by_worker(server) -> dict[int, set[str]]:
    return {pid: listening_inodes(pid, server.port) for pid in workers(server)}


def assert_one_socket_each(server, count: int) -> None:
    """`count` workers, each on a socket of its own, and no socket held by the arbiter
    alone (its backlog would never be accepted)."""
    def settled() -> dict[int, set[str]] | None:
        by_worker = sockets_by_worker(server)
        arbiter = listening_inodes(server.process.pid, server.port)
        used = set().union(*by_worker.values()) if by_worker else set()
        ok = len(by_worker) == count and all(len(s) == 1 for s in by_worker.values()) \
            and len(used) == count and arbiter == used
        return by_worker if ok else None
    wait_until(settled, f"{count} workers on {count} sockets", server)


def test_each_worker_accepts_on_its_own_socket_and_connections_spread(serve):
    server = serve(APP, "--workers", "2", "--reuse-port")
    pids = worker_count(server, 2)
    assert_one_socket_each(server, 2)
    assert "reuse_port: each worker accepts on its own socket" in server.log()
    with Load(server.host, server.port, threads=4) as load:
        load.wait_for(200)
    assert load.failures == []
    # the kernel spreads new connections over the sockets: each worker gets a fair share
    assert set(load.served_by) == pids
    assert min(load.served_by.values()) >= 0.2 * sum(load.served_by.values()), load.served_by
    assert stop_and_check_no_orphans(server) == 0


def test_without_reuse_port_the_workers_share_one_socket(serve):
    server = serve(APP, "--workers", "2")
    worker_count(server, 2)
    wait_until(lambda: len(set().union(*sockets_by_worker(server).values())) == 1 and
               all(sockets_by_worker(server).values()), "both workers listening", server)
    assert stop_and_check_no_orphans(server) == 0


def test_hup_with_reuse_port_under_load_loses_no_request(serve):
    server = serve(APP, "--workers", "2", "--reuse-port")
    old = worker_count(server, 2)
    with Load(server.host, server.port, threads=4) as load:
        load.wait_for(50)
        server.send_signal(signal.SIGHUP)
        new = workers_where(server, lambda p: len(p) == 2 and not p & old,
                            "the old workers to leave")
        load.wait_for(100)
    assert load.failures == []
    assert new <= set(load.served_by)
    assert_one_socket_each(server, 2)
    assert stop_and_check_no_orphans(server) == 0


@pytest.mark.parametrize("flags", [(), ("--reuse-port",)], ids=["shared", "reuse_port"])
def test_hup_under_keepalive_load_answers_every_request(serve, flags):
    """The old workers' idle keep-alive connections are not closed under their clients'
    next request: each is answered (with Connection: close) within a short grace."""
    server = serve(APP, "--workers", "2", *flags)
    old = worker_count(server, 2)
    with Load(server.host, server.port, threads=8, keepalive=True) as load:
        load.wait_for(100)
        server.send_signal(signal.SIGHUP)
        workers_where(server, lambda p: len(p) == 2 and not p & old, "the old workers to leave")
        load.wait_for(100)
    assert load.failures == []
    assert stop_and_check_no_orphans(server) == 0


def test_ttin_and_ttou_with_reuse_port_under_load_lose_no_request(serve):
    server = serve(APP, "--workers", "2", "--reuse-port")
    worker_count(server, 2)
    with Load(server.host, server.port, threads=4) as load:
        load.wait_for(50)
        server.send_signal(signal.SIGTTIN)
        assert_one_socket_each(server, 3)
        third = max(workers(server))
        wait_until(lambda: load.served_by[third] >= 5, "the third worker to serve", server)
        server.send_signal(signal.SIGTTOU)
        workers_where(server, lambda p: third not in p and len(p) == 2,
                      "the third worker (highest slot) to leave")
        load.wait_for(100)
    assert load.failures == []
    assert_one_socket_each(server, 2)
    assert stop_and_check_no_orphans(server) == 0


def test_max_requests_with_reuse_port_under_load_loses_no_request(serve):
    server = serve(APP, "--workers", "2", "--reuse-port", "--max-requests", "40")
    worker_count(server, 2)
    with Load(server.host, server.port, threads=4) as load:
        wait_until(lambda: len(load.pids) >= 6, "two recyclings of each worker", server)
    assert load.failures == []
    assert_one_socket_each(server, 2)
    assert stop_and_check_no_orphans(server) == 0


def test_a_killed_workers_waiting_connections_go_to_its_replacement(serve):
    server = serve(APP, "--workers", "2", "--reuse-port")
    pids = worker_count(server, 2)
    assert_one_socket_each(server, 2)
    victim = min(pids)
    psutil.Process(victim).suspend()  # connections now wait in its socket's backlog
    waiting = []
    try:
        for _ in range(16):  # some hash to its socket
            sock = socket.create_connection((server.host, server.port), timeout=20)
            sock.sendall(b"GET /osenv HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            waiting.append(sock)
        psutil.Process(victim).kill()
        workers_where(server, lambda p: len(p) == 2 and victim not in p, "a replacement")
        answers = [b"".join(iter(lambda s=sock: s.recv(65536), b"")) for sock in waiting]
    finally:
        for sock in waiting:
            sock.close()
    assert all(answer.startswith(b"HTTP/1.1 200 ") for answer in answers), answers
    assert stop_and_check_no_orphans(server) == 0


def test_a_socket_handed_over_is_shared_by_the_workers_and_said_so(serve):
    listener = socket.create_server(("127.0.0.1", 0), backlog=16)  # as systemd's
    try:
        bind = f"fd://{listener.fileno()}"
        server = serve(APP, "--workers", "2", "--reuse-port", bind=bind,
                       pass_fds=(listener.fileno(),))
        worker_count(server, 2)
        assert f"reuse_port: the workers share the socket of {bind}" in server.log()
        with Load(server.host, server.port, threads=2) as load:
            load.wait_for(20)
        assert load.failures == []
        assert stop_and_check_no_orphans(server) == 0
    finally:
        listener.close()


def test_a_slot_taken_again_before_its_old_worker_exits_is_balanced_afterwards(serve):
    """TTOU, then TTIN while the slot's old worker still finishes a request: a new worker
    starts on that slot (on a socket of its own) while new connections are steered to slot
    0's socket. Once the old one has exited the kernel balances again: new connections
    reach every worker, not slot 0's only."""
    server = serve(APP, "--workers", "3", "--reuse-port")
    old = worker_count(server, 3)

    def slow_request() -> None:  # holds a worker (which one: the kernel's hash)
        conn = http.client.HTTPConnection(server.host, server.port, timeout=30)
        conn.request("GET", "/sleep?s=3")
        conn.getresponse().read()
        conn.close()

    holders = [threading.Thread(target=slow_request) for _ in range(24)]
    for thread in holders:
        thread.start()
    time.sleep(0.5)  # each worker holds one now (24 connections over 3 sockets)
    server.send_signal(signal.SIGTTOU)
    wait_until(lambda: "SIGTTOU: 2 workers" in server.log(), "TTOU", server)
    server.send_signal(signal.SIGTTIN)
    wait_until(lambda: "SIGTTIN: 3 workers" in server.log(), "TTIN", server)
    for thread in holders:
        thread.join(30)
    wait_until(lambda: len(workers(server)) == 3 and len(old - workers(server)) == 1,
               "the slot's old worker to leave and a new one to serve", server)
    assert_one_socket_each(server, 3)
    pids = set()
    for _ in range(200):  # a new connection each: the kernel's hash picks the socket
        conn = http.client.HTTPConnection(server.host, server.port, timeout=10)
        conn.request("GET", "/osenv")
        pids.add(json.loads(conn.getresponse().read())["pid"])
        conn.close()
        if len(pids) == 3:
            break
    assert len(pids) == 3, pids
    assert stop_and_check_no_orphans(server) == 0
