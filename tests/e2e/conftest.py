"""End-to-end helpers: run the real server (`python -m server APP ...`) in a subprocess.

Usage in a test::

    def test_something(serve):
        server = serve("examples.hello:app", "--threads", "2")   # binds 127.0.0.1:0
        conn = http.client.HTTPConnection(server.host, server.port)
        ...
        assert "Listening at" in server.log()

`serve(app, *flags, bind=..., env=..., cwd=...)` starts the server with cwd and PYTHONPATH set
to the repository root, waits for the `Listening at: ...` log line and reads the port from it.
At the end of the test every server it started gets SIGTERM and must exit with status 0
(call `server.stop()` yourself to check something else). `server.log()` is everything the
process wrote (stdout and stderr together). `run_server(...)` runs one to completion for
tests of exit statuses (bad app path, port in use).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 15.0
STOP_TIMEOUT_S = 15.0
_LISTENING = re.compile(r"Listening at: ([^\s\"]+)")  # text or JSON (log_format) lines


def server_env(extra: dict[str, str] | None = None, repo_on_path: bool = True) -> dict[str, str]:
    """The environment for a server subprocess: the repository first on PYTHONPATH."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TREADLE_")}
    if repo_on_path:
        env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"]
                                         if env.get("PYTHONPATH") else "")
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONFAULTHANDLER"] = "1"  # a crash logs every thread's stack into the server log
    env.update(extra or {})
    return env


@dataclass
class RunningServer:
    """A server subprocess; `urls` are its `Listening at:` addresses in order."""

    process: subprocess.Popen[bytes]
    log_path: Path
    urls: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.urls[0]

    @property
    def host(self) -> str:
        return self.url.split("://", 1)[1].rsplit(":", 1)[0].strip("[]")

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def send_signal(self, signum: int = signal.SIGTERM) -> None:
        self.process.send_signal(signum)

    def stop(self, signum: int = signal.SIGTERM, timeout_s: float = STOP_TIMEOUT_S) -> int:
        """Send `signum` (unless already exited) and return the exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signum)
        try:
            return self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            message = f"server did not stop within {timeout_s}s:\n{self.log()}"
            raise AssertionError(message) from None


def start_server(app: str | None, *flags: str, log_path: Path, bind: str | None = "127.0.0.1:0",
                 env: dict[str, str] | None = None, cwd: Path | None = None,
                 listeners: int = 1, pass_fds: tuple[int, ...] = (),
                 command: tuple[str, ...] = (), repo_on_path: bool = True) -> RunningServer:
    """Start `python -m server [APP] --bind BIND FLAGS` and wait for its listeners.

    `command` replaces `python -m server` (for example `(venv/bin/treadle,)`); with
    `repo_on_path` false the repository is not put on PYTHONPATH.
    """
    argv = list(command or (sys.executable, "-m", "server")) + ([app] if app else [])
    if bind is not None:
        argv += ["--bind", bind]
    argv += list(flags)
    log_file = open(log_path, "wb")  # noqa: SIM115 - the child writes it until it exits
    process = subprocess.Popen(argv, cwd=cwd or ROOT, env=server_env(env, repo_on_path),
                               stdout=log_file,
                               stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                               pass_fds=pass_fds)
    log_file.close()
    server = RunningServer(process, log_path)
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        server.urls = _LISTENING.findall(server.log())
        if len(server.urls) >= listeners:
            return server
        if process.poll() is not None:
            raise AssertionError(f"server exited with {process.returncode}:\n{server.log()}")
        time.sleep(0.02)
    process.kill()
    process.wait()
    raise AssertionError(f"server did not start within {START_TIMEOUT_S}s:\n{server.log()}")


def run_server(*argv: str, timeout_s: float = 30.0,
               env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run `python -m server ARGV...` to completion (for exit-status tests)."""
    return subprocess.run([sys.executable, "-m", "server", *argv], cwd=ROOT,
                          env=server_env(env), capture_output=True, text=True,
                          timeout=timeout_s, stdin=subprocess.DEVNULL)


class _Servers:
    """Starts servers logging under `directory`; `stop_all` checks each exits with 0."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.started: list[RunningServer] = []

    def __call__(self, app: str | None, *flags: str, **options: object) -> RunningServer:
        log_path = self.directory / f"server-{len(self.started)}.log"
        server = start_server(app, *flags, log_path=log_path, **options)  # type: ignore[arg-type]
        self.started.append(server)
        return server

    def stop_all(self) -> None:
        failures = []
        for server in self.started:
            status = server.stop()
            if status != 0:
                failures.append(f"exit status {status}:\n{server.log()}")
        assert not failures, "\n".join(failures)


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., RunningServer]]:
    """A factory starting servers; each must stop with exit status 0 at teardown."""
    servers = _Servers(tmp_path)
    yield servers
    servers.stop_all()


@pytest.fixture(scope="module")
def serve_module(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[..., RunningServer]]:
    """Like `serve`, for servers shared by the tests of one module."""
    servers = _Servers(tmp_path_factory.mktemp("servers"))
    yield servers
    servers.stop_all()
