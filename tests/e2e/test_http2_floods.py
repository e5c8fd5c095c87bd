"""Issue 14 item 8 over real sockets: a client over one of its frame budgets is not read for
a while (its bytes wait in the socket), then cut off with GOAWAY at its next excess; a
client only briefly over a budget is paused, never cut off, and what it sent meanwhile is
handled in order. The budgets themselves are unit-tested (tests/unit/test_http2_protocol.py).
"""

from __future__ import annotations

from collections.abc import Callable

import h2.events
import pytest
from hyperframe.frame import PingFrame

from tests.e2e.conftest import RunningServer
from tests.e2e.test_http2_apps import H2Client
from tests.e2e.test_http2_hardening import (
    ENHANCE_YOUR_CALM,
    assert_no_crash_logged,
    assert_still_serving,
    goaway_code,
    raw_connection,
    read_until_closed,
)

APP = "tests.e2e.test_http2_apps:app"
Serve = Callable[..., RunningServer]
PING, ACK = 0x6, 0x1


@pytest.fixture
def h2c(serve: Serve) -> RunningServer:
    return serve(APP, "--http2-cleartext", "prior-knowledge", "--threads", "4",
                 "--log-level", "debug")


def ping_acks(data: bytes) -> int:
    """How many PING ACK frames are in `data` (raw frames from the server)."""
    count = at = 0
    while at + 9 <= len(data):
        count += data[at + 3] == PING and data[at + 4] & ACK
        at += 9 + int.from_bytes(data[at:at + 3], "big")
    return count


def test_a_flooding_client_is_paused_then_cut_off(h2c: RunningServer) -> None:
    """PINGs by the thousand: at the first one over the budget the server stops reading the
    connection (it says so at debug), at the next excess it ends it with GOAWAY
    ENHANCE_YOUR_CALM; it answered few of them (a new connection may send 10 at once)."""
    sock = raw_connection(h2c)
    try:
        sock.sendall(PingFrame(0, opaque_data=b"8 bytes!").serialize() * 2000)
    except OSError:
        pass  # cut off before it was all sent: fine too
    data = read_until_closed(sock)
    sock.close()
    assert goaway_code(data) == ENHANCE_YOUR_CALM
    # a tenth of the burst of 100, plus what refilled while it was paused (10 a second)
    assert ping_acks(data) < 100
    log = h2c.log()
    paused = log.find("over its budget of PING frames: not read for 1 s")
    assert 0 <= paused < log.find("too many PING frames"), log[-2000:]
    assert_still_serving(h2c)
    assert_no_crash_logged(h2c)


def test_a_client_briefly_over_a_budget_is_only_paused(h2c: RunningServer) -> None:
    """15 PINGs on a new connection (which may send 10 at once and 10 more a second), then a
    request: the PINGs past the tenth wait for the pause to end, then everything is answered
    in order; the connection is never cut off."""
    client = H2Client(h2c.port)
    for index in range(15):
        client.conn.ping(b"%08d" % index)
    stream = client.request("/")
    client.read(lambda: client.answered(stream))
    assert client.status(stream) == 200 and client.bodies[stream] == b"hello"
    acks = [event.ping_data for event in client.events
            if isinstance(event, h2.events.PingAckReceived)]
    assert acks == [b"%08d" % index for index in range(15)]
    assert client.goaway is None
    client.close()
    assert "not read for 1 s" in h2c.log()
    assert_still_serving(h2c)
