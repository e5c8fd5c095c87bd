"""HTTP/2 driver threads (server/h2threads.py) end when the server exits: spare ones at
once, running ones when their turn ends; none is left running into interpreter shutdown
(where a thread ending while OpenSSL's exit handler runs can crash the process). Also an
in-process Server with an HTTP/2 connection whose stream is inside the application: close()
leaves no driver thread behind."""

from __future__ import annotations

import gc
import logging
import socket
import threading
import time
import weakref

import h2.config
import h2.connection
import pytest
from treadle.config import Config
from treadle.server.core import Server
from treadle.server.h2threads import DriverThreads
from treadle.server.listeners import open_listener


def driver_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("treadle-h2-")]


def test_close_ends_spare_and_running_threads() -> None:
    threads = DriverThreads()
    release = threading.Event()
    done = threading.Event()
    threads.run(done.set)  # ends at once, its thread stays as a spare
    assert done.wait(5)
    threads.run(lambda: release.wait(10))  # reuses the spare, or a new one
    threads.run(lambda: release.wait(10))
    time.sleep(0.05)
    assert len(driver_threads()) >= 2
    release.set()  # as a turn ends once the server is exiting
    assert threads.close(time.monotonic() + 5)
    assert driver_threads() == []
    with pytest.raises(RuntimeError):
        threads.run(lambda: None)


def test_close_reports_a_turn_that_does_not_end() -> None:
    threads = DriverThreads()
    release = threading.Event()
    threads.run(lambda: release.wait(10))
    assert not threads.close(time.monotonic() + 0.1)
    release.set()
    assert threads.close(time.monotonic() + 5)


def test_a_spare_thread_does_not_keep_its_last_connection() -> None:
    class Turn:
        def __call__(self) -> None:
            pass

    threads = DriverThreads()
    turn = Turn()
    gone = weakref.ref(turn)
    threads.run(turn)
    del turn
    deadline = time.monotonic() + 5
    while gone() is not None and time.monotonic() < deadline:
        time.sleep(0.01)
        gc.collect()
    assert gone() is None
    assert threads.close(time.monotonic() + 5)


def test_server_close_ends_a_driver_thread_whose_stream_is_in_the_app() -> None:
    inside, release = threading.Event(), threading.Event()

    def app(environ: dict, start_response: object) -> list[bytes]:
        inside.set()
        release.wait(10)
        return []

    listener = open_listener("127.0.0.1:0", 64, False)
    cfg = Config(http2_cleartext="prior-knowledge")
    server = Server(app, cfg, [listener], logging.getLogger("test.h2threads"))
    server.start()
    try:
        client = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        client.initiate_connection()
        client.send_headers(1, [(":method", "GET"), (":path", "/"), (":scheme", "http"),
                                (":authority", "x")], end_stream=True)
        with socket.create_connection(listener.sock.getsockname()[:2], timeout=5) as sock:
            sock.sendall(client.data_to_send())
            assert inside.wait(5)
            assert driver_threads()
            server.close(join_timeout_s=1)  # the pool thread in the app takes it all
            assert driver_threads() == []
    finally:
        release.set()
        listener.close()
