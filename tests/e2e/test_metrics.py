"""metrics_bind (GET /metrics, /healthz, /readyz) and statsd, through the real server:
scrapes parsed with prometheus_client's parsers, requests made with http.client, httpx over
HTTP/2 and raw sockets, workers killed with SIGKILL, a graceful stop watched from /readyz."""

from __future__ import annotations

import http.client
import os
import re
import signal
import socket
import threading
import time
from collections.abc import Callable

import httpx
import pytest
import trustme
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.conftest import RunningServer

APP = "tests.e2e.apps_core:raw"
WAIT_S = 15.0
_METRICS_AT = re.compile(r"Metrics at: http://([0-9.]+):(\d+)/metrics")
_BOOTING = re.compile(r"Booting worker with pid: (\d+)")

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def metrics_address(server: RunningServer) -> tuple[str, int]:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        match = _METRICS_AT.search(server.log())
        if match:
            return match.group(1), int(match.group(2))
        time.sleep(0.05)
    raise AssertionError(f"no 'Metrics at' line:\n{server.log()}")


def get(address: tuple[str, int], path: str,
        headers: dict[str, str] | None = None) -> tuple[int, str, str]:
    conn = http.client.HTTPConnection(*address, timeout=10)
    try:
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.getheader("Content-Type") or "", \
            response.read().decode()
    finally:
        conn.close()


def scrape(address: tuple[str, int]) -> Samples:
    status, content_type, text = get(address, "/metrics")
    assert status == 200 and content_type.startswith("text/plain; version=0.0.4")
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def wait_for(address: tuple[str, int], check: Callable[[Samples], bool]) -> Samples:
    """Scrape until `check` holds (workers report once a second)."""
    deadline = time.monotonic() + WAIT_S
    while True:
        samples = scrape(address)
        if check(samples):
            return samples
        if time.monotonic() > deadline:
            raise AssertionError(f"metrics never matched: {samples}")
        time.sleep(0.2)


def requests_of(samples: Samples, method: str = "GET", code: str = "200",
                protocol: str = "HTTP/1.1") -> float:
    return value(samples, "treadle_http_requests_total", method=method, code=code,
                 protocol=protocol)


def send_requests(server: RunningServer, count: int, path: str = "/environ") -> None:
    conn = http.client.HTTPConnection(server.host, server.port, timeout=10)
    for _ in range(count):
        conn.request("GET", path)
        response = conn.getresponse()
        response.read()
    conn.close()


def raw_exchange(server: RunningServer, data: bytes) -> bytes:
    with socket.create_connection((server.host, server.port), timeout=10) as sock:
        sock.sendall(data)
        return sock.recv(4096)


def test_single_process_counts_requests_and_serves_probes(serve) -> None:
    server = serve(APP, "--metrics-bind", "127.0.0.1:0", "--threads", "2")
    address = metrics_address(server)
    before = scrape(address)
    assert value(before, "treadle_workers") == 1
    assert value(before, "treadle_worker_threads", state="idle") == 2
    send_requests(server, 3)
    conn = http.client.HTTPConnection(server.host, server.port, timeout=10)
    conn.request("POST", "/echo", body=b"hello")
    assert conn.getresponse().read() == b"hello"
    conn.request("BREW", "/status?code=418")  # an unknown method is counted as "other"
    conn.getresponse().read()
    conn.close()
    # A request is counted once its response is on the wire: the client may scrape first.
    samples = wait_for(address, lambda s: value(
        s, "treadle_http_request_duration_seconds_count") == 5)
    assert requests_of(samples) == 3
    assert requests_of(samples, "POST") == 1
    assert requests_of(samples, "other", "418") == 1
    assert value(samples, "treadle_http_request_duration_seconds_count") == 5
    assert value(samples, "treadle_http_request_duration_seconds_bucket", le="+Inf") == 5
    assert value(samples, "treadle_http_request_body_bytes_total") == 5
    assert value(samples, "treadle_http_response_body_bytes_total") >= 5
    assert value(samples, "treadle_connections_total") == 2
    assert value(samples, "treadle_worker_busy_seconds_total") > 0
    assert get(address, "/healthz")[0] == 200
    assert get(address, "/readyz")[:1] == (200,)
    assert get(address, "/other")[0] == 404
    # the application's listener knows nothing of /metrics: it is the application's path
    conn = http.client.HTTPConnection(server.host, server.port, timeout=10)
    conn.request("GET", "/metrics")
    assert conn.getresponse().status == 404  # the test application's own answer
    conn.close()


