"""The response bytes a client's socket did not take yet, so that no worker waits on a slow
reader (issue 14 item 4).

A worker sends what the socket takes at once; only the rest comes here (a client that reads
promptly never gets a Backlog entry, a copy or a hand-off). Bytes stay in memory up to the
`response_buffer_size` setting per connection (references to the application's own chunks:
no copy), then go to an anonymous temporary file, as waitress spills past its
outbuf_overflow (1 MB): so memory is bounded by that size per connection. A file the
application gave as wsgi.file_wrapper is not copied either: the rest of it is a region of a
duplicate of its descriptor, continued with os.sendfile from where the socket stopped.

`flush` sends without blocking, from the worker while the application still produces and
then from the poller as the socket becomes writable (server/http1.py). An HTTP/2 stream keeps
its unsent response in one too (server/h2stream.py), taken a frame at a time with `take` as
the client's flow-control windows open. Over TLS a region is
read back in blocks (no sendfile through TLS); a send that needs the client's bytes first
(SSLWantRead) sets `wants_read`, so the poller waits for readable instead of writable.
"""

from __future__ import annotations

import os
import socket
import tempfile
from collections import deque
from typing import BinaryIO

from .errors import ClientGone, WantRead
from .rates import MinRate, RateClock

READ_BLOCK_BYTES = 256 * 1024  # a region read back for a TLS socket, a block at a time


class _Region:
    """`count` bytes of an open file from `offset`; `source` tells appends to the same file
    apart (the application's descriptor, or -1 for the spill file)."""

    __slots__ = ("fd", "offset", "count", "owned", "source")

    def __init__(self, fd: int, offset: int, count: int, owned: bool, source: int) -> None:
        self.fd, self.offset, self.count, self.owned, self.source = (fd, offset, count,
                                                                      owned, source)


