"""Starting and stopping: exit statuses, bind forms, process settings, logs, signals."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import socket
import stat
import tempfile
import threading
import time
from pathlib import Path

import pytest

from tests.e2e.appfiles import write_app
from tests.e2e.conftest import ROOT, run_server, start_server
from tests.e2e.wire import Wire, get

APP = "tests.e2e.apps_core:app"


def one_line_error(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert lines[0].startswith("treadle: error: "), stderr
    assert "Traceback" not in stderr
    return lines[0]


@pytest.mark.parametrize("app", ["no_such_module_anywhere:app", "tests.e2e.apps_core:nothing",
                                 "tests.e2e.apps_core:TEXT", "json:dumps()"])
def test_bad_application_path_exits_3_with_one_line(app):
    done = run_server(app, "--bind", "127.0.0.1:0")
    assert done.returncode == 3
    one_line_error(done.stderr)


def test_import_error_in_the_application_exits_3(tmp_path):
    (tmp_path / "broken_app.py").write_text("import no_such_dependency_here\n")
    done = run_server("broken_app:app", "--bind", "127.0.0.1:0", "--chdir", str(tmp_path))
    assert done.returncode == 3
    # the application's traceback (where it imports the dependency), then the summary
    assert f'File "{tmp_path / "broken_app.py"}", line 1, in <module>' in done.stderr
    last = done.stderr.splitlines()[-1]
    assert last.startswith("treadle: error: ") and "no_such_dependency_here" in last


def test_port_in_use_exits_4_with_one_line():
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    try:
        done = run_server(APP, "--bind", f"127.0.0.1:{taken.getsockname()[1]}")
    finally:
        taken.close()
    assert done.returncode == 4
    assert "in use" in one_line_error(done.stderr)


def test_graceful_stop_finishes_requests_in_flight(serve):
    server = serve(APP, "--threads", "4")
    results: list[tuple[int, bytes]] = []

    def slow_request() -> None:
        conn = http.client.HTTPConnection(server.host, server.port, timeout=20)
        conn.request("GET", "/sleep?s=1")
        response = conn.getresponse()
        results.append((response.status, response.read()))

    clients = [threading.Thread(target=slow_request) for _ in range(6)]
    for client in clients:
        client.start()
    time.sleep(0.4)  # all six are in (four running, two waiting for a thread)
    assert server.stop() == 0
    for client in clients:
        client.join(20)
    assert results == [(200, b"slept\n")] * 6
    with pytest.raises(OSError):
        socket.create_connection((server.host, server.port), timeout=2)
    assert "Stopping gracefully" in server.log()


def test_graceful_timeout_and_second_signal_stop_at_once(serve):
    for stopper in ("timeout", "second signal"):
        flags = ("--graceful-timeout", "1") if stopper == "timeout" else ()
        server = serve(APP, *flags)
        wire = Wire(server.host, server.port)
        wire.send(get("/sleep?s=60"))
        time.sleep(0.3)
        started = time.monotonic()
        server.send_signal(signal.SIGTERM)
        if stopper == "second signal":
            time.sleep(0.3)
            server.send_signal(signal.SIGINT)
        assert server.process.wait(20) == 0
        assert time.monotonic() - started < 15  # not the 60 s the request wanted
        wire.close()


def test_unix_socket_with_umask_and_stale_file(serve, tmp_path):
    path = tmp_path / "treadle.sock"
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(path))
    stale.close()  # a socket file nobody listens on
    server = serve(APP, "--umask", "0o077", bind=f"unix:{path}")
    assert server.url == f"unix:{path}"
    assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0
    client = socket.socket(socket.AF_UNIX)
    client.connect(str(path))
    client.sendall(get("/environ"))
    data = b""
    while b"}" not in data:
        data += client.recv(65536)
    environ = json.loads(data.split(b"\r\n\r\n", 1)[1])
    assert environ["SERVER_NAME"] and environ["REMOTE_ADDR"] == ""
    client.close()
    assert server.stop() == 0
    assert not path.exists()


def test_inherited_fd_and_several_binds(serve):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    server = serve(APP, "--bind", f"fd://{listener.fileno()}", "--bind", "[::1]:0",
                   bind="127.0.0.1:0", listeners=3, pass_fds=(listener.fileno(),))
    listener.close()
    assert f"http://127.0.0.1:{port}" in server.urls
    assert any(url.startswith("http://[::1]:") for url in server.urls)
    for url in server.urls:
        host, _, url_port = url.split("://", 1)[1].rpartition(":")
        wire = Wire(host.strip("[]"), int(url_port))
        wire.send(get("/big?n=1"))
        assert wire.read_response().body == b"x"
        wire.close()


def test_pidfile_raw_env_chdir(serve, tmp_path):
    pidfile = tmp_path / "treadle.pid"
    server = serve(APP, "--pid", str(pidfile), "--env", "TREADLE_TEST_VAR=hello=world",
                   "--chdir", str(tmp_path), env={"PYTHONPATH": str(Path.cwd())})
    conn = http.client.HTTPConnection(server.host, server.port, timeout=10)
    conn.request("GET", "/osenv?name=TREADLE_TEST_VAR")
    seen = json.loads(conn.getresponse().read())
    conn.close()
    assert seen["value"] == "hello=world"
    assert os.path.samefile(seen["cwd"], tmp_path)
    assert pidfile.read_text().strip() == str(seen["pid"]) == str(server.process.pid)
    assert server.stop() == 0
    assert not pidfile.exists()


def test_access_log_in_gunicorn_format(serve, tmp_path):
    access = tmp_path / "access.log"
    log_format = ('%(h)s %(l)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s" %(m)s %(U)s %(q)s %(H)s '
                  '%({x-test}i)s %({content-type}o)s %({REQUEST_METHOD}e)s %(D)s %(p)s %(u)s')
    server = serve(APP, "--access-logfile", str(access), "--access-logformat", log_format)
    wire = Wire(server.host, server.port)
    wire.send(get("/big?n=7", "Referer: http://ref/", "User-Agent: tester/1", "X-Test: yes",
                  "Authorization: Basic dXNlcjpwdw=="))
    assert wire.read_response().body == b"x" * 7
    wire.close()
    assert server.stop() == 0
    line = access.read_text().strip()
    fields = line.split(" ")
    assert line.startswith('127.0.0.1 - "GET /big?n=7 HTTP/1.1" 200 7 "http://ref/" '
                           '"tester/1" GET /big n=7 HTTP/1.1 yes text/plain GET '), line
    assert fields[-3].isdigit()  # %(D)s microseconds
    assert fields[-2] == f"<{server.process.pid}>"
    assert fields[-1] == "user"


def test_access_log_to_stdout_and_off(serve):
    server = serve(APP, "--access-logfile", "-")
    conn = http.client.HTTPConnection(server.host, server.port, timeout=10)
    conn.request("GET", "/big?n=2")
    conn.getresponse().read()
    conn.close()
    assert server.stop() == 0
    assert '"GET /big?n=2 HTTP/1.1" 200 2 "-" "Python-urllib' not in server.log()
    assert '"GET /big?n=2 HTTP/1.1" 200 2 "-" "-"' in server.log()
    quiet = serve(APP)
    conn = http.client.HTTPConnection(quiet.host, quiet.port, timeout=10)
    conn.request("GET", "/big?n=2")
    conn.getresponse().read()
    conn.close()
    assert quiet.stop() == 0
    assert "GET /big" not in quiet.log()


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="needs root")
def test_user_and_group_switch_after_binding(serve):
    import grp
    import pwd

    import psutil

    user = pwd.getpwnam("nobody")
    group = grp.getgrgid(user.pw_gid).gr_name
    # The application is imported after the switch, as nobody, who may not read a private
    # checkout (a clone in a 0700 directory): serve a copy from a directory nobody can read.
    app_dir = Path(tempfile.mkdtemp(prefix="treadle-nobody-"))
    try:
        app_dir.chmod(0o755)
        shutil.copy(ROOT / "examples" / "hello.py", app_dir / "hello_as_nobody.py")
        (app_dir / "hello_as_nobody.py").chmod(0o644)
        server = serve("hello_as_nobody:app", "--user", "nobody", "--group", group,
                       "--chdir", str(app_dir))
        wire = Wire(server.host, server.port)
        wire.send(get("/"))
        assert wire.read_response().body == b"Hello, world!\n"
        wire.close()
        uids = psutil.Process(server.process.pid).uids()
        assert (uids.real, uids.effective) == (user.pw_uid, user.pw_uid)
        assert server.stop() == 0
    finally:
        shutil.rmtree(app_dir)


def test_unknown_user_exits_2():
    done = run_server(APP, "--bind", "127.0.0.1:0", "--user", "no-such-user-here")
    assert done.returncode == 2
    one_line_error(done.stderr)


def test_error_log_to_a_file_at_a_level(tmp_path):
    import subprocess
    import sys

    from tests.e2e.conftest import ROOT, server_env

    error_log = tmp_path / "error.log"
    process = subprocess.Popen([sys.executable, "-m", "server", APP, "--bind", "127.0.0.1:0",
                                "--error-logfile", str(error_log), "--log-level", "debug"],
                               cwd=ROOT, env=server_env(), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
    deadline = time.monotonic() + 15
    while "Listening at" not in (error_log.read_text() if error_log.exists() else ""):
        assert time.monotonic() < deadline and process.poll() is None
        time.sleep(0.05)
    port = int(error_log.read_text().split("Listening at: http://127.0.0.1:")[1].split()[0])
    wire = Wire("127.0.0.1", port)
    wire.send(b"GET / HTTP/1.1\r\n\r\n")  # no Host: a bad request, logged at debug
    assert wire.read_response().status == 400
    wire.close()
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=15)
    assert process.returncode == 0 and out == b"" and err == b""
    text = error_log.read_text()
    assert "[DEBUG] bad request from 127.0.0.1" in text and "[INFO] Stopped" in text


def test_graceful_stop_under_keepalive_load_truncates_nothing(serve):
    server = serve(APP, "--threads", "4")
    outcomes: list[str] = []
    lock = threading.Lock()

    def client() -> None:
        conn = http.client.HTTPConnection(server.host, server.port, timeout=20)
        while True:
            try:
                conn.request("GET", "/sleep?s=0.05")
                response = conn.getresponse()
                body = response.read()
            except http.client.IncompleteRead:
                with lock:
                    outcomes.append("truncated")
                return
            except (ConnectionError, http.client.RemoteDisconnected, OSError):
                with lock:
                    outcomes.append("refused or closed before an answer")
                return
            with lock:
                outcomes.append("ok" if body == b"slept\n" else f"bad {body!r}")
            if response.getheader("Connection") == "close":
                return

    clients = [threading.Thread(target=client) for _ in range(8)]
    for thread in clients:
        thread.start()
    time.sleep(0.5)
    assert server.stop() == 0
    for thread in clients:
        thread.join(20)
    assert outcomes.count("ok") > 8
    assert all(o == "ok" or o.startswith("refused") for o in outcomes), outcomes


def test_graceful_stop_answers_the_next_request_on_an_idle_keepalive_connection(serve):
    """A client idle between two requests when the stop begins saw no Connection: close;
    the request it sends next is answered (with one), not lost to a closed socket."""
    server = serve(APP)
    conn = http.client.HTTPConnection(server.host, server.port, timeout=10)
    conn.request("GET", "/osenv")
    first = conn.getresponse()
    first.read()
    assert not first.will_close
    server.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 10
    while "Stopping gracefully" not in server.log():
        assert time.monotonic() < deadline, server.log()
        time.sleep(0.02)
    time.sleep(0.2)  # the poller has begun the stop
    conn.request("GET", "/osenv")
    second = conn.getresponse()
    assert second.status == 200 and second.getheader("Connection") == "close"
    second.read()
    conn.close()
    assert server.process.wait(10) == 0


def test_a_crash_in_c_code_logs_every_threads_stack_to_the_error_log(tmp_path):
    """A fatal signal in the single process (here an application's C call that reads
    address 0) writes faulthandler's stacks of all threads to the error log, as a worker
    does: the one trace an operator has of a crash."""
    write_app(tmp_path, "crashing_app", "'never'", top="import ctypes",
              first="ctypes.string_at(0)")
    server = start_server("crashing_app:app", "--chdir", str(tmp_path),
                          log_path=tmp_path / "server.log",
                          env={"PYTHONFAULTHANDLER": ""})  # only ours: into the error log
    try:
        conn = http.client.HTTPConnection(server.host, server.port, timeout=10)
        with pytest.raises((ConnectionError, http.client.HTTPException)):
            conn.request("GET", "/")
            conn.getresponse()
        assert server.process.wait(10) == -signal.SIGSEGV
    finally:
        server.stop()
    text = server.log()
    assert "Fatal Python error: Segmentation fault" in text, text
    assert 'crashing_app.py", line' in text  # the crashing thread's own stack
    assert text.count("Thread 0x") >= 3, text  # and the others': poller, pool
