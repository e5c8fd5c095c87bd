"""Signals to the single-process server (workers = 0), each sent to a real server under load.

A stop signal is honoured whichever thread of the server the kernel delivers it to.

kill() sends a process-directed signal, which Linux may hand to any thread; CPython runs the
Python handler on the main thread only. Aiming SIGTERM at a worker thread with tgkill makes
that case certain instead of a rare race.
"""

from __future__ import annotations

import ctypes
import platform
import signal
import socket
import time
from pathlib import Path

import psutil
import pytest

from tests.e2e.load import Load
from tests.e2e.wire import Wire, get

SYS_TGKILL = {"x86_64": 234, "aarch64": 131}.get(platform.machine())


@pytest.mark.skipif(SYS_TGKILL is None,
                    reason=f"tgkill's syscall number is not known on {platform.machine()}")
def test_sigterm_delivered_to_a_worker_thread_still_stops_the_server(serve) -> None:
    server = serve("examples.hello:app", "--threads", "2")
    process = psutil.Process(server.process.pid)
    others = [t.id for t in process.threads() if t.id != process.pid]
    assert others, "the server has no threads besides the main one"
    libc = ctypes.CDLL(None, use_errno=True)
    assert libc.syscall(SYS_TGKILL, process.pid, others[-1], int(signal.SIGTERM)) == 0
    assert server.process.wait(timeout=10) == 0
    assert "Stopping gracefully" in server.log()


APP = "tests.e2e.apps_core:app"


def _wait_for_log(server, text: str, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while text not in server.log():
        assert server.process.poll() is None, f"server exited:\n{server.log()}"
        assert time.monotonic() < deadline, f"no {text!r} in the log:\n{server.log()}"
        time.sleep(0.02)


@pytest.mark.parametrize("sig, logged", [
    (signal.SIGHUP, "SIGHUP (reload) needs an arbiter"),
    (signal.SIGUSR2, "SIGUSR2 (re-execute) needs an arbiter"),
    (signal.SIGTTIN, "SIGTTIN (one more worker) needs an arbiter"),
    (signal.SIGTTOU, "SIGTTOU (one worker fewer) needs an arbiter"),
    (signal.SIGWINCH, "SIGWINCH ignored"),
])
def test_single_process_logs_and_ignores_arbiter_signals_under_load(serve, sig, logged):
    server = serve(APP, "--threads", "2")
    with Load(server.host, server.port) as load:
        load.wait_for(5)
        server.send_signal(sig)
        server.send_signal(sig)  # twice in a row changes nothing
        _wait_for_log(server, logged)
        load.wait_for(5)
    assert load.failures == []
    assert psutil.Process(server.process.pid).status() != psutil.STATUS_STOPPED


def test_sigusr1_reopens_log_files_for_logrotate(serve, tmp_path: Path):
    access = tmp_path / "access.log"
    server = serve(APP, "--access-logfile", str(access))
    with Load(server.host, server.port, path="/osenv?name=first") as load:
        load.wait_for(3)
    rotated = tmp_path / "access.log.1"
    access.rename(rotated)  # what logrotate does before its postrotate USR1
    server.send_signal(signal.SIGUSR1)
    _wait_for_log(server, "SIGUSR1: reopened 1 log file(s)")
    with Load(server.host, server.port, path="/osenv?name=second", threads=1) as load:
        load.wait_for(2)
    assert "name=second" in access.read_text()
    assert "name=second" not in rotated.read_text()
    assert "name=first" in rotated.read_text()


def test_sigquit_stops_at_once_and_removes_the_pidfile(serve, tmp_path: Path):
    pidfile = tmp_path / "treadle.pid"
    server = serve(APP, "--pid", str(pidfile))
    assert pidfile.read_text().strip() == str(server.process.pid)
    wire = Wire(server.host, server.port)
    wire.send(get("/sleep?s=60"))  # in flight: a quick stop does not wait for it
    time.sleep(0.3)
    server.send_signal(signal.SIGQUIT)
    assert server.process.wait(20) == 0
    assert "SIGQUIT: stopping at once" in server.log()
    assert not pidfile.exists()
    wire.close()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_graceful_stop_under_load_removes_the_pidfile(serve, tmp_path: Path, sig):
    pidfile = tmp_path / "treadle.pid"
    server = serve(APP, "--pid", str(pidfile))
    with Load(server.host, server.port) as load:
        load.wait_for(5)
        server.send_signal(sig)
        assert server.process.wait(20) == 0
    assert f"Stopping gracefully ({signal.Signals(sig).name})" in server.log()
    assert not pidfile.exists()


def _notifications(sock: socket.socket, count: int) -> list[str]:
    messages = []
    sock.settimeout(20)
    for _ in range(count):
        messages.append(sock.recv(4096).decode())
    return messages


def test_sd_notify_ready_and_stopping(serve, tmp_path: Path):
    path = str(tmp_path / "notify.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(path)
        server = serve(APP, env={"NOTIFY_SOCKET": path})
        assert _notifications(sock, 1) == ["READY=1"]
        assert server.stop() == 0
        assert _notifications(sock, 1) == ["STOPPING=1"]


def test_sd_notify_from_the_arbiter_ready_reloading_stopping(serve, tmp_path: Path):
    path = str(tmp_path / "notify.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(path)
        server = serve(APP, "--workers", "2", env={"NOTIFY_SOCKET": path})
        assert _notifications(sock, 1) == ["READY=1"]  # once, from the arbiter only
        server.send_signal(signal.SIGHUP)
        reloading, ready = _notifications(sock, 2)
        assert reloading.startswith("RELOADING=1\nMONOTONIC_USEC=")
        assert ready == "READY=1"
        assert server.stop() == 0
        assert _notifications(sock, 1) == ["STOPPING=1"]
        sock.settimeout(0.5)
        with pytest.raises(TimeoutError):
            sock.recv(4096)  # nothing from the workers