def test_openmetrics_when_asked(serve) -> None:
    server = serve(APP, "--metrics-bind", "127.0.0.1:0")
    address = metrics_address(server)
    send_requests(server, 2)
    status, content_type, text = get(
        address, "/metrics",
        {"Accept": "application/openmetrics-text;version=1.0.0,text/plain;q=0.5"})
    assert status == 200 and content_type.startswith("application/openmetrics-text")
    families = {family.name: family for family in openmetrics_families(text)}
    requests = families["treadle_http_requests"]
    assert requests.type == "counter"
    assert sum(s.value for s in requests.samples if s.name.endswith("_total")) == 2
    assert families["treadle_http_request_duration_seconds"].type == "histogram"


def test_http2_requests_and_rejections_are_counted(serve) -> None:
    server = serve(APP, "--metrics-bind", "127.0.0.1:0", "--http2-cleartext",
                   "prior-knowledge", "--header-timeout", "0.5")
    address = metrics_address(server)
    with httpx.Client(http1=False, http2=True, base_url=server.url) as client:
        for _ in range(4):
            assert client.get("/environ").status_code == 200
        assert value(scrape(address), "treadle_connections_open", protocol="h2") == 1
    assert raw_exchange(server, b"GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n") \
        .startswith(b"HTTP/1.1 400")
    assert raw_exchange(server, b"GET /" + b"a" * 20000 + b" HTTP/1.1\r\n\r\n") \
        .startswith(b"HTTP/1.1 414")
    with socket.create_connection((server.host, server.port), timeout=10) as silent:
        assert silent.recv(10) == b""  # closed at header_timeout
    samples = wait_for(address, lambda s: value(s, "treadle_rejected_total",
                                                reason="timeout") >= 1)
    assert requests_of(samples, protocol="HTTP/2") == 4
    assert value(samples, "treadle_rejected_total", reason="bad_request") == 1
    assert value(samples, "treadle_rejected_total", reason="limits") == 1


def test_workers_add_up_and_survive_a_killed_worker(serve) -> None:
    server = serve(APP, "--workers", "2", "--metrics-bind", "127.0.0.1:0")
    address = metrics_address(server)
    wait_for(address, lambda s: value(s, "treadle_workers") == 2)
    for _ in range(10):  # new connections: the kernel spreads them over both workers
        send_requests(server, 2)
    served = wait_for(address, lambda s: requests_of(s) == 20)
    assert value(served, "treadle_worker_threads", state="idle") == 16  # 2 x 8 threads
    assert get(address, "/readyz")[0] == 200
    victim = int(_BOOTING.findall(server.log())[0])
    os.kill(victim, signal.SIGKILL)
    after = wait_for(address, lambda s: value(s, "treadle_worker_restarts_total",
                                              reason="crash") == 1)
    assert requests_of(after) >= requests_of(served)
    assert value(after, "treadle_http_request_duration_seconds_count") >= 20
    assert value(after, "treadle_connections_total") >= 10
    send_requests(server, 5)
    wait_for(address, lambda s: requests_of(s) >= requests_of(after) + 5
             and value(s, "treadle_workers") == 2)


