"""The Dockerfile, checked without a Docker engine.

No Docker engine runs here, so the image's own command line (ENTRYPOINT + CMD, with the
image's ENV) runs as PID 1 of a new PID namespace, as it would in a container: it must serve,
and stop gracefully on SIGTERM with a request in flight completed.
"""

from __future__ import annotations

import ast
import http.client
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest

from tests.conftest import require_tool

ROOT = Path(__file__).resolve().parents[2]


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    logical, pending = [], ""
    for line in text.splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    pairs = []
    for line in logical:
        word, _, rest = line.strip().partition(" ")
        pairs.append((word.upper(), rest.strip()))
    return pairs


def final_stage() -> list[tuple[str, str]]:
    pairs = dockerfile_instructions()
    last_from = max(i for i, (word, _) in enumerate(pairs) if word == "FROM")
    return pairs[last_from:]


def exec_form(instruction: str) -> list[str]:
    args = [rest for word, rest in final_stage() if word == instruction]
    assert args, f"the final stage has no {instruction}"
    value = json.loads(args[-1])
    assert isinstance(value, list) and all(isinstance(v, str) for v in value)
    return value


def image_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for word, rest in final_stage():
        if word == "ENV":
            for item in shlex.split(rest):
                key, _, value = item.partition("=")
                env[key] = value
    return env


def test_dockerfile_follows_container_practice() -> None:
    pairs = dockerfile_instructions()
    args = dict(rest.split("=", 1) for word, rest in pairs if word == "ARG" and "=" in rest)
    froms = [rest.split()[0] for word, rest in pairs if word == "FROM"]
    assert len(froms) >= 2, "multi-stage build expected"
    for image in froms:
        image = re.sub(r"\$\{(\w+)\}", lambda m: args.get(m.group(1), m.group(0)), image)
        assert re.fullmatch(r"python:\d+\.\d+\.\d+-slim(-\w+)?", image), f"unpinned base {image}"
    stage = final_stage()
    users = [rest for word, rest in stage if word == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0"), "must run as non-root"
    assert any(word == "EXPOSE" for word, _ in stage)
    assert ("STOPSIGNAL", "SIGTERM") in stage
    health = [rest for word, rest in stage if word == "HEALTHCHECK"]
    assert health and "CMD [" in health[-1], "HEALTHCHECK in exec form expected"
    probe = json.loads(health[-1][health[-1].index("CMD") + 3 :])
    assert probe[:2] == ["python", "-c"], "the health check runs Python code"
    imported = {
        alias.name.split(".")[0]
        for node in ast.walk(ast.parse(probe[2]))
        if isinstance(node, ast.Import)
        for alias in node.names
    }
    assert imported and imported <= sys.stdlib_module_names, f"not stdlib: {imported}"
    assert exec_form("ENTRYPOINT") and exec_form("CMD")


class NamespacedServer:
    """The image's command as PID 1 of a fresh PID namespace (unshare)."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        require_tool("unshare")
        self.proc = subprocess.Popen(
            ["unshare", "--pid", "--fork", "--kill-child", *argv],
            cwd=ROOT, env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
        )
        self.log: list[str] = []
        self.port_found = threading.Event()
        self.port = 0
        threading.Thread(target=self._read_log, daemon=True).start()
        if not self.port_found.wait(20):
            self.proc.kill()
            pytest.fail("server never logged 'Listening at:'\n" + "".join(self.log))

    def _read_log(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.log.append(line)
            match = re.search(r"Listening at: http://127\.0\.0\.1:(\d+)", line)
            if match and not self.port_found.is_set():
                self.port = int(match.group(1))
                self.port_found.set()

    def pid_one(self) -> psutil.Process:
        """The host's view of the namespace's PID 1: unshare's only child."""
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            children = psutil.Process(self.proc.pid).children()
            if children:
                return children[0]
            time.sleep(0.05)
        raise AssertionError("unshare has no child")

    def get(self, path: str = "/") -> tuple[int, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request("GET", path)
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()


def container_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TREADLE_")}
    env.update({k: v for k, v in image_env().items() if k != "PATH"})
    env["TREADLE_BIND"] = "127.0.0.1:0"  # as `docker run -e TREADLE_BIND=...` would
    env["PYTHONPATH"] = str(ROOT)
    env.update(extra)
    return env


def health_check(port: int) -> int:
    """Run the image's HEALTHCHECK command as Docker would; its exit status."""
    rest = [r for word, r in final_stage() if word == "HEALTHCHECK"][-1]
    probe = json.loads(rest[rest.index("CMD") + 3 :])
    env = container_env(TREADLE_BIND=f"127.0.0.1:{port}")
    return subprocess.run(probe, env=env, capture_output=True, timeout=10).returncode


def test_image_command_serves_as_pid_one() -> None:
    require_tool(exec_form("ENTRYPOINT")[0])
    server = NamespacedServer(exec_form("ENTRYPOINT") + exec_form("CMD"), container_env())
    try:
        status, body = server.get()
        assert (status, body) == (200, b"Hello, world!\n")
        assert health_check(server.port) == 0, "healthy server reported unhealthy"
    finally:
        server.pid_one().send_signal(signal.SIGTERM)
        assert server.proc.wait(timeout=15) == 0, "".join(server.log)
    assert health_check(server.port) != 0, "stopped server reported healthy"


def test_sigterm_to_pid_one_finishes_the_request_in_flight(tmp_path: Path) -> None:
    require_tool(exec_form("ENTRYPOINT")[0])
    marker = tmp_path / "started"
    env = container_env(SLOW_APP_MARKER=str(marker), TREADLE_GRACEFUL_TIMEOUT="10")
    # `docker run IMAGE tests.e2e.container_apps:slow`: the image's entry point, another app.
    server = NamespacedServer(exec_form("ENTRYPOINT") + ["tests.e2e.container_apps:slow"], env)
    result: dict[str, object] = {}

    def request() -> None:
        try:
            result["answer"] = server.get("/slow")
        except Exception as exc:  # reported by the assertion below
            result["error"] = exc

    client = threading.Thread(target=request)
    client.start()
    deadline = time.monotonic() + 10
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert marker.exists(), "the request never reached the application"
    stopped_at = time.monotonic()
    server.pid_one().send_signal(signal.SIGTERM)
    client.join(timeout=15)
    assert result.get("answer") == (200, b"slow done\n"), result
    assert server.proc.wait(timeout=15) == 0, "".join(server.log)
    assert time.monotonic() - stopped_at < 10, "stopped only after the grace period"
    assert not any("Traceback" in line for line in server.log), "".join(server.log)
