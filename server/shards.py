"""reuse_port with worker processes: a listening socket per worker slot, not one shared socket.

Workers that all accept on the arbiter's one socket leave SO_REUSEPORT nothing to balance
(gunicorn learned this). With `reuse_port` and workers, the arbiter binds one socket per
worker slot to the same concrete address (port 0 is resolved once, by the first socket) and
the kernel spreads new connections over them. Slot 0 is the listener `run` opened (the one a
USR2 hands to a new arbiter); the worker of slot i accepts on slot i's socket only and closes
its inherited copies of the others.

The arbiter keeps its own copy of every slot's socket, so a socket outlives the worker using
it: the connections waiting in its backlog when a worker exits (recycled, reloaded, killed)
are accepted by the replacement started on the same slot, and none is lost. A slot's socket
goes only when the count shrinks (TTOU, a reload to fewer workers, a stop): the arbiter closes
its copy before it stops that slot's worker, which takes the backlog and then closes the last
copy. A connection the kernel put in that socket's queue after the worker's last accept
would be reset by the close (unless Linux's `net.ipv4.tcp_migrate_req` is 1), so while a
slot's worker is leaving, the arbiter steers every new connection of the port to slot 0's
socket (the first of the port's reuseport group: a classic BPF program returning index 0,
SO_ATTACH_REUSEPORT_CBPF) and lets the kernel balance again once that worker has exited.

Shared instead, said once in the log: Unix sockets, sockets handed over by systemd (`fd://`),
and a slot that cannot be bound (after `--user` switched away from the user that bound the
first socket, or a privileged port): that worker accepts on slot 0's socket.
"""

from __future__ import annotations

import ctypes
import logging
import socket
import struct

from .listeners import BindError, Listener, open_listener

# Linux's reuseport steering (socket(7)): a classic BPF program choosing the group's socket
SO_ATTACH_REUSEPORT_CBPF = 51
SO_DETACH_REUSEPORT_BPF = 68
_BPF_RET_K = 0x06  # BPF_RET | BPF_K: return the constant
_TO_FIRST_SOCKET = struct.pack("=HBBI", _BPF_RET_K, 0, 0, 0)  # one instruction: return 0


class PortShards:
    """The arbiter's sockets by worker slot (all of slot 0's when nothing is sharded)."""

    def __init__(self, listeners: list[Listener], reuse_port: bool, backlog: int,
                 error_log: logging.Logger) -> None:
        self.base = listeners
        self.backlog = backlog
        self.error_log = error_log
        self.slots: dict[int, list[Listener]] = {0: listeners}
        self._leaving: set[int] = set()  # released slots whose worker has not exited yet
        self.sharded = [reuse_port and _can_shard(listener) for listener in listeners]
        if reuse_port:
            for listener, sharded in zip(listeners, self.sharded, strict=True):
                if sharded:
                    error_log.info("reuse_port: each worker accepts on its own socket for "
                                   "%s", listener.url())
                else:
                    error_log.info("reuse_port: the workers share the socket of %s (%s)",
                                   listener.bind, "a socket handed over cannot be bound again"
                                   if listener.bind.startswith("fd://") else "not TCP")

    @property
    def active(self) -> bool:
        return any(self.sharded)

    def prepare(self, count: int) -> None:
        """Bind the first `count` slots now (before a user switch, which may forbid it)."""
        for slot in range(count):
            self.listeners_for(slot)

    def listeners_for(self, slot: int) -> list[Listener]:
        """Slot `slot`'s listeners, bound on first use (a failed bind shares slot 0's)."""
        found = self.slots.get(slot)
        if found is None:
            found = [self._bind_like(base) if sharded else base
                     for base, sharded in zip(self.base, self.sharded, strict=True)]
            self.slots[slot] = found
        return found

    def _bind_like(self, base: Listener) -> Listener:
        address = base.sock.getsockname()
        host = f"[{address[0]}]" if base.sock.family == socket.AF_INET6 else address[0]
        try:
            return open_listener(f"{host}:{address[1]}", self.backlog, reuse_port=True)
        except BindError as exc:
            self.error_log.warning("reuse_port: %s; this worker shares the first socket", exc)
            return base

    def release(self, slot: int, steer: bool = False) -> None:
        """No worker will use `slot` again: close the arbiter's copy of its own sockets (its
        worker, stopping, takes their backlog and closes the last copy). With `steer` (a
        worker still holds them), new connections go to slot 0's socket until
        `exited(slot)`, so none waits in the closing one."""
        mine = self.slots.pop(slot, None) if slot else None
        if mine is None:
            return
        if steer and any(listener is not base for listener, base in zip(mine, self.base,
                                                                         strict=True)):
            if not self._leaving:
                self._steer(_TO_FIRST_SOCKET)
            self._leaving.add(slot)
        for listener, base in zip(mine, self.base, strict=True):
            if listener is not base:
                listener.sock.close()

    def exited(self, slot: int) -> None:
        """The worker of a released slot has exited (its socket is closed): when no other is
        leaving, the kernel balances new connections over the sockets again."""
        if slot in self._leaving:
            self._leaving.discard(slot)
            if not self._leaving:
                self._steer(None)

    def _steer(self, program: bytes | None) -> None:
        """Attach `program` to the port's reuseport groups (through slot 0's sockets), or
        detach it (None). Where Linux offers no steering the close keeps its small window."""
        for listener, sharded in zip(self.base, self.sharded, strict=True):
            if not sharded:
                continue
            try:
                if program is None:
                    listener.sock.setsockopt(socket.SOL_SOCKET, SO_DETACH_REUSEPORT_BPF, 0)
                else:
                    _attach_cbpf(listener.sock, program)
            except OSError as exc:
                self.error_log.debug("reuse_port: cannot steer connections on %s: %s",
                                     listener.url(), exc)

    def release_all(self) -> None:
        """A stop: every sharded socket, slot 0's too, stops taking connections here."""
        for slot in list(self.slots):
            self.release(slot)
        for listener, sharded in zip(self.base, self.sharded, strict=True):
            if sharded:
                listener.sock.close()

    def open_slots(self) -> list[int]:
        return sorted(self.slots)

    def keep_only(self, slot: int) -> list[Listener]:
        """In a forked worker: close every other slot's copy; returns this slot's listeners.
        A copy left open would keep a released socket alive, its backlog never accepted."""
        mine = self.listeners_for(slot)
        keep = {id(listener) for listener in mine}
        for listeners in self.slots.values():
            for listener in listeners:
                if id(listener) not in keep:
                    listener.sock.close()
        return mine


def _attach_cbpf(sock: socket.socket, program: bytes) -> None:
    """SO_ATTACH_REUSEPORT_CBPF takes a struct sock_fprog: the instruction count and a
    pointer to the instructions, which the kernel copies during the call."""
    instructions = ctypes.create_string_buffer(program, len(program))
    fprog = struct.pack("HP", len(program) // 8, ctypes.addressof(instructions))
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, fprog)


def _can_shard(listener: Listener) -> bool:
    return (not listener.bind.startswith("fd://")
            and listener.sock.family in (socket.AF_INET, socket.AF_INET6))
