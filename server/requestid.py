"""Request ids: one id per request that the access log, the application and the client can
all name, so that one line of each can be found from the others.

A proxy in front (a peer in forwarded_allow_ips) may have made the id already and sent it in
X-Request-ID (or the header `request_id_header` names): that one is kept when it is 1 to 200
visible ASCII characters. Otherwise, from any other peer or when it is malformed, a new one is
made: 16 random bytes as 32 hex digits (os.urandom: no lock, about 0.5 us; uuid4 costs more
for the same randomness). The client's header stays in the environ as it came (HTTP_X_...);
the id is `environ["treadle.request_id"]`. Nothing here runs unless something uses ids
(`RequestIds.wanted`), so the default path costs nothing.
"""

from __future__ import annotations

import os
from typing import Any

from .wsgi import TrustedProxies

ENVIRON_KEY = "treadle.request_id"
DEFAULT_HEADER = "X-Request-ID"
MAX_ID_CHARS = 200
TEXT_ATOM = "{treadle.request_id}e"  # the text access log's atom: gunicorn's {variable}e


class RequestIds:
    """Chooses each request's id, and the response header that echoes it (if any)."""

    __slots__ = ("environ_key", "echo_name", "echo_lower", "trusted")

    def __init__(self, echo_header: str | None, trusted: TrustedProxies) -> None:
        name = echo_header or DEFAULT_HEADER
        self.environ_key = "HTTP_" + name.upper().replace("-", "_")
        self.echo_name = echo_header.encode("ascii") if echo_header else None
        self.echo_lower = self.echo_name.lower() if self.echo_name else None
        self.trusted = trusted

    @staticmethod
    def wanted(echo_header: str | None, access_logged: bool, log_format: str,
               access_log_format: str) -> bool:
        """Whether anything uses ids: the echo, or an access log that writes them."""
        if echo_header:
            return True
        if not access_logged:
            return False
        return log_format == "json" or TEXT_ATOM in access_log_format.lower()

    def assign(self, environ: dict[str, Any], peer_host: str | None) -> str:
        """The id of this request, put in the environ."""
        given = environ.get(self.environ_key)
        if given is not None and valid_id(given) and self.trusted.trusts(peer_host):
            request_id: str = given
        else:
            request_id = os.urandom(16).hex()
        environ[ENVIRON_KEY] = request_id
        return request_id


def valid_id(value: str) -> bool:
    """1 to 200 characters, each visible ASCII (no space, no control, nothing beyond)."""
    return (0 < len(value) <= MAX_ID_CHARS and value.isascii() and value.isprintable()
            and " " not in value)