class Backlog:
    """One connection's unsent response bytes, in order: memory pieces and file regions."""

    __slots__ = ("memory_max", "segments", "memory_bytes", "spill", "spill_end", "clock",
                 "wants_read")

    def __init__(self, memory_max: int) -> None:
        self.memory_max = memory_max
        self.segments: deque[bytes | memoryview | _Region] = deque()
        self.memory_bytes = 0
        self.spill: BinaryIO | None = None
        self.spill_end = 0
        self.clock: RateClock | None = None  # since the socket last refused bytes
        self.wants_read = False

    def __bool__(self) -> bool:
        return bool(self.segments)

    def start(self, rate: MinRate, now_s: float) -> None:
        """The socket refused bytes with nothing pending: the reader's clock starts."""
        self.clock = RateClock(rate, now_s)

    def append(self, data: bytes | memoryview, memory_ok: bool = False) -> None:
        """Queue bytes after everything pending; to the spill file past memory_max, unless
        `memory_ok` (the caller keeps this one piece in memory whatever its size: an HTTP/2
        stream's only pending piece, the application's own object referenced, not copied).
        ClientGone when no temporary file can be had (the response is then dropped)."""
        size = len(data)
        if not size:
            return
        if memory_ok or self.memory_bytes + size <= self.memory_max:
            self.segments.append(data)
            self.memory_bytes += size
            return
        try:
            if self.spill is None:
                self.spill = tempfile.TemporaryFile(buffering=0)  # noqa: SIM115 (kept open)
                self.spill_end = 0
            fd = self.spill.fileno()
            view = memoryview(data)
            while view:
                view = view[os.pwrite(fd, view, self.spill_end + len(data) - len(view)):]
        except OSError as exc:
            raise ClientGone(f"cannot buffer the response for a slow reader: {exc}") from exc
        self._add_region(fd, self.spill_end, size, owned=False, source=-1)
        self.spill_end += size

    def append_file(self, file_fd: int, offset: int, count: int) -> None:
        """Queue `count` bytes of the application's file from `offset` (sent with sendfile
        later, from a duplicate descriptor: the application closes its own)."""
        last = self.segments[-1] if self.segments else None
        if (type(last) is _Region and last.source == file_fd
                and last.offset + last.count == offset):
            last.count += count
            return
        try:
            fd = os.dup(file_fd)
        except OSError as exc:
            raise ClientGone(f"cannot keep the file for a slow reader: {exc}") from exc
        self.segments.append(_Region(fd, offset, count, owned=True, source=file_fd))

    def _add_region(self, fd: int, offset: int, count: int, owned: bool, source: int) -> None:
        last = self.segments[-1] if self.segments else None
        if type(last) is _Region and last.fd == fd and last.offset + last.count == offset:
            last.count += count
        else:
            self.segments.append(_Region(fd, offset, count, owned, source))

    def flush(self, sock: socket.socket, sendfile_ok: bool) -> bool:
        """Send what the socket takes now; True once nothing is pending. Raises OSError
        when the client is gone."""
        segments = self.segments
        self.wants_read = False
        moved = 0
        try:
            while segments:
                segment = segments[0]
                if isinstance(segment, _Region):
                    if sendfile_ok:
                        sent = os.sendfile(sock.fileno(), segment.fd, segment.offset,
                                           segment.count)
                        if sent == 0:
                            raise ClientGone("the file ended before its declared length")
                        moved += sent
                        self._advance_region(segment, sent)
                    else:
                        self._read_back(segment)
                    continue
                sent = sock.send(segment)
                moved += sent
                self.memory_bytes -= sent
                if sent == len(segment):
                    segments.popleft()
                else:
                    segments[0] = memoryview(segment)[sent:]
        except WantRead:
            self.wants_read = True
        except BlockingIOError:
            pass
        finally:
            if self.clock is not None:
                self.clock.moved += moved
        if segments:
            return False
        self._done()
        return True

    def take(self, limit: int) -> bytes:
        """Up to `limit` bytes from the front (b"" when nothing is pending), for a sender
        that frames them itself: an HTTP/2 stream's DATA (server/h2events.py). A spilled
        region is read back a block at a time. Raises OSError or ClientGone when the spill
        file cannot be read back."""
        segments = self.segments
        while segments:
            segment = segments[0]
            if isinstance(segment, _Region):
                self._read_back(segment)
                continue
            view = memoryview(segment)
            if len(view) <= limit:
                segments.popleft()
            else:
                segments[0] = view[limit:]
                view = view[:limit]
            self.memory_bytes -= len(view)
            if not segments:
                self._done()
            return view.tobytes()
        return b""

    def take_whole(self, limit: int) -> bytes | None:
        """Everything pending, when it is one piece of bytes in memory of at most `limit`
        bytes (an HTTP/2 stream's whole small body, sent with its head without a copy);
        else None, and nothing is taken."""
        segments = self.segments
        if len(segments) != 1:
            return None
        piece = segments[0]
        if type(piece) is not bytes or len(piece) > limit:
            return None
        segments.clear()
        self._done()
        return piece

    def _advance_region(self, region: _Region, sent: int) -> None:
        region.offset += sent
        region.count -= sent
        if region.count == 0:
            self.segments.popleft()
            if region.owned:
                os.close(region.fd)

    def _read_back(self, region: _Region) -> None:
        """Move the next block of a region to memory, in front (TLS cannot use sendfile)."""
        block = os.pread(region.fd, min(region.count, READ_BLOCK_BYTES), region.offset)
        if not block:
            raise ClientGone("the file ended before its declared length")
        self._advance_region(region, len(block))
        self.segments.appendleft(block)
        self.memory_bytes += len(block)

    def _done(self) -> None:
        """Nothing pending: give the spill file back; the next backlog starts afresh."""
        self.clock = None
        self.memory_bytes = 0
        if self.spill is not None:
            spill, self.spill = self.spill, None
            spill.close()

    def release(self) -> None:
        """The connection closes: drop what is pending and every descriptor held for it."""
        segments, self.segments = self.segments, deque()
        for segment in segments:
            if type(segment) is _Region and segment.owned:
                try:
                    os.close(segment.fd)
                except OSError:
                    pass
        self._done()
