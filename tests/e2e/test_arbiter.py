"""The arbiter (`--workers N`): real signals to a real server under load from real clients.

Every test checks that no worker process outlives the arbiter (psutil), and sends signals to
the arbiter's pid only (workers by their own pid where a test kills one).
"""

from __future__ import annotations

import http.client
import signal
import time
from pathlib import Path

import psutil

from tests.e2e.appfiles import write_app
from tests.e2e.conftest import run_server
from tests.e2e.load import Load

APP = "tests.e2e.apps_core:app"
WAIT_S = 20.0


def workers(server) -> set[int]:
    return {child.pid for child in psutil.Process(server.process.pid).children()}


def wait_until(condition, what: str, server, timeout_s: float = WAIT_S):
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        assert server.process.poll() is None, f"server exited:\n{server.log()}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}:\n{server.log()}"
        time.sleep(0.05)


def workers_where(server, test, what: str) -> set[int]:
    """Wait until the arbiter's set of worker pids passes `test`; return it."""
    def check() -> set[int] | None:
        pids = workers(server)
        return pids if test(pids) else None
    return wait_until(check, what, server)


def worker_count(server, count: int) -> set[int]:
    """Wait until the arbiter has exactly `count` worker processes."""
    return workers_where(server, lambda pids: len(pids) == count, f"{count} workers")


def stop_and_check_no_orphans(server, sig: int = signal.SIGTERM) -> int:
    children = psutil.Process(server.process.pid).children(recursive=True)
    status = server.stop(sig)
    gone, alive = psutil.wait_procs(children, timeout=5)
    assert not alive, f"orphaned workers {alive}:\n{server.log()}"
    return status


def get_text(server, path: str) -> str:
    conn = http.client.HTTPConnection(server.host, server.port, timeout=10)
    try:
        conn.request("GET", path)
        return conn.getresponse().read().decode()
    finally:
        conn.close()


def test_two_workers_share_the_listener_and_both_serve(serve):
    server = serve(APP, "--workers", "2", "--threads", "2")
    pids = worker_count(server, 2)
    # the arbiter logs each boot just after its fork, which psutil may see first
    wait_until(lambda: server.log().count("Booting worker with pid: ") == 2,
               "two boots logged", server)
    with Load(server.host, server.port, threads=4) as load:
        wait_until(lambda: load.pids >= pids, "both workers to answer", server)
    assert load.failures == []
    assert stop_and_check_no_orphans(server) == 0
    assert server.process.pid not in load.pids


def test_a_killed_worker_is_replaced_and_serving_goes_on(serve):
    server = serve(APP, "--workers", "2")
    first = worker_count(server, 2)
    victim = min(first)
    with Load(server.host, server.port) as load:
        load.wait_for(5)
        psutil.Process(victim).kill()
        workers_where(server, lambda p: len(p) == 2 and victim not in p, "a replacement")
        load.wait_for(10)
    assert f"Worker {victim} exited unexpectedly (signal SIGKILL)" in server.log()
    assert stop_and_check_no_orphans(server) == 0


def test_ttin_and_ttou_change_the_count_never_below_one(serve):
    server = serve(APP, "--workers", "1")
    worker_count(server, 1)
    for count in (2, 3):  # one at a time: a signal already pending is not queued twice
        server.send_signal(signal.SIGTTIN)
        wait_until(lambda c=count: f"SIGTTIN: {c} workers" in server.log(), "TTIN", server)
    worker_count(server, 3)
    for sent, count in enumerate((2, 1, 1), 1):
        server.send_signal(signal.SIGTTOU)
        wait_until(lambda n=sent: server.log().count("SIGTTOU: ") == n, "TTOU", server)
        assert server.log().rsplit("SIGTTOU: ", 1)[1].startswith(f"{count} workers")
    worker_count(server, 1)
    assert get_text(server, "/osenv")
    assert stop_and_check_no_orphans(server) == 0


def _write_app(directory: Path, text: str) -> None:
    write_app(directory, "hupapp", repr(text))


def test_hup_under_load_reimports_the_app_with_no_failed_request(serve, tmp_path):
    _write_app(tmp_path, "version one")
    server = serve("hupapp:app", "--workers", "2", "--chdir", str(tmp_path))
    old = worker_count(server, 2)
    with Load(server.host, server.port, path="/", threads=3) as load:
        load.wait_for(10)
        _write_app(tmp_path, "version two, longer")
        server.send_signal(signal.SIGHUP)
        wait_until(lambda: "Generation 2 serving" in server.log(), "the new generation",
                   server)
        new = workers_where(server, lambda p: len(p) == 2 and not p & old,
                            "the old workers to leave")
        load.wait_for(10)
    assert load.failures == []
    assert get_text(server, "/") == "version two, longer"
    assert new.isdisjoint(old)
    assert stop_and_check_no_orphans(server) == 0


