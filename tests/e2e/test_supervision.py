"""Supervision past heartbeats: requests running longer than `timeout` (logged once each, with
the stack of the thread running them; a worker whose every thread is stuck is replaced, new
one first), and recycling counted over HTTP/2 streams too. Real servers, real clients."""

from __future__ import annotations

import socket

import httpx

from tests.e2e.appfiles import write_app
from tests.e2e.load import Load
from tests.e2e.test_arbiter import (
    APP,
    get_text,
    stop_and_check_no_orphans,
    wait_until,
    worker_count,
    workers_where,
)


def _send_sleep(server, seconds: int) -> socket.socket:
    """A request that sleeps `seconds` in the application; the caller closes the socket."""
    sock = socket.create_connection((server.host, server.port), timeout=30)
    sock.sendall(f"GET /sleep?s={seconds} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    return sock


def test_stuck_requests_are_logged_and_their_worker_replaced_new_one_first(serve):
    server = serve(APP, "--workers", "1", "--threads", "2", "-t", "2",
                   "--graceful-timeout", "1")
    (stuck,) = worker_count(server, 1)
    clients = [_send_sleep(server, 120), _send_sleep(server, 120)]
    try:
        wait_until(lambda: server.log().count("request running longer than timeout") == 2,
                   "both stuck requests logged", server)
        replaced = workers_where(server, lambda p: stuck not in p and len(p) == 1,
                                 "the stuck worker to be replaced")
        assert get_text(server, "/osenv")  # the replacement serves
        log = server.log()
        assert f"Worker {stuck} is stuck: starting its replacement" in log
        # the replacement served before the stuck worker was stopped
        (new,) = replaced
        assert log.index(f"Worker {new} serving") < log.index(f"Worker {stuck} replaced")
        for line in log.split("request running longer than timeout")[1:3]:
            assert "GET /sleep?s=120 has run" in line
            assert 'apps_core.py", line' in line and "in sleep" in line
    finally:
        for client in clients:
            client.close()
    assert stop_and_check_no_orphans(server) == 0


def test_single_process_logs_each_stuck_request_once(serve):
    server = serve(APP, "--threads", "2", "-t", "1")
    clients = [_send_sleep(server, 8)]  # long enough to overlap the second under load
    try:
        wait_until(lambda: "request running longer than timeout" in server.log(),
                   "the stuck request logged", server)
        assert get_text(server, "/osenv")  # a thread is still free
        clients.append(_send_sleep(server, 8))
        wait_until(lambda: "every thread runs a request past timeout" in server.log(),
                   "the stall logged", server)
        for client in clients:  # both answered once they return
            assert client.recv(100).startswith(b"HTTP/1.1 200")
        log = server.log()
        assert log.count("request running longer than timeout") == 2  # once each
        assert "GET /sleep?s=8 has run" in log and "in sleep" in log
    finally:
        for client in clients:
            client.close()
    assert server.stop() == 0


def test_a_quick_request_is_never_reported(serve):
    server = serve(APP, "--threads", "1", "-t", "1")
    for _ in range(3):
        assert get_text(server, "/sleep?s=0.4")
    assert get_text(server, "/osenv")
    assert "request running longer than timeout" not in server.log()
    assert server.stop() == 0


def test_http2_streams_count_for_max_requests(serve):
    server = serve(APP, "--workers", "1", "--max-requests", "3", "--http2-cleartext",
                   "prior-knowledge")
    (first,) = worker_count(server, 1)
    with httpx.Client(http1=False, http2=True, timeout=10) as client:  # one connection
        for _ in range(3):
            response = client.get(f"http://{server.host}:{server.port}/osenv")
            assert response.http_version == "HTTP/2" and response.status_code == 200
    wait_until(lambda: "max_requests (3) reached" in server.log(), "recycling", server)
    workers_where(server, lambda p: len(p) == 1 and first not in p, "a new worker")
    assert stop_and_check_no_orphans(server) == 0


def test_max_worker_memory_recycles_a_growing_worker_without_failed_requests(serve, tmp_path):
    write_app(tmp_path, "hungry", "json.dumps({'pid': os.getpid()})", top="HELD = []",
              first="if environ['PATH_INFO'] == '/grow':\n"
                    "    HELD.append(b'x' * 8 * 2**20)  # written pages: RSS grows 8 MiB")
    server = serve("hungry:app", "--workers", "1", "--max-worker-memory", "100",
                   "--chdir", str(tmp_path))
    (first,) = worker_count(server, 1)
    with Load(server.host, server.port, path="/osenv", threads=2) as load:
        load.wait_for(5)
        for _ in range(12):  # 96 MiB more than the worker started with
            get_text(server, "/grow")
        wait_until(lambda: "max_worker_memory (100 MiB) exceeded" in server.log(),
                   "the memory ceiling", server)
        workers_where(server, lambda p: len(p) == 1 and first not in p, "a new worker")
        load.wait_for(5)
    assert load.failures == []
    assert load.pids - {first}  # the replacement served the load
    assert stop_and_check_no_orphans(server) == 0


def _write_app(directory, text: str) -> None:
    write_app(directory, "devapp", f"{text!r} + helper.SUFFIX", top="import helper")


def test_reload_restarts_the_worker_when_the_app_or_an_extra_file_changes(serve, tmp_path):
    _write_app(tmp_path, "one")
    (tmp_path / "helper.py").write_text("SUFFIX = '.'\n")
    extra = tmp_path / "settings.txt"
    extra.write_text("a")
    # workers = 0 with --reload: an arbiter with one worker
    server = serve("devapp:app", "--reload", "--reload-extra-file", str(extra),
                   "--chdir", str(tmp_path))
    (first,) = worker_count(server, 1)
    assert get_text(server, "/") == "one."
    _write_app(tmp_path, "two, longer")
    wait_until(lambda: get_text(server, "/") == "two, longer.", "the new code", server)
    (second,) = workers_where(server, lambda p: len(p) == 1 and first not in p, "new worker")
    (tmp_path / "helper.py").write_text("SUFFIX = '!!'\n")  # an imported module of the app
    wait_until(lambda: get_text(server, "/") == "two, longer!!", "the helper's change", server)
    (third,) = workers_where(server, lambda p: len(p) == 1 and second not in p, "new worker")
    extra.write_text("bb")
    workers_where(server, lambda p: len(p) == 1 and third not in p, "a reload for the extra")
    assert f"{extra} changed; asking for a reload" in server.log()
    assert stop_and_check_no_orphans(server) == 0


def test_reload_with_a_broken_edit_keeps_the_old_worker_serving(serve, tmp_path):
    _write_app(tmp_path, "good")
    (tmp_path / "helper.py").write_text("SUFFIX = ''\n")
    server = serve("devapp:app", "--reload", "--workers", "1", "--chdir", str(tmp_path))
    (first,) = worker_count(server, 1)
    assert get_text(server, "/") == "good"  # imported: the edit comes after
    (tmp_path / "devapp.py").write_text("this is not python\n")
    wait_until(lambda: "the previous generation keeps serving" in server.log(),
               "the failed reload", server)
    assert get_text(server, "/") == "good"
    assert workers_where(server, lambda p: p == {first}, "the old worker") == {first}
    _write_app(tmp_path, "fixed")
    wait_until(lambda: get_text(server, "/") == "fixed", "the fixed code", server)
    assert stop_and_check_no_orphans(server) == 0
