# The engine's exceptions and the one place that formats a message about bad bytes.
# Every error carries `error_status_hint`, the status a server would answer with.
from __future__ import annotations

from typing import NoReturn

_REPR_BYTES = 48


class ProtocolError(Exception):
    """A violation of HTTP/1.1; never raised itself, only as one of its two subclasses.

    `error_status_hint` suggests the status a server should answer with: 400 by default,
    413, 414 (request line too long), 431 (fields or head too large), 501 (a transfer
    coding we do not implement) or 505 (an HTTP major version other than 1).
    """

    def __init__(self, msg: str, error_status_hint: int = 400) -> None:
        if type(self) is ProtocolError:
            raise TypeError("tried to directly instantiate ProtocolError")
        Exception.__init__(self, msg)
        self.error_status_hint = error_status_hint


class LocalProtocolError(ProtocolError):
    """We were asked to do something HTTP/1.1 forbids (send(), event constructors)."""

    def _reraise_as_remote_protocol_error(self) -> NoReturn:
        # The state machine raises LocalProtocolError for both directions; next_event()
        # turns those about the peer into RemoteProtocolError, keeping the traceback.
        self.__class__ = RemoteProtocolError  # type: ignore[assignment]
        raise self


class RemoteProtocolError(ProtocolError):
    """The peer sent something HTTP/1.1 forbids; raised by next_event()."""


def short_repr(data: bytes | bytearray) -> str:
    """repr() of at most the first 48 bytes, marked when cut."""
    if len(data) <= _REPR_BYTES:
        return repr(bytes(data))
    return repr(bytes(data[:_REPR_BYTES])) + "..."


def bad_input(
    what: str, state: str, data: bytes | bytearray, hint: int = 400
) -> RemoteProtocolError:
    """The error for bad received bytes: names the problem, the state and the bytes."""
    return RemoteProtocolError(f"{what} (in state {state}): {short_repr(data)}", hint)
