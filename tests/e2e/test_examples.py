"""Every example in examples/ runs as documented, against the real server, with real clients.

Each application example is served by `python -m server` (the e2e `serve` fixture, port 0);
the deployment examples (Kubernetes, systemd) are parsed and their settings, command lines
and probes are exercised the way the platform would use them.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
import shlex
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from tests.e2e.conftest import ROOT, START_TIMEOUT_S, RunningServer, server_env

EXAMPLES = ROOT / "examples"
SAFETY_TIMEOUT_S = 10.0


def wait_for(condition, what: str, server: RunningServer) -> None:
    """Poll `condition` until true; a safety net, not a timing assertion."""
    deadline = time.monotonic() + SAFETY_TIMEOUT_S
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"never saw {what}:\n{server.log()}")
        time.sleep(0.02)


# -- applications ------------------------------------------------------------------------


def test_hello_the_readme_command(serve) -> None:
    server = serve("examples.hello:app")
    response = httpx.get(server.url + "/", timeout=SAFETY_TIMEOUT_S)
    assert (response.status_code, response.text) == (200, "Hello, world!\n")


def test_flask_application(serve) -> None:
    server = serve("examples.flask_app:app")
    with httpx.Client(base_url=server.url, timeout=SAFETY_TIMEOUT_S) as client:
        assert client.get("/").text == "Hello from Flask on treadle!\n"
        assert client.get("/items/2").json() == {"id": 2, "name": "treadle"}
        assert client.get("/items/9").status_code == 404
        echoed = client.post("/echo", json={"a": [1, 2]})
        assert echoed.json() == {"received": {"a": [1, 2]}, "scheme": "http"}
        # 127.0.0.1 is in the default forwarded_allow_ips: its proxy headers are believed.
        proxied = client.post("/echo", json=1, headers={"X-Forwarded-Proto": "https"})
        assert proxied.json()["scheme"] == "https"


def test_streaming_response_is_chunked(serve) -> None:
    server = serve("examples.streaming:app")
    conn = http.client.HTTPConnection(server.host, server.port, timeout=SAFETY_TIMEOUT_S)
    conn.request("GET", "/?count=3&interval=0")
    response = conn.getresponse()
    assert response.getheader("Transfer-Encoding") == "chunked"
    assert response.getheader("Content-Length") is None
    assert response.read() == b"tick 1 of 3\ntick 2 of 3\ntick 3 of 3\n"
    conn.close()


def test_streaming_response_arrives_before_the_generator_ends(serve) -> None:
    # The second tick comes 60 s after the first: reading the first one within the safety
    # timeout proves it was sent as soon as it was yielded, not buffered.
    server = serve("examples.streaming:app", "--graceful-timeout", "0.5")
    conn = http.client.HTTPConnection(server.host, server.port, timeout=SAFETY_TIMEOUT_S)
    conn.request("GET", "/?count=2&interval=60")
    response = conn.getresponse()
    assert response.status == 200
    assert response.readline() == b"tick 1 of 2\n"
    conn.close()


def test_chunked_upload_is_consumed_as_it_arrives(serve) -> None:
    server = serve("examples.upload:app")
    # Past request_buffer_size (1 MiB) the rest of a body streams to the application.
    first, rest = os.urandom(1024 * 1024 + 64 * 1024), os.urandom(100_000)

    def body() -> Iterator[bytes]:
        yield first
        # The application reports progress before the rest of the body has been sent.
        wait_for(lambda: "upload /up: 65536 bytes so far" in server.log(), "progress", server)
        yield rest[:50_000]
        yield rest[50_000:]

    conn = http.client.HTTPConnection(server.host, server.port, timeout=SAFETY_TIMEOUT_S)
    conn.request("PUT", "/up", body=body(), encode_chunked=True,
                 headers={"Transfer-Encoding": "chunked"})
    response = conn.getresponse()
    answer = json.loads(response.read())
    conn.close()
    assert response.status == 200
    assert answer == {"bytes": len(first) + len(rest),
                      "sha256": hashlib.sha256(first + rest).hexdigest()}
    assert f"upload /up: {len(first) + len(rest)} bytes so far" in server.log()


def test_files_with_wsgi_file_wrapper(serve, tmp_path: Path) -> None:
    content = os.urandom(3 * 1024 * 1024 + 7)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "données.bin").write_bytes(content)
    (tmp_path / "page.html").write_text("<p>hi</p>\n", encoding="utf-8")
    server = serve("examples.files:app", env={"STATIC_ROOT": str(tmp_path)})
    with httpx.Client(base_url=server.url, timeout=SAFETY_TIMEOUT_S) as client:
        got = client.get("/sub/donn%C3%A9es.bin")
        assert got.status_code == 200
        assert got.headers["content-length"] == str(len(content))
        assert got.content == content
        page = client.get("/page.html")
        assert (page.headers["content-type"], page.text) == ("text/html", "<p>hi</p>\n")
        head = client.head("/page.html")
        assert (head.status_code, head.headers["content-length"], head.content) == (
            200, "10", b"")
        for outside in ("/../etc/passwd", "/%2e%2e/etc/passwd", "/sub", "/nope", "/a%00b"):
            assert client.get(outside).status_code == 404, outside


def test_example_toml_serves_with_its_settings(serve) -> None:
    # --bind (from the fixture) overrides the file's 127.0.0.1:8000; the rest comes from it.
    server = serve(None, "--config", "examples/treadle.toml")
    response = httpx.get(server.url + "/toml", timeout=SAFETY_TIMEOUT_S)
    assert (response.status_code, response.text) == (200, "Hello, world!\n")
    # accesslog = "-" in the file: one line per request on stdout.
    wait_for(lambda: '"GET /toml HTTP/1.1" 200 14' in server.log(), "the access log", server)
    assert "Serving examples.hello:app with 8 threads" in server.log()


def test_tls_with_http2(serve, tmp_path: Path) -> None:
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    issued = ca.issue_cert("localhost", "127.0.0.1")
    cert, key, ca_file = tmp_path / "cert.pem", tmp_path / "key.pem", tmp_path / "ca.pem"
    for blob in issued.cert_chain_pems:
        blob.write_to_path(str(cert), append=True)
    issued.private_key_pem.write_to_path(str(key))
    ca.cert_pem.write_to_path(str(ca_file))
    server = serve("examples.tls_http2:app", "--certfile", str(cert), "--keyfile", str(key))
    assert server.url.startswith("https://")
    url = f"https://localhost:{server.port}"
    trusted = ssl.create_default_context(cafile=str(ca_file))
    with httpx.Client(http2=True, verify=trusted, timeout=SAFETY_TIMEOUT_S) as client:
        answers = [client.get(url + path) for path in ("/", "/again")]
    assert [a.http_version for a in answers] == ["HTTP/2", "HTTP/2"]
    assert answers[0].text == "HTTP/2 over https for /\n"
    with httpx.Client(verify=trusted, timeout=SAFETY_TIMEOUT_S) as client:
        older = client.get(url + "/")  # a client without HTTP/2: HTTP/1.1 over TLS
    assert (older.http_version, older.text) == ("HTTP/1.1", "HTTP/1.1 over https for /\n")


# -- Kubernetes ----------------------------------------------------------------------------


def kubernetes_documents() -> list[dict]:
    text = (EXAMPLES / "kubernetes" / "deployment.yaml").read_text(encoding="utf-8")
    return [doc for doc in yaml.safe_load_all(text) if doc]


def deployment_container() -> tuple[dict, dict]:
    deployments = [d for d in kubernetes_documents() if d["kind"] == "Deployment"]
    assert len(deployments) == 1
    pod = deployments[0]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    return pod, container


def deployments_pod_annotations() -> dict[str, str]:
    (deployment,) = [d for d in kubernetes_documents() if d["kind"] == "Deployment"]
    return deployment["spec"]["template"]["metadata"]["annotations"]


def test_kubernetes_deployment_is_consistent() -> None:
    pod, container = deployment_container()
    env = {item["name"]: item["value"] for item in container["env"]}
    assert all(name.startswith("TREADLE_") for name in env)
    bind_port = int(env["TREADLE_BIND"].rsplit(":", 1)[1])
    metrics_port = int(env["TREADLE_METRICS_BIND"].rsplit(":", 1)[1])
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports["http"] == bind_port
    for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
        port = container[probe]["httpGet"]["port"]
        assert ports.get(port, port) == metrics_port, f"{probe} does not probe metrics_bind"
        assert container[probe]["httpGet"]["path"] == path
    annotations = deployments_pod_annotations()
    assert annotations["prometheus.io/port"] == str(metrics_port)
    assert annotations["prometheus.io/path"] == "/metrics"
    # SIGTERM comes after preStop; the pod must not be killed before graceful_timeout ends.
    pre_stop = container["lifecycle"]["preStop"]["exec"]["command"]
    pre_stop_s = float(pre_stop[1]) if pre_stop[0] == "sleep" else 0.0
    graceful_s = float(env["TREADLE_GRACEFUL_TIMEOUT"])
    assert pod["terminationGracePeriodSeconds"] >= pre_stop_s + graceful_s + 5
    user = pod["securityContext"]
    assert user["runAsNonRoot"] is True and user["runAsUser"] != 0
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert set(container["resources"]) == {"requests", "limits"}
    services = [d for d in kubernetes_documents() if d["kind"] == "Service"]
    assert [p["targetPort"] for p in services[0]["spec"]["ports"]] == ["http"]


def test_kubernetes_settings_serve_the_probe_path(serve) -> None:
    # The container's settings and args, run here; only the binds move to free ports.
    _, container = deployment_container()
    env = {item["name"]: item["value"] for item in container["env"]}
    env["TREADLE_METRICS_BIND"] = "127.0.0.1:0"
    server = serve(*container["args"], env=env)
    deadline = time.monotonic() + SAFETY_TIMEOUT_S
    while (found := re.search(r"Metrics at: (http://\S+)/metrics", server.log())) is None:
        assert time.monotonic() < deadline, server.log()
        time.sleep(0.05)
    for probe in ("readinessProbe", "livenessProbe", None):
        path = container[probe]["httpGet"]["path"] if probe else "/metrics"
        response = httpx.get(found.group(1) + path, timeout=SAFETY_TIMEOUT_S)
        assert 200 <= response.status_code < 400  # what a Kubernetes httpGet probe accepts
    assert "Serving examples.hello:app with 8 threads" in server.log()


# -- systemd socket activation -------------------------------------------------------------

# What systemd does before exec'ing ExecStart: the listening socket becomes fd 3.
LAUNCHER = (
    "import os, sys; fd = int(sys.argv[1]); "
    "fd == 3 or (os.dup2(fd, 3), os.close(fd)); "
    "os.environ.update(LISTEN_FDS='1', LISTEN_PID=str(os.getpid())); "
    "os.execv(sys.executable, [sys.executable] + sys.argv[2:])"
)


def unit_entries(name: str) -> dict[str, list[str]]:
    """`Key` -> every value it has in a unit file (Environment= may repeat)."""
    entries: dict[str, list[str]] = {}
    for line in (EXAMPLES / "systemd" / name).read_text(encoding="utf-8").splitlines():
        if "=" in line and not line.startswith(("#", ";", "[")):
            key, _, value = line.partition("=")
            entries.setdefault(key.strip(), []).append(value.strip())
    return entries


def start_with_inherited_socket(listener: socket.socket, log_path: Path) -> RunningServer:
    service = unit_entries("treadle.service")
    argv = shlex.split(service["ExecStart"][0])
    assert Path(argv[0]).name == "treadle" and "fd://3" in argv
    env = dict(item.split("=", 1) for item in service["Environment"])
    command = [sys.executable, "-c", LAUNCHER, str(listener.fileno()),
               "-m", "server", *argv[1:]]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, cwd=ROOT, env=server_env(env), stdout=log,
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   pass_fds=(listener.fileno(),))
    server = RunningServer(process, log_path)
    deadline = time.monotonic() + START_TIMEOUT_S
    while "Listening at:" not in server.log():
        if process.poll() is not None or time.monotonic() > deadline:
            server.stop()
            raise AssertionError(f"server did not start:\n{server.log()}")
        time.sleep(0.02)
    return server


def test_systemd_units_agree() -> None:
    socket_unit, service = unit_entries("treadle.socket"), unit_entries("treadle.service")
    assert socket_unit["ListenStream"] == ["127.0.0.1:8000"]
    assert "treadle.socket" in service["Requires"][0]
    env = dict(item.split("=", 1) for item in service["Environment"])
    assert float(service["TimeoutStopSec"][0]) > float(env["TREADLE_GRACEFUL_TIMEOUT"])
    assert service["KillSignal"] == ["SIGTERM"]


@pytest.mark.timeout(60)
def test_systemd_socket_activation_on_fd_3(tmp_path: Path) -> None:
    listener = socket.create_server(("127.0.0.1", 0), backlog=16)  # systemd's socket
    port = listener.getsockname()[1]
    try:
        server = start_with_inherited_socket(listener, tmp_path / "first.log")
        assert f"Listening at: http://127.0.0.1:{port}" in server.log()
        response = httpx.get(f"http://127.0.0.1:{port}/", timeout=SAFETY_TIMEOUT_S)
        assert response.text == "Hello, world!\n"
        assert server.stop() == 0
        # Between two runs of the service the socket stays open: a client that connects
        # now waits in the backlog and is answered by the next run.
        waiting = http.client.HTTPConnection("127.0.0.1", port, timeout=SAFETY_TIMEOUT_S)
        waiting.request("GET", "/queued")
        again = start_with_inherited_socket(listener, tmp_path / "second.log")
        answer = waiting.getresponse()
        assert (answer.status, answer.read()) == (200, b"Hello, world!\n")
        waiting.close()
        assert again.stop() == 0
        assert re.search(r"Listening at: http://127\.0\.0\.1:\d+", again.log())
    finally:
        listener.close()


# -- the documentation that points at these examples ---------------------------------------

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
_LINK = re.compile(r"\]\(([^)\s]+)\)")


def _anchors(markdown: str) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    headings = re.findall(r"^#+ (.+)$", markdown, re.M)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


@pytest.mark.parametrize("page", DOCS, ids=lambda p: p.name)
def test_documentation_links_resolve(page: Path) -> None:
    for target in _LINK.findall(page.read_text(encoding="utf-8")):
        if target.startswith(("http://", "https://", "mailto:")):
            continue
        path, _, anchor = target.partition("#")
        resolved = (page.parent / path).resolve() if path else page
        assert resolved.exists(), f"{page.name}: broken link {target}"
        if anchor and resolved.suffix == ".md":
            assert anchor in _anchors(resolved.read_text(encoding="utf-8")), (
                f"{page.name}: no heading for #{anchor} in {resolved.name}")


# gunicorn 27.0.1's settings other than its server hooks (gunicorn.config.KNOWN_SETTINGS),
# kept here so that the check runs without gunicorn installed.
GUNICORN_27_SETTINGS = """
config wsgi_app bind backlog workers worker_class threads worker_connections max_requests
max_requests_jitter timeout graceful_timeout keepalive limit_request_line
limit_request_fields limit_request_field_size reload reload_engine reload_extra_files spew
check_config print_config preload_app sendfile reuse_port chdir daemon raw_env pidfile
worker_tmp_dir user group umask initgroups tmp_upload_dir secure_scheme_headers
forwarded_allow_ips accesslog disable_redirect_access_to_syslog access_log_format errorlog
loglevel capture_output logger_class logconfig logconfig_dict logconfig_json syslog_addr
syslog syslog_prefix syslog_facility enable_stdio_inheritance statsd_host dogstatsd_tags
statsd_prefix enable_backlog_metric proc_name default_proc_name pythonpath paste
proxy_protocol proxy_allow_ips protocol uwsgi_allow_ips keyfile certfile ssl_version
cert_reqs ca_certs suppress_ragged_eofs do_handshake_on_connect ciphers http_protocols
http2_cleartext http2_max_concurrent_streams http2_initial_window_size
http2_max_frame_size http2_max_header_list_size raw_paste_global_conf
permit_obsolete_folding strip_header_spaces permit_unconventional_http_method
permit_unconventional_http_version casefold_http_method forwarder_headers header_map
asgi_loop asgi_lifespan asgi_disconnect_grace_period websocket_max_message_size
http_parser root_path dirty_apps dirty_workers dirty_timeout dirty_threads
dirty_graceful_timeout control_socket control_socket_mode control_socket_disable
""".split()


def test_gunicorn_guide_names_every_setting() -> None:
    from treadle.config import SETTINGS

    names = set(GUNICORN_27_SETTINGS) | {s.name for s in SETTINGS}
    try:  # a newer gunicorn installed here: its new settings belong in the guide too
        import gunicorn.config as gunicorn_config
    except ImportError:
        pass
    else:
        names |= {s.name for s in gunicorn_config.KNOWN_SETTINGS
                  if s.section not in ("Server Hooks", "Dirty Arbiter Hooks")}
    guide = (ROOT / "docs" / "gunicorn.md").read_text(encoding="utf-8")
    missing = sorted(name for name in names if f"`{name}`" not in guide)
    assert not missing, f"docs/gunicorn.md does not mention: {missing}"
