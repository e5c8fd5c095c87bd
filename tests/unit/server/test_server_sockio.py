"""server/sockio.py: waiting on a socket works for every descriptor number, and a
receive allocates only what arrived.

select() refuses descriptors from 1024 on (ValueError); a busy server has thousands, so no
wait in server/ may use it (issue 14: HTTP/2 closes and TLS handshakes did).
"""

from __future__ import annotations

import os
import re
import resource
import socket
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest
from treadle.server.errors import BodyTimeout
from treadle.server.sockio import recv_copy, wait_ready

SERVER = Path(__file__).resolve().parents[3] / "server"
HIGH_FD = 1500


@pytest.fixture
def high_fd_pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    """A connected pair whose first socket has descriptor HIGH_FD."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft <= HIGH_FD:
        if hard != resource.RLIM_INFINITY and hard <= HIGH_FD:
            pytest.skip(f"needs descriptor {HIGH_FD}, the hard limit is {hard}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (HIGH_FD + 1, hard))
    ours, peer = socket.socketpair()
    os.dup2(ours.fileno(), HIGH_FD)
    ours.close()
    high = socket.socket(fileno=HIGH_FD)
    yield high, peer
    high.close()
    peer.close()


def test_wait_ready_takes_descriptors_above_1023(
        high_fd_pair: tuple[socket.socket, socket.socket]) -> None:
    high, peer = high_fd_pair
    assert high.fileno() == HIGH_FD
    wait_ready(high, True, time.monotonic() + 5)
    peer.sendall(b"x")
    wait_ready(high, False, time.monotonic() + 5)
    assert high.recv(1) == b"x"
    with pytest.raises(BodyTimeout):
        wait_ready(high, False, time.monotonic() + 0.01)  # nothing more is coming


def test_no_select_select_in_the_server() -> None:
    uses = [f"{path.name}:{number}" for path in sorted(SERVER.glob("*.py"))
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
            if re.search(r"\bselect\.select\(|\bSelectSelector\b", line)]
    assert uses == []


def test_a_receive_allocates_only_what_arrived() -> None:
    """recv_copy, unlike socket.recv, never allocates the whole 64 KiB asked for and then
    shrinks it to the few bytes that came (the freed tails fragmented glibc's heaps under
    steady uploads: issue 14 item 12); the bytes are the same."""
    left, right = socket.socketpair()
    with left, right:
        right.sendall(b"warm")
        assert recv_copy(left, 65536) == b"warm"  # this thread's buffer, made once
        tracemalloc.start()
        try:
            for size in (1, 1000, 30_000):
                right.sendall(b"x" * size)
                tracemalloc.reset_peak()
                before = tracemalloc.get_traced_memory()[0]
                data = recv_copy(left, 65536)
                peak = tracemalloc.get_traced_memory()[1] - before
                assert data == b"x" * size and type(data) is bytes
                assert peak < size + 1024, (size, peak)
                del data
        finally:
            tracemalloc.stop()
        right.close()
        assert recv_copy(left, 65536) == b""
