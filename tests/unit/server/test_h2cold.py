"""server/h2cold.py: a long-parked HTTP/2 connection's h2 state is packed into bytes and
freed at once (no reference cycle left for the garbage collector), and comes back whole."""

from __future__ import annotations

import gc
import logging
import time
import weakref
from typing import Any

import h2.config
import h2.connection
from treadle.protocol.http2 import FrameGate, H2Limits, new_server_connection
from treadle.server import h2cold

REQUEST = [(":method", "GET"), (":path", "/"), (":scheme", "http"), (":authority", "x"),
           ("user-agent", "packing-test")]


class Runtime:
    error_log = logging.getLogger("test_h2cold")


class Driver:
    """The attributes of server/http2.py's H2Driver that h2cold uses."""

    def __init__(self) -> None:
        self.conn: Any = new_server_connection(H2Limits())
        self.gate: Any = FrameGate(65536, 100)
        self.packed: bytes | None = None
        self.parked_until: float | None = None
        self.deadline = time.monotonic() + 60.0
        self.runtime = Runtime()
        self.peer_host: str | None = "127.0.0.1"
        self._dispatch = self.event_handlers()

    def event_handlers(self) -> dict[type, Any]:
        return {int: self.event_handlers}  # a bound method: a reference back to the driver


def exchange(client: h2.connection.H2Connection, driver: Driver) -> int:
    """One request from `client` answered by `driver`'s h2 state; the stream id."""
    stream_id = client.get_next_available_stream_id()
    client.send_headers(stream_id, REQUEST, end_stream=True)
    driver.conn.receive_data(client.data_to_send())
    driver.conn.send_headers(stream_id, [(":status", "200")], end_stream=True)
    client.receive_data(driver.conn.data_to_send())
    return stream_id


def test_a_cold_connection_is_packed_freed_at_once_and_unpacked_whole() -> None:
    driver = Driver()
    client = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    client.initiate_connection()
    driver.conn.initiate_connection()
    driver.conn.receive_data(client.data_to_send())
    client.receive_data(driver.conn.data_to_send())
    exchange(client, driver)  # both HPACK tables now hold the request's headers

    own_deadline = driver.deadline
    h2cold.plan_packing(driver, time.monotonic() - h2cold.COLD_AFTER_S)
    assert driver.deadline < time.monotonic() < driver.parked_until  # type: ignore[operator]
    state = weakref.ref(driver.conn)
    gc.disable()
    try:
        assert h2cold.pack_if_cold(driver, stopping=False)
        assert state() is None  # freed by its reference count: nothing for the collector
    finally:
        gc.enable()
    assert driver.conn is None and driver.gate is None and driver.packed
    assert driver._dispatch == {}
    assert driver.deadline == own_deadline and driver.parked_until is None

    h2cold.unpack(driver)
    assert driver.packed is None and isinstance(driver.gate, FrameGate)
    assert driver._dispatch == {int: driver.event_handlers}
    # the next request is encoded against the HPACK table built by the first one
    assert exchange(client, driver) == 3


def test_its_own_deadline_or_a_stop_is_not_a_time_to_pack() -> None:
    driver = Driver()
    h2cold.plan_packing(driver, time.monotonic())
    assert not h2cold.pack_if_cold(driver, stopping=True)
    assert driver.packed is None and driver.conn is not None
    driver.deadline = time.monotonic() - 1.0
    h2cold.plan_packing(driver, time.monotonic())
    assert not h2cold.pack_if_cold(driver, stopping=False)  # its own deadline came
    assert driver.packed is None
