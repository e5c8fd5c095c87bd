"""Issue 14 item 6: one HTTP/2 connection cannot take the worker pool.

A connection's streams hold at most http2_max_workers_per_connection workers at once (by
default a quarter of `threads`); the rest wait in the connection's own queue. With 4 threads
and eight streams that block until an HTTP/1.1 client opens their gate, that client must
still be answered (on today's main all 4 workers wait at the gate and it is not).
"""

from __future__ import annotations

import http.client
import time
from collections.abc import Callable

import pytest

from tests.e2e.conftest import RunningServer
from tests.e2e.test_http2_apps import H2Client

APP = "tests.e2e.apps_h2fair:app"
Serve = Callable[..., RunningServer]
GATED_STREAMS = 8


def h1_get(server: RunningServer, path: str) -> bytes:
    """One HTTP/1.1 request on a fresh connection; within 10 s or an exception."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        assert response.status == 200
        return response.read()
    finally:
        conn.close()


def wait_for_waiting(server: RunningServer, key: str, count: int) -> None:
    """Until `count` streams wait at gate `key` (asked over HTTP/1.1: a free worker)."""
    deadline = time.monotonic() + 10
    while int(h1_get(server, f"/peek?key={key}").split()[0]) < count:
        assert time.monotonic() < deadline, "the streams never reached their gate"
        time.sleep(0.05)


@pytest.mark.parametrize(("flags", "share"), [((), 1),
                                              (("--http2-max-workers-per-connection", "2"), 2)])
def test_one_connection_holds_at_most_its_share_of_workers(
        serve: Serve, flags: tuple[str, ...], share: int) -> None:
    server = serve(APP, "--http2-cleartext", "prior-knowledge", "--threads", "4", *flags)
    key = f"share{share}"
    client = H2Client(server.port)
    streams = [client.request(f"/gate?key={key}") for _ in range(GATED_STREAMS)]
    wait_for_waiting(server, key, share)  # HTTP/1.1 is answered while they hold theirs
    assert h1_get(server, f"/open?key={key}") == b"ok"
    client.read(lambda: all(client.answered(s) for s in streams), timeout_s=20)
    assert [client.bodies.get(s) for s in streams] == [b"opened"] * GATED_STREAMS
    waiting_now, most_at_once = h1_get(server, f"/peek?key={key}").split()
    assert (waiting_now, most_at_once) == (b"0", str(share).encode())  # concurrent up to it
    client.close()
