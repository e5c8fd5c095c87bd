"""server/outbuf.py: what a slow reader leaves behind comes out whole and in order, from
memory, the spill file and file regions alike, and every descriptor it held is given back.

A connected socket pair stands in for the client: the peer reads nothing until the test
drains it, so the socket really refuses bytes (its buffers are made small).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from treadle.server.outbuf import Backlog
from treadle.server.rates import MinRate


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    ours, peer = socket.socketpair()
    ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    peer.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    ours.setblocking(False)
    yield ours, peer
    ours.close()
    peer.close()


def drain(backlog: Backlog, ours: socket.socket, peer: socket.socket, sendfile_ok: bool,
          expected: int) -> bytes:
    """Read from the peer while flushing, as the poller would on each writable event."""
    peer.settimeout(5.0)
    received = bytearray()
    while len(received) < expected:
        backlog.flush(ours, sendfile_ok)
        received += peer.recv(65536)
    assert backlog.flush(ours, sendfile_ok) and not backlog
    return bytes(received)


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.parametrize("sendfile_ok", [True, False], ids=["sendfile", "read-back"])
def test_memory_spill_and_file_regions_come_out_in_order(
        pair: tuple[socket.socket, socket.socket], tmp_path: Path, sendfile_ok: bool) -> None:
    ours, peer = pair
    path = tmp_path / "file.bin"
    file_bytes = bytes(range(256)) * 2000
    path.write_bytes(file_bytes)
    before = open_fds()
    backlog = Backlog(memory_max=10_000)
    backlog.start(MinRate(240.0, 5.0), 0.0)
    pieces = [b"a" * 6000, b"b" * 6000, b"c" * 50_000]  # the 2nd and 3rd spill
    for piece in pieces:
        backlog.append(piece)
    assert backlog.memory_bytes == 6000 and backlog.spill is not None
    with open(path, "rb") as handle:
        backlog.append_file(handle.fileno(), 100, 200_000)
        backlog.append_file(handle.fileno(), 200_100, 300_000)  # joins the same region
    backlog.append(b"tail")
    expected = b"".join(pieces) + file_bytes[100:500_100] + b"tail"
    assert drain(backlog, ours, peer, sendfile_ok, len(expected)) == expected
    assert backlog.clock is None and backlog.spill is None
    assert open_fds() == before  # the spill file and the duplicate are closed


def test_release_gives_back_every_descriptor(pair: tuple[socket.socket, socket.socket],
                                             tmp_path: Path) -> None:
    ours, _peer = pair
    path = tmp_path / "file.bin"
    path.write_bytes(b"x" * 100_000)
    before = open_fds()
    backlog = Backlog(memory_max=0)
    backlog.append(b"y" * 1000)  # straight to the spill file
    with open(path, "rb") as handle:
        backlog.append_file(handle.fileno(), 0, 100_000)
    assert open_fds() == before + 2
    backlog.release()
    assert not backlog and open_fds() == before


def test_the_clock_counts_what_the_reader_took(pair: tuple[socket.socket, socket.socket]) -> None:
    ours, peer = pair
    backlog = Backlog(memory_max=1 << 20)
    backlog.start(MinRate(100.0, 5.0), 1000.0)
    backlog.append(b"z" * 300_000)
    assert backlog.clock is not None
    assert backlog.clock.deadline() == 1005.0  # nothing taken: the grace only
    peer.settimeout(5.0)
    taken = 0
    while taken < 100_000:
        backlog.flush(ours, True)
        taken += len(peer.recv(65536))
    backlog.flush(ours, True)
    assert backlog.clock.moved >= 100_000
    assert backlog.clock.deadline() == 1000.0 + backlog.clock.moved / 100.0


def test_take_whole_takes_only_one_small_piece_in_memory(tmp_path: Path) -> None:
    """An HTTP/2 stream's whole small body, taken as the application's own object, or
    nothing when it is in several pieces, too big, or partly sent."""
    body = b"hello, world"
    backlog = Backlog(1024)
    assert backlog.take_whole(100) is None  # nothing pending
    backlog.append(body)
    assert backlog.take_whole(len(body) - 1) is None and backlog  # too big: left as it was
    assert backlog.take_whole(len(body)) is body and not backlog
    backlog.append(b"two ")
    backlog.append(b"pieces")
    assert backlog.take_whole(100) is None
    assert backlog.take(100) == b"two " and backlog.take(2) == b"pi"
    assert backlog.take_whole(100) is None  # a view of the rest: goes through take()
    assert backlog.take(100) == b"eces" and not backlog
