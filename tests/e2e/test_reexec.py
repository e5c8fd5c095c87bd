"""SIGUSR2: the binary re-executed with the listeners inherited, under load from real clients.

The new arbiter is the old one's child until the old one exits, then nobody's: each test
finds it with psutil, stops it by its pid and checks that no process is left behind."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
from collections.abc import Iterator

import psutil

from tests.e2e.appfiles import write_app
from tests.e2e.load import Load
from tests.e2e.test_arbiter import APP, get_text, wait_until, worker_count

NEW_ARBITER = re.compile(r"SIGUSR2: started a new arbiter \(pid (\d+)\)")


@contextlib.contextmanager
def successor_stopped(server) -> Iterator[list[int]]:
    """Yields a list the test fills with the new arbiter's pid; stops it (and its workers)
    afterwards whatever happened, and checks they all exit."""
    found: list[int] = []
    try:
        yield found
    finally:
        for pid in found:
            try:
                arbiter = psutil.Process(pid)
                family = [arbiter, *arbiter.children(recursive=True)]
            except psutil.NoSuchProcess:
                continue
            os.kill(pid, signal.SIGTERM)
            _, alive = psutil.wait_procs(family, timeout=15)
            for process in alive:
                process.kill()
            assert not alive, f"left running: {alive}"


def new_arbiter(server, found: list[int]) -> int:
    match = wait_until(lambda: NEW_ARBITER.search(server.log()), "the new arbiter", server)
    pid = int(match.group(1))
    if pid not in found:
        found.append(pid)
    return pid


def test_usr2_hands_the_listeners_to_a_new_arbiter_with_no_failed_request(serve, tmp_path):
    pidfile = tmp_path / "treadle.pid"
    server = serve(APP, "--workers", "2", "--pid", str(pidfile))
    old_workers = worker_count(server, 2)
    with successor_stopped(server) as found, \
            Load(server.host, server.port, threads=3) as load:
        load.wait_for(10)
        server.send_signal(signal.SIGUSR2)
        new = new_arbiter(server, found)
        assert server.process.wait(30) == 0  # the old arbiter left once the new one served
        load.wait_for(20)
        new_workers = {child.pid for child in psutil.Process(new).children()}
        assert len(new_workers) == 2 and not new_workers & old_workers
        assert load.pids & new_workers  # the new workers serve on the same port
        assert pidfile.read_text().strip() == str(new)
        assert not (tmp_path / "treadle.pid.oldbin").exists()
        assert get_text(server, "/osenv")
        load.stop()
        assert load.failures == []
        log = server.log()
        assert f"SIGUSR2: the new arbiter (pid {new}) serves" in log
        assert "Listening at" in log.split(f"[{new}]", 1)[1]  # the same address, adopted


def test_usr2_twice_starts_one_new_arbiter(serve):
    server = serve(APP, "--workers", "1")
    worker_count(server, 1)
    with successor_stopped(server) as found:
        server.send_signal(signal.SIGUSR2)
        new = new_arbiter(server, found)
        server.send_signal(signal.SIGUSR2)  # while the new one boots, or once it serves
        assert server.process.wait(30) == 0
        log = server.log()
        assert log.count("SIGUSR2: started a new arbiter") == 1
        assert f"a new arbiter (pid {new}) is starting already; ignored" in log or \
            "Stopping gracefully (SIGUSR2" in log.split("SIGUSR2: started", 1)[1]
        assert psutil.Process(new).is_running()
        assert get_text(server, "/osenv")


def test_usr2_with_a_new_binary_that_cannot_start_keeps_the_old_one(serve, tmp_path):
    write_app(tmp_path, "usr2app", "'old'")
    pidfile = tmp_path / "treadle.pid"
    server = serve("usr2app:app", "--workers", "1", "--chdir", str(tmp_path),
                   "--pid", str(pidfile))
    worker_count(server, 1)
    assert get_text(server, "/") == "old"
    (tmp_path / "usr2app.py").write_text("raise RuntimeError('broken release')\n")
    with successor_stopped(server) as found:
        server.send_signal(signal.SIGUSR2)
        new = new_arbiter(server, found)
        wait_until(lambda: f"the new arbiter (pid {new}) exited before serving" in
                   server.log(), "the failed handover", server)
    assert get_text(server, "/") == "old"
    assert pidfile.read_text().strip() == str(server.process.pid)  # given back
    assert not (tmp_path / "treadle.pid.oldbin").exists()
    assert server.stop() == 0


def test_usr2_keeps_a_unix_socket_file_for_the_new_arbiter(serve, tmp_path):
    path = tmp_path / "treadle.sock"
    server = serve(APP, "--workers", "1", bind=f"unix:{path}")
    worker_count(server, 1)
    with successor_stopped(server) as found:
        server.send_signal(signal.SIGUSR2)
        new_arbiter(server, found)
        assert server.process.wait(30) == 0
        assert path.is_socket()  # the old arbiter left it to the new one
        client = socket.socket(socket.AF_UNIX)
        client.settimeout(10)
        client.connect(str(path))
        client.sendall(b"GET /osenv HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert client.recv(100).startswith(b"HTTP/1.1 200")
        client.close()
    assert not path.exists()  # the new arbiter removed it when it stopped
