# The bytes received but not yet turned into events.
#
# Two goals: no copy in the common case, and no quadratic rescans for slow clients.
# - While empty, a received bytes object is kept as it is; a reader that takes all of it
#   (a whole head, a whole body piece) gets that very object back.
# - Consumed bytes advance an offset instead of being deleted at once; appending to a
#   non-empty buffer copies into a bytearray only when the new piece is small compared
#   with what is held (so repeated appends stay linear).
# - The search for the blank line that ends a head remembers how far it has looked, so a
#   head arriving one byte at a time is scanned once, not once per byte.
from __future__ import annotations

__all__ = ["ReceiveBuffer"]


class ReceiveBuffer:
    __slots__ = ("_data", "_pos", "_scanned", "_prev_scanned")

    def __init__(self) -> None:
        self._data: bytes | bytearray = b""
        self._pos = 0
        # How many bytes after _pos have been searched for the end of a head.
        self._scanned = 0
        # The value of _scanned before the last unsuccessful search (where new bytes start).
        self._prev_scanned = 0

    def __len__(self) -> int:
        return len(self._data) - self._pos

    def __bool__(self) -> bool:
        return len(self._data) > self._pos

    def __bytes__(self) -> bytes:
        return bytes(self._data[self._pos :])

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        held = self._data
        pos = self._pos
        if pos == len(held):
            self._data = data if type(data) is bytes else bytes(data)
            self._pos = 0
            return
        if type(held) is bytes:
            if len(data) >= len(held) - pos:
                # Copying what is held costs no more than the new piece itself.
                self._data = held[pos:] + data
            else:
                grown = bytearray(memoryview(held)[pos:])
                grown += data
                self._data = grown
        else:
            assert type(held) is bytearray
            if pos:
                del held[:pos]  # O(1) at the front of a bytearray
            held += data
        self._pos = 0

    def _consume(self, end: int) -> None:
        """Forget everything before absolute index `end`."""
        self._scanned = 0
        self._prev_scanned = 0
        if end >= len(self._data):
            self._data = b""
            self._pos = 0
        else:
            self._pos = end

    # -- views, used by readers ------------------------------------------------------

    def peek(self, count: int) -> bytes:
        """Up to `count` bytes from the front, without consuming them."""
        pos = self._pos
        return bytes(self._data[pos : pos + count])

    def startswith(self, prefix: bytes | tuple[bytes, ...]) -> bool:
        return self._data.startswith(prefix, self._pos)

    def find(self, sub: bytes, start: int = 0, end: int | None = None) -> int:
        """Index of `sub` counted from the front, or -1; `start`/`end` likewise."""
        pos = self._pos
        stop = len(self._data) if end is None else pos + end
        found = self._data.find(sub, pos + start, stop)
        return found - pos if found >= 0 else -1

    def byte_at(self, index: int) -> int:
        return self._data[self._pos + index]

    # -- for readers that walk the bytes themselves (chunked bodies) --------------------

    def view(self) -> tuple[bytes | bytearray, int, int]:
        """(the held object, absolute start, absolute end) of the bytes held: read only."""
        data = self._data
        return data, self._pos, len(data)

    def advance(self, absolute: int) -> None:
        """Consume everything before absolute index `absolute` of the held object."""
        if absolute != self._pos:
            self._consume(absolute)

    # -- taking bytes out ----------------------------------------------------------------

    def skip(self, count: int) -> None:
        self._consume(self._pos + count)

    def take(self, count: int) -> bytes | None:
        """Up to `count` bytes from the front (None if empty), consumed."""
        data = self._data
        pos = self._pos
        available = len(data) - pos
        if available <= 0:
            return None
        if count >= available:
            out = data if pos == 0 and type(data) is bytes else bytes(data[pos:])
            self._data = b""
            self._pos = 0
            self._scanned = 0
            self._prev_scanned = 0
            return out
        end = pos + count
        piece = data[pos:end]
        self._consume(end)
        return piece if type(piece) is bytes else bytes(piece)

    def find_head_end(self, alarm: int) -> int:
        """Index (from the front) of the CRLFCRLF ending the head; else -1, or -2 when the
        caller should look closer at the bytes that arrived since the last search: they
        are the first ones, or hold a CR or LF, or the buffer reached `alarm` bytes.

        Remembers how far it looked: a head arriving byte by byte is searched once; after
        a miss, `new_bytes_start()` tells where the new bytes began.
        """
        data = self._data
        pos = self._pos
        scanned = self._scanned
        size = len(data)
        # The blank line ends with a LF: without a new LF there is nothing to find.
        new_lf = data.find(b"\n", pos + scanned)
        if new_lf >= 0:
            found = data.find(b"\r\n\r\n", pos + scanned - 3 if scanned > 3 else pos)
            if found >= 0:
                return found - pos
        self._prev_scanned = scanned
        self._scanned = size - pos
        if (
            new_lf >= 0
            or scanned == 0
            or size - pos >= alarm
            or data.find(b"\r", pos + scanned - 1, size - 1) >= 0
        ):
            return -2
        return -1

    def take_whole_head(self) -> bytes | None:
        """When no search has been made since the last take: the bytes before the first
        CRLFCRLF, consumed with it; None if there is none (find_head_end then searches
        and remembers). The common case of a head received whole, in one search."""
        if self._scanned:
            return None
        data = self._data
        pos = self._pos
        found = data.find(b"\r\n\r\n", pos)
        if found < 0:
            return None
        head = data[pos:found] if type(data) is bytes else bytes(data[pos:found])
        if found + 4 >= len(data):
            self._data = b""
            self._pos = 0
        else:
            self._pos = found + 4
        return head

    def new_bytes_start(self) -> int:
        return self._prev_scanned

    def take_head(self, end: int, terminator_size: int) -> bytes:
        """The bytes before index `end`; consumes them plus `terminator_size` bytes."""
        data = self._data
        pos = self._pos
        stop = pos + end
        if pos == 0 and type(data) is bytes:
            head: bytes = data[:stop]
        else:
            head = bytes(data[pos:stop])
        stop += terminator_size
        self._scanned = 0
        self._prev_scanned = 0
        if stop >= len(data):
            self._data = b""
            self._pos = 0
        else:
            self._pos = stop
        return head
