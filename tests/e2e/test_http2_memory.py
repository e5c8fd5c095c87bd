"""50 MiB each way over HTTP/2 (TLS, httpx) with the server's memory flat: the request
body is acknowledged only as the application reads it, the response leaves through a
bounded per-stream buffer as the client's window allows."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import httpx
import psutil
import pytest

from tests.e2e.conftest import RunningServer
from tests.e2e.test_http2_apps import Certificates

MIB = 1 << 20
SIZE_MIB = 50
GROWTH_LIMIT = 24 * MIB  # far below the 50 MiB that buffering a body would cost


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return Certificates(str(tmp_path_factory.mktemp("certs")))


class PeakRSS:
    """Samples a process's resident memory on a thread while a transfer runs."""

    def __init__(self, pid: int) -> None:
        self.process = psutil.Process(pid)
        self.baseline = self.process.memory_info().rss
        self.peak = self.baseline
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.01):
            self.peak = max(self.peak, self.process.memory_info().rss)

    def __enter__(self) -> PeakRSS:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def growth(self) -> int:
        return self.peak - self.baseline


def body(total: int, piece: int = 256 * 1024) -> Iterator[bytes]:
    block = b"u" * piece
    for _ in range(total // piece):
        yield block


def test_50mib_upload_and_download_in_bounded_memory(
    serve: Callable[..., RunningServer], certs: Certificates
) -> None:
    server = serve("tests.e2e.test_http2_apps:raw_app", "--certfile", certs.server_pem)
    base = f"https://127.0.0.1:{server.port}"
    with httpx.Client(http2=True, verify=certs.client_context(), timeout=60) as client:
        assert client.get(base + "/").text == "hello"  # warm up: imports, TLS, threads
        with PeakRSS(server.process.pid) as upload_rss:
            response = client.post(base + "/upload", content=body(SIZE_MIB * MIB))
        assert response.http_version == "HTTP/2"
        assert response.text == str(SIZE_MIB * MIB)
        received = 0
        with PeakRSS(server.process.pid) as download_rss, \
                client.stream("GET", base + f"/download?{SIZE_MIB}") as streamed:
            for chunk in streamed.iter_bytes():
                received += len(chunk)
        assert received == SIZE_MIB * MIB
    assert upload_rss.growth < GROWTH_LIMIT, upload_rss.growth / MIB
    assert download_rss.growth < GROWTH_LIMIT, download_rss.growth / MIB
