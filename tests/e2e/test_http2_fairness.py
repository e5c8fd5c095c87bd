"""Issue 14 item 6: one HTTP/2 connection cannot take the worker pool.

A connection's streams hold at most http2_max_workers_per_connection workers at once (by
default a quarter of `threads`); the rest wait in the connection's own queue. With 4 threads
and eight streams that block until an HTTP/1.1 client opens their gate, that client must
still be answered (before, all 4 workers waited at the gate and it was not).

A stream whose client opens no window holds no worker: its response is buffered (memory,
then a temporary file) and sent when the window opens, or the stream is reset (CANCEL) when
it stays shut past min_response_rate's grace; a request body that never comes fails the
application's read (408) at min_request_rate. Each is shown with one pool thread: an
HTTP/1.1 request is answered meanwhile only if the stream let its worker go.
"""

from __future__ import annotations

import http.client
import time
from collections.abc import Callable

import pytest

from tests.e2e.apps_slowio import pattern
from tests.e2e.conftest import RunningServer
from tests.e2e.test_http2_apps import H2Client

APP = "tests.e2e.apps_h2fair:app"
Serve = Callable[..., RunningServer]
GATED_STREAMS = 8
CANCEL = 0x8
ZERO_WINDOW = {0x4: 0}  # SETTINGS_INITIAL_WINDOW_SIZE: the server may send no DATA
BIG_BYTES = 3 << 20  # far past a stream's memory (256 KiB): most of it spills to a file


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


def one_thread(serve: Serve, *flags: str) -> RunningServer:
    return serve(APP, "--http2-cleartext", "prior-knowledge", "--threads", "1",
                 "--log-level", "debug", *flags)


def test_a_zero_window_response_holds_no_worker_and_arrives_whole(serve: Serve) -> None:
    server = one_thread(serve, "--min-rate-grace", "60", "--body-timeout", "60")
    client = H2Client(server.port, settings=ZERO_WINDOW)
    stream = client.request(f"/pattern?n={BIG_BYTES}")
    client.read(lambda: stream in client.heads)
    assert h1_get(server, "/") == b"hello"  # the only worker is free: the body is buffered
    client.conn.increment_flow_control_window(BIG_BYTES)  # the connection's window
    client.conn.increment_flow_control_window(BIG_BYTES, stream)
    client.flush()
    client.read(lambda: client.answered(stream), timeout_s=30)
    assert stream in client.ended and stream not in client.resets
    assert client.bodies[stream] == pattern(BIG_BYTES)  # byte-exact, in order
    client.close()


def test_a_small_whole_response_waits_for_a_window_smaller_than_its_body(
        serve: Serve) -> None:
    """A complete small body goes out right behind its head (server/h2events.py
    _whole_body) only when the windows take all of it; here the stream's window takes 5
    bytes, then the rest once the client opens it."""
    server = one_thread(serve)
    client = H2Client(server.port, settings={0x4: 5})
    stream = client.request("/pattern?n=100")
    client.read(lambda: len(client.bodies.get(stream, b"")) == 5)
    assert stream not in client.ended
    client.conn.increment_flow_control_window(95, stream)
    client.flush()
    client.read(lambda: client.answered(stream))
    assert stream in client.ended and client.bodies[stream] == pattern(100)
    client.close()


def test_a_window_that_never_opens_resets_the_stream(serve: Serve) -> None:
    server = one_thread(serve, "--min-rate-grace", "1", "--body-timeout", "60")
    client = H2Client(server.port, settings=ZERO_WINDOW)
    stream = client.request(f"/pattern?n={BIG_BYTES}")
    assert h1_get(server, "/") == b"hello"
    client.read(lambda: client.answered(stream), timeout_s=30)
    assert client.resets.get(stream) == CANCEL
    assert "its window stayed closed" in server.log()
    assert h1_get(server, "/") == b"hello"
    second = client.request("/")  # the connection carries on
    client.read(lambda: second in client.heads)
    client.close()


def test_a_request_body_that_never_comes_fails_at_min_request_rate(serve: Serve) -> None:
    server = one_thread(serve, "--min-rate-grace", "1", "--body-timeout", "60")
    client = H2Client(server.port)
    stream = client.conn.get_next_available_stream_id()
    client.conn.send_headers(stream, [(b":method", b"POST"), (b":scheme", b"http"),
                                      (b":authority", b"127.0.0.1"), (b":path", b"/upload"),
                                      (b"content-length", b"1000")])
    client.flush()  # and no DATA, ever
    client.read(lambda: client.answered(stream), timeout_s=30)
    assert client.status(stream) == 408
    assert "the body arrives too slowly" in server.log()
    assert h1_get(server, "/") == b"hello"
    client.close()


def test_streams_beyond_the_spill_share_wait_for_a_file_then_arrive_whole(
        serve: Serve) -> None:
    """Share 1: the first stream's response spills to a file and frees its worker; the
    second's worker waits for that file to be given back (descriptors stay bounded per
    connection). Once the first is read, the second's worker goes on and is freed (the
    HTTP/1.1 request is answered by the only thread); both arrive byte-exact."""
    server = one_thread(serve, "--min-rate-grace", "60", "--body-timeout", "60")
    client = H2Client(server.port, settings=ZERO_WINDOW)
    first, second = (client.request(f"/pattern?n={BIG_BYTES}") for _ in range(2))
    client.read(lambda: second in client.heads)  # its worker started: the first's is done
    client.conn.increment_flow_control_window(2 * BIG_BYTES)
    client.conn.increment_flow_control_window(BIG_BYTES, first)
    client.flush()
    client.read(lambda: client.answered(first), timeout_s=30)
    assert h1_get(server, "/") == b"hello"  # the second's worker took the file and left
    client.conn.increment_flow_control_window(BIG_BYTES, second)
    client.flush()
    client.read(lambda: client.answered(second), timeout_s=30)
    assert [client.bodies.get(s) == pattern(BIG_BYTES) for s in (first, second)] == [True] * 2
    assert not client.resets
    client.close()
