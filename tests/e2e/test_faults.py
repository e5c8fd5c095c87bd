"""Faults around the process manager: signals during start-up, during a reload and twice in
a row; a worker that does not stop on TERM; a pid file that cannot be written; socket
activation with workers. Real signals, real clients, and no process left behind."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time

import psutil
import pytest

from tests.e2e.appfiles import write_app
from tests.e2e.conftest import ROOT, run_server, server_env, start_server
from tests.e2e.load import Load
from tests.e2e.test_arbiter import (
    APP,
    get_text,
    stop_and_check_no_orphans,
    wait_until,
    worker_count,
    workers_where,
)

NON_STOP = (signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2, signal.SIGTTIN, signal.SIGTTOU,
            signal.SIGWINCH)


def _slow_app(directory, import_s: float) -> None:
    """An application whose import takes `import_s` (a slow start, or a slow reload)."""
    write_app(directory, "slowapp", "json.dumps({'pid': os.getpid()})",
              top=f"open('importing', 'w').close()\ntime.sleep({import_s})")


def _start_slow(tmp_path, *flags: str, import_s: float = 2.0):
    """Start a server whose application takes `import_s` to import; returns at once (before
    it listens when the import happens first, as without workers)."""
    _slow_app(tmp_path, import_s)
    log_path = tmp_path / "server.log"
    log = open(log_path, "wb")  # noqa: SIM115 - the child writes it
    process = subprocess.Popen([sys.executable, "-m", "server", "slowapp:app", "--bind",
                                "127.0.0.1:0", "--chdir", str(tmp_path), *flags],
                               cwd=ROOT, env=server_env(), stdout=log, stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL)
    log.close()
    return process, log_path


def _wait_for_import(process, directory) -> None:
    """Until the application's import has begun (here, or in a worker)."""
    deadline = time.monotonic() + 20
    while not (directory / "importing").exists():
        assert process.poll() is None and time.monotonic() < deadline, process.returncode
        time.sleep(0.02)


@pytest.mark.parametrize("workers", ["0", "2"])
def test_non_stop_signals_during_start_up_never_end_the_server(tmp_path, workers):
    process, log_path = _start_slow(tmp_path, "--workers", workers, import_s=1.5)
    try:
        _wait_for_import(process, tmp_path)
        for sig in NON_STOP:
            if sig == signal.SIGUSR2 and workers != "0":
                continue  # an upgrade is a test of its own (test_reexec.py)
            process.send_signal(sig)
            time.sleep(0.05)
        deadline = time.monotonic() + 20
        while "serving" not in log_path.read_text().lower():
            assert process.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.05)
        time.sleep(0.5)
        assert process.poll() is None, log_path.read_text()
        log = log_path.read_text()
        assert "SIGUSR1: reopened" in log
        if workers == "0":
            assert "SIGHUP (reload) needs an arbiter" in log
    finally:
        if process.poll() is None:
            children = psutil.Process(process.pid).children(recursive=True)
            process.send_signal(signal.SIGTERM)
        else:
            children = []
        assert process.wait(30) == 0, log_path.read_text()
        _, alive = psutil.wait_procs(children, timeout=5)
        assert not alive


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGQUIT])
@pytest.mark.parametrize("workers", ["0", "2"])
def test_a_stop_signal_during_start_up_stops_with_0_and_cleans_up(tmp_path, sig, workers):
    pidfile = tmp_path / "treadle.pid"
    process, log_path = _start_slow(tmp_path, "--workers", workers, "--pid", str(pidfile),
                                    import_s=3)
    _wait_for_import(process, tmp_path)
    children = psutil.Process(process.pid).children(recursive=True)
    process.send_signal(sig)
    assert process.wait(30) == 0, log_path.read_text()
    _, alive = psutil.wait_procs(children, timeout=5)
    assert not alive
    assert not pidfile.exists()
    if workers == "0":
        assert f"{signal.Signals(sig).name} during start-up: stopping" in log_path.read_text()


def test_signals_during_a_reload_and_twice_in_a_row(tmp_path):
    _slow_app(tmp_path, 0)
    server = start_server("slowapp:app", "--workers", "2", "--chdir", str(tmp_path),
                          log_path=tmp_path / "server.log")
    try:
        first = worker_count(server, 2)
        with Load(server.host, server.port, path="/", threads=2) as load:
            load.wait_for(5)
            _slow_app(tmp_path, 2)  # the next generation takes 2 s to import
            server.send_signal(signal.SIGHUP)
            server.send_signal(signal.SIGUSR1)  # during the reload
            time.sleep(0.3)
            server.send_signal(signal.SIGHUP)  # a reload during the reload: the newest wins
            time.sleep(0.3)
            server.send_signal(signal.SIGTTIN)
            time.sleep(0.1)
            server.send_signal(signal.SIGTTIN)  # twice in a row
            wait_until(lambda: "Generation 3 serving" in server.log(), "generation 3", server)
            final = workers_where(server, lambda p: len(p) == 4 and not p & first,
                                  "four new workers")
            load.wait_for(10)
        assert load.failures == []
        log = server.log()
        assert "SIGHUP: starting generation 3" in log
        assert "Generation 2 serving" not in log  # superseded before it served
        assert "SIGTTIN: 4 workers" in log
        assert len(final) == 4
        server.send_signal(signal.SIGUSR1)
        server.send_signal(signal.SIGUSR1)
        wait_until(lambda: server.log().count("SIGUSR1: reopened") >= 3, "USR1", server)
        assert get_text(server, "/")
    finally:
        assert stop_and_check_no_orphans(server) == 0