def test_hup_with_a_broken_app_keeps_the_old_workers(serve, tmp_path):
    _write_app(tmp_path, "still here")
    server = serve("hupapp:app", "--workers", "2", "--chdir", str(tmp_path))
    old = worker_count(server, 2)
    wait_until(lambda: server.log().count("] Worker ") >= 2 and
               all(f"Worker {pid} serving" in server.log() for pid in old),
               "both workers to have imported the app", server)
    (tmp_path / "hupapp.py").write_text("raise RuntimeError('broken on purpose')\n")
    with Load(server.host, server.port, path="/") as load:
        server.send_signal(signal.SIGHUP)
        wait_until(lambda: "the previous generation keeps serving" in server.log(),
                   "the failed reload", server)
        load.wait_for(5)
    assert load.failures == []
    workers_where(server, lambda p: p == old, "the failed new workers to be gone")
    assert get_text(server, "/") == "still here"
    assert stop_and_check_no_orphans(server) == 0


def test_hup_with_an_invalid_config_file_keeps_the_old_workers(serve, tmp_path):
    config = tmp_path / "treadle.toml"
    config.write_text("threads = 2\n")
    server = serve(APP, "--workers", "1", "--config", str(config))
    old = worker_count(server, 1)
    config.write_text("threads = 'many'\n")
    server.send_signal(signal.SIGHUP)
    wait_until(lambda: "SIGHUP: the new configuration is not usable" in server.log(),
               "the refused reload", server)
    assert workers(server) == old
    assert get_text(server, "/osenv")
    assert stop_and_check_no_orphans(server) == 0


def test_term_under_load_finishes_requests_in_flight(serve):
    server = serve(APP, "--workers", "2")
    worker_count(server, 2)
    with Load(server.host, server.port, path="/sleep?s=1", threads=2) as load:
        time.sleep(0.3)  # both requests are in flight now
        assert stop_and_check_no_orphans(server) == 0
    assert load.ok >= 2  # the ones in flight at the TERM got their answer
    assert "Stopping gracefully (SIGTERM)" in server.log()


def test_an_app_that_cannot_be_imported_stops_the_arbiter_with_3():
    result = run_server("tests.e2e.no_such_module:app", "--workers", "2",
                        "--bind", "127.0.0.1:0", timeout_s=30)
    assert result.returncode == 3, result.stderr
    assert "cannot load the application" in result.stderr
    assert result.stderr.count("Booting worker with pid") <= 2  # no retry loop


def test_a_worker_that_stops_heartbeating_is_aborted_and_replaced(serve):
    server = serve(APP, "--workers", "1", "--timeout", "2")
    (silent,) = worker_count(server, 1)
    psutil.Process(silent).suspend()  # SIGSTOP: no heartbeat, as a worker hung in C code
    wait_until(lambda: f"WORKER TIMEOUT (pid:{silent})" in server.log(), "the timeout", server)
    workers_where(server, lambda p: len(p) == 1 and silent not in p, "a replacement")
    assert get_text(server, "/osenv")
    assert stop_and_check_no_orphans(server) == 0


def test_max_requests_recycles_workers_without_failed_requests(serve):
    server = serve(APP, "--workers", "1", "--max-requests", "5",
                   "--max-requests-jitter", "2")
    worker_count(server, 1)
    with Load(server.host, server.port, threads=2) as load:
        wait_until(lambda: len(load.pids) >= 3, "three generations of workers", server)
    assert load.failures == []
    assert "max_requests (" in server.log()
    assert stop_and_check_no_orphans(server) == 0


def test_usr1_reaches_the_workers(serve, tmp_path):
    access = tmp_path / "access.log"
    server = serve(APP, "--workers", "2", "--access-logfile", str(access))
    worker_count(server, 2)
    with Load(server.host, server.port, path="/osenv?name=before", threads=4) as load:
        load.wait_for(10)
    access.rename(tmp_path / "access.log.1")
    server.send_signal(signal.SIGUSR1)
    wait_until(lambda: server.log().count("SIGUSR1: reopened 1 log file(s)") == 3,
               "arbiter and both workers to reopen", server)
    with Load(server.host, server.port, path="/osenv?name=after", threads=4) as load:
        load.wait_for(10)
    assert "name=after" in access.read_text()
    assert "name=after" not in (tmp_path / "access.log.1").read_text()
    assert stop_and_check_no_orphans(server) == 0


def test_preload_imports_the_app_once_in_the_arbiter(serve, tmp_path):
    write_app(tmp_path, "preloaded", "f'{IMPORTED_IN} {os.getpid()}'",
              top="IMPORTED_IN = os.getpid()")
    server = serve("preloaded:app", "--workers", "2", "--preload", "--chdir", str(tmp_path))
    pids = worker_count(server, 2)
    imported_in, served_by = map(int, get_text(server, "/").split())
    assert imported_in == server.process.pid
    assert served_by in pids
    server.send_signal(signal.SIGHUP)
    wait_until(lambda: "the application is not imported again" in server.log(), "HUP", server)
    assert stop_and_check_no_orphans(server) == 0


def test_preload_import_error_exits_3_before_forking():
    result = run_server("tests.e2e.no_such_module:app", "--workers", "2", "--preload",
                        "--bind", "127.0.0.1:0", timeout_s=30)
    assert result.returncode == 3, result.stderr
    assert "Booting worker" not in result.stderr