@pytest.mark.parametrize("workers", ["0", "1"])
def test_readyz_is_503_during_a_graceful_stop(serve, workers: str) -> None:
    server = serve(APP, "--workers", workers, "--metrics-bind", "127.0.0.1:0",
                   "--graceful-timeout", "20")
    address = metrics_address(server)
    deadline = time.monotonic() + WAIT_S
    while get(address, "/readyz")[0] != 200:  # an arbiter is ready once a worker serves
        assert time.monotonic() < deadline
        time.sleep(0.1)
    answers: list[bytes] = []
    slow = threading.Thread(target=lambda: answers.append(
        raw_exchange(server, b"GET /sleep?s=3 HTTP/1.1\r\nHost: x\r\n\r\n")))
    slow.start()
    time.sleep(0.5)  # the slow request is in the application: it holds the stop
    server.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + WAIT_S
    while True:
        status, _, body = get(address, "/readyz")
        if status == 503:
            break
        assert time.monotonic() < deadline, "readyz never turned 503"
        time.sleep(0.05)
    assert body == "not ready\n"
    assert get(address, "/healthz")[0] == 200
    slow.join()
    assert answers and answers[0].startswith(b"HTTP/1.1 200")


@pytest.mark.parametrize("workers", ["0", "1"])
def test_statsd_datagrams_as_gunicorn_sends_them(serve, workers: str) -> None:
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    receiver.settimeout(10)
    try:
        port = receiver.getsockname()[1]
        server = serve(APP, "--workers", workers, "--statsd-host", f"127.0.0.1:{port}",
                       "--statsd-prefix", "app", "--dogstatsd-tags", "env:test")
        send_requests(server, 1, "/status?code=204")
        send_requests(server, 1, "/error-before")
        wanted = {f"app.{name}:1|c|@1.0|#env:test" for name in (
            "requests", "request.status.204", "request.status.500", "log.exception")}
        if workers == "1":
            wanted.add("app.workers:1|g|#env:test")
        seen: set[str] = set()
        durations = 0
        while not wanted <= seen or durations < 2:
            datagram = receiver.recv(2048).decode()
            if datagram.startswith("app.request.duration:"):
                assert datagram.endswith("|ms|#env:test")
                durations += 1
            seen.add(datagram)
    finally:
        receiver.close()


def test_tls_handshake_failures_are_counted(serve, tmp_path) -> None:
    cert = trustme.CA().issue_cert("localhost")
    certfile, keyfile = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.cert_chain_pems[0].write_to_path(str(certfile))
    cert.private_key_pem.write_to_path(str(keyfile))
    server = serve(APP, "--metrics-bind", "127.0.0.1:0", "--certfile", str(certfile),
                   "--keyfile", str(keyfile))
    address = metrics_address(server)
    with socket.create_connection((server.host, server.port), timeout=10) as plain:
        plain.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")  # HTTP spoken to a TLS port
        try:
            while plain.recv(4096):  # a TLS alert, then the close (or a reset)
                pass
        except ConnectionResetError:
            pass
    wait_for(address, lambda s: value(s, "treadle_rejected_total", reason="tls_handshake") == 1)


def test_evictions_are_counted(serve) -> None:
    server = serve(APP, "--metrics-bind", "127.0.0.1:0", "--worker-connections", "2")
    address = metrics_address(server)
    # worker_connections = 2: two silent clients fill it; a third evicts the longest waiting
    first = socket.create_connection((server.host, server.port), timeout=10)
    time.sleep(0.2)
    second = socket.create_connection((server.host, server.port), timeout=10)
    time.sleep(0.2)
    third = socket.create_connection((server.host, server.port), timeout=10)
    try:
        assert first.recv(10) == b""  # evicted to admit the third
        samples = wait_for(address, lambda s: value(s, "treadle_rejected_total",
                                                    reason="evicted") == 1)
        assert value(samples, "treadle_connections_open", protocol="http1") == 2
    finally:
        for sock in (first, second, third):
            sock.close()