def test_term_twice_stops_at_once(serve):
    server = serve(APP, "--workers", "2", "--graceful-timeout", "30")
    worker_count(server, 2)
    client = socket.create_connection((server.host, server.port), timeout=10)
    client.sendall(b"GET /sleep?s=20 HTTP/1.1\r\nHost: x\r\n\r\n")
    wait_until(lambda: len(psutil.Process(server.process.pid).children()) == 2, "", server)
    time.sleep(0.5)  # the request is in the application
    children = psutil.Process(server.process.pid).children(recursive=True)
    server.send_signal(signal.SIGTERM)
    wait_until(lambda: "Stopping gracefully" in server.log(), "the graceful stop", server)
    server.send_signal(signal.SIGTERM)
    assert server.process.wait(15) == 0  # not the 20 s of the request
    client.close()
    _, alive = psutil.wait_procs(children, timeout=5)
    assert not alive
    assert "stopping at once" in server.log()


def test_a_worker_that_ignores_term_is_killed_after_graceful_timeout(serve):
    server = serve(APP, "--workers", "1", "--graceful-timeout", "1", "--timeout", "0")
    (deaf,) = worker_count(server, 1)
    assert get_text(server, "/osenv")
    psutil.Process(deaf).suspend()  # TERM stays pending: it never stops by itself
    assert stop_and_check_no_orphans(server) == 0
    log = server.log()
    assert f"Worker {deaf} still running: its threads' tracebacks follow" in log
    assert f"Worker {deaf} still running: SIGKILL" in log
    assert f"Worker {deaf} exited (signal SIGKILL)" in log


@pytest.mark.parametrize(("pidfile", "reason"), [
    ("/dev/full", "No space left on device"),  # a full disk
    ("/proc/treadle/treadle.pid", "No such file or directory"),  # nowhere to write
    ("/sys/treadle.pid", ""),  # read-only (EROFS, or EACCES even for root)
])
@pytest.mark.parametrize("workers", ["0", "2"])
def test_a_pidfile_that_cannot_be_written_is_one_line_and_exit_2(pidfile, reason, workers):
    result = run_server(APP, "--bind", "127.0.0.1:0", "--pid", pidfile, "--workers", workers)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"treadle: error: cannot write pidfile "
                                                   f"{pidfile}: {reason}"), result.stderr


def test_socket_activation_fd_with_two_workers(tmp_path):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    port = listener.getsockname()[1]
    fd = listener.fileno()
    server = start_server(APP, "--bind", f"fd://{fd}", "--workers", "2", bind=None,
                          log_path=tmp_path / "server.log", pass_fds=(fd,))
    listener.close()  # only the server holds it now
    try:
        assert server.port == port
        pids = worker_count(server, 2)
        with Load("127.0.0.1", port, threads=4) as load:
            wait_until(lambda: load.pids >= pids, "both workers to answer", server)
        assert load.failures == []
    finally:
        assert stop_and_check_no_orphans(server) == 0


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGQUIT, signal.SIGUSR2,
                                 signal.SIGTTOU])
def test_signals_while_a_new_generation_boots(tmp_path, sig):
    _slow_app(tmp_path, 0)
    server = start_server("slowapp:app", "--workers", "2", "--chdir", str(tmp_path),
                          log_path=tmp_path / "server.log")
    successor = None
    try:
        worker_count(server, 2)
        assert get_text(server, "/")
        (tmp_path / "importing").unlink()
        _slow_app(tmp_path, 2)
        server.send_signal(signal.SIGHUP)
        _wait_for_import(server.process, tmp_path)  # the new generation is importing
        children = psutil.Process(server.process.pid).children(recursive=True)
        server.send_signal(sig)
        if sig in (signal.SIGTERM, signal.SIGQUIT):
            assert server.process.wait(30) == 0
            _, alive = psutil.wait_procs(children, timeout=5)
            assert not alive
            return
        if sig == signal.SIGUSR2:
            match = wait_until(lambda: re.search(r"started a new arbiter \(pid (\d+)\)",
                                                 server.log()), "USR2", server)
            successor = int(match.group(1))
            assert server.process.wait(30) == 0  # the new arbiter took over
            wait_until(lambda: "Worker" in server.log().split(f"[{successor}]", 1)[-1],
                       "the new arbiter's workers", server)
            return
        wait_until(lambda: "Generation 2 serving" in server.log(), "generation 2", server)
        worker_count(server, 1)  # TTOU applied to the new generation
        assert get_text(server, "/")
    finally:
        if successor is not None:
            family = [psutil.Process(successor), *psutil.Process(successor).children()]
            os.kill(successor, signal.SIGTERM)
            _, alive = psutil.wait_procs(family, timeout=15)
            assert not alive
        if server.process.poll() is None:
            assert stop_and_check_no_orphans(server) == 0
