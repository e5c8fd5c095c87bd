"""Which socket errors mean "the client went away", in one place.

Such errors are normal on the open internet: they are logged at debug level and never as a
traceback (cheroot keeps the same sets in errors.py).
"""

from __future__ import annotations

import errno

CLIENT_GONE_ERRNOS: frozenset[int] = frozenset(
    code
    for code in (
        getattr(errno, name, None)
        for name in (
            "EPIPE",
            "ECONNRESET",
            "ECONNABORTED",
            "ENOTCONN",
            "ESHUTDOWN",
            "ETIMEDOUT",
            "EBADF",
            "EHOSTUNREACH",
            "ENETUNREACH",
            "ENETRESET",
            "EPROTOTYPE",
        )
    )
    if code is not None
)


class ClientGone(ConnectionError):
    """The peer closed, reset or stopped answering; nothing more can be sent or received."""


class BodyTimeout(ClientGone, TimeoutError):
    """The client took longer than body_timeout to send the next bytes (or accept ours)."""


class WantRead(BlockingIOError):
    """A TLS send cannot go on until the client's next bytes are read (SSLWantReadError):
    wait for readable, not writable (server/outbuf.py)."""


def is_client_gone(exc: BaseException) -> bool:
    """True when `exc` only says the peer went away (or timed out), not that we failed."""
    if isinstance(exc, (ClientGone, TimeoutError, ConnectionError)):
        return True
    return isinstance(exc, OSError) and exc.errno in CLIENT_GONE_ERRNOS


class RequestBodyError(OSError):
    """Reading wsgi.input failed: the body was cut short, malformed, or too slow to arrive.

    Raised to the application instead of ever returning a short body as if it were whole.
    `status_hint` is the answer the request deserves if no response has started.
    """

    def __init__(self, message: str, status_hint: int = 400) -> None:
        super().__init__(message)
        self.status_hint = status_hint
